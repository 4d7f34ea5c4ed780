#!/usr/bin/env bash
# counts.sh - count files (.tkc, issue 19): `tokenmill count` per shard, then
# `train --counts` (or `count --merge` first) gives the model that one
# `tokenmill train` over the same text gives, byte for byte: BPE and Unigram,
# named inputs with --weight, --balance, character coverage, the nerdstash
# preset; counting options that differ are refused naming the file and the
# option; damaged, truncated and foreign files are clear errors with no output.
. "$(dirname "$0")/lib.sh"
need_corpus
T=$TKM_BIN
split_corpus 6000 10
tr=$TMP/train
ls "$tr"/en-* "$tr"/ja-* > /dev/null
mkdir -p "$TMP/s"

same() { # $1 = what, $2 $3 = models
  if cmp -s "$2" "$3"; then pass "$1: identical model"; else fail "$1: models differ"; fi
}

# 1. BPE, defaults: one train vs one count file per input file (glob), and merged
"$T" train -q -t 2 --vocab-size 3000 -o "$TMP/one.model" "$tr"/*
i=0
for f in "$tr"/*; do
  i=$((i + 1)); "$T" count -q -t 2 -o "$TMP/s/part-$(printf %02d $i).tkc" "$f"
done
"$T" train -q --vocab-size 3000 --counts "$TMP/s/*.tkc" -o "$TMP/c.model"
same "BPE from $i count files" "$TMP/one.model" "$TMP/c.model"
"$T" count -q --merge -o "$TMP/m.tkc" "$TMP/s/part-0[1-3].tkc" "$TMP/s/part-0[4-9].tkc"
"$T" train -q --vocab-size 3000 --counts "$TMP/m.tkc" -o "$TMP/m.model"
same "BPE from merged count files" "$TMP/one.model" "$TMP/m.model"
# split another way: two groups counted together
"$T" count -q -t 1 -o "$TMP/g1.tkc" $(ls "$tr"/* | head -3)
"$T" count -q -t 2 -o "$TMP/g2.tkc" $(ls "$tr"/* | tail -n +4)
"$T" train -q --vocab-size 3000 --counts "$TMP/g1.tkc" --counts "$TMP/g2.tkc" -o "$TMP/g.model"
same "BPE from count files of 3 + 4 inputs" "$TMP/one.model" "$TMP/g.model"
# the count file itself does not depend on threads
"$T" count -q -t 1 -o "$TMP/t1.tkc" "$tr"/*
"$T" count -q -t 2 -o "$TMP/t2.tkc" "$tr"/*
cmp -s "$TMP/t1.tkc" "$TMP/t2.tkc" && pass "count file identical with 1 and 2 threads" || fail "count file depends on threads"
"$T" count -q --merge -o "$TMP/tm.tkc" "$TMP/s/*.tkc"
cmp -s "$TMP/t1.tkc" "$TMP/tm.tkc" && pass "merge of per-file count files = one count of all files" \
  || fail "merged count file differs from a single count"

# 2. Unigram with character coverage, from the same count files
"$T" train -q -t 2 --model-type unigram --vocab-size 2000 --character-coverage 0.999 -o "$TMP/u1.model" "$tr"/*
"$T" train -q --model-type unigram --vocab-size 2000 --character-coverage 0.999 --counts "$TMP/s/*.tkc" -o "$TMP/u2.model"
same "Unigram, coverage 0.999" "$TMP/u1.model" "$TMP/u2.model"

# 3. nerdstash preset, named inputs with weights, --balance
N=(--preset nerdstash --vocab-size 4000)
"$T" train -q -t 2 "${N[@]}" --input "en=$tr/en-*" --input "ja=$tr/ja-*" --weight ja=1.5 \
  --balance latin=0.4,japanese=0.4 -o "$TMP/n1.model"
"$T" count -q "${N[@]}" --input "en=$tr/en-*" --weight en=1 -o "$TMP/n-1.tkc"
"$T" count -q "${N[@]}" --input "ja=$tr/ja-*" --weight ja=1.5 -o "$TMP/n-2.tkc"
"$T" train -q "${N[@]}" --balance latin=0.4,japanese=0.4 --counts "$TMP/n-*.tkc" -o "$TMP/n2.model"
same "nerdstash, weights, --balance" "$TMP/n1.model" "$TMP/n2.model"

# 4. refusals: other counting options, weighted with unweighted
if "$T" train -q --vocab-size 3000 --split-digits --counts "$TMP/m.tkc" -o "$TMP/x.model" 2> "$TMP/err"; then
  fail "other --split-digits accepted"
else
  grep -q "m.tkc: counted with --split-digits 0, this run has --split-digits 1" "$TMP/err" \
    && pass "other counting option refused: $(cat "$TMP/err")" || fail "unclear refusal: $(cat "$TMP/err")"
fi
[ ! -e "$TMP/x.model" ] && pass "no model after a refusal" || fail "model written after a refusal"
if "$T" train -q "${N[@]}" --counts "$TMP/n-1.tkc" --counts "$TMP/s/part-01.tkc" -o "$TMP/x.model" 2> "$TMP/err"; then
  fail "mixed options accepted"
else
  grep -q "part-01.tkc: counted with" "$TMP/err" && pass "mixed count files refused" || fail "unclear: $(cat "$TMP/err")"
fi
if "$T" count -q --merge -o "$TMP/x.tkc" "$TMP/n-1.tkc" "$TMP/m.tkc" 2> "$TMP/err"; then
  fail "merge of files with other options accepted"
else
  grep -q "m.tkc: counted with" "$TMP/err" && [ ! -e "$TMP/x.tkc" ] && pass "merge refuses other options, no output" \
    || fail "merge: $(cat "$TMP/err")"
fi
"$T" count -q --weight x=2 --input "x=$tr/en-fortunes.txt" -o "$TMP/w.tkc" 2> /dev/null ||
  "$T" count -q --input "x=$tr/en-fortunes.txt" --weight x=2 -o "$TMP/w.tkc"
if "$T" train -q --vocab-size 3000 --counts "$TMP/w.tkc" --counts "$TMP/m.tkc" -o "$TMP/x.model" 2> "$TMP/err"; then
  fail "weighted + unweighted counts accepted"
else
  grep -q "different units" "$TMP/err" && pass "weighted + unweighted refused" || fail "unclear: $(cat "$TMP/err")"
fi

# 5. damaged files: truncated (gzip and plain), flipped byte, foreign, empty; never a crash, no output
zcat "$TMP/m.tkc" > "$TMP/plain.tkc"
"$T" train -q --vocab-size 3000 --counts "$TMP/plain.tkc" -o "$TMP/p.model"
same "uncompressed count file" "$TMP/one.model" "$TMP/p.model"
sz=$(stat -c %s "$TMP/m.tkc")
head -c $((sz / 2)) "$TMP/m.tkc" > "$TMP/trunc.tkc"
psz=$(stat -c %s "$TMP/plain.tkc")
head -c $((psz - 3)) "$TMP/plain.tkc" > "$TMP/trunc2.tkc"
cp "$TMP/plain.tkc" "$TMP/flip.tkc"
printf '\xff' | dd of="$TMP/flip.tkc" bs=1 seek=$((psz / 2)) conv=notrunc 2> /dev/null
echo "hello world" > "$TMP/foreign.tkc"
: > "$TMP/empty.tkc"
sed '1s/tokenmill-counts 1/tokenmill-counts 9/' "$TMP/plain.tkc" > "$TMP/v9.tkc"
for bad in trunc trunc2 flip foreign empty v9; do
  set +e
  "$T" train -q --vocab-size 3000 --counts "$TMP/$bad.tkc" -o "$TMP/x.model" 2> "$TMP/err"
  rc=$?
  set -e
  if [ "$rc" -eq 1 ] && grep -q "$bad.tkc" "$TMP/err" && [ ! -e "$TMP/x.model" ]; then
    pass "$bad count file: exit 1, $(cat "$TMP/err")"
  else
    fail "$bad count file: rc $rc, $(cat "$TMP/err")"
  fi
done
"$T" count -q --merge -o "$TMP/x.tkc" "$TMP/s/part-01.tkc" "$TMP/trunc.tkc" 2> "$TMP/err" && fail "merge of truncated accepted" ||
  { [ ! -e "$TMP/x.tkc" ] && ! ls "$TMP"/x.tkc.tmp.* > /dev/null 2>&1 && pass "merge of a truncated file: error, no output" || fail "merge left output"; }
finish
