#!/usr/bin/env bash
# bench/identical.sh - write every kind of tokenmill output once, so that a
# refactoring can be checked byte for byte against the build before it.
#
# usage: bench/identical.sh [--fast] TOKENMILL OUTDIR        write outputs
#        bench/identical.sh --cmp DIR_A DIR_B                  compare them
#
# Writes into OUTDIR: BPE (--preset nerdstash) and Unigram models trained on
# the default corpus (corpora/data) with their tokenizer.json exports;
# encodings (piece, id, u16 + sidecar) of a 2 MB slice of the corpus with
# those models, ../shared/reference-models/*.model, and a byte-level
# tokenizer.json and tiktoken rank file made by HF tokenizers (made once into
# OUTDIR/../fixtures, so both runs read the same ones; skipped without
# PyPI tokenizers); decode round trips; analyze compression/vocab as text,
# JSON and CSV and an HTML report. --fast trains on the slice only, the BPE
# model at 32000 pieces (the slice yields about 47500: nerdstash's 65535 are
# out of reach).
# Timing-dependent lines (seconds, dates) are stripped from the reports.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)

if [[ ${1:-} == --cmp ]]; then
    a=$2 b=$3 bad=0 n=0
    while IFS= read -r f; do
        n=$((n + 1))
        if ! cmp -s "$a/$f" "$b/$f"; then echo "DIFFERS: $f"; bad=1; fi
    done < <(cd "$a" && find . -type f | sort)
    extra=$(comm -13 <(cd "$a" && find . -type f | sort) <(cd "$b" && find . -type f | sort))
    [[ -z $extra ]] || { echo "only in $b: $extra"; bad=1; }
    [[ $bad -eq 0 ]] && echo "identical: $n files"
    exit $bad
fi

fast=0
[[ ${1:-} == --fast ]] && { fast=1; shift; }
[[ $# -eq 2 ]] || { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }
T=$(cd "$(dirname "$1")" && pwd)/$(basename "$1") out=$2
mkdir -p "$out"
# models record their inputs and reports name their models: work inside OUTDIR
# with relative names so that two runs write the same bytes
cd "$out"
out=.
corpus=$top/corpora/data
[[ -d $corpus/en ]] || { echo "identical.sh: no corpus at $corpus" >&2; exit 77; }
fix=../fixtures
mkdir -p "$fix"

slice=$fix/slice.txt
if [[ ! -s $slice ]]; then
    { head -c 1000000 "$corpus/en/sword-text-web.txt"; head -c 1000000 "$corpus/ja/$(ls "$corpus/ja" | head -1)"; } > "$slice"
fi
if [[ $fast -eq 1 ]]; then
    train=("$slice") bpe_size=(--vocab-size 32000)
else
    train=("$corpus"/en/*.txt "$corpus"/ja/*.txt) bpe_size=()
fi

run() { "$T" "$@" 2>> "$out/stderr.log"; }

run train -q -t 2 --preset nerdstash "${bpe_size[@]}" -o "$out/bpe.model" --hf-json "$out/bpe.json" "${train[@]}"
run train -q -t 2 --model-type unigram --vocab-size 8000 -o "$out/uni.model" \
    --hf-json "$out/uni.json" --hf-allow-ties "${train[@]}"
run train -q -t 2 --vocab-size 4000 --byte-fallback --split-digits --add-dummy-prefix \
    --remove-extra-whitespaces --normalization-rule-name nmt_nfkc -o "$out/bpe_nfkc.model" "$slice"

if [[ ! -s $fix/gpt2.json ]] && python3 -c 'import tokenizers' 2>/dev/null; then
    python3 - "$slice" "$fix" <<'EOF'
import sys
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
src, out = sys.argv[1], sys.argv[2]
t = Tokenizer(models.BPE())
t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
t.decoder = decoders.ByteLevel()
tr = trainers.BpeTrainer(vocab_size=3000, special_tokens=["<|endoftext|>"], show_progress=False,
                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
t.train([src], tr)
t.save(out + "/gpt2.json")
EOF
    python3 "$top/tests/hf_encode.py" --make-tiktoken "$fix/gpt2.json" "$fix/ranks_cl100k.tiktoken"
fi

models=("$out/bpe.model" "$out/uni.model" "$out/bpe_nfkc.model" "$out/bpe.json" "$out/uni.json")
for m in "$top"/../shared/reference-models/*.model "$fix/gpt2.json" "$fix/ranks_cl100k.tiktoken"; do
    [[ -f $m ]] && models+=("$m")
done
mkdir -p "$out/enc"
for m in "${models[@]}"; do
    b=$(basename "$m")
    run encode -t 2 -m "$m" --output-format piece "$slice" > "$out/enc/$b.piece"
    run encode -t 2 -m "$m" --output-format id "$slice" > "$out/enc/$b.id"
    run encode -t 2 -m "$m" --output-format id "$top/tests/data/tricky.txt" > "$out/enc/$b.tricky.id" || true
    run encode -t 2 -m "$m" --output-format u16 -o "$out/enc/$b.u16" "$slice" || true
    if [[ -f $out/enc/$b.u16 ]]; then
        run decode -m "$m" --input-format u16 "$out/enc/$b.u16" > "$out/enc/$b.u16.dec" || true
    fi
    run decode -m "$m" --input-format id "$out/enc/$b.id" > "$out/enc/$b.dec" || true
done

ms=()
for m in "${models[@]}"; do ms+=(-m "$m"); done
for f in text json csv; do
    run analyze compression -t 2 "${ms[@]}" --corpus slice="$slice" --corpus tricky="$top/tests/data/tricky.txt" \
        -f $f > "$out/compression.$f"
    run analyze vocab -t 2 "${ms[@]}" --corpus slice="$slice" -f $f > "$out/vocab.$f"
done
run analyze report -t 2 "${ms[@]}" --corpus slice="$slice" -o "$out/report.html"
# the report names its date/time and timings; everything else must match
sed -i -E 's/[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9:]{5,8}( ?UTC|Z)?/DATE/g; s/[0-9]+(\.[0-9]+)? ?(s|ms) /TIME /g' "$out/report.html"
run export --hf-dir "$out/hfdir" -m "$out/bpe.model"
echo "identical.sh: wrote $(find "$out" -type f | wc -l) files to $out"
