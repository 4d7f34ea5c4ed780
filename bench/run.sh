#!/usr/bin/env bash
# bench/run.sh - tokenmill vs sentencepiece (Debian CLI and PyPI) vs HF
# tokenizers: BPE training time/memory, encoding throughput, id parity with
# spm_encode, and compression (bytes/token). See bench/README.md.
#
# usage: bench/run.sh [--quick] [--reps N] [--vocab N] [options]
#
#   --quick              5 MB slice of the corpus, vocab 8000 (unless --vocab)
#   --reps N             repetitions per measurement, median reported (3);
#                        spm_train (Debian) always runs once (it is slow)
#   --vocab N            vocabulary size (32000; 8000 with --quick)
#   --corpus DIR         corpus directory with en/*.txt and ja/*.txt
#                        (corpora/data; built with corpora/build.sh if missing)
#   --heldout-lines N    lines held out at the end of each file (2000; 200
#                        with --quick; never more than half a file)
#   --no-heldout-train   do not train the held-out variants (compression is
#                        then measured on training text only)
#   --json FILE          where to write the JSON (bench/results/latest.json)
#   --keep               keep the work directory (models, ids, logs)
#   -h, --help
#
# Tables go to stdout, progress to stderr. Environment: TOKENMILL (binary,
# default ./tokenmill of this tree), PYTHON (python3), TMPDIR.

set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
TOKENMILL=${TOKENMILL:-$top/tokenmill}
PYTHON=${PYTHON:-python3}

quick=0
reps=3
vocab=
corpus=$top/corpora/data
heldout_lines=
heldout_train=1
json_out=$here/results/latest.json
keep=0

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
need_arg() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs an argument"; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --quick) quick=1 ;;
        --reps) need_arg "$@"; reps=$2; shift ;;
        --reps=*) reps=${1#*=} ;;
        --vocab) need_arg "$@"; vocab=$2; shift ;;
        --vocab=*) vocab=${1#*=} ;;
        --corpus) need_arg "$@"; corpus=$2; shift ;;
        --corpus=*) corpus=${1#*=} ;;
        --heldout-lines) need_arg "$@"; heldout_lines=$2; shift ;;
        --heldout-lines=*) heldout_lines=${1#*=} ;;
        --no-heldout-train) heldout_train=0 ;;
        --json) need_arg "$@"; json_out=$2; shift ;;
        --json=*) json_out=${1#*=} ;;
        --keep) keep=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done
if ! is_uint "$reps" || [[ $reps -lt 1 ]]; then die "--reps: positive integer expected"; fi
if [[ -z $vocab ]]; then
    if [[ $quick -eq 1 ]]; then vocab=8000; else vocab=32000; fi
fi
if ! is_uint "$vocab" || [[ $vocab -lt 300 ]]; then die "--vocab: integer >= 300 expected"; fi
if [[ -z $heldout_lines ]]; then
    if [[ $quick -eq 1 ]]; then heldout_lines=200; else heldout_lines=2000; fi
fi
is_uint "$heldout_lines" || die "--heldout-lines: integer expected"

# ---------------------------------------------------------------- prerequisites

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null; then sudo -n "$@"
    else return 1
    fi
}

apt_install() {  # apt_install PKG...; quiet, retries after apt-get update
    local log
    log=$(mktemp)
    if ! DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >"$log" 2>&1; then
        as_root apt-get update -qq >>"$log" 2>&1 || true
        if ! DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >>"$log" 2>&1; then
            tail -n 5 "$log" >&2; rm -f "$log"; return 1
        fi
    fi
    rm -f "$log"
}

if [[ ! -x /usr/bin/time ]]; then
    say "installing GNU time (apt-get install time)"
    apt_install time || die "/usr/bin/time is needed (apt-get install time)"
fi

if [[ ! -x $TOKENMILL ]]; then
    [[ $TOKENMILL == "$top/tokenmill" ]] || die "TOKENMILL=$TOKENMILL is not executable"
    say "building tokenmill (make -j2)"
    make -C "$top" -j2 >&2 || die "make failed"
fi

command -v "$PYTHON" >/dev/null || die "$PYTHON not found"

