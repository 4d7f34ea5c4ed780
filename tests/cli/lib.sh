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
