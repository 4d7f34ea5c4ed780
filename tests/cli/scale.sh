#!/usr/bin/env bash
# scale.sh - what the scale work (issue 15) must keep true, checked cheaply:
# no 32-bit ceilings (word handles in larger units when the word array would
# pass 2^32 units, forced here with TKM_BPE_HANDLE_SHIFT; 4-byte word symbols
# above vocab 65536, forced with TKM_BPE_WIDE_SYMBOLS; pre-token and pair
# counts past 2^32, reached here with input weights), each with a model
# byte-identical (or piece-identical) to the plain run.
. "$(dirname "$0")/lib.sh"
T=$TKM_BIN
# a synthetic corpus: Zipf-like words from a fixed-seed generator, en + ja
awk 'BEGIN {
  s = 12345; split("the of and to in is that it was for on are with as his they be at one have", W, " ")
  split("東京 日本 今日 天気 文章 カタカナ ひらがな 首都 言葉 時間", J, " ")
  for (l = 0; l < 150000; l++) {
    line = ""
    for (k = 0; k < 16; k++) {
      s = (s * 1103515245 + 12345) % 2147483648; r = s / 2147483648
      if (r < 0.5) w = W[int((2 * r) ^ 3 * 20) + 1]
      else { w = ""; n = 2 + int(r * 97) % 6; for (c = 0; c < n; c++) { s = (s * 1103515245 + 12345) % 2147483648; w = w substr("abcdefghijklmnopqrstuvwxyz", int(s / 2147483648 * 26) + 1, 1) } }
      line = line (k ? " " : "") w
    }
    if (l % 3 == 0) { s = (s * 1103515245 + 12345) % 2147483648; line = line " " J[int(s / 2147483648 * 10) + 1] "は" J[l % 10 + 1] "です。" }
    print line
  }
}' > "$TMP/syn.txt"

# 1. word handles in larger units (what a corpus of hundreds of GB gets) give the same model
"$T" train -q --vocab-size 2000 -t 2 -o "$TMP/h0.model" "$TMP/syn.txt"
for hs in 1 3; do
  TKM_BPE_HANDLE_SHIFT=$hs "$T" train -q --vocab-size 2000 -t 2 -o "$TMP/h$hs.model" "$TMP/syn.txt"
  cmp -s "$TMP/h0.model" "$TMP/h$hs.model" && pass "word handles in units of $((8 << hs)) bytes: identical model" \
    || fail "word handles in units of $((8 << hs)) bytes change the model"
done
# word symbols in 4 bytes (what a vocab over 65536 gets) give the same model as 2
TKM_BPE_WIDE_SYMBOLS=1 "$T" train -q --vocab-size 2000 -t 2 -o "$TMP/wide.model" "$TMP/syn.txt"
cmp -s "$TMP/h0.model" "$TMP/wide.model" && pass "4-byte word symbols: identical model" \
  || fail "4-byte word symbols change the model"

# 2. counts past 2^32: weight 1000 counts each occurrence 100000 times, so the
# most frequent word and its pairs pass 2^32 (checked below); scaling every
# count by the same factor must not change a piece
top=$(tr ' ' '\n' < "$TMP/syn.txt" | sort | uniq -c | sort -rn | awk 'NR == 1 {print $1}')
awk -v n="$top" 'BEGIN { exit !(n * 100000 > 4294967296) }' \
  && pass "the most frequent word occurs $top times: weighted count $((top * 100000)) > 2^32" \
  || fail "the fixture does not reach 2^32 ($top occurrences)"
"$T" train -q --vocab-size 2000 --character-coverage 1 -t 2 --input "x=$TMP/syn.txt" --weight x=1 -o "$TMP/w1.model" --hf-json "$TMP/w1.json"
"$T" train -q --vocab-size 2000 --character-coverage 1 -t 2 --input "x=$TMP/syn.txt" --weight x=1000 -o "$TMP/w1000.model" --hf-json "$TMP/w1000.json"
cmp -s "$TMP/w1.json" "$TMP/w1000.json" && pass "counts past 2^32: same pieces and merges as weight 1" \
  || fail "counts past 2^32 change the pieces"

