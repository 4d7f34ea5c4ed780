#!/usr/bin/env bash
# hf_dir.sh - `tokenmill export --hf-dir` / `train --hf-dir` write a folder
# that transformers' AutoTokenizer loads (fast and use_fast=False) with
# spm_encode's ids on every line, sentencepiece's decoding, the model's own
# special tokens at their ids and working padding (tests/hf_dir_check.py);
# on models trained here and the reference models when present. Skips (77)
# without spm_encode or python3 transformers/sentencepiece.
. "$(dirname "$0")/lib.sh"
need_spm
${TKM_HF_PYTHON:-python3} -c 'import transformers, sentencepiece' 2>/dev/null \
  || skip "python3 modules transformers, sentencepiece needed (pip install transformers sentencepiece)"
T=$TKM_BIN
CHECK="${TKM_HF_PYTHON:-python3} $TKM_SRCDIR/tests/hf_dir_check.py"
# training text; the test text adds held-out corpus lines when present and
# special-token text, which sentencepiece encodes as ordinary text
for i in $(seq 1 300); do
  echo "line $i: the quick brown fox <sep> jumps over  the lazy dog $((i * 7)) times; näive café"
  echo "東京は日本の首都です。<|endoftext|>今日は$((i % 12 + 1))月の良い天気でした。"
done > "$TMP/train.txt"
{ cat "$TKM_SRCDIR/tests/data/tricky.txt"
  printf '%s\n' '<s>hello</s>' '<pad> <unk> <|pad|> <|endoftext|> <sep><sep>' '  two leading, two trailing  ' \
    '' ' ' 'x<ctl>y' 'ｆｕｌｌｗｉｄｔｈ ①②' "tab	and \\ backslash \"quotes\""
  if [ -d "${TKM_CORPUS:-}/en" ] && [ -d "${TKM_CORPUS:-}/ja" ]; then
    for f in "$TKM_CORPUS"/en/*.txt "$TKM_CORPUS"/ja/*.txt; do tail -n 150 "$f"; done
  fi
} > "$TMP/text.txt"

check() { # name model dir
  spm_encode --model "$2" --output_format=id < "$TMP/text.txt" > "$TMP/spm.id"
  if out=$($CHECK "$3" "$2" "$TMP/text.txt" "$TMP/spm.id" 2> "$TMP/py.err"); then pass "$1: $out"
  else fail "$1: $(echo "$out" | tail -5) $(tail -3 "$TMP/py.err")"; fi
}
tkm() { # name, train options
  local name=$1; shift
  "$T" train -q -t 1 --vocab-size 700 --hard-vocab-limit=false -o "$TMP/$name.model" "$@" "$TMP/train.txt" 2> "$TMP/err" \
    || { fail "train $name: $(cat "$TMP/err")"; return; }
  rm -rf "${TMP:?}/$name"
  "$T" export --hf-dir "$TMP/$name" -m "$TMP/$name.model" 2> "$TMP/err" || { fail "export $name: $(cat "$TMP/err")"; return; }
  check "$name" "$TMP/$name.model" "$TMP/$name"
}
tkm plain
tkm bytes-user-pad --byte-fallback --split-digits --pad-id 3 --user-defined-symbols '<sep>,<|endoftext|>'
tkm dummy-ws-ctl --add-dummy-prefix --remove-extra-whitespaces --control-symbols '<ctl>' --allow-whitespace-only-pieces
tkm nerdstash-ids --byte-fallback --pad-id 0 --unk-id 1 --bos-id 2 --eos-id 3 --pad-piece '<|pad|>' \
  --bos-piece '<|startoftext|>' --eos-piece '<|endoftext|>' --unk-piece '<|unknown|>'
tkm no-bos-eos --bos-id -1 --eos-id -1
for n in llama nerdstash_v2; do
  m=${TKM_REFMODELS:-}/$n.model
  [ -f "$m" ] || { echo "# $n.model not present (../shared/reference-models): not checked"; continue; }
  "$T" export --hf-dir "$TMP/ref-$n" -m "$m" 2> "$TMP/err" || { fail "export $n: $(cat "$TMP/err")"; continue; }
  check "$n" "$m" "$TMP/ref-$n"
done

# train --hf-dir writes the same four files as export --hf-dir
"$T" train -q -t 1 --vocab-size 700 --byte-fallback -o "$TMP/t.model" --hf-dir "$TMP/t" "$TMP/train.txt"
"$T" export --hf-dir "$TMP/e" -m "$TMP/t.model"
same=1
for f in tokenizer.json tokenizer.model tokenizer_config.json special_tokens_map.json; do
  cmp -s "$TMP/t/$f" "$TMP/e/$f" || same=0
done
cmp -s "$TMP/t.model" "$TMP/t/tokenizer.model" || same=0
[ $same = 1 ] && pass "train --hf-dir = export --hf-dir, four files" || fail "train --hf-dir differs from export"

# refused: a Unigram model without --hf-allow-ties writes no file; a file in
# the way of the folder is named
"$T" train -q -t 1 --model-type unigram --vocab-size 300 -o "$TMP/u.model" "$TMP/train.txt"
rc=0; "$T" export --hf-dir "$TMP/u" -m "$TMP/u.model" 2> "$TMP/e1" || rc=$?
[ $rc = 1 ] && [ -z "$(ls -A "$TMP/u" 2>/dev/null)" ] && grep -q "cannot write $TMP/u: .*u.model" "$TMP/e1" \
  && pass "a Unigram model HF cannot express: refused, named, no file written" \
  || fail "unigram refusal ($rc): $(cat "$TMP/e1")"
: > "$TMP/afile"
rc=0; "$T" export --hf-dir "$TMP/afile" -m "$TMP/t.model" 2> "$TMP/e2" || rc=$?
[ $rc = 1 ] && grep -q "afile: exists and is not a directory" "$TMP/e2" && pass "a file in the way: exit 1, named" \
  || fail "file in the way ($rc): $(cat "$TMP/e2")"
rc=0; "$T" export --hf-dir "$TMP/x" --hf-json -m "$TMP/t.model" 2>/dev/null || rc=$?
[ $rc = 2 ] && pass "--hf-dir with --hf-json: usage error" || fail "--hf-dir with --hf-json ($rc)"
finish
