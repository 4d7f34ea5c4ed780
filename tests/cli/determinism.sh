#!/usr/bin/env bash
# determinism.sh - the same input and options give a byte-identical model for
# 1 and 2 threads, and on a second run.
. "$(dirname "$0")/lib.sh"
need_corpus
T=$TKM_BIN
split_corpus 20000 10
for opts in "--byte-fallback --split-digits" "--allow-whitespace-only-pieces --user-defined-symbols ▁▁,▁▁▁▁" \
            "--model-type unigram --byte-fallback" "--balance latin=0.4,japanese=0.4 --byte-fallback"; do
  # shellcheck disable=SC2086
  "$T" train -q --vocab-size 4000 --threads 1 $opts -o "$TMP/t1.model" "$TMP"/train/*
  # shellcheck disable=SC2086
  "$T" train -q --vocab-size 4000 --threads 2 $opts -o "$TMP/t2.model" "$TMP"/train/*
  # shellcheck disable=SC2086
  "$T" train -q --vocab-size 4000 --threads 2 $opts -o "$TMP/t3.model" "$TMP"/train/*
  cmp -s "$TMP/t1.model" "$TMP/t2.model" && pass "1 vs 2 threads identical ($opts)" || fail "1 vs 2 threads differ ($opts)"
  cmp -s "$TMP/t2.model" "$TMP/t3.model" && pass "two runs identical ($opts)" || fail "two runs differ ($opts)"
done
# gzip input gives the same model as plain input
mkdir -p "$TMP/gz"
for f in "$TMP"/train/*; do gzip -c "$f" > "$TMP/gz/$(basename "$f").gz"; done
"$T" train -q --vocab-size 4000 --threads 2 -o "$TMP/p.model" "$TMP"/train/*
"$T" train -q --vocab-size 4000 --threads 2 -o "$TMP/g.model" "$TMP"/gz/*
# the model records its input paths, so compare the pieces only
"$T" encode -m "$TMP/p.model" < "$TKM_SRCDIR/tests/data/tricky.txt" > "$TMP/p.out"
"$T" encode -m "$TMP/g.model" < "$TKM_SRCDIR/tests/data/tricky.txt" > "$TMP/g.out"
cmp -s "$TMP/p.out" "$TMP/g.out" && pass "gzip and plain input give the same pieces" || fail "gzip vs plain differ"
finish