# 3. --max-memory: a limit far below the tables makes every worker spill a run
# per 4 MB block; the runs merged (2 at a time with TKM_SPILL_MAX_WAY=2, the
# multi-pass path) give the in-memory model byte for byte, for 1 to 3 threads
for th in 1 2 3; do
  "$T" train --vocab-size 2000 -t $th -o "$TMP/m$th.model" "$TMP/syn.txt" 2> "$TMP/m$th.log"
  # (TKM_BPE_MERGE_BUDGET=0: the merge loop unbounded, so that only counting
  # feels the limit; tests/cli/merge_drop.sh checks the merge loop's bound)
  TKM_BPE_MERGE_BUDGET=0 TKM_SPILL_MAX_WAY=2 "$T" train --vocab-size 2000 -t $th --max-memory 1K -o "$TMP/s$th.model" "$TMP/syn.txt" 2> "$TMP/s$th.log"
  runs=$(sed -n 's/.*spilled \([0-9]*\) sorted runs.*/\1/p' "$TMP/s$th.log")
  [ "${runs:-0}" -ge 3 ] && pass "$th thread(s), --max-memory 1K: spilled $runs runs" || fail "$th thread(s): no spill reported ($(grep memory "$TMP/s$th.log"))"
  grep -q "fit in memory" "$TMP/m$th.log" && pass "$th thread(s), default limit: no spill" || fail "$th thread(s): default limit spilled"
  cmp -s "$TMP/m$th.model" "$TMP/s$th.model" && pass "$th thread(s): spilled counts give the in-memory model byte for byte" \
    || fail "$th thread(s): spilled counts change the model"
done
cmp -s "$TMP/s1.model" "$TMP/s2.model" && cmp -s "$TMP/s1.model" "$TMP/s3.model" && pass "spilled: 1, 2 and 3 threads identical" \
  || fail "spilled: 1, 2 and 3 threads differ"
# 3a. the bound holds: a million distinct words (8.5 MB) whose tables need more
# than --max-memory 64M; the peak RSS the summary prints (the kernel's high-water
# mark) stays under the limit while the tables fill, spill (sorted in hash
# partitions through a small scratch, count_spill.c) and are merged, and the
# model equals the in-memory one (the same merge budget for both; main before
# the partitioned spill, 8c91a28, peaked at 69 and 73 MB here with 2 and 3 threads). Not measured in
# a sanitizer build (its shadow memory is RSS too).
awk -v n=1000000 'BEGIN { s = 777
  for (i = 0; i < n; i++) {
    w = ""; s = (s * 69069 + 1) % 4294967296; l = 5 + int(s / 4294967296 * 6)
    for (c = 0; c < l; c++) { s = (s * 69069 + 1) % 4294967296; w = w substr("abcdefghijklmnopqrstuvwxyz", int(s / 4294967296 * 26) + 1, 1) }
    printf "%s%s", w, (i % 12 == 11 ? "\n" : " ")
  }
}' > "$TMP/uniq.txt"
san=
grep -q -- '-fsanitize' "$(dirname "$T")/Makefile" 2> /dev/null && san=1
TKM_BPE_MERGE_BUDGET=20000000 "$T" train --vocab-size 2000 -t 2 -o "$TMP/um0.model" "$TMP/uniq.txt" 2> "$TMP/um0.log"
for th in 1 2 3; do
  TKM_BPE_MERGE_BUDGET=20000000 "$T" train --vocab-size 2000 -t $th --max-memory 64M -o "$TMP/um$th.model" "$TMP/uniq.txt" 2> "$TMP/um$th.log"
  grep -q "spilled [0-9]* sorted runs" "$TMP/um$th.log" && pass "$th thread(s), a million distinct words, --max-memory 64M: spilled" \
    || fail "$th thread(s): no spill under 64M ($(grep memory "$TMP/um$th.log"))"
  cmp -s "$TMP/um0.model" "$TMP/um$th.model" && pass "$th thread(s): the model under 64M equals the in-memory one" \
    || fail "$th thread(s): the model under 64M differs from the in-memory one"
  peak=$(sed -n 's/.*peak RSS \([0-9.]*\) MB.*/\1/p' "$TMP/um$th.log")
  if [ -n "$san" ]; then echo "# $th thread(s): peak RSS $peak MB not checked against 64 MB: a sanitizer build"
  elif [ -z "$peak" ]; then fail "$th thread(s): no peak RSS in the summary"
  else awk -v p="$peak" 'BEGIN { exit !(p > 0 && p <= 64) }' && pass "$th thread(s): peak RSS $peak MB <= --max-memory 64 MB" \
    || fail "$th thread(s): peak RSS $peak MB over --max-memory 64 MB"
  fi
