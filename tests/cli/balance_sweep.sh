#!/usr/bin/env bash
# balance_sweep.sh - the two balancing methods (--balance-method budget and
# weights) reach the target shares within 1 point, share the surplus of a
# class that cannot fill, and are deterministic; train --sweep gives, for
# every point, the model and the numbers of a separate run at the same
# settings (models cmp-identical, shares and held-out bytes/token equal).
. "$(dirname "$0")/lib.sh"
need_corpus
T=$TKM_BIN
split_corpus 20000 200
cat "$TMP"/heldout/en-* > "$TMP/h-en.txt"
cat "$TMP"/heldout/ja-* > "$TMP/h-ja.txt"
share() { sed -n "s/.* $2 [0-9]* (\([0-9.]*\)%, target \([0-9.]*\)%.*/\1 \2/p" "$1"; }
within() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1.0) }'; }
BASE="--vocab-size 6000 --byte-fallback --split-digits"
# 1. both methods reach the shares where the corpus allows
for m in budget weights; do
  for tgt in "0.44 0.44" "0.60 0.30" "0.30 0.50"; do
    set -- $tgt
    "$T" train $BASE --balance "latin=$1,japanese=$2" --balance-method $m -o "$TMP/$m.model" "$TMP"/train/* 2> "$TMP/log"
    read -r al tl < <(share "$TMP/log" latin)
    read -r aj tj < <(share "$TMP/log" japanese)
    if within "$al" "$tl" && within "$aj" "$tj" && ! grep -q "cannot be reached" "$TMP/log"; then
      pass "$m latin=$1 japanese=$2: latin $al% japanese $aj% $(sed -n 's/.*weights *\(latin.*\) (.*/(weights \1)/p' "$TMP/log")"
    else
      fail "$m latin=$1 japanese=$2: $(grep classes "$TMP/log")"
    fi
    [ $m = weights ] && { grep -q "^  weights    latin" "$TMP/log" && pass "weights method: the summary gives the weights" \
      || fail "no weights line: $(cat "$TMP/log")"; }
  done
done
# the weights method is deterministic (thread count included)
"$T" train -q $BASE -t 1 --balance latin=0.44,japanese=0.44 --balance-method weights -o "$TMP/w1.model" "$TMP"/train/*
"$T" train -q $BASE -t 2 --balance latin=0.44,japanese=0.44 --balance-method weights -o "$TMP/w2.model" "$TMP"/train/*
cmp -s "$TMP/w1.model" "$TMP/w2.model" && pass "weights method: 1 and 2 threads give the same model" \
  || fail "weights method depends on the thread count"
# 2. surplus sharing with `other` short (letters only), in both methods
if command -v python3 > /dev/null; then
  cat "$TMP"/train/en-* | head -n 40000 | tr -cd 'a-zA-Z \n' > "$TMP/s-en.txt"
  cat "$TMP"/train/ja-* | head -n 40000 | python3 -c '
import sys, unicodedata
ok = lambda c: c == "\n" or c == "\u30fc" or unicodedata.name(c, "").startswith(("CJK UNIFIED", "HIRAGANA", "KATAKANA"))
sys.stdout.write("".join(c for c in sys.stdin.read() if ok(c)))' > "$TMP/s-ja.txt"
  for m in budget weights; do
    "$T" train --vocab-size 4000 --balance latin=0.44,japanese=0.44 --balance-method $m -o "$TMP/s.model" "$TMP"/s-*.txt 2> "$TMP/log3"
    read -r al tl < <(share "$TMP/log3" latin)
    read -r aj tj < <(share "$TMP/log3" japanese)
    gl=$(sed -n 's/.* went to.* latin +\([0-9]*\).*/\1/p' "$TMP/log3")
    gj=$(sed -n 's/.* went to.* japanese +\([0-9]*\).*/\1/p' "$TMP/log3")
    if grep -q "the other target (.*) cannot be reached" "$TMP/log3" && [ -n "$gl" ] && [ -n "$gj" ] \
       && awk -v a="$al" -v b="$aj" 'BEGIN { exit !(a > 44 && b > 44) }' && within "$al" "$aj"; then
      pass "$m, other short: surplus shared, latin $al% (+$gl) japanese $aj% (+$gj)"
    else
      fail "$m, other short: $(grep -A2 classes "$TMP/log3")"
    fi
  done
else
  echo "# python3 not found: surplus sharing not tested"
