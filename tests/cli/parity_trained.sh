#!/usr/bin/env bash
# parity_trained.sh - models trained during the test, by spm_train and by
# tokenmill with several option sets, encode unseen text identically in
# libsentencepiece (spm_encode/spm_decode) and tokenmill.
. "$(dirname "$0")/lib.sh"
need_spm
need_corpus
T=$TKM_BIN
split_corpus 3000 300
cat "$TMP"/heldout/* "$TKM_SRCDIR/tests/data/tricky.txt" > "$TMP/unseen.txt"
lines=$(wc -l < "$TMP/unseen.txt")

check_model() { # name model
  local name=$1 m=$2
  spm_encode --model "$m" --output_format=id < "$TMP/unseen.txt" > "$TMP/spm.id" 2> "$TMP/spm.err" \
    || { fail "$name: libsentencepiece cannot load it: $(head -c 300 "$TMP/spm.err")"; return; }
  "$T" encode -m "$m" --output-format id < "$TMP/unseen.txt" > "$TMP/tkm.id"
  if cmp -s "$TMP/spm.id" "$TMP/tkm.id"; then pass "$name: ids identical on $lines unseen lines"
  else fail "$name: ids differ: $(diff "$TMP/spm.id" "$TMP/tkm.id" | head -4 | cut -c1-200)"; fi
  spm_decode --model "$m" --input_format=id < "$TMP/spm.id" > "$TMP/spm.dec"
  "$T" decode -m "$m" --input-format id < "$TMP/tkm.id" > "$TMP/tkm.dec"
  cmp -s "$TMP/spm.dec" "$TMP/tkm.dec" && pass "$name: decode identical" || fail "$name: decode differs"
}

# 1. models trained by spm_train (Debian's 0.1.97)
spm() { # name, extra options
  local name=$1; shift
  "${SPM_TRAIN:-spm_train}" --input="$(train_list)" --model_prefix="$TMP/$name" \
    --model_type=bpe --vocab_size=3000 --character_coverage=0.9995 --num_threads=2 "$@" > "$TMP/spm_train.log" 2>&1 \
    || { fail "spm_train $name: $(tail -3 "$TMP/spm_train.log")"; return; }
  check_model "spm_train $name" "$TMP/$name.model"
}
spm spm-default
spm spm-llama --split_digits=true --byte_fallback=true --normalization_rule_name=identity --add_dummy_prefix=false \
  --remove_extra_whitespaces=false --allow_whitespace_only_pieces=true --user_defined_symbols='<|endoftext|>,▁▁,▁▁▁▁'

spm spm-unigram --model_type=unigram
spm spm-unigram-bytes --model_type=unigram --byte_fallback=true --split_digits=true --normalization_rule_name=identity \
  --add_dummy_prefix=false --user_defined_symbols='<|endoftext|>,▁▁'

# 2. models trained by tokenmill
tkm() { # name, extra options
  local name=$1; shift
  "$T" train -q --vocab-size 3000 --threads 2 -o "$TMP/$name.model" "$@" "$TMP"/train/* 2> "$TMP/train.err" \
    || { fail "tokenmill train $name: $(tail -3 "$TMP/train.err")"; return; }
  check_model "tokenmill $name" "$TMP/$name.model"
}
tkm tkm-plain
tkm tkm-bytes-digits --byte-fallback --split-digits
tkm tkm-nerdstash-like --byte-fallback --split-digits --allow-whitespace-only-pieces \
  --user-defined-symbols '▁▁,▁▁▁▁,<|endoftext|>' --character-coverage 0.99 --pad-id 3 --unk-id 1 --bos-id 0 --eos-id 2
tkm tkm-spm-defaults --add-dummy-prefix --remove-extra-whitespaces --control-symbols '<sep>,<cls>'
tkm tkm-no-script-split --split-by-unicode-script=false --split-by-number=false --max-piece-length 8
tkm tkm-unigram --model-type unigram
tkm tkm-unigram-bytes --model-type unigram --byte-fallback --split-digits --user-defined-symbols '<|endoftext|>,▁▁'
# the nerdstash preset (its vocab size overridden by the --vocab-size above)
tkm tkm-preset-nerdstash --preset nerdstash --contractions
if command -v spm_export_vocab > /dev/null && [ -s "$TMP/tkm-preset-nerdstash.model" ]; then
  spm_export_vocab --model "$TMP/tkm-preset-nerdstash.model" | cut -f1 | head -n 4 | paste -sd' ' > "$TMP/head.txt"
  [ "$(cat "$TMP/head.txt")" = "<|pad|> <|unknown|> <|startoftext|> <|endoftext|>" ] && pass "preset: pad/unk/bos/eos at 0..3" \
    || fail "preset layout: $(cat "$TMP/head.txt")"
  # one line per piece carries its tab + score (the "\n" piece spans two lines)
  n=$(spm_export_vocab --model "$TMP/tkm-preset-nerdstash.model" | grep -c $'\t')
  [ "$n" -eq 3000 ] && pass "preset: --vocab-size overrides the preset" || fail "preset vocab size $n"
  echo "it's four" | "$T" encode -m "$TMP/tkm-preset-nerdstash.model" | grep -q "'s" && pass "--contractions: 's is a piece" \
    || fail "--contractions"
fi
# Unigram on the whole corpus with a vocabulary the default seed tables cannot
# feed (about 4 seeds a piece are needed): the candidates are counted again in
# larger tables and training succeeds with every piece; ids as libsentencepiece
"$T" train -q --model-type unigram --vocab-size 90000 --threads 2 -o "$TMP/uni90k.model" \
  "$TKM_CORPUS"/en/*.txt "$TKM_CORPUS"/ja/*.txt 2> "$TMP/uni90k.err" \
  && pass "Unigram, 90000 pieces from the default corpus (seed tables enlarged)" \
  || fail "Unigram 90000: $(head -c 300 "$TMP/uni90k.err")"
if [ -s "$TMP/uni90k.model" ] && command -v spm_export_vocab > /dev/null; then
  n=$(spm_export_vocab --model "$TMP/uni90k.model" | grep -c $'\t')
  [ "$n" -eq 90000 ] && pass "Unigram 90000: every piece there" || fail "Unigram 90000: $n pieces"
  "$T" encode -m "$TMP/uni90k.model" --output-format id < "$TMP/unseen.txt" > "$TMP/u90.tkm"
  "${SPM_ENCODE:-spm_encode}" --model "$TMP/uni90k.model" --output_format=id < "$TMP/unseen.txt" > "$TMP/u90.spm"
  cmp -s "$TMP/u90.tkm" "$TMP/u90.spm" && pass "Unigram 90000: ids == libsentencepiece (held-out lines, here in the training text, and tricky.txt)" \
    || fail "Unigram 90000: ids differ from spm_encode"
fi
finish