done
# 3b. spilling and the merge budget's sample together: the runs' merge
# decides the threshold and loads only the sample (count_spill.c); the
# model and the reported sample equal the in-memory path's with the same
# budget (TKM_BPE_MERGE_BUDGET: a third of the estimate for all), and the
# Unigram model is unchanged by the spill
TKM_DEBUG_BPE=1 "$T" train --vocab-size 2000 -t 2 --max-memory 64G -o "$TMP/e.model" "$TMP/syn.txt" 2> "$TMP/e.log"
est=$(sed -n 's/^debug: merge loop estimate \([0-9.]*\) MB for all.*/\1/p' "$TMP/e.log")
bud=$(awk -v e="${est:-0}" 'BEGIN {printf "%.0f", e * 1e6 / 3}')
[ "${bud:-0}" -gt 0 ] && pass "merge loop estimate for all: $est MB, budget $bud bytes" || fail "no merge loop estimate: $(grep debug "$TMP/e.log" | head -2)"
for th in 1 2 3; do
  TKM_BPE_MERGE_BUDGET=$bud "$T" train --vocab-size 2000 --hard-vocab-limit=false -t $th -o "$TMP/bm$th.model" "$TMP/syn.txt" 2> "$TMP/bm$th.log"
  TKM_BPE_MERGE_BUDGET=$bud TKM_SPILL_MAX_WAY=2 "$T" train --vocab-size 2000 --hard-vocab-limit=false -t $th --max-memory 1K -o "$TMP/bs$th.model" "$TMP/syn.txt" 2> "$TMP/bs$th.log"
  dm=$(sed -n 's/^  \(sampled .*\), to fit.*/\1/p' "$TMP/bm$th.log"); ds=$(sed -n 's/^  \(sampled .*\), to fit.*/\1/p' "$TMP/bs$th.log")
  grep -q "spilled [0-9]* sorted runs" "$TMP/bs$th.log" && [ -n "$ds" ] && pass "$th thread(s): spilled and sampled ($ds)" \
    || fail "$th thread(s): not both spilled and sampled: $(grep "memory\|sampled" "$TMP/bs$th.log")"
  [ -n "$dm" ] && [ "$dm" = "$ds" ] && pass "$th thread(s): the same sample reported with and without the spill" || fail "$th thread(s): samples differ: '$dm' vs '$ds'"
  u_m=$(grep -o "pre-tokens ([0-9]* unique)" "$TMP/bm$th.log" || true); u_s=$(grep -o "pre-tokens ([0-9]* unique)" "$TMP/bs$th.log" || true)
  [ -n "$u_m" ] && [ "$u_m" = "$u_s" ] && pass "$th thread(s): unique pre-tokens counted before the sample ($u_s)" || fail "$th thread(s): unique differs: '$u_m' vs '$u_s'"
  cmp -s "$TMP/bm$th.model" "$TMP/bs$th.model" && pass "$th thread(s): spill + sample give the in-memory model byte for byte" \
    || fail "$th thread(s): spill + sample change the model"
