#!/usr/bin/env bash
# unigram_seedplan.sh - the Unigram seed counter plans its passes (hash
# groups, each at most TKM_SEED_TABLE_MAX substrings) from a sample of the
# candidates, each with the bound counting will find for it (the smallest
# sketch value of its prefixes): the plan's "about X to count" must be
# within 10% of the substrings the passes then count, and a table that
# holds them with room to spare must give one pass (the sketch's own count
# of candidates seen twice, which the plan used before, overstated them by
# ~40% on this corpus and ~4x at 20 GB: passes and runs on disk for nothing).
# With a score floor (TKM_SEED_FLOOR, as a large corpus sets one) too. The
# models are the same, byte for byte, whatever the number of passes.
. "$(dirname "$0")/lib.sh"
need_corpus
T=$TKM_BIN
split_corpus 6000 10
input=$(train_list)
# run NAME TABLE_MAX (0: default) [FLAG]: trains with the debug lines, sets planned,
# counted (the passes' substrings, summed), npl (passes planned) and ran
run() {
  local name=$1 tm=$2 tmv=(); shift 2
  [ "$tm" -gt 0 ] && tmv=(TKM_SEED_TABLE_MAX="$tm")
  env TKM_DEBUG_UNIGRAM=1 "${tmv[@]}" ${TKM_SEED_FLOOR:+TKM_SEED_FLOOR=$TKM_SEED_FLOOR} "$T" spm-train \
    --input="$input" --model_prefix="$TMP/$name" --vocab_size=2000 --num_threads=2 "$@" > /dev/null 2> "$TMP/$name.log" ||
    { cat "$TMP/$name.log"; fail "$name: spm-train"; finish; }
  planned=$(sed -n 's/.*about \([0-9]*\) to count (sample 1 in [0-9]*): \([0-9]*\) pass.*/\1/p' "$TMP/$name.log" | head -1)
  npl=$(sed -n 's/.*about [0-9]* to count (sample 1 in [0-9]*): \([0-9]*\) pass.*/\1/p' "$TMP/$name.log" | head -1)
  counted=$(sed -n 's/.*seed pass [0-9]* of [0-9]*: \([0-9]*\) substrings.*/\1/p' "$TMP/$name.log" | awk '{s += $1} END {print s + 0}')
  ran=$(grep -c 'seed pass [0-9]* of' "$TMP/$name.log" || true)
  echo "$name: planned ${planned:-?} to count in ${npl:-?} pass(es), counted $counted in $ran"
}
close() { # name: planned within 10% of counted
  if [ -n "$planned" ] && [ "$counted" -gt 0 ] && awk -v p="$planned" -v c="$counted" 'BEGIN { exit !(p >= 0.9 * c && p <= 1.1 * c) }'; then
    pass "$1: the plan ($planned) is within 10% of what was counted ($counted)"
  else
    fail "$1: the plan (${planned:-none}) is not within 10% of what was counted ($counted)"
  fi
}
# no floor (TKM_SEED_FLOOR=0); the floor a few seeds wanted set (sampled).
# The first run (default tables: one pass) says how many substrings there
# are to count, C; tables of 5/4 C must take one pass, of 3/4 C two.
for tag in nofloor floor; do
  flag=() TKM_SEED_FLOOR=0
  [ $tag = floor ] && flag=(--seed_sentencepiece_size=2000) TKM_SEED_FLOOR=
  run "$tag" 0 "${flag[@]}"
  if [ $tag = floor ]; then
    grep -q 'seed floor [1-9]' "$TMP/$tag.log" && pass "floor: a floor was set" || fail "floor: no floor set"
  fi
  c=$counted
  for k in 5 3; do
    tm=$((c * k / 4)) want=$((k == 5 ? 1 : 2))
    run "$tag-$tm" $tm "${flag[@]}"
    close "$tag, tables of $tm"
    [ "$ran" -eq $want ] && [ "${npl:-0}" -eq $want ] && pass "$tag: $want pass(es) planned and run where $c substrings meet tables of $tm" ||
      fail "$tag: ${npl:-?} pass(es) planned, $ran run where $c substrings meet tables of $tm ($want expected)"
    cmp -s "$TMP/$tag.model" "$TMP/$tag-$tm.model" && pass "$tag: same model" || fail "$tag: models differ"
  done
done
finish
