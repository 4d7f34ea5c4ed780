#!/usr/bin/env bash
# hf_parity.sh - `tokenmill export --hf-json` writes a tokenizer.json that the
# HF tokenizers library encodes with exactly spm_encode's ids, on held-out
# text, tests/data/tricky.txt and whitespace/repetition stress lines, for
# models trained here (tokenmill, spm_train) and the reference models; and
# decodes ids as `tokenmill decode` does. Unigram models: identical except on
# lines where two segmentations tie exactly (HF sums scores in double,
# sentencepiece rounds them to float), each such line checked to be a tie.
. "$(dirname "$0")/lib.sh"
need_spm
python3 -c 'import tokenizers' 2>/dev/null || skip "python3 module tokenizers not installed (pip install tokenizers)"
T=$TKM_BIN
HF="python3 $TKM_SRCDIR/tests/hf_encode.py"
cp "$TKM_SRCDIR/tests/data/tricky.txt" "$TMP/text.txt"
# runs of spaces (LLaMA ties all ▁-run pieces at score -1e9: the merge order
# must reproduce sentencepiece's leftmost rule), repeated and periodic strings
for n in 1 2 3 4 5 7 8 9 13 15 16 17 19 20 24 28 31 33 40 47 64; do
  s=$(printf '%*s' "$n" '')
  printf '%s\n' "$s" "a${s}b" "${s}x y" "x$s" "the${s}cat${s}" "$(printf '%s' "$s" | tr ' ' '.')" \
    "$(printf '%s' "$s" | tr ' ' '-') $(printf '%s' "$s" | tr ' ' '=')" "$(printf '%s' "$s" | sed 's/ /ab/g')"