notes=()
have_spm_cli=1
if ! command -v spm_train >/dev/null || ! command -v spm_encode >/dev/null; then
    say "installing Debian sentencepiece (spm_train, spm_encode)"
    if ! apt_install sentencepiece; then
        have_spm_cli=0
        notes+=("Debian spm_train/spm_encode not available (apt-get install sentencepiece failed): skipped")
        say "NOTE: spm_train/spm_encode unavailable, skipping them"
    fi
fi

py_has() { "$PYTHON" -c "import $1" >/dev/null 2>&1; }
pip_install() {  # pip_install PKG: quiet; PEP 668 systems need --break-system-packages
    "$PYTHON" -m pip install -q --disable-pip-version-check "$1" >/dev/null 2>&1 ||
        "$PYTHON" -m pip install -q --disable-pip-version-check --break-system-packages "$1" >/dev/null 2>&1
}
have_py_spm=1
have_hf=1
for peer in sentencepiece tokenizers; do
    py_has "$peer" && continue
    say "installing Python peer: pip install $peer"
    if pip_install "$peer" && py_has "$peer"; then continue; fi
    say "NOTE: pip install $peer failed, skipping it"
    notes+=("PyPI $peer could not be installed: skipped")
    if [[ $peer == sentencepiece ]]; then have_py_spm=0; else have_hf=0; fi
done

if ! compgen -G "$corpus/en/*.txt" >/dev/null || ! compgen -G "$corpus/ja/*.txt" >/dev/null; then
    [[ $corpus == "$top/corpora/data" ]] || die "no en/*.txt and ja/*.txt under $corpus"
    say "building the default corpus (corpora/build.sh)"
    "$top/corpora/build.sh" >&2 || die "corpora/build.sh failed"
fi

# ---------------------------------------------------------------- work area

work=$(mktemp -d "${TMPDIR:-/tmp}/tokenmill-bench.XXXXXX")
cleanup() {
    if [[ $keep -eq 1 ]]; then say "work directory kept: $work"
    else rm -rf "$work"
    fi
}
trap cleanup EXIT
mkdir -p "$work/logs" "$work/data/en" "$work/data/ja" \
    "$work/split/train/en" "$work/split/train/ja" "$work/split/heldout"
results=$work/results.tsv
: >"$results"

# Snapshot the binary (and, for libtool's uninstalled wrapper script, the real
# program and the shared libraries from .libs/) so that a rebuild of the tree
# during the run cannot mix two builds in one report.
tm_src=$TOKENMILL
mkdir -p "$work/bin/lib"
if head -c 4 "$tm_src" | grep -q ELF; then
    cp -p "$tm_src" "$work/bin/lib/tokenmill"
elif [[ -x $(dirname "$tm_src")/.libs/$(basename "$tm_src") ]]; then
    cp -p "$(dirname "$tm_src")/.libs/$(basename "$tm_src")" "$work/bin/lib/tokenmill"
    cp -P "$(dirname "$tm_src")"/.libs/lib*.so* "$work/bin/lib/" 2>/dev/null || true
else
    die "$tm_src: neither an ELF binary nor a libtool wrapper with .libs/"
fi
# shellcheck disable=SC2016  # $LD_LIBRARY_PATH and $@ belong to the wrapper
printf '#!/bin/sh\nLD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"\nexport LD_LIBRARY_PATH\nexec "%s" "$@"\n' \
    "$work/bin/lib" "$work/bin/lib/tokenmill" >"$work/bin/tokenmill"
chmod +x "$work/bin/tokenmill"
TOKENMILL=$work/bin/tokenmill
"$TOKENMILL" --version >/dev/null || die "the snapshot of $tm_src does not run"

rec() { local IFS=$'\t'; printf '%s\n' "$*" >>"$results"; }

