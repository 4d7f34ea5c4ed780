#!/usr/bin/env bash
# train_options.sh - `tokenmill train`'s option table (cli/cmd_train.c): the
# --help it writes, each kind of argument and its error, aliases and
# sentencepiece spellings, abbreviations, the options without effect, the
# preset applied before the options, and the checks after parsing.
. "$(dirname "$0")/lib.sh"
T=$TKM_BIN
cd "$TMP"
for i in $(seq 1 300); do echo "the quick brown fox $((i % 17)) jumps over the lazy dog's 12 tails, they're fast"; done > c.txt
small=(-q -t 1 --vocab-size 60 --hard-vocab-limit=false)

# --help: on standard output, exit 0, even after other options; every
# description starts in the same column (34) unless the option is longer
"$T" train --vocab-size 70 -h > h.txt 2> e.txt && [ ! -s e.txt ] && head -1 h.txt | grep -q '^usage: tokenmill train' \
  && pass "train -h: usage on stdout, exit 0" || fail "train -h"
bad=$(grep -E '^  (-., |    )--' h.txt | awk '{ s = substr($0, 7); if (match(s, /  +[^ ]/) && 6 + RSTART - 1 <= 32 && 6 + RSTART + RLENGTH - 1 != 35) print }')
cont=$(grep -E '^ {34}' h.txt | grep -vE '^ {34}[^ ]' || true)
[ -z "$bad" ] && [ -z "$cont" ] && pass "--help: descriptions aligned at column 34" || fail "--help alignment: $bad $cont"
for o in output model-prefix input counts weight model-type vocab-size character-coverage max-piece-length \
         split-digits byte-fallback user-defined-symbols unk-id pad-id unk-surface normalization-rule-name \
         seed-size shrinking-factor balance balance-method sweep preset contractions eval hf-allow-ties threads \
         max-memory progress quiet help; do
  grep -q -- "--$o\b" h.txt || fail "--help does not list --$o"
done
pass "--help lists the options"

# value errors: "invalid value 'X' for --NAME" (the option's first name), exit 2
inv() { # $1 = value shown, $2 = option name shown, rest: arguments
  local v=$1 n=$2 rc=0; shift 2
  "$T" train "$@" -o m.model c.txt > /dev/null 2> e.txt || rc=$?
  [ $rc = 2 ] && grep -qF -- "invalid value '$v' for $n" e.txt && [ ! -e m.model ] || fail "train $* ($rc): $(cat e.txt)"
}
f0=$fails
inv 0 --vocab-size --vocab-size 0
inv 1048577 --vocab-size --vocab-size=1048577
inv '' --vocab-size --vocab-size=
inv 0 --max-piece-length --max-sentencepiece-length 0
inv 0 -t/--threads --num-threads 0
inv 257 -t/--threads -t 257
inv -2 --unk-id --unk-id -2
inv 1.5 --character-coverage --character-coverage 1.5
inv 0 --character-coverage --character-coverage 0
inv 1 --shrinking-factor --shrinking-factor 1
inv maybe --split-digits --split-digits=maybe
inv TRUE --byte-fallback --byte-fallback=TRUE
inv fancy --progress --progress=fancy
inv 0 --max-memory --max-memory 0
inv 5X --max-memory --max-memory 5X
inv foo --balance-method --balance-method foo
inv x --contractions --contractions=x
[ $fails = $f0 ] && pass "invalid values: one message naming the option, exit 2, no model"