done >> "$TMP/text.txt"
have_corpus=0
if [ -d "${TKM_CORPUS:-}/en" ] && [ -d "${TKM_CORPUS:-}/ja" ]; then
  have_corpus=1
  split_corpus 3000 300
  cat "$TMP"/heldout/* >> "$TMP/text.txt"
fi
lines=$(wc -l < "$TMP/text.txt")
have_tf=0
python3 -c 'import transformers, sentencepiece, google.protobuf' 2>/dev/null && have_tf=1

# HF matches special tokens (control pieces, unk) written in the text, which
# sentencepiece never does; transformers relies on it (chat templates). With
# encode_special_tokens=True (a runtime flag, not stored in tokenizer.json)
# HF encodes them as text and every line must match. Without it, only lines
# that contain the text of a special token may differ (and must, to show the
# flag is what matters).
specials_grep() { # json -> file with one special token per line
  python3 -c 'import json,sys
for t in json.load(open(sys.argv[1]))["added_tokens"]:
    t["special"] and print(t["content"])' "$1" > "$TMP/specials"
}

check() { # name model [nodecode] [ties]
  local name=$1 m=$2 j="$TMP/tokenizer.json" ties=${4:-}
  rm -f "$j"
  "$T" export --hf-json ${ties:+--hf-allow-ties} -m "$m" -o "$j" 2> "$TMP/export.err" \
    || { fail "$name: export: $(cat "$TMP/export.err")"; return; }
  spm_encode --model "$m" --output_format=id < "$TMP/text.txt" > "$TMP/spm.id"
  "$T" encode -m "$m" --output-format id < "$TMP/text.txt" > "$TMP/tkm.id"
  cmp -s "$TMP/spm.id" "$TMP/tkm.id" || fail "$name: tokenmill and spm_encode differ (see parity tests)"
  $HF --split-special "$j" "$TMP/text.txt" > "$TMP/hf.id" 2> "$TMP/hf.err" || { fail "$name: HF: $(tail -2 "$TMP/hf.err")"; return; }
  if cmp -s "$TMP/spm.id" "$TMP/hf.id"; then pass "$name: HF ids identical on $lines lines"
  elif [ -n "$ties" ]; then
    # every differing line must be an exact score tie, and ties are rare (the
    # space-run stress lines above hold most of them)
    $HF --ties "$j" "$TMP/spm.id" "$TMP/hf.id" > "$TMP/ties"
    local nd nt; read -r _ nd _ nt < <(tail -1 "$TMP/ties")
    if [ "$nd" = "$nt" ] && [ $((nd * 100)) -le $((lines * 3)) ]; then
      pass "$name: HF ids identical on $((lines - nd)) of $lines lines, the other $nd are exact score ties"
    else fail "$name: HF ids differ on $nd lines, $nt of them ties: $(grep -m3 NOT "$TMP/ties" | paste -sd' ')"; fi
  else fail "$name: HF ids differ on $(diff "$TMP/spm.id" "$TMP/hf.id" | grep -c '^<') of $lines lines: $(diff "$TMP/spm.id" "$TMP/hf.id" | head -4 | cut -c1-160)"; fi
  # default mode: differs from encode_special_tokens mode only on lines that
  # hold a special token's text
  specials_grep "$j"
  $HF "$j" "$TMP/text.txt" > "$TMP/hf0.id"
  local bad
  bad=$(paste -d '\t' "$TMP/hf.id" "$TMP/hf0.id" | nl -ba -w1 | awk -F'\t' '$2 != $3 {print $1}' | while read -r n; do
    sed -n "${n}p" "$TMP/text.txt" | grep -qF -f "$TMP/specials" || echo "$n"; done | head -3)
  [ -z "$bad" ] && pass "$name: without encode_special_tokens only lines with special-token text differ" \
    || fail "$name: line(s) $bad differ without special-token text"
  if [ "${3:-}" != nodecode ]; then
    "$T" decode -m "$m" --input-format id < "$TMP/spm.id" > "$TMP/tkm.dec"
    $HF --decode "$j" "$TMP/spm.id" > "$TMP/hf.dec"
    cmp -s "$TMP/tkm.dec" "$TMP/hf.dec" && pass "$name: HF decode identical on $lines lines" \
      || fail "$name: HF decode differs: $(diff "$TMP/tkm.dec" "$TMP/hf.dec" | head -4 | cut -c1-160)"
  fi
  # transformers' own conversion (LlamaTokenizerFast from the .model), for
  # comparison only: it orders merges by piece id, not score, so LLaMA's runs
  # of spaces (ids 259.., score -1e9) merge too early; it pre-tokenizes with
  # Metaspace(prepend_scheme=first), which adds no ▁ before text starting
  # with a space, and it always adds a prefix space whatever add_dummy_prefix
  # says. Our file: merges by score, Prepend/Replace normalizers taken from
  # the model's normalizer_spec. For Unigram (LlamaConverter): ids 0-2 get
  # score 0 and byte pieces keep theirs, so their text in the input is matched;
  # remove_extra_whitespaces is ignored; user-defined pieces are added tokens.
  # Differences are reported, never failed on.
  if [ "$have_tf" = 1 ]; then
    if $HF --transformers "$m" "$TMP/text.txt" > "$TMP/tf.id" 2> "$TMP/tf.err"; then
      echo "# $name: transformers' conversion differs from spm_encode on $(diff "$TMP/spm.id" "$TMP/tf.id" | grep -c '^<') of $lines lines"
    else echo "# $name: transformers' conversion failed: $(tail -1 "$TMP/tf.err")"; fi
  fi
}

if [ "$have_corpus" = 1 ]; then
  tkm() { # name, extra options
    local name=$1; shift
    "$T" train -q --vocab-size 3000 --threads 2 -o "$TMP/$name.model" "$@" "$TMP"/train/* 2> "$TMP/train.err" \
      || { fail "tokenmill train $name: $(tail -3 "$TMP/train.err")"; return; }
    check "tokenmill $name" "$TMP/$name.model"
  }
  tkm tkm-plain
  tkm tkm-bytes-digits --byte-fallback --split-digits
  tkm tkm-ws-user --allow-whitespace-only-pieces --user-defined-symbols '▁▁,▁▁▁▁' --byte-fallback
  tkm tkm-dummy --add-dummy-prefix
  # Unigram: byte fallback and digits, whitespace pieces and user-defined
  # symbols, spm's normalizer options with control symbols
  tku() { # name, extra options
    local name=$1; shift
    "$T" train -q --model-type unigram --vocab-size 3000 --threads 2 -o "$TMP/$name.model" "$@" "$TMP"/train/* \
      2> "$TMP/train.err" || { fail "tokenmill train $name: $(tail -3 "$TMP/train.err")"; return; }
    check "tokenmill $name" "$TMP/$name.model" "" ties
  }
  tku uni-bytes-digits --byte-fallback --split-digits
  tku uni-ws-user --byte-fallback --allow-whitespace-only-pieces --user-defined-symbols '<|endoftext|>,▁▁'
  tku uni-dummy --add-dummy-prefix --remove-extra-whitespaces --control-symbols '<sep>,<cls>'
  # without --hf-allow-ties a Unigram model is refused, naming the reason
  if [ -s "$TMP/uni-dummy.model" ]; then
    rc=0; "$T" export --hf-json -m "$TMP/uni-dummy.model" -o "$TMP/x.json" 2> "$TMP/err" || rc=$?
    [ "$rc" = 1 ] && grep -q "uni-dummy.model.*double precision" "$TMP/err" && grep -q -- --hf-allow-ties "$TMP/err" \
      && [ ! -e "$TMP/x.json" ] && pass "Unigram without --hf-allow-ties: refused" || fail "Unigram refusal: rc $rc $(cat "$TMP/err")"
  fi
  # HF misplaces normalized added tokens after Prepend: refused for BPE
  "$T" train -q --vocab-size 1000 --threads 2 --add-dummy-prefix --user-defined-symbols '▁▁' -o "$TMP/pu.model" \
    "$TMP"/train/* 2> /dev/null
  rc=0; "$T" export --hf-json -m "$TMP/pu.model" -o "$TMP/x.json" 2> "$TMP/err" || rc=$?
  [ "$rc" = 1 ] && grep -q "user-defined pieces and add_dummy_prefix" "$TMP/err" && [ ! -e "$TMP/x.json" ] \
    && pass "BPE with user-defined pieces and a dummy prefix: refused" || fail "user+prefix: rc $rc $(cat "$TMP/err")"
  # a one-character control piece would shadow the unknown character in HF
  "$T" train -q --model-type unigram --vocab-size 1000 --threads 2 -o "$TMP/ctl.model" --control-symbols 'Ω' \
    "$TMP"/train/* 2> /dev/null
  rc=0; "$T" export --hf-json --hf-allow-ties -m "$TMP/ctl.model" -o "$TMP/x.json" 2> "$TMP/err" || rc=$?
  [ "$rc" = 1 ] && grep -q "control piece.*single character" "$TMP/err" && [ ! -e "$TMP/x.json" ] \
    && pass "Unigram with a one-character control piece: refused" || fail "one-character control: rc $rc $(cat "$TMP/err")"
  # --hf-json on train writes the same file as export
  "$T" train -q --vocab-size 3000 --threads 2 -o "$TMP/t.model" --hf-json "$TMP/t.json" "$TMP"/train/* \
    && "$T" export --hf-json -m "$TMP/t.model" -o "$TMP/t2.json" && cmp -s "$TMP/t.json" "$TMP/t2.json" \
    && pass "train --hf-json equals export" || fail "train --hf-json"
  # spm_train with its defaults except identity normalization: dummy prefix and remove_extra_whitespaces on (so no
  # user-defined symbols for BPE: refused, see above)
  "${SPM_TRAIN:-spm_train}" --input="$(train_list)" --model_prefix="$TMP/spm" --model_type=bpe \
    --vocab_size=3000 --character_coverage=0.9995 --num_threads=2 --normalization_rule_name=identity \
    --control_symbols='<sep>' > "$TMP/spm_train.log" 2>&1 \
    && check "spm_train identity" "$TMP/spm.model" || fail "spm_train: $(tail -3 "$TMP/spm_train.log")"
  "${SPM_TRAIN:-spm_train}" --input="$(train_list)" --model_prefix="$TMP/spmu" --model_type=unigram \
    --vocab_size=3000 --character_coverage=0.9995 --num_threads=2 --normalization_rule_name=identity --byte_fallback=true \
    --user_defined_symbols='<|endoftext|>' --control_symbols='<sep>' > "$TMP/spm_train.log" 2>&1 \
    && check "spm_train unigram identity" "$TMP/spmu.model" "" ties || fail "spm_train: $(tail -3 "$TMP/spm_train.log")"
  # normalization rules (precompiled_charsmap): HF's Precompiled normalizer
  # reads the same blob. tokenizers takes str, so invalid UTF-8 cannot reach
  # it (hf_encode.py turns each bad byte into U+FFFD, which nmt_nfkc then
  # deletes, where sentencepiece keeps the U+FFFD it makes of the byte):
  # those lines are left out; full-width and compatibility characters are
  # added (combining sequences are checked below: they can differ).
  cp "$TMP/text.txt" "$TMP/text.all"
  python3 -c 'import sys
out = open(sys.argv[2], "wb")
for l in open(sys.argv[1], "rb").read().split(b"\n")[:-1]:
    try: l.decode("utf-8"); out.write(l + b"\n")
    except UnicodeDecodeError: pass
for l in ["\uff21\uff22\uff23\u3000\uff71\uff72\uff73 \u2460 \ufb01 \uff8a \u3231 \u337f",
          "  Hello   World \uff21\uff22\uff23  ", "\u00bd \u2126 \u212b \u00a0a\u2003b\t c",
          "\u2170\u2171 \uff10\uff11\uff12 \u3000\u3000 \uff5e \u301c caf\u00e9 CAF\u00c9 Stra\u00dfe \u0130i"]:
    out.write(l.encode() + b"\n")' "$TMP/text.all" "$TMP/text.txt"
  lines=$(wc -l < "$TMP/text.txt")
  "${SPM_TRAIN:-spm_train}" --input="$(train_list)" --model_prefix="$TMP/nfkc" --model_type=bpe \
    --vocab_size=1000 --num_threads=2 > /dev/null 2>&1 && check "spm_train bpe nmt_nfkc" "$TMP/nfkc.model" \
    || fail "spm_train nmt_nfkc"
  sp() { # name, spm-train options: tokenmill spm-train's models
    local name=$1; shift
    "$T" spm-train --input="$(train_list)" --model_prefix="$TMP/$name" --num_threads=2 \
      --minloglevel=1 "$@" 2> "$TMP/train.err" || { fail "spm-train $name: $(tail -3 "$TMP/train.err")"; return; }
    case " $* " in *model_type=bpe*) check "spm-train $name" "$TMP/$name.model" ;;
                   *) check "spm-train $name" "$TMP/$name.model" "" ties ;; esac
  }
  sp bpe-nfkc-cf --model_type=bpe --vocab_size=2000 --normalization_rule_name=nfkc_cf
  sp uni-nmt-nfkc --vocab_size=2000
  sp uni-t5 --vocab_size=2000 --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1 --character_coverage=1.0
  # the Unicode stress file of spm_normalize.sh: HF's Precompiled applies
  # the rules to a whole grapheme under 6 bytes, else character by
  # character, where sentencepiece matches the longest rule anywhere: so
  # "\u30c6\u0313\u035b\u0301\u3099" keeps \u30c6 + \u3099 apart in HF
  # and composes them in sentencepiece. Ids may differ only on lines
  # holding a combining mark (category M).
  if [ -s "$TMP/bpe-nfkc-cf.model" ]; then
    python3 -c "import sys; sys.path.insert(0, '$TKM_SRCDIR/tests'); import spm_normalize_check as c; print('\n'.join(c.stress_lines()))" \
      | python3 -c 'import sys
for l in sys.stdin.buffer.read().split(b"\n")[:-1]:
    try: l.decode("utf-8"); sys.stdout.buffer.write(l + b"\n")
    except UnicodeDecodeError: pass' > "$TMP/stress.txt"
    for name in bpe-nfkc-cf uni-nmt-nfkc; do
      "$T" export --hf-json --hf-allow-ties -m "$TMP/$name.model" -o "$TMP/s.json" 2> /dev/null || continue
      "$T" encode -m "$TMP/$name.model" --output-format id < "$TMP/stress.txt" > "$TMP/s_tkm.id"
      $HF --split-special "$TMP/s.json" "$TMP/stress.txt" > "$TMP/s_hf.id"
      r=$(python3 -c 'import sys, unicodedata
L = open(sys.argv[1], "rb").read().split(b"\n")[:-1]
A = open(sys.argv[2]).read().split("\n"); B = open(sys.argv[3]).read().split("\n")
bad = [i for i in range(len(L)) if A[i] != B[i]]
other = [i + 1 for i in bad if not any(unicodedata.category(c)[0] == "M" for c in L[i].decode())]
print(len(L), len(bad), len(other), other[:3])' "$TMP/stress.txt" "$TMP/s_tkm.id" "$TMP/s_hf.id")
      set -- $r
      if [ "$3" = 0 ]; then pass "spm-train $name: HF on the Unicode stress file: $2 of $1 lines differ, all holding combining marks"
      elif [ "$name" = uni-nmt-nfkc ] && [ $(($3 * 1000)) -le "$1" ]; then
        pass "spm-train $name: HF on the Unicode stress file: $2 of $1 lines differ, $3 without combining marks (Unigram ties, at most 1/1000)"
      else fail "spm-train $name: HF on the stress file: $3 lines without combining marks differ: ${*:4}"; fi
    done
  fi
  cp "$TMP/text.all" "$TMP/text.txt"
  lines=$(wc -l < "$TMP/text.txt")
fi
dir=${TKM_REFMODELS:-}
for n in llama mistral nerdstash; do
  [ -f "$dir/$n.model" ] && check "$n.model" "$dir/$n.model"
done
rc=0; "$T" export --hf-json -m /nonexistent.model -o "$TMP/x.json" 2> "$TMP/err" || rc=$?
[ "$rc" = 1 ] && grep -q nonexistent.model "$TMP/err" && pass "missing model: exit 1, names the file" || fail "missing model: rc $rc"
rc=0; "$T" export -m x -o y 2> /dev/null || rc=$?
[ "$rc" = 2 ] && pass "no format: exit 2" || fail "no format: rc $rc"
finish
