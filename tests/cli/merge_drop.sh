#!/usr/bin/env bash
# merge_drop.sh - BPE's merge loop under --max-memory (issue 15): when the
# unique pre-tokens would not fit, those counted under a threshold tau are a
# sample (one counted c times kept with probability c/tau by a hash of its
# bytes, then counted tau times) that the summary reports (kept, left out
# and their occurrences, also with -q); the model is still valid and
# deterministic across thread counts; when everything fits, the model is
# byte-identical to the unbounded run.
. "$(dirname "$0")/lib.sh"
T=$TKM_BIN
# Zipf-like words from a fixed-seed generator with a long tail of rare ones
awk 'BEGIN {
  s = 4242; split("the of and to in is that it was for on are with as his they be at one have", W, " ")
  for (l = 0; l < 20000; l++) {
    line = ""
    for (k = 0; k < 12; k++) {
      s = (s * 1103515245 + 12345) % 2147483648; r = s / 2147483648
      if (r < 0.6) w = W[int((r / 0.6) ^ 3 * 20) + 1]
      else { w = ""; n = 3 + int(r * 97) % 6; for (c = 0; c < n; c++) { s = (s * 1103515245 + 12345) % 2147483648; w = w substr("abcdefghijklmnopqrstuvwxyz", int(s / 2147483648 * 26) + 1, 1) } }
      line = line (k ? " " : "") w
    }
    print line
  }
}' > "$TMP/syn.txt"
head -n 2000 "$TMP/syn.txt" > "$TMP/text.txt"
opts="--vocab-size 600 --hard-vocab-limit=false"

# 1. no limit, and a limit everything fits under: the same model, no sample reported
"$T" train $opts -t 2 -o "$TMP/a.model" "$TMP/syn.txt" 2> "$TMP/a.log"
TKM_DEBUG_BPE=1 "$T" train $opts -t 2 --max-memory 64G -o "$TMP/b.model" "$TMP/syn.txt" 2> "$TMP/b.log"
cmp -s "$TMP/a.model" "$TMP/b.model" && pass "everything fits: byte-identical model" || fail "a limit that fits changes the model"
grep -q "^  sampled " "$TMP/b.log" && fail "a sample reported though everything fits" || pass "nothing sampled when everything fits"
est=$(sed -n 's/^debug: merge loop estimate \([0-9.]*\) MB for all.*/\1/p' "$TMP/b.log")
[ -n "$est" ] && pass "merge loop estimate for all pre-tokens: $est MB" || fail "no estimate in the debug output"

# 1b. between the estimate by characters and its bound by bytes (kana, 3
# bytes a character): the histogram is built (exact), nothing is sampled,
# and the word array is sized from the characters counted as the words are
# ordered: the model of the run without a limit
kana=(あ い う え お か き く け こ さ し す せ そ た ち つ て と な に ぬ ね の は)
sedargs=(); i=0
for l in a b c d e f g h i j k l m n o p q r s t u v w x y z; do sedargs+=(-e "s/$l/${kana[$i]}/g"); i=$((i + 1)); done
sed "${sedargs[@]}" "$TMP/syn.txt" > "$TMP/kana.txt"
"$T" train $opts -t 2 -o "$TMP/k0.model" "$TMP/kana.txt" 2> /dev/null
TKM_DEBUG_BPE=1 "$T" train $opts -t 2 --max-memory 64G -o "$TMP/k1.model" "$TMP/kana.txt" 2> "$TMP/k1.log"
kest=$(sed -n 's/^debug: merge loop estimate \([0-9.]*\) MB for all.*/\1/p' "$TMP/k1.log")
kbud=$(awk -v e="${kest:-0}" 'BEGIN {printf "%.0f", e * 1e6 * 1.05}')
TKM_DEBUG_BPE=1 TKM_BPE_MERGE_BUDGET=$kbud "$T" train $opts -t 2 -o "$TMP/k2.model" "$TMP/kana.txt" 2> "$TMP/k2.log"
grep -q "^debug: merge loop estimate [0-9.]* MB for all pre-tokens, [0-9.]* MB expected kept (sampled below 0," "$TMP/k2.log" \
  && pass "kana, budget $kbud (estimate $kest MB): histogram built, nothing sampled" \
  || fail "kana, budget $kbud: not the histogram path: $(grep -i "debug: merge\|error" "$TMP/k2.log" | head -3)"
grep -q "^  sampled " "$TMP/k2.log" && fail "kana: a sample reported under a budget that fits" || pass "kana: no sample reported"
cmp -s "$TMP/k0.model" "$TMP/k2.model" && pass "kana: the model of the run without a limit" || fail "kana: the budget that fits changed the model"

# 1c. balance-method weights trains a merge loop per trial: the sample
# reported is the last trial's, not a sum over the trials (kept + left out
# at most the unique pre-tokens)
"$T" train $opts -t 2 --balance latin=0.5,japanese=0.5 --balance-method weights --max-memory 64G \
  -o "$TMP/bw.model" "$TMP/syn.txt" "$TMP/kana.txt" 2> "$TMP/bw.log"