src_files=("$corpus"/en/*.txt "$corpus"/ja/*.txt)   # LC_ALL=C: stable order
files=()
if [[ $quick -eq 1 ]]; then
    # 5 MB slice: the same share of every file, cut back to a whole line
    total=$(cat "${src_files[@]}" | wc -c)
    for f in "${src_files[@]}"; do
        lang=$(basename "$(dirname "$f")")
        size=$(wc -c <"$f")
        out=$work/data/$lang/$(basename "$f")
        head -c $((size * 5000000 / total)) "$f" | head -n -1 >"$out"
        files+=("$out")
    done
else
    files=("${src_files[@]}")
fi
corpus_txt=$work/corpus.txt
cat "${files[@]}" >"$corpus_txt"
corpus_bytes=$(wc -c <"$corpus_txt")
corpus_lines=$(wc -l <"$corpus_txt")

# held-out split: last min(H, lines/2) lines of each file
train_files=()
for f in "${files[@]}"; do
    lang=$(basename "$(dirname "$f")")
    n=$(wc -l <"$f")
    h=$heldout_lines
    [[ $h -le $((n / 2)) ]] || h=$((n / 2))
    head -n $((n - h)) "$f" >"$work/split/train/$lang/$(basename "$f")"
    tail -n "$h" "$f" >>"$work/split/heldout/$lang.txt"
    train_files+=("$work/split/train/$lang/$(basename "$f")")
done
cat "$work/split/heldout/en.txt" "$work/split/heldout/ja.txt" >"$work/split/heldout/all.txt"
cat "${train_files[@]}" >"$work/split/train.txt"

# ---------------------------------------------------------------- versions

tm_version=$("$TOKENMILL" --version 2>&1 | head -n 1)
spm_cli_version=n/a
[[ $have_spm_cli -eq 1 ]] && spm_cli_version=$(spm_train --version 2>&1 | head -n 1)
py_version=$("$PYTHON" -c 'import platform; print(platform.python_version())')
py_spm_version=n/a
[[ $have_py_spm -eq 1 ]] && py_spm_version=$("$PYTHON" -c 'import sentencepiece; print(sentencepiece.__version__)')
hf_version=n/a
[[ $have_hf -eq 1 ]] && hf_version=$("$PYTHON" -c 'import tokenizers; print(tokenizers.__version__)')
cpu_model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
mem_total=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
os_name=$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release 2>/dev/null)

rec meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
rec meta nproc "$(nproc)"
rec meta cpu "${cpu_model:-unknown}"
rec meta mem "$mem_total"
rec meta os "${os_name:-unknown}"
rec meta kernel "$(uname -r)"
rec meta v_tokenmill "$tm_version"
rec meta tokenmill_binary "$tm_src"
rec meta tokenmill_built "$(date -u -r "$work/bin/lib/tokenmill" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo '?')"
rec meta tokenmill_sha256 "$(sha256sum "$work/bin/lib/tokenmill" | cut -c1-16)"
rec meta git_head "$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?')"
rec meta v_spm_cli "$spm_cli_version"
rec meta v_python "$py_version"
rec meta v_spm_py "$py_spm_version"
rec meta v_hf "$hf_version"
rec meta quick "$quick"
rec meta reps "$reps"
rec meta vocab "$vocab"
rec meta corpus_dir "$corpus"
rec meta corpus_bytes "$corpus_bytes"
rec meta corpus_lines "$corpus_lines"
rec meta corpus_files "$(printf '%s ' "${files[@]##*/data/}")"
rec meta heldout_lines "$heldout_lines"
for lang in en ja all; do
    f=$work/split/heldout/$lang.txt
    rec meta "heldout_${lang}_lines" "$(wc -l <"$f")"
done
rec meta heldout_train "$heldout_train"

say "corpus: ${#files[@]} files, $corpus_bytes bytes, $corpus_lines lines; vocab $vocab; reps $reps"
say "tokenmill: $tm_version | spm CLI: $spm_cli_version | PyPI sentencepiece: $py_spm_version | tokenizers: $hf_version"

# ---------------------------------------------------------------- helpers

WALL=0
RSS=0
timed() {  # timed STDIN STDOUT STDERR CMD...: sets WALL (s) and RSS (KB)
    local in=$1 out=$2 err=$3 rc=0
    shift 3
    /usr/bin/time -f '%e %M' -o "$work/.time" "$@" <"$in" >"$out" 2>"$err" || rc=$?
    read -r WALL RSS < <(tail -n 1 "$work/.time")
    if [[ $rc -ne 0 ]]; then
        say "FAILED (exit $rc): $*"
        tail -n 5 "$err" >&2
    fi
    return "$rc"
}

