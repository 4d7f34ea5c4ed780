#!/usr/bin/env bash
# report_render.sh - the HTML page of `tokenmill analyze report` looks right in
# a browser: headless Chromium takes a screenshot and tests/report_check.py
# finds every bar and legend square of the inline SVG charts drawn at its size
# and place, in its fill colour, with its label beside it, and the whole page
# in the window. A copy whose chart is too short for its bars must fail the
# same check. Skipped (77) without chromium (Debian: apt-get install chromium);
# TKM_REPORT_SHOT=FILE.png keeps the screenshot.
. "$(dirname "$0")/lib.sh"
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROMIUM" ] || need_tool chromium "apt-get install chromium"
shot() { # $1 = page, $2 = PNG; 1000 px wide, 6000 px tall, 1 px per CSS px, sRGB
  rm -f "$2"
  timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
    --hide-scrollbars --force-device-scale-factor=1 --force-color-profile=srgb \
    --user-data-dir="$TMP/chromium-profile" --window-size=1000,6000 --screenshot="$2" "file://$1" \
    > "$TMP/chromium.log" 2>&1
  [ -s "$2" ]
}
printf '<!DOCTYPE html><title>t</title><p style="background:#123456;height:40px">x</p>\n' > "$TMP/smoke.html"
if ! shot "$TMP/smoke.html" "$TMP/smoke.png"; then
  [ -z "${TKM_REPORT_REQUIRE:-}" ] || { echo "FAIL - chromium takes no screenshot:"; tail -5 "$TMP/chromium.log"; exit 1; }
  tail -5 "$TMP/chromium.log"
  skip "chromium takes no screenshot here"
fi
report_fixture
shot "$TMP/report.html" "$TMP/report.png" && pass "screenshot taken" || fail "no screenshot: $(tail -3 "$TMP/chromium.log")"
[ -z "${TKM_REPORT_SHOT:-}" ] || cp "$TMP/report.png" "$TKM_REPORT_SHOT"
python3 "$TKM_SRCDIR/tests/report_check.py" render "$TMP/report.html" "$TMP/report.png" \
  && pass "every SVG bar drawn at its size and place, labels beside, whole page visible" || fail "the page does not render as its SVG says"

# negative control: the first chart's height cut to 60 px hides its bars
sed '0,/\(<svg [^>]* height="\)[0-9]*"/s//\160"/' "$TMP/report.html" > "$TMP/bad.html"
cmp -s "$TMP/report.html" "$TMP/bad.html" && fail "could not break the page"
shot "$TMP/bad.html" "$TMP/bad.png" && ! python3 "$TKM_SRCDIR/tests/report_check.py" render "$TMP/report.html" "$TMP/bad.png" > "$TMP/bad.out" \
  && pass "a clipped chart is found: $(grep -m1 '^error' "$TMP/bad.out")" || fail "a clipped chart passed the check"
finish
