#!/usr/bin/env bash
# bench/scale.sh - tokenmill at the corpus sizes users have: generated English
# + Japanese text (bench/textgen.c, a code-point n-gram model of the default
# corpus with word mutations) at several sizes, --preset nerdstash BPE (and
# Unigram) side by side with PyPI sentencepiece and HF tokenizers, 2 threads.
# Not part of make check. See bench/README.md ("Scale").
#
# usage: bench/scale.sh [options]
#
#   --sizes LIST      sizes in GB, comma-separated (0.1,0.5; the issue's
#                     full set is 0.1,0.5,1,2,4)
#   --data DIR        where generated files go (${TMPDIR:-/tmp}/tokenmill-scale;
#                     never inside the repository); a file is reused when its
#                     name (size, seed) matches; --clean deletes each after use
#   --seed N          generator seed (1)
#   --vocab N         vocabulary size (65535, the preset's)
#   --threads N       threads for every tool (2)
#   --no-peers        tokenmill only
#   --no-unigram      no Unigram runs
#   --spm-max-gb G / --hf-max-gb G   run that peer only at sizes <= G GB
#                     (default: no cap; a quick run: --spm-max-gb 1 --hf-max-gb 0.5)
#   --peer-limit-gb G / --peer-limit-min M   a peer is stopped past G GB of RSS
#                     or M minutes (20, 30) and not run at larger sizes
#   --stream          generate each size into a pipe that `tokenmill train -`
#                     reads instead of a file (no disk needed; chosen
#                     automatically for a size larger than the free space in
#                     --data); peers are skipped at streamed sizes (they read
#                     files); the text comes from textgen's block mode
#                     (-t GEN_THREADS: same statistics, other bytes than the
#                     files) and the times are tokenmill's alone
#   --gen-threads N   textgen threads when streaming (2)
#   --curve           also print the unique pre-token growth of the real corpus
#                     (interleaved 60/40 by bytes) against the generated text
#   --json FILE       results (bench/results/scale.json)
#   -h, --help
#
# Prints, per size: wall and CPU (user+sys) seconds, peak RSS, unique
# pre-tokens, tokenmill's counting / merging split, ratios peer / tokenmill,
# then a log-log fit of tokenmill's CPU time and RSS against size with the
# extrapolation to 20 and 100 GB. Environment: TOKENMILL, PYTHON, TMPDIR.

set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
TOKENMILL=${TOKENMILL:-$top/tokenmill}
PYTHON=${PYTHON:-python3}

sizes=0.1,0.5
data=${TMPDIR:-/tmp}/tokenmill-scale
seed=1
vocab=65535
threads=2
peers=1
unigram=1
limit_gb=20
limit_min=30
spm_max=inf
hf_max=inf
curve=0
clean=0
stream=0
gen_threads=2
json_out=$here/results/scale.json

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { printf 'scale: %s\n' "$*" >&2; exit 1; }
say() { printf '[scale %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --sizes) sizes=$2; shift ;;
        --sizes=*) sizes=${1#*=} ;;
        --data) data=$2; shift ;;
        --data=*) data=${1#*=} ;;
        --seed) seed=$2; shift ;;
        --vocab) vocab=$2; shift ;;
        --threads) threads=$2; shift ;;
        --no-peers) peers=0 ;;
        --no-unigram) unigram=0 ;;
        --spm-max-gb) spm_max=$2; shift ;;
        --hf-max-gb) hf_max=$2; shift ;;
        --peer-limit-gb) limit_gb=$2; shift ;;
        --peer-limit-min) limit_min=$2; shift ;;
        --curve) curve=1 ;;
        --stream) stream=1 ;;
        --gen-threads) gen_threads=$2; shift ;;
        --clean) clean=1 ;;
        --json) json_out=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option $1 (--help)" ;;
    esac
    shift
