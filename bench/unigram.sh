#!/usr/bin/env bash
# bench/unigram.sh - Unigram training: tokenmill vs Debian's spm_train 0.1.97
# (and PyPI sentencepiece when importable), same options, same corpus (the
# default corpus minus the last 2000 lines of each file), side by side in one
# run: wall and CPU time (user + sys), peak RSS, and bytes/token on the held-out lines.
# Usage: bench/unigram.sh [--large] [VOCAB [REPS]] (default 32000, 1). With REPS > 1,
# tokenmill and PyPI sentencepiece run REPS times and the medians are shown
# (Debian's spm_train, which takes minutes, runs once). Not part of make check.
#
# --large: the ~90 MB real-text corpus of corpora/build_large.sh (built into
# corpora/large if missing; TKM_LARGE=DIR to use another) instead of the
# default corpus, the options of the Unigram issue (--split-digits
# --byte-fallback --allow-whitespace-only-pieces), no Debian spm_train, and
# per language: pieces by class and bytes/token on its held-out lines.
set -euo pipefail
cd "$(dirname "$0")/.."
large=
if [ "${1:-}" = --large ]; then large=${TKM_LARGE:-corpora/large}; shift; fi
vocab=${1:-32000}
reps=${2:-1}
T=./tokenmill
[ -x "$T" ] || { echo "build tokenmill first (make)" >&2; exit 1; }
[ -d corpora/data/en ] || corpora/build.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/tkm-unibench.XXXXXX")
trap 'rm -rf "$work"' EXIT
: > "$work/train.txt"; : > "$work/heldout.txt"
opts_tkm=()
opts_spm=(--model_type=unigram --vocab_size="$vocab" --character_coverage=0.9995 --normalization_rule_name=identity
          --add_dummy_prefix=false --remove_extra_whitespaces=false --num_threads=2 --max_sentence_length=100000000)
if [ -n "$large" ]; then
  [ -f "$large/MANIFEST" ] || corpora/build_large.sh "$large"
  cat "$large"/train/en/*.txt "$large"/train/ja/*.txt > "$work/train.txt"
  cat "$large"/heldout/en.txt "$large"/heldout/ja.txt > "$work/heldout.txt"
  opts_tkm=(--split-digits --byte-fallback --allow-whitespace-only-pieces)
  opts_spm+=(--split_digits=true --byte_fallback=true --allow_whitespace_only_pieces=true)
else
  for f in corpora/data/en/*.txt corpora/data/ja/*.txt; do
    n=$(wc -l < "$f")
    head -n $((n > 4000 ? n - 2000 : n)) "$f" >> "$work/train.txt"
    tail -n $((n > 4000 ? 2000 : 0)) "$f" >> "$work/heldout.txt"
  done
fi
run() { # name, reps, command...: the median wall time, peak RSS and CPU time of reps runs
  local name=$1 n=$2 i; shift 2
  : > "$work/times"
  for ((i = 0; i < n; i++)); do
    /usr/bin/time -f '%e %M %U %S' -o "$work/time" "$@" > "$work/$name.log" 2>&1 || { echo "$name failed: $(tail -3 "$work/$name.log")"; return 1; }
    cat "$work/time" >> "$work/times"
  done
  local wall rss cpu
  wall=$(cut -d' ' -f1 "$work/times" | sort -g | sed -n "$(((n + 1) / 2))p")
  rss=$(cut -d' ' -f2 "$work/times" | sort -g | sed -n "$(((n + 1) / 2))p")
  cpu=$(awk '{ print $3 + $4 }' "$work/times" | sort -g | sed -n "$(((n + 1) / 2))p")
  printf '%s %s %s %s %s\n' "$name" "$wall" "$rss" "$cpu" "$(cut -d' ' -f1 "$work/times" | tr '\n' ' ')" >> "$work/results"
}
echo "corpus: $(wc -c < "$work/train.txt") bytes training, $(wc -c < "$work/heldout.txt") bytes held out; vocab $vocab; 2 threads"
run tokenmill "$reps" "$T" train -q --model-type unigram --vocab-size "$vocab" "${opts_tkm[@]}" --threads 2 -o "$work/tokenmill.model" "$work/train.txt"
[ -n "$large" ] || run spm_train-0.1.97 1 spm_train --input="$work/train.txt" --model_prefix="$work/spm_train-0.1.97" "${opts_spm[@]}" || true
if python3 -c 'import sentencepiece' 2>/dev/null; then
  run sentencepiece-pypi "$reps" python3 -c 'import sys, sentencepiece as s
s.SentencePieceTrainer.train(" ".join(sys.argv[1:]))' --input="$work/train.txt" --model_prefix="$work/sentencepiece-pypi" "${opts_spm[@]}" || true
fi
read -r _ t0 m0 c0 _ < <(head -n 1 "$work/results")
hb=$(wc -c < "$work/heldout.txt")
echo "reps: $reps (median wall time, CPU time and peak RSS; spm_train 0.1.97 runs once)"
printf '\n%-20s %9s %9s %9s %10s %10s %10s %10s  %s\n' tool "wall s" "CPU s" "RSS MB" "time/tkm" "CPU/tkm" "RSS/tkm" \
  "bytes/tok" "all wall s"
while read -r name wall rss cpu all; do
  toks=$("$T" encode -m "$work/$name.model" --output-format id < "$work/heldout.txt" | wc -w)
  printf '%-20s %9.2f %9.2f %9.1f %9.2fx %9.2fx %9.2fx %10.3f  %s\n' "$name" "$wall" "$cpu" "$((rss / 1024))" \
    "$(echo "$wall / $t0" | bc -l)" "$(echo "$cpu / $c0" | bc -l)" "$(echo "$rss / $m0" | bc -l)" \
    "$(echo "$hb / $toks" | bc -l)" "$all"
done < "$work/results"
echo "(bytes/token: held-out text encoded by tokenmill, whose ids equal spm_encode's on Unigram models)"
if [ -n "$large" ]; then
  printf '\n%-20s %8s %8s %8s %8s %12s %12s\n' tool latin ja-multi ja-single other "en bytes/tok" "ja bytes/tok"
  while read -r name _; do
    cls=$("$T" analyze vocab -m "$work/$name.model" | awk '$1 == "latin" || $1 == "japanese_multi" || $1 == "japanese_single" || $1 == "other" { printf "%s ", $2 } /^length/ { exit }')
    bt=()
    for l in en ja; do
      b=$(wc -c < "$large/heldout/$l.txt")
      n=$("$T" encode -m "$work/$name.model" --output-format id < "$large/heldout/$l.txt" | wc -w)
      bt+=("$(echo "$b / $n" | bc -l)")
    done
    # shellcheck disable=SC2086
    printf '%-20s %8s %8s %8s %8s %12.3f %12.3f\n' "$name" $cls "${bt[0]}" "${bt[1]}"
  done < "$work/results"
fi