fi
# 3. the sweep equals separate runs
E=(--eval "en=$TMP/h-en.txt" --eval "ja=$TMP/h-ja.txt")
"$T" train $BASE -t 2 --sweep none,0.30:0.40:0.05,0.44/0.44,0.44/0.44@weights,unigram "${E[@]}" \
  --keep-models "$TMP/kept" --sweep-report "$TMP/sweep.html" "$TMP"/train/* > "$TMP/table" 2> "$TMP/slog"
rc=$?
[ $rc -eq 0 ] && [ "$(ls "$TMP/kept" | wc -l)" -eq 7 ] && pass "sweep: 7 points, 7 models kept" \
  || fail "sweep: rc $rc, $(ls "$TMP/kept" | wc -l) models: $(cat "$TMP/slog")"
n=0; same=0; nums=0
for f in "$TMP"/kept/*.model; do
  name=$(basename "$f" .model); name=${name#*-}
  case "$name" in
  bpe) set -- ;;
  unigram) set -- --model-type unigram ;;
  j*b-l*) j=${name#j}; j=${j%%b-*}; l=${name##*-l}; set -- --balance "latin=$l,japanese=$j" ;;
  l*-j*[bw]) l=${name#l}; l=${l%%-*}; j=${name#*-j}; m=${j: -1}; j=${j%?}
             [ "$m" = w ] && m=weights || m=budget
             set -- --balance "latin=$l,japanese=$j" --balance-method $m ;;
  *) fail "unexpected model name $name"; continue ;;
  esac
  "$T" train $BASE -t 1 "$@" "${E[@]}" -o "$TMP/sep.model" "$TMP"/train/* 2> "$TMP/seplog"
  n=$((n + 1))
  cmp -s "$f" "$TMP/sep.model" && same=$((same + 1)) || echo "# $name differs from a separate run ($*)"
  # the table's shares and bytes/token are the separate run's
  row=$(awk -v p="$name" '$1 == p' "$TMP/table" | sed 's/([^)]*)//g') # without the (+x%) columns
  sl=$(sed -n 's/.* latin [0-9]* (\([0-9.]*\)%.*/\1/p' "$TMP/seplog")
  sj=$(sed -n 's/.* japanese [0-9]* (\([0-9.]*\)%.*/\1/p' "$TMP/seplog")
  be=$(sed -n 's/^  eval en *\([0-9.]*\) bytes.*/\1/p' "$TMP/seplog")
  bj=$(sed -n 's/^  eval ja *\([0-9.]*\) bytes.*/\1/p' "$TMP/seplog")
  set -- $row
  if [ "$3" = "$sl%" ] && [ "$4" = "$sj%" ] && [ "$6" = "$be" ] && [ "$7" = "$bj" ]; then nums=$((nums + 1))
  else echo "# $name: table '$row' vs separate latin $sl% japanese $sj% en $be ja $bj"; fi
done
[ $n -eq 7 ] && [ $same -eq $n ] && pass "sweep: all $n models identical to separate runs at the same settings" \
  || fail "sweep: $same of $n models identical to separate runs"
[ $n -eq 7 ] && [ $nums -eq $n ] && pass "sweep: table shares and held-out bytes/token equal the separate runs' ($n rows)" \
  || fail "sweep: $nums of $n table rows match the separate runs"
# the budget points came from a shared merge prefix (not separate loops)
sh=$(sed -n 's/.*; \([0-9]*\) points from a shared merge prefix, \([0-9]*\) merges shared.*/\1 \2/p' "$TMP/slog")
set -- $sh
[ "${1:-0}" -ge 4 ] && [ "${2:-0}" -gt 0 ] && pass "sweep: $1 budget points forked from a shared trunk ($2 merges shared)" \
  || fail "sweep: no shared merge prefix: $(cat "$TMP/slog")"
# the same sweep on 1 thread: the same models (forks do not depend on threads)
"$T" train -q $BASE -t 1 --sweep none,0.30:0.40:0.05,0.44/0.44,0.44/0.44@weights,unigram --keep-models "$TMP/kept1" \
  "$TMP"/train/* > /dev/null 2> "$TMP/slog1"
n1=0
for f in "$TMP"/kept/*.model; do cmp -s "$f" "$TMP/kept1/$(basename "$f")" && n1=$((n1 + 1)); done
[ $n1 -eq 7 ] && pass "sweep: 1 and 2 threads give the same 7 models" || fail "sweep: $n1 of 7 models equal with 1 and 2 threads"
grep -c "<- chosen" "$TMP/table" | grep -qx 1 && pass "sweep: one chosen point" || fail "chosen: $(cat "$TMP/table")"
if grep -q "<svg" "$TMP/sweep.html" && grep -q "Pareto" "$TMP/sweep.html" && grep -q "(chosen)" "$TMP/sweep.html"; then
  pass "sweep report: Pareto chart and table"
else
  fail "sweep report incomplete"
fi
if command -v python3 > /dev/null; then
  python3 "$TKM_SRCDIR/tests/report_check.py" svg "$TMP/sweep.html" && pass "sweep report: SVG well-formed" \
    || fail "sweep report: SVG not well-formed"
fi
# -o with --sweep writes the chosen point (here the --balance one)
"$T" train -q $BASE --sweep none,0.44/0.44 --balance latin=0.44,japanese=0.44 -o "$TMP/ch.model" "$TMP"/train/* > "$TMP/t2"
cmp -s "$TMP/ch.model" "$TMP"/kept/05-l0.44-j0.44b.model && pass "sweep -o: the chosen (--balance) point's model" \
  || fail "sweep -o wrote another model: $(cat "$TMP/t2")"
# 4. usage errors: exit 2 and a clear line
chk() { # expected message, args...
  local msg=$1; shift
  if "$T" train "$@" "$TMP"/train/en-* > /dev/null 2> "$TMP/err"; then fail "accepted: $*"
  elif [ $? -eq 2 ] && grep -q -- "$msg" "$TMP/err"; then pass "rejected: $*"
  else fail "$*: $(cat "$TMP/err")"; fi
}
chk "invalid list" --sweep 0.3:0.2:0.1
chk "invalid list" --sweep none,0.5@best
chk "need the unbalanced point" --sweep 0.3,0.4
chk "need --sweep" --keep-models "$TMP/k" -o "$TMP/x.model"
chk "invalid value" --balance-method exact -o "$TMP/x.model"
[ ! -e "$TMP/x.model" ] && pass "no output after a usage error" || fail "output left behind"
finish
