#!/usr/bin/env bash
# spm_dp.sh - `tokenmill spm-train` differential privacy options
# (enable_differential_privacy, differential_privacy_noise_level,
# differential_privacy_clipping_threshold; Unigram only) on WORD<TAB>COUNT
# input, as sentencepiece documents them: clipping alone equals training
# without the rows counted below the threshold; the noise is normal with
# the given standard deviation; it is drawn from random_seed, so one seed
# gives one model whatever the thread count and another seed another model.
. "$(dirname "$0")/lib.sh"
need_corpus
T=$TKM_BIN
# distinct lower-case ASCII words of the English corpus with their counts:
# one row, one pre-token (identity normalization: no two rows merge)
cat "$TKM_CORPUS"/en/*.txt | head -n 20000 | tr -cs 'a-z' '\n' | grep -E '^[a-z]{2,}$' | sort | uniq -c \
  | awk '{ print $2 "\t" $1 }' > "$TMP/words.tsv"
rows=$(wc -l < "$TMP/words.tsv")
[ "$rows" -gt 3000 ] || { fail "only $rows words in the fixture"; finish; exit 1; }
common=(--input_format=tsv --normalization_rule_name=identity --vocab_size=600 --minloglevel=0)
train() { # prefix, flags...: trains, keeps stderr in prefix.err
  local p=$1; shift
  "$T" spm-train --input="$TMP/words.tsv" --model_prefix="$TMP/$p" "${common[@]}" "$@" 2> "$TMP/$p.err"
}
dropped() { sed -n 's/.*differential privacy dropped \([0-9]*\) of \([0-9]*\) unique.*/\1 \2/p' "$TMP/$1.err"; }

# 1. noise level 0: clipping only = the rows counted >= 3, trained as they are
train clip --enable_differential_privacy --differential_privacy_clipping_threshold=3 --num_threads=2 \
  || fail "clipping-only training failed: $(tail -2 "$TMP/clip.err")"
awk -F'\t' '$2 >= 3' "$TMP/words.tsv" > "$TMP/kept.tsv"
"$T" spm-train --input="$TMP/kept.tsv" --model_prefix="$TMP/kept" "${common[@]}" --num_threads=2 2> "$TMP/kept.err"
cmp -s "$TMP/clip.vocab" "$TMP/kept.vocab" \
  && pass "noise 0, clipping 3: the vocabulary (pieces and scores) of training on the $(wc -l < "$TMP/kept.tsv") rows counted >= 3" \
  || fail "clipping-only vocabulary differs from the clipped-count model: $(diff "$TMP/clip.vocab" "$TMP/kept.vocab" | head -3)"
read -r d n < <(dropped clip)
want=$(awk -F'\t' '$2 < 3' "$TMP/words.tsv" | wc -l)
[ "$d" = "$want" ] && [ "$n" = "$rows" ] && pass "clipping dropped the $want of $rows rows counted below 3" \
  || fail "clipping dropped '$d of $n', expected $want of $rows"
grep -q "infinite epsilon" "$TMP/clip.err" && pass "noise level 0 warns as sentencepiece does" \
  || fail "no warning for noise level 0"

# 2. noise: one seed, one model (1, 2 and 3 threads); another seed, another model
for th in 1 2 3; do
  train noise$th --enable_differential_privacy --differential_privacy_noise_level=3 \
    --differential_privacy_clipping_threshold=2 --random_seed=7 --num_threads=$th \
    || fail "noisy training failed: $(tail -2 "$TMP/noise$th.err")"
done
cmp -s "$TMP/noise1.model" "$TMP/noise2.model" && cmp -s "$TMP/noise1.model" "$TMP/noise3.model" \
  && pass "random_seed 7: byte-identical models with 1, 2 and 3 threads" || fail "noisy models differ by thread count"
train seed8 --enable_differential_privacy --differential_privacy_noise_level=3 \
  --differential_privacy_clipping_threshold=2 --random_seed=8 --num_threads=2
cmp -s "$TMP/noise2.vocab" "$TMP/seed8.vocab" && fail "random_seed 7 and 8 give the same vocabulary" \
  || pass "random_seed 7 and 8 give different vocabularies"
cmp -s "$TMP/noise2.vocab" "$TMP/clip.vocab" && fail "noise level 3 changed nothing" || pass "noise level 3 changes the model"

