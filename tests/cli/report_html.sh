#!/usr/bin/env bash
# report_html.sh - the HTML page of `tokenmill analyze report` is valid:
# HTML Tidy reports neither errors nor warnings (names with markup characters
# and invalid UTF-8 included), and every inline SVG chart is well-formed XML.
# Tidy is shown to object to a broken copy, so the check can fail.
# Skipped (77) without tidy (Debian: apt-get install tidy).
. "$(dirname "$0")/lib.sh"
need_tool tidy "apt-get install tidy"
report_fixture
TIDY=(tidy -q -errors --show-warnings yes --gnu-emacs yes)
if "${TIDY[@]}" "$TMP/report.html" > "$TMP/tidy.out" 2>&1 && [ ! -s "$TMP/tidy.out" ]; then
  pass "tidy: no errors or warnings"
else
  fail "tidy: $(head -20 "$TMP/tidy.out")"
fi
python3 "$TKM_SRCDIR/tests/report_check.py" svg "$TMP/report.html" && pass "SVG charts are well-formed XML" \
  || fail "SVG charts"
grep -q '&#xFFFD;' "$TMP/report.html" && grep -q 'ja &lt;&amp;&gt;&quot;' "$TMP/report.html" \
  && pass "names escaped, invalid UTF-8 replaced" || fail "corpus name not escaped"

# negative controls: a mismatched end tag, an unclosed SVG element
sed '0,/<\/h2>/s//<\/h3>/' "$TMP/report.html" > "$TMP/bad1.html"
sed '0,/<\/svg>/s///' "$TMP/report.html" > "$TMP/bad2.html"
! "${TIDY[@]}" "$TMP/bad1.html" > "$TMP/tidy1.out" 2>&1 && grep -q '</h3>' "$TMP/tidy1.out" \
  && pass "tidy rejects a mismatched end tag" || fail "tidy accepted a broken page: $(cat "$TMP/tidy1.out")"
! python3 "$TKM_SRCDIR/tests/report_check.py" svg "$TMP/bad2.html" > /dev/null \
  && pass "an unclosed <svg> is found" || fail "an unclosed <svg> passed"
finish
