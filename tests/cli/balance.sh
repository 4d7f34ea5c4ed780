#!/usr/bin/env bash
# balance.sh - --balance reaches the target shares of Latin and Japanese
# pieces in one run (within 1 point), says clearly when a target cannot be
# reached, and the balanced model still encodes like spm_encode.
. "$(dirname "$0")/lib.sh"
need_corpus
T=$TKM_BIN
split_corpus 20000 200
# share of a class in the summary line "classes latin N (P%, target Q%), ..."
share() { sed -n "s/.* $2 [0-9]* (\([0-9.]*\)%, target \([0-9.]*\)%.*/\1 \2/p" "$1"; }
within() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1.0) }'; }
for tgt in "0.44 0.44" "0.60 0.30" "0.30 0.50"; do
  set -- $tgt
  "$T" train --vocab-size 6000 --byte-fallback --split-digits --balance "latin=$1,japanese=$2" \
    -o "$TMP/b.model" "$TMP"/train/* 2> "$TMP/log"
  read -r al tl < <(share "$TMP/log" latin)
  read -r aj tj < <(share "$TMP/log" japanese)
  if within "$al" "$tl" && within "$aj" "$tj" && ! grep -q "cannot be reached" "$TMP/log"; then
    pass "balance latin=$1 japanese=$2: achieved latin $al% japanese $aj%"
  else
    fail "balance latin=$1 japanese=$2: $(grep classes "$TMP/log") $(grep warning "$TMP/log")"
  fi
done
# without --balance the corpus is mostly Latin: the targets above really moved it
"$T" train --vocab-size 6000 --byte-fallback --split-digits -o "$TMP/u.model" "$TMP"/train/* 2> "$TMP/log0"
grep -q "classes    latin" "$TMP/log0" && pass "summary shows the classes without targets" || fail "no class summary"
# unreachable: Japanese from English text only
"$T" train --vocab-size 3000 --balance latin=0.5,japanese=0.3 -o "$TMP/e.model" "$TMP"/train/en-* 2> "$TMP/log2"
grep -q "the japanese target (30.0%) cannot be reached" "$TMP/log2" && pass "unreachable target reported" \
  || fail "unreachable target not reported: $(tail -2 "$TMP/log2")"
[ "$("$T" encode -m "$TMP/e.model" <<< "x" | wc -l)" -eq 1 ] && pass "model still written when a target is short" \
  || fail "no usable model"
# surplus shared by the targets: letters only (no digits, no punctuation)
# leave the `other` class short; the pieces it leaves go to latin and
# japanese in proportion to their targets (equal here), not all to one
if command -v python3 > /dev/null; then
  cat "$TMP"/train/en-* | head -n 40000 | tr -cd 'a-zA-Z \n' > "$TMP/s-en.txt"
  cat "$TMP"/train/ja-* | head -n 40000 | python3 -c '
import sys, unicodedata
ok = lambda c: c == "\n" or c == "\u30fc" or unicodedata.name(c, "").startswith(("CJK UNIFIED", "HIRAGANA", "KATAKANA"))
sys.stdout.write("".join(c for c in sys.stdin.read() if ok(c)))' > "$TMP/s-ja.txt"
  for tgt in "0.44 0.44" "0.50 0.25"; do
    set -- $tgt
    "$T" train --vocab-size 4000 --balance "latin=$1,japanese=$2" -o "$TMP/s.model" "$TMP"/s-*.txt 2> "$TMP/log3"
    read -r al tl < <(share "$TMP/log3" latin)
    read -r aj tj < <(share "$TMP/log3" japanese)
    gl=$(sed -n 's/.* went to.* latin +\([0-9]*\).*/\1/p' "$TMP/log3")
    gj=$(sed -n 's/.* went to.* japanese +\([0-9]*\).*/\1/p' "$TMP/log3")
    # the two classes gain the same share of their targets: al/tl = aj/tj (within 1 point)
    if grep -q "the other target (.*) cannot be reached" "$TMP/log3" && [ -n "$gl" ] && [ -n "$gj" ] \
       && awk -v a="$al" -v b="$aj" -v x="$tl" -v y="$tj" 'BEGIN { exit !(a > x && b > y) }' \
       && within "$al" "$(awk -v a="$aj" -v x="$tl" -v y="$tj" 'BEGIN { print a * x / y }')"; then
      pass "other short, latin=$1 japanese=$2: surplus shared, latin $al% (+$gl) japanese $aj% (+$gj)"
    else
      fail "other short, latin=$1 japanese=$2: $(grep -A2 classes "$TMP/log3")"
    fi
  done
