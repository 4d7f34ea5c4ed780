#!/usr/bin/env bash
# unigram_seedsketch.sh - the Unigram seed sketch without a score floor: 2-bit
# counters (only "seen twice" is asked), and, where the words' substrings
# bound the candidates below 32 x seed_size, the candidate estimate taken in
# the sketch's own pass instead of a pass of its own. The seeds, so the
# models, must be those of the 16-bit sketch and the estimating pass
# (TKM_SEED_FLOOR=0 forces that path, TKM_SEED_ESTIMATE_PASS=1 the pass),
# byte for byte: in one counting pass, in several (TKM_SEED_TABLE_MAX, runs
# on disk), and where the estimate made in the sketch's pass asks for the
# floor after all (random words: nearly every substring distinct), so the
# sketch is made again for it.
. "$(dirname "$0")/lib.sh"
need_corpus
T=$TKM_BIN
split_corpus 6000 10
input=$(train_list)
# run NAME INPUT ENV... -- FLAGS...: trains with the debug lines into $TMP/NAME.*
run() {
  local name=$1 in=$2 envs=()
  shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  env TKM_DEBUG_UNIGRAM=1 "${envs[@]}" "$T" spm-train --input="$in" --model_prefix="$TMP/$name" --num_threads=2 "$@" \
    > /dev/null 2> "$TMP/$name.log" || { cat "$TMP/$name.log"; fail "$name: spm-train"; finish; }
}
same() { # A B what
  cmp -s "$TMP/$1.model" "$TMP/$2.model" && pass "$3: same model" || fail "$3: models differ ($1, $2)"
}
has() { # NAME REGEX what
  grep -q "$2" "$TMP/$1.log" && pass "$3" || { grep 'debug: seed\|to count' "$TMP/$1.log" | head -5; fail "$3"; }
}
run sketch "$input" -- --vocab_size=2000
has sketch "seed estimate: .*in the sketch's pass" "the estimate is taken in the sketch's pass"
run wide "$input" TKM_SEED_FLOOR=0 -- --vocab_size=2000
has wide "seed estimate: [0-9]* distinct candidates (" "TKM_SEED_FLOOR=0: the estimating pass"
same sketch wide "2-bit sketch and folded estimate vs 16-bit sketch and estimating pass"
run pass "$input" TKM_SEED_ESTIMATE_PASS=1 -- --vocab_size=2000
same sketch pass "2-bit sketch, folded estimate vs estimating pass"
c=$(sed -n 's/.*seed pass 1 of 1: \([0-9]*\) substrings.*/\1/p' "$TMP/sketch.log")
[ -n "$c" ] || { fail "no single counting pass in the first run"; finish; }
run groups "$input" TKM_SEED_TABLE_MAX=$((c * 3 / 4)) -- --vocab_size=2000
has groups "seed pass 2 of 2" "tables of 3/4 of the $c substrings: two passes"
same sketch groups "two passes (runs on disk)"
# random words, each substring mostly distinct: the bound (~66 a word) is
# under 32 x seed_size, the estimate over 16 x seed_size: the floor after all
awk 'BEGIN { srand(7); for (l = 0; l < 3000; l++) { line = ""; for (w = 0; w < 8; w++) { s = "";
  for (c = 0; c < 12; c++) s = s sprintf("%c", 97 + int(rand() * 26)); line = line (w ? " " : "") s }; print line } }' \
  > "$TMP/random.txt"
run rnd "$TMP/random.txt" -- --vocab_size=1000 --seed_sentencepiece_size=70000
has rnd "in the sketch's pass" "random words: the estimate is taken in the sketch's pass"
has rnd "seed floor [0-9]" "random words: the estimate asks for the floor after all"
run rndpass "$TMP/random.txt" TKM_SEED_ESTIMATE_PASS=1 -- --vocab_size=1000 --seed_sentencepiece_size=70000
has rndpass "seed floor [0-9]" "random words, estimating pass: the floor"
same rnd rndpass "random words: the sketch made again for the floor"
finish
