#!/usr/bin/env bash
# roundtrip.sh - decode(encode(x)) == x for every valid UTF-8 line with an
# identity model with byte fallback; stdin, files and gzip give the same ids.
. "$(dirname "$0")/lib.sh"
need_corpus
T=$TKM_BIN
split_corpus 5000 500
"$T" train -q --vocab-size 3000 --byte-fallback --split-digits --character-coverage 0.98 \
  -o "$TMP/m.model" "$TMP"/train/*
# held-out text plus the tricky lines that are valid UTF-8 without NUL
cat "$TMP"/heldout/* > "$TMP/text.txt"
grep -av $'\xff' "$TKM_SRCDIR/tests/data/tricky.txt" | grep -av 'nul' | grep -av '▁' >> "$TMP/text.txt" || true
iconv -f UTF-8 -t UTF-8 "$TMP/text.txt" > /dev/null || fail "test text is not valid UTF-8"
"$T" encode -m "$TMP/m.model" --output-format id < "$TMP/text.txt" > "$TMP/ids"
"$T" decode -m "$TMP/m.model" --input-format id < "$TMP/ids" > "$TMP/back.txt"
cmp -s "$TMP/text.txt" "$TMP/back.txt" && pass "id round trip exact ($(wc -l < "$TMP/text.txt") lines)" \
  || fail "id round trip differs: $(diff "$TMP/text.txt" "$TMP/back.txt" | head -3 | cut -c1-200)"
"$T" encode -m "$TMP/m.model" --output-format piece < "$TMP/text.txt" > "$TMP/pieces"
"$T" decode -m "$TMP/m.model" --input-format piece < "$TMP/pieces" > "$TMP/back2.txt"
cmp -s "$TMP/text.txt" "$TMP/back2.txt" && pass "piece round trip exact" || fail "piece round trip differs"
gzip -c "$TMP/text.txt" > "$TMP/text.gz"
"$T" encode -m "$TMP/m.model" --output-format id "$TMP/text.gz" > "$TMP/ids.gz.out"
cmp -s "$TMP/ids" "$TMP/ids.gz.out" && pass "gzip input gives the same ids" || fail "gzip input differs"
"$T" encode -m "$TMP/m.model" --output-format id -o "$TMP/ids.file" "$TMP/text.txt"
cmp -s "$TMP/ids" "$TMP/ids.file" && pass "-o output equals stdout" || fail "-o output differs"
# a line of 2 MB without newline at the end of the input
head -c 2000000 /dev/zero | tr '\0' 'x' > "$TMP/long.txt"
"$T" encode -m "$TMP/m.model" --output-format id < "$TMP/long.txt" > "$TMP/long.ids"
"$T" decode -m "$TMP/m.model" --input-format id < "$TMP/long.ids" > "$TMP/long.back"
printf '\n' >> "$TMP/long.txt"
cmp -s "$TMP/long.txt" "$TMP/long.back" && pass "2 MB line round trip" || fail "2 MB line round trip differs"
finish