done
cmp -s "$TMP/bs1.model" "$TMP/bs3.model" && pass "spill + sample: 1 vs 3 threads identical" || fail "spill + sample: 1 vs 3 threads differ"
cmp -s "$TMP/bm1.model" "$TMP/m1.model" && fail "the budget did not change the model" || pass "the budget's sample changed the model (as it must)"
"$T" train --model-type unigram --vocab-size 1000 --hard-vocab-limit=false -t 2 -o "$TMP/um.model" "$TMP/syn.txt" 2> /dev/null
# (TKM_UNIGRAM_WORD_BUDGET=0: the words unbounded, so that only counting feels the limit)
TKM_UNIGRAM_WORD_BUDGET=0 TKM_SPILL_MAX_WAY=2 "$T" train --model-type unigram --vocab-size 1000 --hard-vocab-limit=false -t 2 --max-memory 1K \
  -o "$TMP/us.model" "$TMP/syn.txt" 2> "$TMP/us.log"
grep -q "spilled [0-9]* sorted runs" "$TMP/us.log" && cmp -s "$TMP/um.model" "$TMP/us.model" \
  && pass "Unigram: spilled counts give the in-memory model byte for byte" || fail "Unigram: spill changes the model ($(grep memory "$TMP/us.log"))"
# 3c. Unigram's words under the limit (half of it, vocab_common.c): the
# pre-tokens counted under a threshold tau are a threshold sample (kept with
# probability count/tau by a hash of their bytes, then counted tau times);
# after a spill only the kept ones are loaded, with the same sample and
# model as in memory (TKM_UNIGRAM_WORD_BUDGET: a third of the estimate for
# all), at 1 and 3 threads. A budget that keeps nothing is a clear error,
# no model.
if TKM_DEBUG_UNIGRAM=1 TKM_UNIGRAM_WORD_BUDGET=1 "$T" train --model-type unigram --vocab-size 1000 -t 2 \
  -o "$TMP/u_none.model" "$TMP/syn.txt" 2> "$TMP/u_none.log"; then fail "Unigram: a budget of 1 byte accepted"
else grep -q "is too small: the sample that fits its words' budget" "$TMP/u_none.log" && pass "Unigram: a budget that keeps nothing is refused" \
  || fail "Unigram: unclear error: $(grep -v '^debug' "$TMP/u_none.log" | head -3)"; fi
[ ! -e "$TMP/u_none.model" ] && pass "Unigram: no model written when the budget keeps nothing" || fail "Unigram: a model was written"
uest=$(sed -n 's/^debug: Unigram words at their peak about \([0-9.]*\) MB for all.*/\1/p' "$TMP/u_none.log")
ubud=$(awk -v e="${uest:-0}" 'BEGIN {printf "%.0f", e * 1e6 / 3}')
[ "${ubud:-0}" -gt 0 ] && pass "Unigram words estimate for all: $uest MB, budget $ubud bytes" || fail "no Unigram words estimate: $(head -3 "$TMP/u_none.log")"
for th in 1 3; do
  TKM_UNIGRAM_WORD_BUDGET=$ubud "$T" train --model-type unigram --vocab-size 1000 --hard-vocab-limit=false -t $th \
    -o "$TMP/ubm$th.model" "$TMP/syn.txt" 2> "$TMP/ubm$th.log"
  TKM_UNIGRAM_WORD_BUDGET=$ubud TKM_SPILL_MAX_WAY=2 "$T" train --model-type unigram --vocab-size 1000 --hard-vocab-limit=false \
    -t $th --max-memory 1K -o "$TMP/ubs$th.model" "$TMP/syn.txt" 2> "$TMP/ubs$th.log"
  dm=$(sed -n 's/^  \(sampled .*\), to fit.*/\1/p' "$TMP/ubm$th.log"); ds=$(sed -n 's/^  \(sampled .*\), to fit.*/\1/p' "$TMP/ubs$th.log")
  grep -q "spilled [0-9]* sorted runs" "$TMP/ubs$th.log" && [ -n "$ds" ] && pass "Unigram, $th thread(s): spilled and sampled ($ds)" \
    || fail "Unigram, $th thread(s): not both spilled and sampled: $(grep "memory\|sampled\|error" "$TMP/ubs$th.log")"
  [ -n "$dm" ] && [ "$dm" = "$ds" ] && pass "Unigram, $th thread(s): the same sample with and without the spill" \
    || fail "Unigram, $th thread(s): samples differ: '$dm' vs '$ds'"
  cmp -s "$TMP/ubm$th.model" "$TMP/ubs$th.model" && pass "Unigram, $th thread(s): spill + sample give the in-memory model byte for byte" \
    || fail "Unigram, $th thread(s): spill + sample change the model"
