#!/usr/bin/env bash
# textgen.sh - bench/textgen (the scale benchmark's generator, issue 15):
# deterministic; the block mode's bytes do not depend on the thread or lane
# count; exact sizes cut at a line end; a broken pipe, a full device or an
# unwritable output is an error with a message and a non-zero exit, and
# leaves no file behind. A small model (the first lines of the default
# corpus) keeps it fast.
. "$(dirname "$0")/lib.sh"
G=${TKM_TEXTGEN:-$TKM_SRCDIR/bench/textgen}
[ -x "$G" ] || skip "bench/textgen not built ($G)"
need_corpus
mkdir -p "$TMP/c/en" "$TMP/c/ja"
for f in "$TKM_CORPUS"/en/*.txt "$TKM_CORPUS"/ja/*.txt; do
  head -n 300 "$f" > "$TMP/c/$(basename "$(dirname "$f")")/$(basename "$f")"
done
C=$TMP/c

# default mode: same seed, same bytes (file or stdout); another seed, others
"$G" -s 3 -b 300000 -o "$TMP/d1.txt" "$C" 2> /dev/null
"$G" -s 3 -b 300000 -o - "$C" > "$TMP/d2.txt" 2> /dev/null
"$G" -s 4 -b 300000 -o "$TMP/d3.txt" "$C" 2> /dev/null
cmp -s "$TMP/d1.txt" "$TMP/d2.txt" && pass "default mode: same seed, same bytes (file and stdout)" || fail "default mode not deterministic"
cmp -s "$TMP/d1.txt" "$TMP/d3.txt" && fail "seeds 3 and 4 give the same text" || pass "another seed, other text"
[ "$(wc -c < "$TMP/d1.txt")" -eq 300000 ] && [ "$(tail -c 1 "$TMP/d1.txt" | od -An -c | tr -d ' ')" = '\n' ] \
  && pass "default mode: exactly 300000 bytes, ending in a newline" || fail "default mode: $(wc -c < "$TMP/d1.txt") bytes"

# block mode: the bytes depend on the seed and options only (3.5 blocks, the
# last one cut), not on -t or --lanes
b=3500000
"$G" -s 3 -b $b -t 1 --lanes 1 -o "$TMP/b1.txt" "$C" 2> "$TMP/b1.log"
for tl in "1 16" "2 3" "3 1" "4 64"; do
  set -- $tl
  "$G" -s 3 -b $b -t "$1" --lanes "$2" -o - "$C" > "$TMP/bt.txt" 2> /dev/null
  cmp -s "$TMP/b1.txt" "$TMP/bt.txt" && pass "block mode: -t $1 --lanes $2 gives the bytes of -t 1 --lanes 1" \
    || fail "block mode: -t $1 --lanes $2 changes the bytes"
done
[ "$(wc -c < "$TMP/b1.txt")" -eq $b ] && [ "$(tail -c 1 "$TMP/b1.txt" | od -An -c | tr -d ' ')" = '\n' ] \
  && pass "block mode: exactly $b bytes, ending in a newline" || fail "block mode: $(wc -c < "$TMP/b1.txt") bytes"
cmp -s "$TMP/b1.txt" "$TMP/d1.txt" && fail "block mode gave the default mode's bytes" || pass "block mode: its own stream"
# the same machinery: block 0 seeded as the default mode gives its first
# block byte for byte (lines, cuts, mutations; the blocks differ only in
# their seeds and the word numbers they start from)
TEXTGEN_BLOCK0_AS_DEFAULT=1 "$G" -s 3 -b 1200000 -t 2 -o "$TMP/h0.txt" "$C" 2> /dev/null
"$G" -s 3 -b 1200000 -o "$TMP/h1.txt" "$C" 2> /dev/null
cmp -s -n 1000000 "$TMP/h0.txt" "$TMP/h1.txt" && pass "block 0 as the default mode: its first 1000000 bytes" \
  || fail "block 0 as the default mode differs: $(cmp "$TMP/h0.txt" "$TMP/h1.txt")"
# the same statistics: unique words and English share within 10% / 2 points of the default mode's
"$G" -s 3 -b $b -o "$TMP/dd.txt" "$C" 2> "$TMP/dd.log"
uw() { tr ' ' '\n' < "$1" | sort -u | wc -l; }
ub=$(uw "$TMP/b1.txt"); ud=$(uw "$TMP/dd.txt")
awk -v a="$ub" -v b="$ud" 'BEGIN { exit !(a > 0.9 * b && a < 1.1 * b) }' \
  && pass "block mode: $ub unique words, default mode $ud" || fail "block mode: $ub unique words against $ud"
eb=$(sed -n 's/.*(\([0-9.]*\)% English).*/\1/p' "$TMP/b1.log"); ed=$(sed -n 's/.*(\([0-9.]*\)% English).*/\1/p' "$TMP/dd.log")
awk -v a="${eb:-0}" -v b="${ed:-0}" 'BEGIN { exit !(a > b - 2 && a < b + 2 && b > 50) }' \
  && pass "block mode: $eb% English, default mode $ed%" || fail "English share: block $eb% default $ed%"