done
case $data in "$top"|"$top"/*) die "--data must be outside the repository ($data)" ;; esac
[[ -x $TOKENMILL ]] || (cd "$top" && make -j2 tokenmill >/dev/null) || die "build tokenmill first"
command -v /usr/bin/time >/dev/null || die "GNU time is needed (apt-get install time)"
gen=$top/bench/textgen
if [[ ! -x $gen || $gen -ot $top/bench/textgen.c ]]; then
    (cd "$top" && make bench/textgen >/dev/null 2>&1) || cc -O2 -o "$gen" "$top/bench/textgen.c" -lm || die "cannot build bench/textgen"
fi
corpus=$top/corpora/data
[[ -d $corpus/en && -d $corpus/ja ]] || die "no default corpus in $corpus (corpora/build.sh)"
mkdir -p "$data" "$(dirname "$json_out")"
work=$(mktemp -d "${TMPDIR:-/tmp}/tkm-scale.XXXXXX")
trap 'rm -rf "$work"' EXIT
have_spm=0 have_hf=0
if [[ $peers -eq 1 ]]; then
    "$PYTHON" -c 'import sentencepiece' 2>/dev/null && have_spm=1 || say "PyPI sentencepiece not importable: skipped"
    "$PYTHON" -c 'import tokenizers' 2>/dev/null && have_hf=1 || say "HF tokenizers not importable: skipped"
fi
results=$work/results.tsv
: >"$results"

# run NAME SIZE LIMITED CMD...: wall, CPU, peak RSS of the whole process group,
# stopped past the limits when LIMITED=1. Appends a line to $results. When
# $inner_tf names a file, the times and peak RSS are read from it instead
# (streaming: the trainer's own /usr/bin/time, without the generator's).
inner_tf=
run() {
    local name=$1 size=$2 limited=$3
    shift 3
    local log=$work/$name.$size.log tf=$work/time.$name.$size
    setsid /usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" >"$log" 2>&1 &
    local pid=$! peak=0 start=$SECONDS status=ok
    while kill -0 "$pid" 2>/dev/null; do
        sleep 1
        local rss
        rss=$( (ps -o rss= -g "$pid" 2>/dev/null || true) | awk '{s += $1} END {print s + 0}')
        if ((rss > peak)); then peak=$rss; fi
        if [[ $limited -eq 1 ]] && ((rss > limit_gb * 1024 * 1024 || SECONDS - start > limit_min * 60)); then
            status=stopped
            kill -- -"$pid" 2>/dev/null || true
        fi
    done
    wait "$pid" || { [[ $status == stopped ]] || status=failed; }
    local wall=NA user=0 sys=0 maxrss=0
    if [[ -n $inner_tf ]]; then
        [[ -s $inner_tf ]] && read -r wall user sys maxrss < <(tail -1 "$inner_tf") || true
    else
        [[ -s $tf ]] && read -r wall user sys maxrss < <(tail -1 "$tf") || true
    fi
    [[ $wall =~ ^[0-9.]+$ ]] || wall=$((SECONDS - start))
    if [[ -z $inner_tf ]] && ((maxrss < peak)); then maxrss=$peak; fi
    local uniq=NA tcount=NA tmerge=NA
    if [[ $name == tokenmill* && $status == ok ]]; then
        uniq=$(sed -n 's/.*pre-tokens (\([0-9]*\) unique).*/\1/p' "$log")
        read -r tcount tmerge < <(sed -n 's/^  time *\([0-9.]*\) s counting, \([0-9.]*\) s.*/\1 \2/p' "$log") || true
    fi
    [[ $status == failed ]] && say "  $name failed: $(tail -2 "$log" | tr '\n' ' ')"
    if [[ -n $inner_tf && $name == tokenmill* ]]; then
        local l
        while read -r l; do say "  $name: $l"; done < <(grep -E '^  (memory|sampled) ' "$log" | sed 's/^ *//')
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$name" "$status" "$wall" \
        "$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}')" "$maxrss" "${uniq:-NA}" "${tcount:-NA}" "${tmerge:-NA}" >>"$results"
    say "  $name: $status, $wall s wall, $(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.1f", u + s}') s CPU, $((maxrss / 1024)) MB"
}