# The same flag list for the Debian CLI and the PyPI trainer.
spm_opts() {  # spm_opts INPUT PREFIX
    printf '%s\n' "--input=$1" "--model_prefix=$2" --model_type=bpe \
        "--vocab_size=$vocab" --split_digits=true --byte_fallback=true \
        --normalization_rule_name=identity --add_dummy_prefix=false \
        --remove_extra_whitespaces=false --character_coverage=0.9995 \
        --num_threads=2 --max_sentence_length=100000000 \
        --input_sentence_size=0 --train_extremely_large_corpus=false
}
# shellcheck disable=SC2016  # python source, not shell
py_spm_train='import sys, sentencepiece as spm
spm.SentencePieceTrainer.train(**dict(a[2:].split("=", 1) for a in sys.argv[1:]))'

spm_log_counts() {  # spm_log_counts LOG: prints "LOADED SKIPPED"
    local loaded skipped
    loaded=$(sed -n 's/.*Loaded all \([0-9]*\) sentences.*/\1/p' "$1" | tail -n 1)
    skipped=$(sed -n 's/.*Skipped \([0-9]*\) too long sentences.*/\1/p' "$1" | tail -n 1)
    printf '%s %s\n' "${loaded:-?}" "${skipped:-0}"
}

train_tokenmill() {  # train_tokenmill OUT.model LOG FILE...
    local out=$1 log=$2
    shift 2
    timed /dev/null /dev/null "$log" "$TOKENMILL" train --model-type bpe \
        --vocab-size "$vocab" --split-digits --byte-fallback --threads 2 -q \
        -o "$out" "$@"
}

train_spm_cli() {  # train_spm_cli INPUT PREFIX LOG
    local -a opts
    mapfile -t opts < <(spm_opts "$1" "$2")
    timed /dev/null /dev/null "$3" spm_train "${opts[@]}"
}

train_spm_py() {  # train_spm_py INPUT PREFIX LOG
    local -a opts
    mapfile -t opts < <(spm_opts "$1" "$2")
    timed /dev/null /dev/null "$3" "$PYTHON" -c "$py_spm_train" "${opts[@]}"
}

count_tokens() {  # count_tokens KIND MODEL FILE: prints the number of tokens
    local kind=$1 model=$2 file=$3
    case $kind in
        tokenmill) "$TOKENMILL" encode -m "$model" --output-format id -t 2 <"$file" | wc -w ;;
        spm)
            if [[ $have_spm_cli -eq 1 ]]; then
                spm_encode --model "$model" --output_format=id <"$file" | wc -w
            else
                "$PYTHON" "$here/py_encode.py" spm "$model" "$file" |
                    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["tokens"])'
            fi ;;
        hf)
            RAYON_NUM_THREADS=2 "$PYTHON" "$here/py_encode.py" hf "$model" "$file" |
                "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["tokens"])' ;;
    esac
}

compress() {  # compress NAME KIND MODEL SPLIT
    local name=$1 kind=$2 model=$3 split=$4 lang f bytes tokens
    for lang in en ja all; do
        f=$work/split/heldout/$lang.txt
        bytes=$(( $(wc -c <"$f") - $(wc -l <"$f") ))
        tokens=$(count_tokens "$kind" "$model" "$f")
        rec compress "$name" "$split" "$lang" "$bytes" "$tokens"
    done
}

# ---------------------------------------------------------------- training

tm_model=$work/tokenmill.model
spm_cli_prefix=$work/spm_cli
spm_py_prefix=$work/spm_py
hf_model=$work/hf_tokenizer.json

say "TRAINING (BPE, vocab $vocab, 2 threads)"
for ((rep = 1; rep <= reps; rep++)); do
    say "  rep $rep/$reps: tokenmill"
    train_tokenmill "$tm_model" "$work/logs/train_tokenmill.$rep.log" "${files[@]}" ||
        die "tokenmill train failed"
    rec train tokenmill "$rep" "$WALL" "$RSS"
    say "    ${WALL}s, $((RSS / 1024)) MB"

    if [[ $have_py_spm -eq 1 ]]; then
        say "  rep $rep/$reps: sentencepiece (PyPI)"
        if train_spm_py "$corpus_txt" "$spm_py_prefix" "$work/logs/train_spm_py.$rep.log"; then
            rec train spm_py "$rep" "$WALL" "$RSS"
            say "    ${WALL}s, $((RSS / 1024)) MB"
        else
            have_py_spm=0
            notes+=("PyPI sentencepiece training failed: skipped")
        fi
    fi

    if [[ $have_hf -eq 1 ]]; then
        say "  rep $rep/$reps: HF tokenizers"
        if RAYON_NUM_THREADS=2 timed /dev/null "$work/logs/hf_train.$rep.json" \
            "$work/logs/hf_train.$rep.log" \
            "$PYTHON" "$here/hf_train.py" --vocab-size "$vocab" -o "$hf_model" "${files[@]}"; then
            rec train hf "$rep" "$WALL" "$RSS"
            say "    ${WALL}s, $((RSS / 1024)) MB"
        else
            have_hf=0
            notes+=("HF tokenizers training failed: skipped")
        fi
    fi
