#!/usr/bin/env bash
# analyze_formats.sh - `tokenmill analyze` takes HF tokenizer.json and tiktoken
# files beside .model files: token counts agree with an independent count
# (HF tokenizers' ids, PyPI tiktoken's ids), the tokenizer.json that
# transformers writes from llama.model / mistral.model counts exactly what the
# .model counts, and their vocabularies fall into the same categories.
. "$(dirname "$0")/lib.sh"
need_corpus
python3 -c 'import tokenizers' 2>/dev/null || skip "python3 module tokenizers not installed"
T=$TKM_BIN
HF="python3 $TKM_SRCDIR/tests/hf_encode.py"
split_corpus 2000 300
cat "$TMP"/heldout/* > "$TMP/heldout.txt"
tokens() { # analyze JSON -> "tokens tokens ..." in model order
  python3 -c 'import json,sys
print(" ".join(str(t["tokens"]) for t in json.load(open(sys.argv[1]))["corpora"][0]["tokenizers"]))' "$1"
}
count() { wc -w < "$1" | tr -d ' '; }

# 1. tokenizer.json from transformers (LlamaTokenizerFast converting the .model)
dir=${TKM_REFMODELS:-}
if python3 -c 'import transformers, sentencepiece' 2>/dev/null && { [ -f "$dir/llama.model" ] || [ -f "$dir/mistral.model" ]; }; then
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
    "$T" analyze compression -t 2 -f json -m "$dir/$n.model" -m "$TMP/$n.json" --corpus h="$TMP/heldout.txt" \
      > "$TMP/a.json" 2> "$TMP/err" || { fail "$n: analyze: $(cat "$TMP/err")"; continue; }
    read -r tm tj < <(tokens "$TMP/a.json")
    $HF "$TMP/$n.json" "$TMP/heldout.txt" > "$TMP/hf.id"
    hf=$(count "$TMP/hf.id")
    [ "$tj" = "$hf" ] && pass "$n.json: analyze counts $tj tokens, HF tokenizers $hf" \
      || fail "$n.json: analyze counts $tj tokens, HF tokenizers $hf"
    if [ "$n" != nerdstash ]; then
      [ "$tm" = "$tj" ] && pass "$n: tokenizer.json and .model count the same $tm tokens" \
        || fail "$n: .model $tm tokens, tokenizer.json $tj"
    else # transformers' conversion always adds a prefix space; nerdstash has none
      echo "# nerdstash: .model $tm tokens, transformers' tokenizer.json $tj (a different tokenizer, see tokenmill-export(1))"
      continue # and it adds <unk> <s> </s> as ids 65535-65537: other categories too
    fi
    "$T" analyze vocab -m "$dir/$n.model" -m "$TMP/$n.json" -f json > "$TMP/v.json" \
      && python3 -c 'import json,sys
v=json.load(open(sys.argv[1]))["vocabularies"]
sys.exit(0 if v[0]["categories"] == v[1]["categories"] else 1)' "$TMP/v.json" \
      && pass "$n: tokenizer.json pieces fall into the .model's categories" || fail "$n: categories differ"
  done
else
  echo "# transformers, sentencepiece or the reference models missing: conversions skipped"
fi

# 2. our own tokenizer.json export counts what the .model counts
"$T" train -q --vocab-size 2000 --threads 2 --byte-fallback --split-digits -o "$TMP/b.model" "$TMP"/train/* \
  && "$T" export --hf-json -m "$TMP/b.model" -o "$TMP/b.json" \
  && "$T" analyze compression -t 2 -f json -m "$TMP/b.model" -m "$TMP/b.json" --corpus h="$TMP/heldout.txt" > "$TMP/a.json" \
  && read -r tm tj < <(tokens "$TMP/a.json") && [ "$tm" = "$tj" ] \
  && pass "tokenmill export: tokenizer.json counts the .model's $tm tokens" || fail "export counts: ${tm:-?} vs ${tj:-?}"

# 3. a tiktoken rank file (written from a byte-level BPE trained here by HF)
python3 - "$TMP" <<'EOF' || fail "HF cannot train a byte-level tokenizer"
import glob, sys
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
t = Tokenizer(models.BPE())
t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
t.train(sorted(glob.glob(sys.argv[1] + "/train/*")), trainers.BpeTrainer(vocab_size=2000, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
t.save(sys.argv[1] + "/bl.json")
EOF
if [ -s "$TMP/bl.json" ]; then
  $HF --make-tiktoken "$TMP/bl.json" "$TMP/test_cl100k_base.tiktoken"
  cp "$TMP/test_cl100k_base.tiktoken" "$TMP/ranks.txt"
  "$T" analyze compression -t 2 -f json -m "$TMP/test_cl100k_base.tiktoken" -m "$TMP/ranks.txt" --tiktoken-pattern cl100k \
    --corpus h="$TMP/heldout.txt" > "$TMP/a.json" 2> "$TMP/err" || fail "analyze tiktoken: $(cat "$TMP/err")"
  read -r ta tb < <(tokens "$TMP/a.json")
  [ "$ta" = "$tb" ] && pass "--tiktoken-pattern reads any name: $ta tokens both" || fail "tiktoken by name $ta, by option $tb"
  if python3 -c 'import tiktoken' 2>/dev/null; then
    $HF --tiktoken "$TMP/ranks.txt" cl100k "$TMP/heldout.txt" > "$TMP/tt.id"
    tt=$(count "$TMP/tt.id")
    [ "$ta" = "$tt" ] && pass "tiktoken file: analyze counts $ta tokens, PyPI tiktoken $tt" \
      || fail "tiktoken file: analyze $ta, PyPI tiktoken $tt"
  else
    "$T" encode -m "$TMP/test_cl100k_base.tiktoken" --output-format id < "$TMP/heldout.txt" > "$TMP/tk.id"
    [ "$ta" = "$(count "$TMP/tk.id")" ] && pass "tiktoken file: analyze counts what encode gives (PyPI tiktoken not installed)" \
      || fail "tiktoken: analyze $ta, encode $(count "$TMP/tk.id")"
  fi
  rc=0; "$T" analyze compression -m "$TMP/ranks.txt" --tiktoken-pattern p99 --corpus h="$TMP/heldout.txt" > /dev/null 2>&1 || rc=$?
  [ "$rc" = 2 ] && pass "unknown --tiktoken-pattern: exit 2" || fail "unknown pattern: rc $rc"
fi
rc=0; "$T" analyze vocab -m "$TMP/missing.json" > /dev/null 2> "$TMP/err" || rc=$?
[ "$rc" = 1 ] && grep -q missing.json "$TMP/err" && pass "missing tokenizer.json: exit 1, named" || fail "missing: rc $rc"
finish