# the handlers' own messages and exit statuses
msg() { # $1 = exit status, $2 = message part, rest: arguments
  local want=$1 m=$2 rc=0; shift 2
  "$T" train "$@" > /dev/null 2> e.txt || rc=$?
  [ $rc = "$want" ] && grep -qF -- "$m" e.txt || fail "train $* ($rc, want $want): $(cat e.txt)"
}
f0=$fails
msg 2 "unknown model type 'foo' (bpe or unigram)" --model-type foo -o m.model c.txt
msg 2 "--balance: unknown class 'greek'" --balance greek=0.3 -o m.model c.txt
msg 2 "--weight ja: no --input ja=PATH given before it" --input en=c.txt --weight ja=2 -o m.model
msg 2 "for --weight" --input en=c.txt --weight en=0 -o m.model
msg 2 "for --balance" --balance latin=2 -o m.model c.txt
msg 2 "--eval wants NAME=PATH (got 'c.txt')" --eval c.txt -o m.model c.txt
msg 1 "nope.txt" --eval held=nope.txt -o m.model c.txt
msg 1 "nope.tkc" --counts nope.tkc -o m.model
msg 2 "unknown preset 'foo' (available: nerdstash)" --vocab-size 60 --preset=foo -o m.model c.txt
msg 2 "--keep-models and --sweep-report need --sweep" --keep-models kd -o m.model c.txt
msg 2 "no output given (-o FILE.model)" c.txt
msg 2 "no input files given" -o m.model
msg 2 "unrecognized option '--bogus'" --bogus -o m.model c.txt
msg 2 "requires an argument" -o m.model c.txt --vocab-size
msg 2 "is ambiguous" --sp -o m.model c.txt
grep -q -- "--split-digits" e.txt && grep -q -- "--split-by-whitespace" e.txt && grep -q '^usage:' e.txt \
  || fail "--sp: candidates and usage: $(cat e.txt)"
[ $fails = $f0 ] && pass "option errors: messages and exit statuses"

# aliases, sentencepiece spellings and abbreviations train the same model
same() { # $1 = what, then two argument lists separated by --vs
  local what=$1 a=() b=() side=a; shift
  for x in "$@"; do
    if [ "$x" = --vs ]; then side=b; elif [ $side = a ]; then a+=("$x"); else b+=("$x"); fi
  done
  rm -f a.model b.model
  "$T" train "${small[@]}" "${a[@]}" -o a.model c.txt 2> ea.txt && "$T" train "${small[@]}" "${b[@]}" -o b.model c.txt 2> eb.txt \
    && cmp -s a.model b.model && pass "$what" || fail "$what: $(cat ea.txt eb.txt)"
}
same "--max-sentencepiece-length is --max-piece-length" --max-piece-length 3 --vs --max-sentencepiece-length 3
same "--num-threads is -t" -t 2 --vs --num-threads=2
same "--seed-sentencepiece-size is --seed-size" --model-type unigram --seed-size 300 --vs --model-type unigram --seed-sentencepiece-size 300
same "sentencepiece spellings" --split-digits=true --max-piece-length 4 --vs --split_digits=true --max_piece_length=4
same "abbreviations (--split-d, --max-p)" --split-digits --max-piece-length 4 --vs --split-d --max-p 4
same "--preset applies first, options override it" --preset nerdstash --vocab-size 400 --vs --vocab-size 400 --preset=nerdstash
"$T" train "${small[@]}" --max-piece-length 4 -o d.model c.txt
cmp -s a.model d.model && fail "--max-piece-length has no effect" || pass "--max-piece-length changes the model"

# sentencepiece options without effect: a note, then the same model
"$T" train "${small[@]}" -o a.model c.txt
"$T" train "${small[@]}" --input-sentence-size 10 --shuffle-input-sentence --max-sentence-length=5 \
  --train-extremely-large-corpus=true -o b.model c.txt 2> e.txt
[ "$(grep -c 'note: option ignored' e.txt)" = 4 ] && cmp -s a.model b.model && pass "ignored sentencepiece options: a note each" \
  || fail "ignored options: $(cat e.txt)"

# --model-prefix P writes P.model; -o and --model-prefix: the last wins
"$T" train "${small[@]}" --model-prefix p -o o.model c.txt && [ -s o.model ] && [ ! -e p.model ] \
  && "$T" train "${small[@]}" -o q.model --model_prefix=p c.txt && [ -s p.model ] && [ ! -e q.model ] \
  && pass "-o and --model-prefix: the last one wins" || fail "-o / --model-prefix"
finish