TKM_BPE_MERGE_BUDGET=$((kbud / 2)) "$T" train $opts -t 2 --balance latin=0.5,japanese=0.5 --balance-method weights \
  -o "$TMP/bw2.model" "$TMP/syn.txt" "$TMP/kana.txt" 2> "$TMP/bw2.log"
uq=$(sed -n 's/.*pre-tokens (\([0-9]*\) unique).*/\1/p' "$TMP/bw2.log")
tr=$(sed -n 's/.*(balance-method weights: \([0-9]*\) merge loops searched).*/\1/p' "$TMP/bw2.log")
kl=$(sed -n 's/^  sampled .*: \([0-9]*\) kept, .* \([0-9]*\) left out .*/\1 \2/p' "$TMP/bw2.log")
set -- $kl
[ -n "$uq" ] && [ "${tr:-0}" -ge 2 ] && [ $# -eq 2 ] && [ $(($1 + $2)) -le "$uq" ] \
  && pass "weights, $tr trials: the sample reported once ($1 kept + $2 left out <= $uq unique)" \
  || fail "weights: trials '$tr', sample '$kl', unique '$uq': $(grep "sampled\|weights" "$TMP/bw2.log")"

# 2. a limit of a third of that estimate: the rare ones are sampled, and the summary says so
lim=$(awk -v e="${est:-1}" 'BEGIN {printf "%.0fK", e * 1e6 / 3 / 1024}')
for th in 1 2; do
  "$T" train $opts -t $th --max-memory "$lim" -o "$TMP/d$th.model" "$TMP/syn.txt" 2> "$TMP/d$th.log" \
    && pass "$th thread(s), --max-memory $lim: trained" || fail "$th thread(s), --max-memory $lim: $(tail -2 "$TMP/d$th.log")"
done
line=$(grep "^  sampled " "$TMP/d1.log" || true)
u=$(echo "$line" | sed -n 's/^  sampled *pre-tokens counted under \([0-9]*\) times: \([0-9]*\) kept, each counted [0-9]* times (kept with probability count\/[0-9]*), \([0-9]*\) left out (\([0-9]*\) occurrences.*/\1 \2 \3 \4/p')
set -- $u
[ $# -eq 4 ] && [ "$1" -ge 2 ] && [ "$2" -gt 0 ] && [ "$3" -gt 0 ] && [ "$4" -ge "$3" ] \
  && pass "sample reported: under $1 times, $2 kept, $3 left out ($4 occurrences)" || fail "no sample reported: $line"
# kept + left out are exactly the pre-tokens counted under tau: count them
# from the text; those left out hold at most their occurrences, and about
# 1 - c/tau of them (here: more than a third of those counted once)
if [ $# -eq 4 ]; then
  # (no dummy prefix by default: a line's first word is a pre-token of its
  # own, "word", the others "▁word")
  want=$(awk '{print "^" $1; for (i = 2; i <= NF; i++) print $i}' "$TMP/syn.txt" | sort | uniq -c \
         | awk -v t="$1" '$1 < t {u++; o += $1} $1 == 1 {one++} END {print u + 0, o + 0, one + 0}')
  set -- $1 $2 $3 $4 $want
  [ "$(($2 + $3))" = "$5" ] && pass "kept + left out = the text's pre-tokens counted under $1 ($5)" || fail "kept $2 + left out $3, the text has $5"
  [ "$4" -le "$6" ] && [ "$3" -gt "$(($7 / 3))" ] && pass "left out: $4 of the $6 occurrences, $3 unique (of $7 counted once)" \
    || fail "implausible sample: $3 left out ($4 occurrences) of $5 ($6), $7 counted once"
fi
cmp -s "$TMP/d1.model" "$TMP/d2.model" && pass "with a sample: 1 vs 2 threads identical" || fail "with a sample: 1 vs 2 threads differ"
cmp -s "$TMP/a.model" "$TMP/d1.model" && fail "the sample did not change the model" || pass "the sample changed the model (as it must)"
# still a valid model: it loads, and decode(encode(x)) == x
"$T" encode -m "$TMP/d1.model" --output-format id < "$TMP/text.txt" > "$TMP/ids" \
  && "$T" decode -m "$TMP/d1.model" --input-format id < "$TMP/ids" > "$TMP/back.txt" \
  && cmp -s "$TMP/text.txt" "$TMP/back.txt" && pass "model with a sample: encode/decode round trip" || fail "model with a sample does not round-trip"
# -q still reports the sample (never silent)
"$T" train -q $opts -t 2 --max-memory "$lim" -o "$TMP/q.model" "$TMP/syn.txt" 2> "$TMP/q.log"
grep -q "^  sampled " "$TMP/q.log" && pass "-q: the sample is still reported" || fail "-q hides the sample"
cmp -s "$TMP/q.model" "$TMP/d2.model" && pass "-q: same model" || fail "-q changes the model"
finish
