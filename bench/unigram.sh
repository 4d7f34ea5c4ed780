#!/usr/bin/env bash
# bench/unigram.sh - Unigram training: tokenmill vs Debian's spm_train 0.1.97
# (and PyPI sentencepiece when importable), same options, same corpus (the
# default corpus minus the last 2000 lines of each file), side by side in one
# run: wall time, peak RSS, and bytes/token on the held-out lines.
# Usage: bench/unigram.sh [VOCAB [REPS]] (default 32000, 1). With REPS > 1,
# tokenmill and PyPI sentencepiece run REPS times and the medians are shown
# (Debian's spm_train, which takes minutes, runs once). Not part of make check.
set -euo pipefail
cd "$(dirname "$0")/.."
vocab=${1:-32000}
reps=${2:-1}
T=./tokenmill
[ -x "$T" ] || { echo "build tokenmill first (make)" >&2; exit 1; }
[ -d corpora/data/en ] || corpora/build.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/tkm-unibench.XXXXXX")
trap 'rm -rf "$work"' EXIT
: > "$work/train.txt"; : > "$work/heldout.txt"
for f in corpora/data/en/*.txt corpora/data/ja/*.txt; do
  n=$(wc -l < "$f")
  head -n $((n > 4000 ? n - 2000 : n)) "$f" >> "$work/train.txt"
  tail -n $((n > 4000 ? 2000 : 0)) "$f" >> "$work/heldout.txt"
done
opts_spm=(--model_type=unigram --vocab_size="$vocab" --character_coverage=0.9995 --normalization_rule_name=identity
          --add_dummy_prefix=false --remove_extra_whitespaces=false --num_threads=2 --max_sentence_length=100000000)
run() { # name, reps, command...: the median wall time and peak RSS of reps runs
  local name=$1 n=$2 i; shift 2
  : > "$work/times"
  for ((i = 0; i < n; i++)); do
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" > "$work/$name.log" 2>&1 || { echo "$name failed: $(tail -3 "$work/$name.log")"; return 1; }
    cat "$work/time" >> "$work/times"
  done
  local wall rss
  wall=$(cut -d' ' -f1 "$work/times" | sort -g | sed -n "$(((n + 1) / 2))p")
  rss=$(cut -d' ' -f2 "$work/times" | sort -g | sed -n "$(((n + 1) / 2))p")
  printf '%s %s %s %s\n' "$name" "$wall" "$rss" "$(cut -d' ' -f1 "$work/times" | tr '\n' ' ')" >> "$work/results"
}
echo "corpus: $(wc -c < "$work/train.txt") bytes training, $(wc -c < "$work/heldout.txt") bytes held out; vocab $vocab; 2 threads"
run tokenmill "$reps" "$T" train -q --model-type unigram --vocab-size "$vocab" --threads 2 -o "$work/tokenmill.model" "$work/train.txt"
run spm_train-0.1.97 1 spm_train --input="$work/train.txt" --model_prefix="$work/spm_train-0.1.97" "${opts_spm[@]}" || true
if python3 -c 'import sentencepiece' 2>/dev/null; then
  run sentencepiece-pypi "$reps" python3 -c 'import sys, sentencepiece as s
s.SentencePieceTrainer.train(" ".join(sys.argv[1:]))' --input="$work/train.txt" --model_prefix="$work/sentencepiece-pypi" "${opts_spm[@]}" || true
fi
read -r _ t0 m0 _ < <(head -n 1 "$work/results")
hb=$(wc -c < "$work/heldout.txt")
echo "reps: $reps (median wall time and peak RSS; spm_train 0.1.97 runs once)"
printf '\n%-20s %9s %9s %10s %10s %10s  %s\n' tool "wall s" "RSS MB" "time/tkm" "RSS/tkm" "bytes/tok" "all wall s"
while read -r name wall rss all; do
  toks=$("$T" encode -m "$work/$name.model" --output-format id < "$work/heldout.txt" | wc -w)
  printf '%-20s %9.2f %9.1f %9.2fx %9.2fx %10.3f  %s\n' "$name" "$wall" "$((rss / 1024))" \
    "$(echo "$wall / $t0" | bc -l)" "$(echo "$rss / $m0" | bc -l)" "$(echo "$hb / $toks" | bc -l)" "$all"
done < "$work/results"
echo "(bytes/token: held-out text encoded by tokenmill, whose ids equal spm_encode's on Unigram models)"
