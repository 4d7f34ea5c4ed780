#!/usr/bin/env bash
# spm_parity.sh - `tokenmill spm-train` against PyPI sentencepiece: a matrix
# of spm_train option sets on the same small corpus. BPE, char and word
# vocabularies must be identical (piece, score and type at every id);
# Unigram models must have the same size and special pieces, share most
# pieces and compress held-out text alike (tests/spm_parity_check.py).
# Every model written by tokenmill must give libsentencepiece's ids
# (spm_encode) with tokenmill's encoder on text the training never saw.
. "$(dirname "$0")/lib.sh"
python3 -c 'import sentencepiece' 2> /dev/null || skip "PyPI sentencepiece not installed (pip install sentencepiece)"
need_corpus
T=$TKM_BIN
CHECK=$TKM_SRCDIR/tests/spm_parity_check.py
split_corpus 500 120
cat "$TMP"/train/* > "$TMP/train.txt"
cat "$TMP"/heldout/* "$TKM_SRCDIR/tests/data/tricky.txt" > "$TMP/unseen.txt"
printf '<|endoftext|>\n<sep>\n' > "$TMP/user.txt"
printf '<ctrl1>\n<ctrl2>\n' > "$TMP/control.txt"
printf '41\t61\n3000\t20\nFF01\t21\n' > "$TMP/rules.tsv"
printf '61\t41\n2581\t5F\nU+0074 U+0068\t54 48\n' > "$TMP/denorm.tsv"

ids() { # name model: tokenmill's ids = libsentencepiece's on unseen text
  if [ -n "${PYIDS:-}" ]; then # PyPI's libsentencepiece (Debian's 0.1.97 fails on some models)
    python3 -c 'import sys, sentencepiece as spm
p = spm.SentencePieceProcessor(model_file=sys.argv[1])
for l in open(sys.argv[2], "rb").read().split(b"\n")[:-1]: print(" ".join(map(str, p.encode(l))))' \
      "$2" "$TMP/unseen.txt" > "$TMP/spm.id" || { fail "$1: PyPI sentencepiece cannot load tokenmill's model"; return; }
    "$T" encode -m "$2" --output-format id < "$TMP/unseen.txt" > "$TMP/tkm.id"
    cmp -s "$TMP/spm.id" "$TMP/tkm.id" && pass "$1: ids identical to PyPI sentencepiece's on $(wc -l < "$TMP/unseen.txt") unseen lines" \
      || fail "$1: ids differ from PyPI sentencepiece's: $(diff "$TMP/spm.id" "$TMP/tkm.id" | head -3 | cut -c1-160)"
    return
  fi
  if ! command -v "${SPM_ENCODE:-spm_encode}" > /dev/null 2>&1; then echo "# $1: spm_encode missing, ids not compared"; return; fi
  "${SPM_ENCODE:-spm_encode}" --model "$2" --output_format=id < "$TMP/unseen.txt" > "$TMP/spm.id" 2> "$TMP/spm.err" \
    || { fail "$1: libsentencepiece cannot load tokenmill's model: $(head -c 200 "$TMP/spm.err")"; return; }
  "$T" encode -m "$2" --output-format id < "$TMP/unseen.txt" > "$TMP/tkm.id"
  cmp -s "$TMP/spm.id" "$TMP/tkm.id" && pass "$1: ids identical to spm_encode on $(wc -l < "$TMP/unseen.txt") unseen lines" \
    || fail "$1: ids differ from spm_encode: $(diff "$TMP/spm.id" "$TMP/tkm.id" | head -3 | cut -c1-160)"
  command -v "${SPM_DECODE:-spm_decode}" > /dev/null 2>&1 || return 0
  "${SPM_DECODE:-spm_decode}" --model "$2" --input_format=id < "$TMP/spm.id" > "$TMP/spm.dec"
  "$T" decode -m "$2" --input-format id < "$TMP/spm.id" > "$TMP/tkm.dec"
  cmp -s "$TMP/spm.dec" "$TMP/tkm.dec" && pass "$1: decoded text identical to spm_decode" \
    || fail "$1: decode differs from spm_decode: $(diff "$TMP/spm.dec" "$TMP/tkm.dec" | head -3 | cut -c1-160)"
}
case_() { # mode name options...
  local mode=$1 name=$2; shift 2
  if ! "$T" spm-train --input="${IN:-$TMP/train.txt}" --model_prefix="$TMP/t_$name" --minloglevel=1 "$@" 2> "$TMP/tm.err"; then
    fail "$name: tokenmill spm-train failed: $(cat "$TMP/tm.err")"; return
  fi
  if ! python3 - "${IN:-$TMP/train.txt}" "$TMP/p_$name" "$@" > "$TMP/py.log" 2>&1 <<'PY'
import sys, sentencepiece as spm
# spm_train's *_file flags are not TrainerSpec fields: read them as spm_train
# does (after the comma list of the same name)
args, extra = [], {}
for a in sys.argv[3:]:
    k, _, v = a[2:].partition('=')
    if k == 'random_seed':  # a flag of spm_train, not a TrainerSpec field
        continue
    if k.endswith('_file') and k != 'seed_sentencepieces_file':
        extra.setdefault(k[:-5], []).extend(open(v, encoding='utf-8').read().splitlines())
    else:
        args.append(a)
for k, v in extra.items():
    given = [a for a in args if a.startswith('--' + k + '=')]
    args = [a for a in args if not a.startswith('--' + k + '=')]
    if k == 'required_chars':  # spm_train joins the lines
        args.append('--%s=%s' % (k, (given[-1].split('=', 1)[1] if given else '') + ''.join(v)))
        continue
    items = (given[-1].split('=', 1)[1].split(',') if given else []) + v
    args.append('--%s=%s' % (k, ','.join(items)))
spm.SentencePieceTrainer.train(' '.join(['--input=' + sys.argv[1], '--model_prefix=' + sys.argv[2], '--minloglevel=2'] + args))
PY
  then fail "$name: sentencepiece failed: $(tail -2 "$TMP/py.log")"; return; fi
  if python3 "$CHECK" "$mode" "$TMP/t_$name.model" "$TMP/p_$name.model" "$TMP/unseen.txt" ${REQ:-} > "$TMP/c.log" 2>&1; then
    pass "$name: $(cat "$TMP/c.log")"
  else fail "$name: $(cat "$TMP/c.log")"; fi
  if [ "$mode" = exact ]; then
    cmp -s "$TMP/t_$name.vocab" "$TMP/p_$name.vocab" && pass "$name: .vocab identical" || fail "$name: .vocab differs"
  fi
  ids "$name" "$TMP/t_$name.model"
}
V=--vocab_size=2000
case_ exact bpe-defaults --model_type=bpe $V
case_ exact bpe-nfkc_cf --model_type=bpe $V --normalization_rule_name=nfkc_cf
case_ exact bpe-rule-tsv --model_type=bpe $V --normalization_rule_tsv="$TMP/rules.tsv"
case_ exact bpe-bytes-digits --model_type=bpe $V --byte_fallback=true --split_digits
case_ exact bpe-symbol-files --model_type=bpe $V --user_defined_symbols_file="$TMP/user.txt" \
  --control_symbols_file="$TMP/control.txt" --user_defined_symbols=foo
case_ exact bpe-llama --model_type=bpe $V --normalization_rule_name=identity --split_digits=true --byte_fallback \
  --add_dummy_prefix=false --remove_extra_whitespaces=false --allow_whitespace_only_pieces=true \
  --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 --character_coverage=0.99995
case_ exact bpe-denormalization --model_type=bpe $V --denormalization_rule_tsv="$TMP/denorm.tsv"
case_ exact bpe-first-n --model_type=bpe $V --input_sentence_size=2000 --shuffle_input_sentence=false
# the other whitespace rules: U+2581 as a suffix, pieces across words
case_ exact bpe-suffix --model_type=bpe $V --treat_whitespace_as_suffix
case_ exact bpe-nosplit --model_type=bpe $V --split_by_whitespace=false
case_ exact bpe-suffix-nosplit-ws --model_type=bpe $V --split_by_whitespace=false --treat_whitespace_as_suffix \
  --allow_whitespace_only_pieces --remove_extra_whitespaces=false --split_digits
case_ exact bpe-nosplit-ws --model_type=bpe $V --split_by_whitespace=false --allow_whitespace_only_pieces \
  --remove_extra_whitespaces=false
case_ exact bpe-suffix-ws --model_type=bpe $V --treat_whitespace_as_suffix --allow_whitespace_only_pieces \
  --remove_extra_whitespaces=false
# Debian's spm_encode 0.1.97 stops on a word model with the suffix rule
# ("all normalized characters are not consumed"); PyPI's 0.2.3 encodes it
PYIDS=1 case_ exact word-suffix --model_type=word $V --treat_whitespace_as_suffix
# pretokenization_delimiter: no piece across "|" (the delimiter is dropped)
sed 's/ and /|and|/g' "$TMP/train.txt" > "$TMP/delim.txt"
IN=$TMP/delim.txt case_ exact bpe-delimiter --model_type=bpe $V --pretokenization_delimiter='|'
IN=$TMP/delim.txt case_ unigram unigram-delimiter --vocab_size=1500 --pretokenization_delimiter='|'
# self_test_sample_size: the samples and tokenmill's pieces go into the
# model, and libsentencepiece (spm_encode in ids) refuses to load a model
# whose self-test fails
case_ exact bpe-self-test --model_type=bpe $V --self_test_sample_size=300 --random_seed=7 --byte_fallback
case_ exact bpe-ids --model_type=bpe $V --pad_id=3 --unk_id=1 --bos_id=-1 --eos_id=0 --unk_piece='<UNK>'
tr ' ' '\n' < "$TMP/train.txt" | grep -v "$(printf '\t')" | grep . | sort | uniq -c | awk '{print $2 "\t" $1}' > "$TMP/words.tsv"
IN=$TMP/words.tsv case_ exact bpe-tsv --model_type=bpe $V --input_format=tsv
IN=$TMP/words.tsv case_ exact word-tsv --model_type=word $V --input_format=tsv
printf '☃\n𝄞Ω\n' > "$TMP/req.txt"
case_ exact bpe-required --model_type=bpe $V --required_chars=etaoin --required_chars_file="$TMP/req.txt"
case_ exact char --model_type=char $V
case_ exact char-all --model_type=char $V --use_all_vocab=true --character_coverage=0.98
case_ exact word --model_type=word --vocab_size=3000 --split_digits
case_ exact word-all --model_type=word $V --use_all_vocab
case_ unigram unigram-defaults --vocab_size=1500
case_ unigram unigram-t5 --vocab_size=1500 --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1 --character_coverage=1.0
case_ unigram unigram-suffix --vocab_size=1500 --treat_whitespace_as_suffix
case_ unigram unigram-nosplit --vocab_size=1500 --split_by_whitespace=false
case_ unigram unigram-suffix-nosplit --vocab_size=1500 --split_by_whitespace=false --treat_whitespace_as_suffix
# seed_sentencepieces_file: the pieces of a model trained above as seeds
# (those invalid under the default rules, "▁is▁a", are skipped)
cut -f1 "$TMP/p_unigram-nosplit.vocab" | sed -n '4,900p' | awk -v OFS='\t' '{print $0, 1000 - NR}' > "$TMP/seeds.tsv"
case_ unigram unigram-seed-file --vocab_size=700 --seed_sentencepieces_file="$TMP/seeds.tsv" --self_test_sample_size=100
REQ=☃𝄞Ω case_ unigram unigram-required --vocab_size=1500 --required_chars=☃𝄞Ω
case_ unigram unigram-bytes --vocab_size=1500 --byte_fallback --split_digits --normalization_rule_name=nmt_nfkc_cf \
  --user_defined_symbols_file="$TMP/user.txt"
# Real spm_train command lines, run unchanged except --input, --model_prefix
# and a --vocab_size that this small corpus can reach (issue 17, "Done when"):
# spm_train's defaults (unigram-defaults above) and these published ones.
# LLaMA: the trainer_spec inside LLaMA's tokenizer.model
case_ exact llama-published --model_type=bpe $V --self_test_sample_size=0 --input_format=text \
  --character_coverage=0.99995 --input_sentence_size=200000000 --seed_sentencepiece_size=1000000 \
  --shrinking_factor=0.75 --num_threads=80 --num_sub_iterations=2 --max_sentence_length=4192 \
  --shuffle_input_sentence=true --max_sentencepiece_length=16 --split_by_unicode_script=true \
  --split_by_whitespace=true --split_by_number=true --treat_whitespace_as_suffix=false --split_digits=true \
  --allow_whitespace_only_pieces=true --vocabulary_output_piece_score=true --hard_vocab_limit=true \
  --use_all_vocab=false --byte_fallback=true --required_chars= --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 \
  --unk_piece='<unk>' --bos_piece='<s>' --eos_piece='</s>' --pad_piece='<pad>' --train_extremely_large_corpus=false \
  --enable_differential_privacy=false --differential_privacy_noise_level=0 \
  --differential_privacy_clipping_threshold=0 --normalization_rule_name=identity --add_dummy_prefix=true \
  --remove_extra_whitespaces=false
# ALBERT's README (nmt_nfkc Unigram with control and user-defined symbols)
case_ unigram albert-readme --vocab_size=1500 --pad_id=0 --unk_id=1 --eos_id=-1 --bos_id=-1 \
  --control_symbols='[CLS],[SEP],[MASK]' --user_defined_symbols='(,),",-,.,–,£,€' --shuffle_input_sentence=true \
  --input_sentence_size=10000000 --character_coverage=0.99995 --model_type=unigram
# T5-style: nmt_nfkc Unigram, pad 0, eos 1, unk 2, no bos, full coverage (unigram-t5 above)
# NovelAI's nerdstash: BPE, identity, byte fallback, whitespace pieces,
# digits and whitespace runs as user-defined symbols (a file here: some
# symbols are spaces), its published coverage, sentence length and ids
{ printf '%s\n' 0 1 2 3 4 5 6 7 8 9 ▁▁ ▁▁▁▁ ▁▁▁▁▁▁▁▁ ▁▁▁▁▁▁▁▁▁▁▁▁ ▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁▁
  printf '\xe2\x80\x83\n\xe2\x80\x82\n'
  printf '%s\n' ⁂ ─ '***' ---- '▁"' ▁Author ▁Title ▁Tags Type Characters '<|spmspace|>' '<|mask|>' '<|fill|>'
} > "$TMP/nerd.txt"
case_ exact nerdstash-like --model_type=bpe $V --character_coverage=0.99999851 --max_sentence_length=10240 \
  --num_threads=128 --allow_whitespace_only_pieces=true --byte_fallback=true --split_digits=false \
  --normalization_rule_name=identity --add_dummy_prefix=false --remove_extra_whitespaces=false \
  --unk_id=1 --bos_id=2 --eos_id=3 --pad_id=0 --user_defined_symbols_file="$TMP/nerd.txt"
# the new cutting (pretok_ws.c) gives the same model whatever the thread
# count (input over 4 MB: more than one block, so threads share the counting)
for i in 1 2 3 4 5 6 7 8; do cat "$TMP/delim.txt"; done > "$TMP/delim8.txt"
for o in "--model_type=bpe --split_by_whitespace=false --treat_whitespace_as_suffix" \
         "--split_by_whitespace=false --pretokenization_delimiter=|"; do
  "$T" spm-train --input="$TMP/delim8.txt" --model_prefix="$TMP/th1" --vocab_size=1500 --num_threads=1 --minloglevel=1 $o \
    && "$T" spm-train --input="$TMP/delim8.txt" --model_prefix="$TMP/th3" --vocab_size=1500 --num_threads=3 --minloglevel=1 $o \
    && cmp -s "$TMP/th1.model" "$TMP/th3.model" && pass "1 and 3 threads: the same model ($o)" || fail "threads change the model ($o)"
done
# the reservoir sample of --shuffle_input_sentence: the same sentences as
# Debian's spm_train (PyPI 0.2.1+ draws a different sample on every run)
if command -v "${SPM_TRAIN:-spm_train}" > /dev/null 2>&1; then
  python3 -c 'for i in range(6000): print(chr(0x4E00 + i) * 2)' > "$TMP/uniq.txt"
  sample() { $1 --input="$TMP/uniq.txt" --model_prefix="$2" --model_type=bpe --vocab_size=2000 --input_sentence_size=700 \
    --character_coverage=1.0 --hard_vocab_limit=false --minloglevel=2 > /dev/null 2>&1; }
  sample "$T spm-train" "$TMP/s_t" && sample "${SPM_TRAIN:-spm_train}" "$TMP/s_s"
  chars() { python3 -c 'import sys; print("".join(sorted({c for l in open(sys.argv[1], encoding="utf-8") for c in l.split("\t")[0] if 0x4E00 <= ord(c) < 0xA000})))' "$1"; }
  a=$(chars "$TMP/s_t.vocab"); b=$(chars "$TMP/s_s.vocab")
  [ -n "$a" ] && [ "$a" = "$b" ] && pass "input_sentence_size=700 of 6000, shuffled: same sample as spm_train (${#a} sentences)" \
    || fail "shuffled sample differs from spm_train's (${#a} vs ${#b} characters)"
fi
# errors: named, exit status 2 for usage, nothing written
err() { # name, expected status, expected text, args...
  local name=$1 want=$2 text=$3; shift 3
  local rc=0
  "$T" spm-train "$@" > /dev/null 2> "$TMP/err" || rc=$?
  if [ "$rc" = "$want" ] && grep -q -- "$text" "$TMP/err" && ! ls "$TMP"/e_* > /dev/null 2>&1; then pass "$name: $(head -1 "$TMP/err")"
  else fail "$name: status $rc, $(cat "$TMP/err")"; fi
}
err "unknown flag" 2 "unknown command line flag 'vocabsize'" --input="$TMP/train.txt" --model_prefix="$TMP/e_1" --vocabsize=10
err "bad bool" 2 "illegal value 'maybe'" --input="$TMP/train.txt" --model_prefix="$TMP/e_2" --byte_fallback=maybe
err "differential privacy, not Unigram" 2 "Unigram models only" --input="$TMP/train.txt" --model_prefix="$TMP/e_3" \
  --model_type=bpe --enable_differential_privacy
err "seed file, not Unigram" 1 "only for Unigram" --input="$TMP/train.txt" --model_prefix="$TMP/e_7" --model_type=bpe \
  --seed_sentencepieces_file="$TMP/seeds.tsv"
printf 'abc\tx\n' > "$TMP/badseed.tsv"
err "bad seed file" 1 "badseed.tsv:1:" --input="$TMP/train.txt" --model_prefix="$TMP/e_8" --seed_sentencepieces_file="$TMP/badseed.tsv"
err "delimiter, word model" 1 "BPE and Unigram" --input="$TMP/train.txt" --model_prefix="$TMP/e_9" --model_type=word \
  --pretokenization_delimiter='|'
err "stray argument" 2 "unexpected argument" --input="$TMP/train.txt" --model_prefix="$TMP/e_4" extra.txt
printf 'a\t3\nb c\t0\n' > "$TMP/bad.tsv"
err "bad tsv" 1 "bad.tsv:2:" --input="$TMP/bad.tsv" --input_format=tsv --model_prefix="$TMP/e_5"
err "missing input" 1 "nonexistent" --input="$TMP/nonexistent.txt" --model_prefix="$TMP/e_6"
finish
