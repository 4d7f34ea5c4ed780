#!/usr/bin/env bash
# mpi.sh - counting across MPI processes (issue 19): `mpirun -n N tokenmill
# train` gives the model of one process byte for byte (BPE with files cut
# into byte ranges and the exchange forced into many rounds; Unigram with
# character coverage; nerdstash with weights and --balance; one rank with no
# input), `mpirun tokenmill count` writes the count file of one process, and
# an unreadable input on any rank is reported by rank 0, with every rank
# failing and no output. Skips (77) without mpirun or without an MPI build.
. "$(dirname "$0")/lib.sh"
need_corpus
T=$TKM_BIN
command -v mpirun > /dev/null 2>&1 || skip "mpirun not installed (apt-get install openmpi-bin libopenmpi-dev)"
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
MPI=(mpirun --oversubscribe --allow-run-as-root -x TKM_MPI_UNIT_BYTES -x TKM_MPI_ROUND_BYTES)
export TKM_MPI_UNIT_BYTES=0 TKM_MPI_ROUND_BYTES=0 # 0: the defaults
split_corpus 4000 10
tr=$TMP/train
echo "probe line" > "$TMP/probe.txt"
if ! "${MPI[@]}" -n 1 "$T" train --vocab-size 100 --hard-vocab-limit=false -t 1 -o "$TMP/probe.model" "$TMP/probe.txt" \
  > "$TMP/probe.log" 2>&1; then
  skip "mpirun cannot start tokenmill here: $(tail -3 "$TMP/probe.log")"
fi
grep -q "MPI 1 ranks" "$TMP/probe.log" || skip "tokenmill was built without MPI (configure --with-mpi; mpicc missing?)"

same() { if cmp -s "$2" "$3"; then pass "$1: identical model"; else fail "$1: models differ"; fi; }

# 1. BPE: 1 process vs 2, 3, 4 ranks; files cut into ~60 kB ranges, rounds of 8 kB
"$T" train -q -t 1 --vocab-size 3000 -o "$TMP/one.model" "$tr"/*
for n in 2 3 4; do
  TKM_MPI_UNIT_BYTES=60000 TKM_MPI_ROUND_BYTES=8192 "${MPI[@]}" -n $n "$T" train -t 1 --vocab-size 3000 \
    -o "$TMP/m$n.model" "$tr"/* > "$TMP/m$n.log" 2>&1 || true
  rounds=$(sed -n 's/.*, \([0-9]*\) rounds).*/\1/p' "$TMP/m$n.log")
  same "BPE, $n ranks, byte ranges, ${rounds:-?} exchange rounds" "$TMP/one.model" "$TMP/m$n.model"
done
[ "${rounds:-0}" -gt 2 ] && pass "the exchange ran in bounded rounds ($rounds)" || fail "rounds not bounded: $(cat "$TMP/m4.log")"

# 2. one rank with no input: two small files on three ranks
"$T" train -q -t 1 --vocab-size 1500 -o "$TMP/s1.model" "$tr/en-fortunes.txt" "$tr/ja-manpages-ja-dev.txt"
"${MPI[@]}" -n 3 "$T" train -q -t 1 --vocab-size 1500 -o "$TMP/s3.model" "$tr/en-fortunes.txt" "$tr/ja-manpages-ja-dev.txt"
same "3 ranks, 2 whole files (a rank without input)" "$TMP/s1.model" "$TMP/s3.model"

# 3. Unigram with character coverage
"$T" train -q -t 1 --model-type unigram --vocab-size 2000 --character-coverage 0.999 -o "$TMP/u1.model" "$tr"/*
TKM_MPI_UNIT_BYTES=100000 "${MPI[@]}" -n 3 "$T" train -q -t 1 --model-type unigram --vocab-size 2000 \
  --character-coverage 0.999 -o "$TMP/u3.model" "$tr"/*
same "Unigram, coverage 0.999, 3 ranks" "$TMP/u1.model" "$TMP/u3.model"

# 4. nerdstash, named inputs with weights, --balance
N=(--preset nerdstash --vocab-size 4000 --input "en=$tr/en-*" --input "ja=$tr/ja-*" --weight ja=1.5 --balance latin=0.4,japanese=0.4)
"$T" train -q -t 1 "${N[@]}" -o "$TMP/n1.model"
TKM_MPI_UNIT_BYTES=80000 "${MPI[@]}" -n 3 "$T" train -q -t 1 "${N[@]}" -o "$TMP/n3.model"
same "nerdstash, weights, --balance, 3 ranks" "$TMP/n1.model" "$TMP/n3.model"

# 5. count files from MPI: the bytes of one process's count file
"$T" count -q -t 1 -o "$TMP/c1.tkc" "$tr"/*
TKM_MPI_UNIT_BYTES=70000 "${MPI[@]}" -n 3 "$T" count -q -t 1 -o "$TMP/c3.tkc" "$tr"/*
cmp -s "$TMP/c1.tkc" "$TMP/c3.tkc" && pass "mpirun -n 3 tokenmill count: same count file" || fail "MPI count file differs"

# 6. an unreadable input: rank 0 names it, every rank fails, no model
set +e
"${MPI[@]}" -n 3 "$T" train -q -t 1 --vocab-size 1500 -o "$TMP/bad.model" "$tr/en-fortunes.txt" "$TMP/missing.txt" \
  "$tr/ja-manpages-ja-dev.txt" > "$TMP/bad.log" 2>&1
rc=$?
set -e
if [ "$rc" -ne 0 ] && grep -q "rank [0-9] of 3: .*missing.txt" "$TMP/bad.log" && [ ! -e "$TMP/bad.model" ] &&
   ! ls "$TMP"/bad.model.tmp.* > /dev/null 2>&1; then
  pass "unreadable input on one rank: exit $rc, $(grep 'missing.txt' "$TMP/bad.log" | head -1)"
else
  fail "unreadable input: rc $rc, $(cat "$TMP/bad.log")"
fi
finish