done

if [[ $have_py_spm -eq 1 ]]; then
    read -r loaded skipped < <(spm_log_counts "$work/logs/train_spm_py.1.log")
    rec meta spm_py_loaded "$loaded"
    rec meta spm_py_skipped "$skipped"
fi
if [[ $have_hf -eq 1 ]]; then
    rec meta hf_vocab "$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["vocab_size"])' "$work/logs/hf_train.1.json")"
fi

if [[ $have_spm_cli -eq 1 ]]; then
    say "  spm_train (Debian $spm_cli_version): 1 rep only (slow)"
    if train_spm_cli "$corpus_txt" "$spm_cli_prefix" "$work/logs/train_spm_cli.log"; then
        rec train spm_cli 1 "$WALL" "$RSS"
        say "    ${WALL}s, $((RSS / 1024)) MB"
        read -r loaded skipped < <(spm_log_counts "$work/logs/train_spm_cli.log")
        rec meta spm_cli_loaded "$loaded"
        rec meta spm_cli_skipped "$skipped"
        say "    spm_train loaded $loaded of $corpus_lines lines, skipped $skipped too long"
    else
        have_spm_cli=0
        notes+=("Debian spm_train failed: skipped")
    fi
fi

# the models themselves are compared by report.py (pieces, scores, types)
rec meta model_tokenmill "$tm_model"
[[ -f $spm_cli_prefix.model ]] && rec meta model_spm_cli "$spm_cli_prefix.model"
[[ -f $spm_py_prefix.model ]] && rec meta model_spm_py "$spm_py_prefix.model"

# ---------------------------------------------------------------- encoding

say "ENCODING (the whole corpus, tokenmill model, ids)"
for ((rep = 1; rep <= reps; rep++)); do
    for t in 1 2; do
        say "  rep $rep/$reps: tokenmill encode -t $t"
        timed "$corpus_txt" "$work/ids.tokenmill.t$t" "$work/logs/enc_tokenmill.log" \
            "$TOKENMILL" encode -m "$tm_model" --output-format id -t "$t" ||
            die "tokenmill encode failed"
        rec encode tokenmill "$t" "$rep" "$WALL" "$RSS" -
        say "    ${WALL}s"
    done
    if [[ $have_spm_cli -eq 1 ]]; then
        say "  rep $rep/$reps: spm_encode"
        if timed "$corpus_txt" "$work/ids.spm_cli" "$work/logs/enc_spm_cli.log" \
            spm_encode --model "$tm_model" --output_format=id; then
            rec encode spm_cli 1 "$rep" "$WALL" "$RSS" -
            say "    ${WALL}s"
        fi
    fi
    if [[ $have_py_spm -eq 1 ]]; then
        for t in 1 2; do
            say "  rep $rep/$reps: sentencepiece (PyPI) encode, num_threads=$t"
            ids_opt=()
            [[ $rep -eq 1 && $t -eq 1 ]] && ids_opt=(--ids-out "$work/ids.spm_py")
            if timed /dev/null "$work/logs/enc_spm_py.json" "$work/logs/enc_spm_py.log" \
                "$PYTHON" "$here/py_encode.py" spm "$tm_model" "$corpus_txt" \
                --threads "$t" "${ids_opt[@]}"; then
                enc_s=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["encode_s"])' "$work/logs/enc_spm_py.json")
                rec encode spm_py "$t" "$rep" "$WALL" "$RSS" "$enc_s"
                say "    encode ${enc_s}s (process ${WALL}s)"
            fi
        done
    fi
    if [[ $have_hf -eq 1 ]]; then
        for t in 1 2; do
            say "  rep $rep/$reps: HF tokenizers encode_batch, RAYON_NUM_THREADS=$t"
            if RAYON_NUM_THREADS=$t TOKENIZERS_PARALLELISM=true timed /dev/null \
                "$work/logs/enc_hf.json" "$work/logs/enc_hf.log" \
                "$PYTHON" "$here/py_encode.py" hf "$hf_model" "$corpus_txt" --threads "$t"; then
                enc_s=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["encode_s"])' "$work/logs/enc_hf.json")
                rec encode hf "$t" "$rep" "$WALL" "$RSS" "$enc_s"
                say "    encode ${enc_s}s (process ${WALL}s)"
            fi
        done
    fi