spm_py='import sys, sentencepiece as spm
spm.SentencePieceTrainer.train(**dict(a[2:].split("=", 1) for a in sys.argv[1:]))'
# sentencepiece options equivalent to --preset nerdstash (its user-defined
# whitespace runs, tab and newline symbols left out: not passable on a command line)
spm_opts=(--model_type=bpe --vocab_size="$vocab" --character_coverage=0.9999985 --split_digits=true
          --byte_fallback=true --allow_whitespace_only_pieces=true --normalization_rule_name=identity
          --add_dummy_prefix=false --remove_extra_whitespaces=false --num_threads="$threads"
          --max_sentence_length=100000000 --pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3)
spm_stopped=0 hf_stopped=0

# stream NAME SIZE CMD...: run NAME with textgen's block mode piped into CMD,
# which reads "-"; the trainer's own times are recorded, the generator's said
stream_run() {
    local name=$1 size=$2
    shift 2
    inner_tf=$work/inner.$name.$size
    local gtf=$work/gen.$name.$size
    run "$name" "$size" 0 bash -c 'set -o pipefail
        gtf=$1 itf=$2 gen=$3 seed=$4 bytes=$5 gt=$6 corpus=$7 glog=$8
        shift 8
        /usr/bin/time -f "%e %U %S %M" -o "$gtf" "$gen" -s "$seed" -b "$bytes" -t "$gt" -o - "$corpus" 2>"$glog" |
            /usr/bin/time -f "%e %U %S %M" -o "$itf" "$@"' stream "$gtf" "$inner_tf" "$gen" "$seed" "$bytes" "$gen_threads" \
        "$corpus" "$work/gen.$name.$size.log" "$@"
    inner_tf=
    [[ -s $gtf ]] && say "  textgen (block mode, -t $gen_threads) into the pipe: $(tail -1 "$gtf" |
        awk -v b="$bytes" '{printf "%s s wall, %.1f s CPU, %.1f MB per CPU second, model build included", $1, $2 + $3, b / 1e6 / ($2 + $3 > 0 ? $2 + $3 : 1)}')"
}

IFS=, read -r -a size_list <<<"$sizes"
for gb in "${size_list[@]}"; do
    bytes=$(awk -v g="$gb" 'BEGIN {printf "%.0f", g * 1e9}')
    f=$data/textgen-s$seed-$bytes.txt
    streamed=$stream
    if [[ $streamed -eq 0 && ! -s $f ]]; then
        avail=$(df -P -B1 "$data" | awk 'NR == 2 {print $4}')
        if awk -v b="$bytes" -v a="${avail:-0}" 'BEGIN {exit !(b + 2e9 > a)}'; then
            say "$gb GB does not fit in $data ($(awk -v a="${avail:-0}" 'BEGIN {printf "%.1f", a / 1e9}') GB free): streamed"
            streamed=1
        fi
    fi
    if [[ $streamed -eq 1 ]]; then
        say "size $gb GB, streamed (textgen | tokenmill train -); peers skipped: they read files"
        stream_run tokenmill-bpe "$gb" "$TOKENMILL" train --preset nerdstash --vocab-size "$vocab" -t "$threads" -o "$work/tm.model" -
        [[ $unigram -eq 1 ]] &&
            stream_run tokenmill-unigram "$gb" "$TOKENMILL" train --preset nerdstash --model-type unigram --vocab-size "$vocab" -t "$threads" -o "$work/tmu.model" -
        continue
    fi
    if [[ ! -s $f ]]; then
        say "generating $gb GB -> $f"
        /usr/bin/time -f '%e %U %S %M' -o "$work/gen.time" "$gen" -s "$seed" -b "$bytes" -o "$f" "$corpus" 2>"$work/gen.log" ||
            die "textgen failed: $(tail -2 "$work/gen.log")"
        say "  textgen: $(tail -1 "$work/gen.time" | awk '{printf "%s s wall, %.1f s CPU", $1, $2 + $3}')"
    fi
    say "size $gb GB"
    run tokenmill-bpe "$gb" 0 "$TOKENMILL" train --preset nerdstash --vocab-size "$vocab" -t "$threads" -o "$work/tm.model" "$f"
    [[ $unigram -eq 1 ]] &&
        run tokenmill-unigram "$gb" 0 "$TOKENMILL" train --preset nerdstash --model-type unigram --vocab-size "$vocab" -t "$threads" -o "$work/tmu.model" "$f"
    le() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(b == "inf" || a + 0 <= b + 0)}'; }
    if [[ $have_spm -eq 1 && $spm_stopped -eq 0 ]] && le "$gb" "$spm_max"; then
        run spm-bpe "$gb" 1 "$PYTHON" -c "$spm_py" --input="$f" --model_prefix="$work/spm" "${spm_opts[@]}"
        tail -1 "$results" | grep -q $'\tok\t' || spm_stopped=1
    fi
    if [[ $have_hf -eq 1 && $hf_stopped -eq 0 ]] && le "$gb" "$hf_max"; then
        run hf-bpe "$gb" 1 env RAYON_NUM_THREADS="$threads" "$PYTHON" "$here/hf_train.py" --vocab-size "$vocab" -o "$work/hf.json" "$f"
        tail -1 "$results" | grep -q $'\tok\t' || hf_stopped=1
    fi
    [[ $clean -eq 1 ]] && rm -f "$f"
