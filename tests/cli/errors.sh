#!/usr/bin/env bash
# errors.sh - bad input gets a clear message naming the file, a non-zero exit
# and no output file left behind.
. "$(dirname "$0")/lib.sh"
T=$TKM_BIN

expect_fail() { # name, expected exit, expected stderr substring, command...
  local name=$1 code=$2 msg=$3; shift 3
  set +e; "$@" > "$TMP/out" 2> "$TMP/err"; local rc=$?; set -e
  if [ "$rc" -eq "$code" ] && grep -qF -- "$msg" "$TMP/err"; then pass "$name"
  else fail "$name: exit $rc, stderr: $(head -c 300 "$TMP/err")"; fi
}
no_file() { if [ -e "$1" ] || ls "$1".tmp.* >/dev/null 2>&1; then fail "$2: output left behind"; else pass "$2: no output"; fi; }

printf 'hello world\nthis is a small corpus\n' > "$TMP/small.txt"
expect_fail "train: missing input" 1 "$TMP/nope.txt" $T train -q -o "$TMP/m.model" "$TMP/nope.txt"
no_file "$TMP/m.model" "train: missing input"
: > "$TMP/empty.txt"
expect_fail "train: empty corpus" 1 "empty" $T train -q -o "$TMP/m.model" "$TMP/empty.txt"
no_file "$TMP/m.model" "train: empty corpus"
printf '\n\n   \n' > "$TMP/blank.txt"
expect_fail "train: only blank lines" 1 "no input" $T train -q -o "$TMP/m.model" "$TMP/blank.txt" --add-dummy-prefix --remove-extra-whitespaces
expect_fail "train: vocab below required pieces" 1 "smaller than the required pieces" $T train -q --vocab-size 10 -o "$TMP/m.model" "$TMP/small.txt"
no_file "$TMP/m.model" "train: vocab too small"
expect_fail "train: vocab out of reach" 1 "cannot be reached" $T train -q --vocab-size 5000 -o "$TMP/m.model" "$TMP/small.txt"
no_file "$TMP/m.model" "train: vocab out of reach"
expect_fail "train: Unigram piece length over 63" 1 "too long (at most 63" $T train -q --model-type unigram --max-piece-length 64 --vocab-size 20 --hard-vocab-limit=false -o "$TMP/m.model" "$TMP/small.txt"
no_file "$TMP/m.model" "train: Unigram piece length over 63"
expect_fail "train: bad option value" 2 "invalid value" $T train --vocab-size abc -o "$TMP/m.model" "$TMP/small.txt"
expect_fail "train: unknown model type" 2 "unknown model type" $T train --model-type foo -o "$TMP/m.model" "$TMP/small.txt"
expect_fail "train: no output" 2 "no output" $T train "$TMP/small.txt"
expect_fail "unknown command" 2 "unknown command" $T frobnicate

# corrupt gzip input
printf 'some text to compress\n%.0s' $(seq 1 200) | gzip -c > "$TMP/c.gz"
head -c 60 "$TMP/c.gz" > "$TMP/trunc.gz"
expect_fail "train: truncated gzip" 1 "$TMP/trunc.gz" $T train -q -o "$TMP/m.model" "$TMP/trunc.gz"
no_file "$TMP/m.model" "train: truncated gzip"
# the message names the file, not the descriptor zlib was given (<fd:3>)
grep -q "<fd:" "$TMP/err" && fail "truncated gzip message shows zlib's descriptor: $(cat "$TMP/err")" \
  || pass "truncated gzip message names the file only"

# a good model, then broken copies of it
$T train -q --vocab-size 40 --hard-vocab-limit=false -o "$TMP/good.model" "$TMP/small.txt"
[ -s "$TMP/good.model" ] && pass "train: small model" || fail "train: small model"
size=$(wc -c < "$TMP/good.model")
for cut in 1 7 $((size / 2)) $((size - 1)); do
  head -c "$cut" "$TMP/good.model" > "$TMP/trunc.model"
  expect_fail "encode: model truncated at $cut" 1 "$TMP/trunc.model" $T encode -m "$TMP/trunc.model" "$TMP/small.txt"
done
: > "$TMP/empty.model"
expect_fail "encode: empty model" 1 "$TMP/empty.model" $T encode -m "$TMP/empty.model" "$TMP/small.txt"
expect_fail "encode: missing model" 1 "$TMP/none.model" $T encode -m "$TMP/none.model" "$TMP/small.txt"
expect_fail "encode: missing input" 1 "$TMP/none.txt" $T encode -m "$TMP/good.model" -o "$TMP/out.ids" "$TMP/none.txt"
no_file "$TMP/out.ids" "encode: missing input"
expect_fail "decode: id out of range" 1 "invalid id 99999" sh -c "echo '1 2 99999' | $T decode -m '$TMP/good.model' --input-format id"
expect_fail "decode: not an id" 1 "not an id" sh -c "echo '1 x 2' | $T decode -m '$TMP/good.model' --input-format id"
# an output that is not a regular file (a FIFO here; /dev/null in practice) is
# written in place, never replaced by a renamed temporary file
# (readers time out, so a writer that never opens the FIFO cannot hang the test)
mkfifo "$TMP/fifo"
timeout 20 cat "$TMP/fifo" > "$TMP/fifo.out" &
printf 'the cat sat on the mat\nthe dog sat\n' > "$TMP/fc.txt"
"$T" train --vocab-size 25 -q -o "$TMP/fifo" "$TMP/fc.txt" || true; wait
[ -p "$TMP/fifo" ] && [ -s "$TMP/fifo.out" ] && pass "train -o FIFO: written in place, FIFO kept" || fail "train -o FIFO"
timeout 20 cat "$TMP/fifo" > "$TMP/fifo2.out" &
echo "the cat" | "$T" encode -m "$TMP/fifo.out" -o "$TMP/fifo" || true; wait
[ -p "$TMP/fifo" ] && [ -s "$TMP/fifo2.out" ] && pass "encode -o FIFO: written in place, FIFO kept" || fail "encode -o FIFO"
# softemb import writes GGUF through the library's streamed writer: the same rule
python3 -c 'import struct,sys
h = "{\x27descr\x27: \x27<f4\x27, \x27fortran_order\x27: False, \x27shape\x27: (3, 4), }"
h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
open(sys.argv[1], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + struct.pack("<12f", *range(12)))' "$TMP/t.npy"
printf 'a\nb\nc\n' > "$TMP/t.vocab"
timeout 20 cat "$TMP/fifo" > "$TMP/fifo3.out" &
"$T" softemb import -q --teacher "$TMP/t.npy" --teacher-vocab "$TMP/t.vocab" -o "$TMP/fifo" || true; wait
"$T" softemb import -q --teacher "$TMP/t.npy" --teacher-vocab "$TMP/t.vocab" -o "$TMP/t.gguf" || true
[ -p "$TMP/fifo" ] && [ -s "$TMP/t.gguf" ] && cmp -s "$TMP/fifo3.out" "$TMP/t.gguf" \
  && pass "softemb import -o FIFO: written in place (same bytes as a file), FIFO kept" || fail "softemb import -o FIFO"
finish