done

say "PARITY (ids on the whole corpus)"
if cmp -s "$work/ids.tokenmill.t1" "$work/ids.tokenmill.t2"; then
    rec check ids_tokenmill_t1_vs_t2 identical
else
    rec check ids_tokenmill_t1_vs_t2 DIFFER
fi
for peer in spm_cli spm_py; do
    f=$work/ids.$peer
    [[ -f $f ]] || continue
    if cmp -s "$work/ids.tokenmill.t1" "$f"; then
        rec check "ids_tokenmill_vs_$peer" identical
    else
        rec check "ids_tokenmill_vs_$peer" "DIFFER ($(cmp "$work/ids.tokenmill.t1" "$f" 2>&1 | head -n 1))"
    fi
done
rec meta ids_lines "$(wc -l <"$work/ids.tokenmill.t1")"
rec meta ids_tokens "$(wc -w <"$work/ids.tokenmill.t1")"

# ---------------------------------------------------------------- compression

say "COMPRESSION (bytes/token on the held-out lines)"
compress tokenmill tokenmill "$tm_model" in-sample
[[ -f $spm_cli_prefix.model ]] && compress spm_cli spm "$spm_cli_prefix.model" in-sample
[[ -f $spm_py_prefix.model ]] && compress spm_py spm "$spm_py_prefix.model" in-sample
[[ $have_hf -eq 1 && -f $hf_model ]] && compress hf hf "$hf_model" in-sample

if [[ $heldout_train -eq 1 ]]; then
    say "  training held-out variants (corpus minus held-out lines)"
    train_tokenmill "$work/tokenmill_ho.model" "$work/logs/train_tokenmill_ho.log" \
        "${train_files[@]}" || die "tokenmill train (held-out) failed"
    rec train_heldout tokenmill 1 "$WALL" "$RSS"
    compress tokenmill tokenmill "$work/tokenmill_ho.model" held-out
    # the slow Debian CLI when present, else the PyPI trainer (same options)
    if [[ $have_spm_cli -eq 1 ]]; then
        say "  spm_train (Debian) on the held-out split"
        if train_spm_cli "$work/split/train.txt" "$work/spm_cli_ho" "$work/logs/train_spm_cli_ho.log"; then
            rec train_heldout spm_cli 1 "$WALL" "$RSS"
            compress spm_cli spm "$work/spm_cli_ho.model" held-out
        fi
    elif [[ $have_py_spm -eq 1 ]]; then
        if train_spm_py "$work/split/train.txt" "$work/spm_py_ho" "$work/logs/train_spm_py_ho.log"; then
            rec train_heldout spm_py 1 "$WALL" "$RSS"
            compress spm_py spm "$work/spm_py_ho.model" held-out
        fi
    fi
    if [[ $have_hf -eq 1 ]]; then
        say "  HF tokenizers on the held-out split"
        if RAYON_NUM_THREADS=2 timed /dev/null /dev/null "$work/logs/hf_train_ho.log" \
            "$PYTHON" "$here/hf_train.py" --vocab-size "$vocab" -o "$work/hf_ho.json" "${train_files[@]}"; then
            rec train_heldout hf 1 "$WALL" "$RSS"
            compress hf hf "$work/hf_ho.json" held-out
        fi
    fi
fi

for n in "${notes[@]}"; do rec note "$n"; done

# ---------------------------------------------------------------- report

mkdir -p "$(dirname "$json_out")"
"$PYTHON" "$here/report.py" "$results" "$json_out"
say "JSON written to $json_out"