done

curve_file=$work/curve.tsv
: >"$curve_file"
if [[ $curve -eq 1 ]]; then
    say "growth curve: real corpus (en/ja interleaved 60/40 by bytes) vs generated"
    "$PYTHON" - "$corpus" "$work/real.txt" <<'EOF'
import glob, sys
d, out = sys.argv[1], sys.argv[2]
def lines(sub):
    for f in sorted(glob.glob(d + "/" + sub + "/*.txt")):
        with open(f, "rb") as fp:
            for l in fp:
                yield l if l.endswith(b"\n") else l + b"\n"
en, ja, done, den = lines("en"), lines("ja"), 0, 0
with open(out, "wb") as o:
    while True:
        use_en = den <= 0.6 * (done + 1)
        try:
            l = next(en if use_en else ja)
        except StopIteration:
            break
        o.write(l)
        done += len(l)
        den += len(l) if use_en else 0
EOF
    real_bytes=$(stat -c %s "$work/real.txt")
    "$gen" -s "$seed" -b "$real_bytes" -o "$work/gen.txt" "$corpus" 2>/dev/null
    for mb in 2 4 8 16 $((real_bytes / 1000000)); do
        for src in real gen; do
            head -c "${mb}000000" "$work/$src.txt" >"$work/prefix.txt"
            u=$("$TOKENMILL" train --preset nerdstash --vocab-size 6000 --hard-vocab-limit=false -t "$threads" \
                -o "$work/c.model" "$work/prefix.txt" 2>&1 | sed -n 's/.*pre-tokens (\([0-9]*\) unique).*/\1/p')
            printf '%s\t%s\t%s\n' "$src" "$mb" "$u" >>"$curve_file"
        done
    done
    rm -f "$work/real.txt" "$work/gen.txt" "$work/prefix.txt"
fi

"$PYTHON" - "$results" "$curve_file" "$json_out" "$threads" "$vocab" <<'EOF'
import json, math, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
curve = [l.rstrip("\n").split("\t") for l in open(sys.argv[2]) if l.strip()]
threads, vocab = sys.argv[4], sys.argv[5]
def num(x):
    try:
        return float(x)
    except ValueError:
        return None
R = []
for size, name, status, wall, cpu, rss, uniq, tc, tm in rows:
    R.append(dict(size_gb=float(size), tool=name, status=status, wall_s=num(wall), cpu_s=num(cpu),
                  peak_rss_gb=int(rss) / 1024 / 1024, unique_pretokens=num(uniq), count_s=num(tc), merge_s=num(tm)))
