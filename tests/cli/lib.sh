# lib.sh - helpers for the CLI tests (sourced). Exit 77 = skipped.
set -eu
: "${TKM_BIN:?TKM_BIN must point to the tokenmill binary}"
: "${TKM_SRCDIR:?}"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tkm-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fails=0
passes=0
pass() { passes=$((passes + 1)); echo "ok - $*"; }
fail() { fails=$((fails + 1)); echo "FAIL - $*"; }
skip() { echo "SKIP: $*"; exit 77; }
finish() {
  echo "$passes passed, $fails failed"
  [ "$fails" -eq 0 ]
}
need_spm() {
  command -v "${SPM_ENCODE:-spm_encode}" >/dev/null 2>&1 || skip "spm_encode not installed"
}
need_corpus() {
  [ -d "${TKM_CORPUS:-}/en" ] && [ -d "${TKM_CORPUS:-}/ja" ] || skip "default corpus missing (run corpora/build.sh)"
}
# Splits the corpus into training text and held-out text the model never sees:
# for each file, lines 1..N-H go to train, the last H to heldout.
split_corpus() { # $1 = max training lines per file, $2 = held-out lines per file
  mkdir -p "$TMP/train" "$TMP/heldout"
  for f in "$TKM_CORPUS"/en/*.txt "$TKM_CORPUS"/ja/*.txt; do
    b=$(basename "$(dirname "$f")")-$(basename "$f")
    n=$(wc -l < "$f")
    h=$2; [ "$n" -gt $((2 * h)) ] || h=$((n / 2))
    head -n $((n - h)) "$f" | head -n "$1" > "$TMP/train/$b"
    tail -n "$h" "$f" > "$TMP/heldout/$b"
  done
}
# The training files split_corpus wrote, comma-separated (spm_train's --input)
train_list() { ls "$TMP"/train/* | paste -sd,; }
# Writes $TMP/report.html: `tokenmill analyze report` on a BPE and a Unigram
# model trained here and the reference llama/nerdstash models where present,
# on an English and a Japanese corpus, one with a name that needs escaping
# (markup characters, an invalid UTF-8 byte).
report_fixture() {
  mkdir -p "$TMP/rep"
  for i in $(seq 1 400); do
    echo "line $i: the quick brown fox jumps over the lazy dog, $((i * 7)) times; tokenizers split text"
  done > "$TMP/rep/en.txt"
  for i in $(seq 1 200); do
    echo "東京は日本の首都です。今日は$((i % 12 + 1))月の良い天気でした。カタカナとひらがなの文章、第${i}行。"
  done > "$TMP/rep/ja.txt"
  "$TKM_BIN" train -q --model-type bpe --vocab-size 400 --byte-fallback -t 1 -o "$TMP/rep/bpe.model" \
    "$TMP/rep/en.txt" "$TMP/rep/ja.txt"
  "$TKM_BIN" train -q --model-type unigram --vocab-size 400 -t 1 -o "$TMP/rep/uni.model" \
    "$TMP/rep/en.txt" "$TMP/rep/ja.txt"
  set -- -m "$TMP/rep/bpe.model" -m "$TMP/rep/uni.model"
  for n in llama nerdstash; do
    [ -f "${TKM_REFMODELS:-}/$n.model" ] && set -- "$@" -m "$TKM_REFMODELS/$n.model"
  done
  "$TKM_BIN" analyze report -t 2 "$@" --corpus "en=$TMP/rep/en.txt" \
    --corpus "$(printf 'ja <&>"\xff')=$TMP/rep/ja.txt" -o "$TMP/report.html"
}
# For checks the user asked for by name (make check-report sets
# TKM_REPORT_REQUIRE=1): a missing tool fails instead of skipping.
need_tool() { # $1 = command, $2 = how to get it
  command -v "$1" > /dev/null 2>&1 && return 0
  [ -z "${TKM_REPORT_REQUIRE:-}" ] || { echo "FAIL - $1 not installed ($2)"; exit 1; }
  skip "$1 not installed ($2)"
}