# 3. the noise is normal with the given standard deviation: every row counted
# 1000, noise level 10, so a row stays with probability P(1000 + 10 Z,
# rounded, >= threshold): about 1/2 at 1000, 0.15% at 1030, 99.85% at 970
awk -F'\t' '{ print $1 "\t1000" }' "$TMP/words.tsv" > "$TMP/flat.tsv"
for c in 970 1000 1030; do
  "$T" spm-train --input="$TMP/flat.tsv" --model_prefix="$TMP/flat$c" "${common[@]}" --vocab_size=60 \
    --hard_vocab_limit=false --enable_differential_privacy --differential_privacy_noise_level=10 \
    --differential_privacy_clipping_threshold=$c --num_threads=2 2> "$TMP/flat$c.err" \
    || fail "flat counts, threshold $c: training failed: $(tail -2 "$TMP/flat$c.err")"
done
frac() { read -r d n < <(dropped "$1"); echo "$d $n" | awk '{ printf "%.4f", $1 / $2 }'; }
f970=$(frac flat970) f1000=$(frac flat1000) f1030=$(frac flat1030)
awk -v a="$f970" -v b="$f1000" -v c="$f1030" 'BEGIN { exit !(a < 0.01 && b > 0.44 && b < 0.56 && c > 0.99) }' \
  && pass "noise sd 10 on counts of 1000 drops $f970 / $f1000 / $f1030 of the rows below 970 / 1000 / 1030 (normal: 0.0015 / 0.48 / 0.9985)" \
  || fail "dropped shares $f970 / $f1000 / $f1030 below 970 / 1000 / 1030 do not fit normal noise of sd 10"

# 4. the options without enable_differential_privacy change nothing (as spm)
train plain --num_threads=2
train off --differential_privacy_noise_level=5 --differential_privacy_clipping_threshold=9 --num_threads=2
cmp -s "$TMP/plain.model" "$TMP/off.model" && pass "noise and clipping without enable_differential_privacy: the same model" \
  || fail "the DP options changed the model without enable_differential_privacy"

# 5. recorded in the model's trainer_spec as sentencepiece does, and loadable
if python3 -c 'from sentencepiece import sentencepiece_model_pb2' 2> /dev/null; then
  python3 - "$TMP/noise2.model" > "$TMP/spec.txt" << 'PY'
import sys
from sentencepiece import sentencepiece_model_pb2 as pb
m = pb.ModelProto()
m.ParseFromString(open(sys.argv[1], "rb").read())
s = m.trainer_spec
print(s.enable_differential_privacy, round(s.differential_privacy_noise_level, 3), s.differential_privacy_clipping_threshold)
PY
  [ "$(cat "$TMP/spec.txt")" = "True 3.0 2" ] && pass "trainer_spec records enable_differential_privacy, noise 3, clipping 2" \
    || fail "trainer_spec records '$(cat "$TMP/spec.txt")'"
  python3 -c 'import sys, sentencepiece as s; p = s.SentencePieceProcessor(model_file=sys.argv[1]); sys.exit(p.get_piece_size() != 600)' \
    "$TMP/noise2.model" && pass "libsentencepiece loads the model" || fail "libsentencepiece cannot load the DP model"
else
  echo "# PyPI sentencepiece's model protobuf not importable: trainer_spec not checked"
fi

# 6. refused where sentencepiece does not apply it, and bad values
if "$T" spm-train --input="$TMP/words.tsv" --model_prefix="$TMP/bpe" --input_format=tsv --model_type=bpe \
     --vocab_size=300 --enable_differential_privacy --differential_privacy_clipping_threshold=2 2> "$TMP/bpe.err"; then
  fail "BPE with differential privacy was accepted"
else
  grep -q "Unigram models only" "$TMP/bpe.err" && [ ! -e "$TMP/bpe.model" ] \
    && pass "BPE with differential privacy refused, no model written" || fail "BPE refusal: $(cat "$TMP/bpe.err")"
fi
for bad in --differential_privacy_noise_level=-1 --differential_privacy_clipping_threshold=-2 --random_seed=x; do
  if train bad --enable_differential_privacy "$bad"; then fail "$bad accepted"
  else grep -q "out of range\|not a count\|illegal value" "$TMP/bad.err" && pass "$bad refused: $(head -c 100 "$TMP/bad.err")" \
    || fail "$bad: $(cat "$TMP/bad.err")"; fi
done
finish