by = {(r["size_gb"], r["tool"]): r for r in R}
sizes = sorted({r["size_gb"] for r in R})
print(f"\nBPE --preset nerdstash, vocab {vocab}, {threads} threads; CPU = user + sys; ratios = peer / tokenmill BPE")
print(f"{'GB':>5} {'unique':>9} {'tool':<18} {'status':<8} {'wall s':>8} {'CPU s':>8} {'RSS GB':>7} {'count s':>8} {'merge s':>8} {'xCPU':>6} {'xRSS':>6}")
for s in sizes:
    base = by.get((s, "tokenmill-bpe"))
    uq = base["unique_pretokens"] if base and base["unique_pretokens"] else None
    for r in [r for r in R if r["size_gb"] == s]:
        f = lambda v, d=1: "-" if v is None else f"{v:.{d}f}"
        xc = xr = "-"
        if base and not r["tool"].startswith("tokenmill") and r["status"] == "ok" and base["cpu_s"]:
            xc = f"{r['cpu_s'] / base['cpu_s']:.2f}"
            xr = f"{r['peak_rss_gb'] / base['peak_rss_gb']:.2f}"
        print(f"{s:>5} {('-' if uq is None else f'{uq / 1e6:.2f}M'):>9} {r['tool']:<18} {r['status']:<8} {f(r['wall_s']):>8} {f(r['cpu_s']):>8} "
              f"{r['peak_rss_gb']:>7.2f} {f(r['count_s']):>8} {f(r['merge_s']):>8} {xc:>6} {xr:>6}")
fits = {}
print("\nlog-log fit over the sizes above (least squares) and extrapolation to 20 and 100 GB:")
for tool in ("tokenmill-bpe", "tokenmill-unigram", "spm-bpe", "hf-bpe"):
    pts = [(r["size_gb"], r) for r in R if r["tool"] == tool and r["status"] == "ok"]
    if len(pts) < 2:
        continue
    fits[tool] = {}
    line = f"{tool:<18}"
    for key in ("cpu_s", "peak_rss_gb", "unique_pretokens"):
        xy = [(math.log(s), math.log(r[key])) for s, r in pts if r[key]]
        if len(xy) < 2:
            continue
        n = len(xy)
        mx = sum(x for x, _ in xy) / n
        my = sum(y for _, y in xy) / n
        sxx = sum((x - mx) ** 2 for x, _ in xy)
        if sxx == 0:
            continue
        b = sum((x - mx) * (y - my) for x, y in xy) / sxx
        a = my - b * mx
        e20, e100 = math.exp(a + b * math.log(20)), math.exp(a + b * math.log(100))
        fits[tool][key] = dict(exponent=b, at_20gb=e20, at_100gb=e100)
        line += f"  {key} ~ size^{b:.2f} (20 GB: {e20:.3g}, 100 GB: {e100:.3g})"
    print(line)
if curve:
    print("\nunique pre-tokens (nerdstash cuts): real corpus (en/ja interleaved 60/40) vs generated, same prefix sizes")
    print(f"{'MB':>5} {'real':>9} {'generated':>10} {'gen/real':>9}")
    d = {}
    for src, mb, u in curve:
        d.setdefault(int(mb), {})[src] = int(u) if u else None
    for mb in sorted(d):
        r, g = d[mb].get("real"), d[mb].get("gen")
        print(f"{mb:>5} {r:>9} {g:>10} {g / r if r and g else 0:>9.2f}")
json.dump(dict(threads=int(threads), vocab=int(vocab), runs=R, fits=fits,
               curve=[dict(source=s, mb=int(m), unique=int(u) if u else None) for s, m, u in curve]),
          open(sys.argv[3], "w"), indent=1)
print(f"\nJSON: {sys.argv[3]}")
EOF