# errors: a closed pipe, a full device, an unwritable output
for mode in "" "-t 2"; do
  set +e
  "$G" -s 3 -b 20000000 $mode -o - "$C" 2> "$TMP/pipe.err" | head -c 1000 > /dev/null
  st=${PIPESTATUS[0]}
  set -e
  [ "$st" -eq 1 ] && grep -q "write error on stdout: Broken pipe" "$TMP/pipe.err" \
    && pass "${mode:-default mode}: a closed pipe is an error (exit 1, message)" || fail "${mode:-default mode}: closed pipe: exit $st, $(cat "$TMP/pipe.err")"
  if [ -w /dev/full ]; then
    if "$G" -s 3 -b 3000000 $mode -o - "$C" > /dev/full 2> "$TMP/full.err"; then fail "${mode:-default mode}: writing to /dev/full succeeded"
    else grep -q "write error on stdout: No space left on device" "$TMP/full.err" \
      && pass "${mode:-default mode}: a full device is an error with a message" || fail "full device: $(cat "$TMP/full.err")"; fi
  fi
done
# a file that cannot grow (the file size limit, its signal ignored: the
# write fails as on a full disk): an error, and no file left behind
mkdir "$TMP/lim"
for mode in "" "-t 2"; do
  if (trap '' XFSZ; ulimit -f 1000; "$G" -s 3 -b 3000000 $mode -o "$TMP/lim/x.txt" "$C") 2> "$TMP/lim.err"; then
    fail "${mode:-default mode}: wrote past the file size limit"
  else grep -q "write error on $TMP/lim/x.txt.tmp" "$TMP/lim.err" && pass "${mode:-default mode}: a write error on a file: exit 1, message" \
    || fail "${mode:-default mode}: unclear error: $(cat "$TMP/lim.err")"; fi
  [ -z "$(ls "$TMP/lim")" ] && pass "${mode:-default mode}: no file left behind" || fail "files left: $(ls "$TMP/lim")"
done
"$G" -b 1000 -o "$TMP/nodir/x.txt" "$C" 2> "$TMP/nd.err" && fail "wrote into a missing directory" \
  || { grep -q "cannot write" "$TMP/nd.err" && pass "missing directory: error with a message" || fail "unclear error: $(cat "$TMP/nd.err")"; }
"$G" --lanes 65 -b 1000 -o - "$C" > /dev/null 2> "$TMP/l.err" && fail "--lanes 65 accepted" \
  || { grep -q "lanes 1..64" "$TMP/l.err" && pass "--lanes 65 refused" || fail "unclear error: $(cat "$TMP/l.err")"; }
finish