else
  echo "# python3 not found: surplus sharing not tested"
fi
# parity of a balanced model with libsentencepiece
if command -v "${SPM_ENCODE:-spm_encode}" > /dev/null; then
  cat "$TMP"/heldout/* > "$TMP/unseen.txt"
  spm_encode --model "$TMP/b.model" --output_format=id < "$TMP/unseen.txt" > "$TMP/s.ids"
  "$T" encode -m "$TMP/b.model" --output-format id < "$TMP/unseen.txt" > "$TMP/t.ids"
  cmp -s "$TMP/s.ids" "$TMP/t.ids" && pass "balanced model: ids identical to spm_encode" || fail "balanced model parity"
fi
# named inputs (directory and glob) give the model of the same plain files;
# a weight on the Japanese input raises the share of Japanese pieces
mkdir -p "$TMP/en" "$TMP/ja"
cp "$TMP"/train/en-* "$TMP/en/"; cp "$TMP"/train/ja-* "$TMP/ja/"
"$T" train -q --vocab-size 4000 --byte-fallback -o "$TMP/p.model" "$TMP"/en/* "$TMP"/ja/*
"$T" train -q --vocab-size 4000 --byte-fallback --input en="$TMP/en" --input "ja=$TMP/ja/*" -o "$TMP/n.model"
"$T" encode -m "$TMP/p.model" < "$TKM_SRCDIR/tests/data/tricky.txt" > "$TMP/p.out"
"$T" encode -m "$TMP/n.model" < "$TKM_SRCDIR/tests/data/tricky.txt" > "$TMP/n.out"
cmp -s "$TMP/p.out" "$TMP/n.out" && pass "--input NAME=dir/glob equals the plain file list" || fail "named inputs differ"
"$T" train --vocab-size 4000 --byte-fallback --input en="$TMP/en" --input "ja=$TMP/ja/*" -o "$TMP/n.model" 2> "$TMP/l1"
"$T" train --vocab-size 4000 --byte-fallback --input en="$TMP/en" --input "ja=$TMP/ja/*" --weight ja=3 -o "$TMP/w.model" 2> "$TMP/l2"
j1=$(sed -n 's/.* japanese [0-9]* (\([0-9.]*\)%.*/\1/p' "$TMP/l1"); j2=$(sed -n 's/.* japanese [0-9]* (\([0-9.]*\)%.*/\1/p' "$TMP/l2")
awk -v a="$j1" -v b="$j2" 'BEGIN { exit !(b > a + 2) }' && pass "--weight ja=3 raises the Japanese share ($j1% -> $j2%)" \
  || fail "weight had no effect ($j1% -> $j2%)"
if "$T" train --weight xx=2 --input en="$TMP/en" -o "$TMP/x.model" 2> "$TMP/err"; then fail "weight for an unknown input accepted"
else grep -q "no --input xx=PATH" "$TMP/err" && pass "weight for an unknown input rejected" || fail "$(cat "$TMP/err")"; fi
# bad values
if "$T" train --balance latin=0.7,japanese=0.7 -o "$TMP/x.model" "$TMP"/train/* 2> "$TMP/err"; then fail "shares over 1 accepted"
else grep -q "summing to at most 1" "$TMP/err" && pass "shares summing over 1 rejected" || fail "$(cat "$TMP/err")"; fi
finish
