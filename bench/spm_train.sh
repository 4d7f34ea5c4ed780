#!/usr/bin/env bash
# bench/spm_train.sh - `tokenmill spm-train` against PyPI sentencepiece with
# sentencepiece's defaults (Unigram, nmt_nfkc, 8000 pieces) on the default
# corpus: wall and CPU time and peak memory side by side, medians of --reps
# runs, and the ratios. Not part of make check.
#
# usage: bench/spm_train.sh [--reps N] [--threads N] [--corpus DIR] [-- spm_train flags...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
TOKENMILL=${TOKENMILL:-$top/tokenmill}
reps=1 threads=2 corpus=$top/corpora/data
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --corpus) corpus=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
python3 -c 'import sentencepiece' 2> /dev/null || { echo "PyPI sentencepiece is not installed" >&2; exit 1; }
input=$(ls "$corpus"/en/*.txt "$corpus"/ja/*.txt | paste -sd,)
work=$(mktemp -d "${TMPDIR:-/tmp}/tkm-spmbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
run() { # label, command...: prints "wall user rss_kb"
  local label=$1; shift
  /usr/bin/time -f "%e %U %M" -o "$work/t" "$@" > /dev/null 2> "$work/err" || { cat "$work/err" >&2; exit 1; }
  cat "$work/t"
}
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
for i in $(seq 1 "$reps"); do
  run tokenmill "$TOKENMILL" spm-train --input="$input" --model_prefix="$work/tm" --num_threads="$threads" "$@" >> "$work/tm.t"
  run pypi python3 -c "import sys, sentencepiece as s; s.SentencePieceTrainer.train(' '.join(sys.argv[1:]))" \
    --input="$input" --model_prefix="$work/py" --num_threads="$threads" --minloglevel=2 "$@" >> "$work/py.t"
done
col() { awk -v c="$2" '{print $c}' "$1" | median; }
tw=$(col "$work/tm.t" 1) tu=$(col "$work/tm.t" 2) tm=$(col "$work/tm.t" 3)
pw=$(col "$work/py.t" 1) pu=$(col "$work/py.t" 2) pm=$(col "$work/py.t" 3)
printf '%-22s %10s %10s %12s\n' "" "wall s" "CPU s" "peak MB"
printf '%-22s %10s %10s %12.1f\n' "tokenmill spm-train" "$tw" "$tu" "$(echo "$tm / 1024" | bc -l)"
printf '%-22s %10s %10s %12.1f\n' "PyPI sentencepiece" "$pw" "$pu" "$(echo "$pm / 1024" | bc -l)"
printf '%-22s %10.1fx %9.1fx %11.2fx\n' "sentencepiece/tokenmill" "$(echo "$pw / $tw" | bc -l)" \
  "$(echo "$pu / $tu" | bc -l)" "$(echo "$pm / $tm" | bc -l)"
echo "($reps run(s), median; $threads threads; $(du -shL "$corpus" | cut -f1) corpus; flags: ${*:-defaults})"
