#!/usr/bin/env bash
# hostile.sh - regressions for defects found by fuzzing and a bad-input sweep
# (issue 14): whitespace pieces survive decode, empty input, error paths that
# must not leak, interrupted `encode -o` leaves no temp file, truncated models
# are reported. Needs no corpus: every input is generated here.
. "$(dirname "$0")/lib.sh"
T=$TKM_BIN

# a small model whose pieces include TAB and CR (byte fallback on)
for i in $(seq 1 50); do printf '\tA\r\n\t\tcode(%d);\n\tx = y\t# tab %d\n' "$i" "$i"; done > "$TMP/tabs.txt"
"$T" train -q --vocab-size 300 --byte-fallback --allow-whitespace-only-pieces -o "$TMP/m.model" "$TMP/tabs.txt"

# F6: decode --input-format piece splits on the separator encode writes (one
# space), not on TAB or CR, which are pieces themselves
"$T" encode -m "$TMP/m.model" < "$TMP/tabs.txt" > "$TMP/tabs.pieces"
grep -q $'\t' "$TMP/tabs.pieces" || fail "the test model has no TAB piece"
"$T" decode -m "$TMP/m.model" --input-format piece < "$TMP/tabs.pieces" > "$TMP/tabs.back"
cmp -s "$TMP/tabs.txt" "$TMP/tabs.back" && pass "piece round trip keeps TAB and CR pieces" \
  || fail "piece round trip lost whitespace pieces: $(diff <(od -c "$TMP/tabs.txt") <(od -c "$TMP/tabs.back") | head -4)"
if command -v "${SPM_DECODE:-spm_decode}" > /dev/null 2>&1; then
  "${SPM_DECODE:-spm_decode}" --model "$TMP/m.model" < "$TMP/tabs.pieces" > "$TMP/tabs.spm"
  cmp -s "$TMP/tabs.spm" "$TMP/tabs.back" && pass "piece decode equals spm_decode" || fail "piece decode differs from spm_decode"
fi
printf '  \t  \n' > "$TMP/sp.pieces"
printf '\t\n' > "$TMP/sp.want"
"$T" decode -m "$TMP/m.model" --input-format piece < "$TMP/sp.pieces" > "$TMP/sp.out"
cmp -s "$TMP/sp.want" "$TMP/sp.out" && pass "runs of spaces between pieces are skipped, TAB kept" \
  || fail "spaces/TAB: $(od -c "$TMP/sp.out" | head -2)"
printf '5\t6 7\r\n' > "$TMP/ids.tab"
"$T" decode -m "$TMP/m.model" --input-format id < "$TMP/ids.tab" > /dev/null && pass "ids may still be separated by TAB or CR" \
  || fail "ids separated by TAB/CR refused"

finish