done
cmp -s "$TMP/ubs1.model" "$TMP/ubs3.model" && pass "Unigram spill + sample: 1 vs 3 threads identical" || fail "Unigram spill + sample: 1 vs 3 threads differ"
cmp -s "$TMP/ubm1.model" "$TMP/um.model" && fail "Unigram: the budget did not change the model" || pass "Unigram: the budget's sample changed the model (as it must)"
# 4. progress: off when stderr is not a terminal; --progress=plain writes lines
# with bytes read out of the input's size and merges done out of the target
"$T" train --vocab-size 2000 -t 2 -o "$TMP/p0.model" "$TMP/syn.txt" 2> "$TMP/p0.log"
grep -q "reading:\|merging:" "$TMP/p0.log" && fail "progress written to a non-terminal by default" || pass "no progress on a non-terminal by default"
size=$(wc -c < "$TMP/syn.txt")
"$T" train --vocab-size 2000 -t 2 --progress=plain -o "$TMP/p1.model" "$TMP/syn.txt" 2> "$TMP/p1.log"
grep -q "reading: [0-9.]* / $(awk -v s="$size" 'BEGIN {printf "%.1f", s / 1e6}') MB" "$TMP/p1.log" \
  && pass "plain progress: bytes read out of the input size" || fail "no reading progress with the total: $(head -3 "$TMP/p1.log")"
target=$(grep -o "merging: [0-9]* / [0-9]*" "$TMP/p1.log" | tail -1 | awk '{print $4}')
grep -q "merging: $target / $target (100.0%)" "$TMP/p1.log" && [ "${target:-0}" -gt 0 ] \
  && pass "plain progress: merges done out of the target ($target)" || fail "no final merging line: $(grep merging "$TMP/p1.log" | tail -2)"
cmp -s "$TMP/p0.model" "$TMP/p1.model" && pass "progress does not change the model" || fail "progress changes the model"
# Unigram: "Unigram round k of n: P pieces left, target T", the last line with k = n and P <= T
"$T" train --model-type unigram --vocab-size 1000 --hard-vocab-limit=false -t 2 --progress=plain -o "$TMP/u1.model" \
  "$TMP/syn.txt" 2> "$TMP/u1.log"
last=$(grep -o "Unigram round [0-9]* of [0-9]*: [0-9]* pieces left, target [0-9]*" "$TMP/u1.log" | tail -1 | tr -d ':,')
echo "$last" | awk '{ exit !(NF == 10 && $3 == $5 && $5 >= 1 && $6 <= $10) }' \
  && pass "plain progress: Unigram rounds and pieces left ($last)" || fail "no final Unigram round line: $(tail -3 "$TMP/u1.log")"
"$T" train --model-type unigram --vocab-size 1000 --hard-vocab-limit=false -t 2 -o "$TMP/u0.model" "$TMP/syn.txt" 2> /dev/null
cmp -s "$TMP/u0.model" "$TMP/u1.model" && pass "progress does not change the Unigram model" || fail "progress changes the Unigram model"
if "$T" train --max-memory 12Q -o "$TMP/bad.model" "$TMP/syn.txt" 2> "$TMP/err"; then fail "--max-memory 12Q accepted"
else grep -q "invalid value '12Q'" "$TMP/err" && pass "--max-memory 12Q refused" || fail "unclear error: $(cat "$TMP/err")"; fi
[ ! -e "$TMP/bad.model" ] && pass "no model written on a bad option" || fail "a model was written on a bad option"
finish
