#!/usr/bin/env bash
# conventions.sh - the CLI's common conventions on every command: --version,
# -q/--quiet accepted, `-o -` writes to standard output (the same bytes as a
# file), option errors name the option, open errors give the reason.
. "$(dirname "$0")/lib.sh"
T=$TKM_BIN
v=$("$T" --version)
f0=$fails
for c in train spm-train encode decode analyze export softemb "softemb train" "softemb eval" "softemb apply" \
         "softemb splice" "softemb info" "softemb import" "analyze compression" "analyze vocab" "analyze report"; do
  # shellcheck disable=SC2086
  out=$("$T" $c --version 2>&1) && [ "$out" = "$v" ] || fail "$c --version: '$out'"
done
[ $fails = $f0 ] && pass "--version on every command and subcommand ($v)"

for i in $(seq 1 200); do echo "the quick brown fox $i jumps over the lazy dog"; done > "$TMP/c.txt"
# -o - : same bytes as a file, nothing left named "-" (models record their
# input names: train in $TMP on c.txt each time)
cd "$TMP"
"$T" train -q -t 1 --vocab-size 120 -o m.model c.txt
f0=$fails
"$T" train -q -t 1 --vocab-size 120 -o - c.txt > o1 && cmp -s o1 m.model || fail "train -o -"
"$T" train -q -t 1 --vocab-size 120 -o - c.txt | cat > o1p && cmp -s o1p m.model || fail "train -o - (pipe)"
"$T" export --hf-json -m m.model -o tj.json && "$T" export --hf-json -m m.model -o - > o2 && cmp -s o2 tj.json \
  || fail "export -o -"
"$T" encode -m m.model -o e.txt c.txt && "$T" encode -m m.model -o - c.txt > o3 && cmp -s o3 e.txt || fail "encode -o -"
"$T" encode -m m.model --output-format id -o ids.txt c.txt
"$T" decode -m m.model --input-format id -o d.txt ids.txt && "$T" decode -m m.model --input-format id -o - ids.txt > o4 \
  && cmp -s o4 d.txt || fail "decode -o -"
"$T" analyze compression -m m.model --corpus c=c.txt --json -o a.json \
  && "$T" analyze compression -m m.model --corpus c=c.txt --json -o - > o5 && cmp -s o5 a.json || fail "analyze -o -"
# a .npy teacher (1 x 4 floats) written with the standard library only
python3 -c 'import struct,sys
h = "{\x27descr\x27: \x27<f4\x27, \x27fortran_order\x27: False, \x27shape\x27: (3, 4), }"
h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
open(sys.argv[1], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + struct.pack("<12f", *range(12)))' t.npy
printf 'a\nb\nc\n' > t.vocab
"$T" softemb import --teacher t.npy --teacher-vocab t.vocab -o g.gguf 2>/dev/null \
  && "$T" softemb import -q --teacher t.npy --teacher-vocab t.vocab -o - > o6 2> q.err && cmp -s o6 g.gguf && [ ! -s q.err ] \
  || fail "softemb import -o - / -q"
[ ! -e ./- ] && [ $fails = $f0 ] && pass "-o - writes standard output (train, export, encode, decode, analyze, softemb import)" \
  || fail "a file named - was written"
cd - > /dev/null

# -q everywhere: accepted, and quiet
f0=$fails
"$T" export -q --hf-json -m "$TMP/m.model" -o "$TMP/q.json" 2> "$TMP/e" && [ ! -s "$TMP/e" ] || fail "export -q"
"$T" analyze compression --quiet -m "$TMP/m.model" --corpus c="$TMP/c.txt" > /dev/null 2> "$TMP/e" && [ ! -s "$TMP/e" ] \
  || fail "analyze -q"
"$T" encode -q -m "$TMP/m.model" "$TMP/c.txt" > /dev/null 2> "$TMP/e" && [ ! -s "$TMP/e" ] || fail "encode -q"
"$T" softemb info -q --teacher "$TMP/t.npy" --teacher-vocab "$TMP/t.vocab" > /dev/null 2> "$TMP/e" && [ ! -s "$TMP/e" ] || fail "softemb info -q"
[ $fails = $f0 ] && pass "-q accepted by train, encode, analyze, export, softemb"

# option errors name the option; open errors give the reason
f0=$fails
rc=0; "$T" train --vocab-size abc -o "$TMP/x.model" "$TMP/c.txt" 2> "$TMP/e" || rc=$?
[ $rc = 2 ] && grep -q -- "invalid value 'abc' for --vocab-size" "$TMP/e" || fail "train --vocab-size abc ($rc): $(cat "$TMP/e")"
rc=0; "$T" train -t x -o "$TMP/x.model" "$TMP/c.txt" 2> "$TMP/e" || rc=$?
[ $rc = 2 ] && grep -q -- "invalid value 'x' for -t/--threads" "$TMP/e" || fail "train -t x ($rc): $(cat "$TMP/e")"
[ $fails = $f0 ] && pass "option errors name the option"
f0=$fails
for c in "encode -m $TMP/none.model" "export --hf-json -o $TMP/x.json -m $TMP/none.model" \
         "analyze compression --corpus c=$TMP/c.txt -m $TMP/none.model" "softemb info --teacher $TMP/none.npy"; do
  rc=0
  # shellcheck disable=SC2086
  "$T" $c < /dev/null > /dev/null 2> "$TMP/e" || rc=$?
  [ $rc = 1 ] && grep -q "none\.[a-z]*.*No such file or directory" "$TMP/e" || fail "$c ($rc): $(cat "$TMP/e")"
done
[ $fails = $f0 ] && pass "missing files: exit 1, the file and the reason named"
finish
