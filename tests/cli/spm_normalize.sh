#!/usr/bin/env bash
# spm_normalize.sh - the normalization rules tokenmill builds from ICU
# (nmt_nfkc, nfkc, nmt_nfkc_cf, nfkc_cf, a rule TSV) normalize text as
# sentencepiece's own: models written by `tokenmill spm-train` and by PyPI
# sentencepiece, normalized by libsentencepiece, compared on every code point,
# a Unicode stress file and the default corpus (tests/spm_normalize_check.py);
# and tokenmill's encoder gives libsentencepiece's ids with those models.
. "$(dirname "$0")/lib.sh"
python3 -c 'import sentencepiece' 2> /dev/null || skip "PyPI sentencepiece not installed (pip install sentencepiece)"
T=$TKM_BIN
CHECK=$TKM_SRCDIR/tests/spm_normalize_check.py
for i in $(seq 1 30); do cat "$TKM_SRCDIR/tests/data/tricky.txt"; done > "$TMP/train.txt"
printf 'Ｈｅｌｌｏ　ｗｏｒｌｄ ① ㍻ ｶﾞｷﾞ Straße ǅ ﬁ\n' >> "$TMP/train.txt"
corpus=
if [ -d "${TKM_CORPUS:-}/en" ] && [ -d "${TKM_CORPUS:-}/ja" ]; then
  cat "$TKM_CORPUS"/en/*.txt "$TKM_CORPUS"/ja/*.txt > "$TMP/corpus.txt"
  corpus=$TMP/corpus.txt
else
  echo "# default corpus missing (corpora/build.sh): stress file and code points only"
fi
# U+061C ARABIC LETTER MARK is a space in sentencepiece's shipped nmt_nfkc
# tables, which no rule of its builder (builder.cc) produces.
allow=061C
pytrain() { # prefix, options
  local p=$1; shift
  python3 - "$TMP/train.txt" "$p" "$@" > "$TMP/py.log" 2>&1 <<'PY'
import sys, sentencepiece as spm
spm.SentencePieceTrainer.train(input=sys.argv[1], model_prefix=sys.argv[2], model_type='bpe', vocab_size=300,
                               hard_vocab_limit=False, minloglevel=2, **dict(a.split('=', 1) for a in sys.argv[3:]))
PY
}
tmtrain() { # prefix, options
  local p=$1; shift
  "$T" spm-train --input="$TMP/train.txt" --model_prefix="$p" --model_type=bpe --vocab_size=300 \
    --hard_vocab_limit=false --minloglevel=1 "$@"
}
check() { # name, ours, ref, checker options
  local name=$1 a=$2 b=$3; shift 3
  if python3 "$CHECK" "$a" "$b" "$@" > "$TMP/check.log" 2>&1; then pass "$name: normalization identical ($(tr '\n' ';' < "$TMP/check.log" | cut -c1-400))"
  else fail "$name: $(cat "$TMP/check.log")"; fi
  python3 -c "import sys; sys.path.insert(0, '$TKM_SRCDIR/tests'); import spm_normalize_check as c; print('\n'.join(c.stress_lines()))" > "$TMP/stress.txt"
  "${SPM_ENCODE:-spm_encode}" --model "$a" --output_format=id < "$TMP/stress.txt" > "$TMP/spm.id" 2> /dev/null || { fail "$name: spm_encode cannot read tokenmill's model"; return; }
  "$T" encode -m "$a" --output-format id < "$TMP/stress.txt" > "$TMP/tkm.id"
  cmp -s "$TMP/spm.id" "$TMP/tkm.id" && pass "$name: tokenmill and libsentencepiece ids identical on the stress file" \
    || fail "$name: ids differ on the stress file: $(diff "$TMP/spm.id" "$TMP/tkm.id" | head -3 | cut -c1-200)"
}
for rule in nmt_nfkc nfkc nmt_nfkc_cf nfkc_cf; do
  tmtrain "$TMP/tm_$rule" --normalization_rule_name=$rule || { fail "$rule: tokenmill spm-train failed"; continue; }
  pytrain "$TMP/py_$rule" normalization_rule_name=$rule || { fail "$rule: sentencepiece failed: $(tail -2 "$TMP/py.log")"; continue; }
  text=()
  case $rule in nmt_nfkc) [ -n "$corpus" ] && text=(--text "$corpus") ;; esac
  check "$rule" "$TMP/tm_$rule.model" "$TMP/py_$rule.model" --allow $allow ${text[@]+"${text[@]}"}
done
# a user rule TSV: sentencepiece's format (hex code points, optional U+,
# a deletion, a comment field, a multi-character source)
printf '41\t61\nU+0062 U+0063\tU+0078 U+0079\t# bc => xy\n3000\t20\n200D\t\nFF21\t41 42\n' > "$TMP/rules.tsv"
tmtrain "$TMP/tm_tsv" --normalization_rule_tsv="$TMP/rules.tsv" || fail "tsv: tokenmill spm-train failed"
pytrain "$TMP/py_tsv" normalization_rule_tsv="$TMP/rules.tsv" || fail "tsv: sentencepiece failed: $(tail -2 "$TMP/py.log")"
[ -f "$TMP/tm_tsv.model" ] && [ -f "$TMP/py_tsv.model" ] && check "rule tsv" "$TMP/tm_tsv.model" "$TMP/py_tsv.model"
# a broken rule file is refused with its name and line, and writes nothing
printf '41\t61\nzz\t62\n' > "$TMP/bad.tsv"
if "$T" spm-train --input="$TMP/train.txt" --model_prefix="$TMP/bad" --normalization_rule_tsv="$TMP/bad.tsv" 2> "$TMP/err"; then
  fail "bad rule tsv accepted"
elif grep -q "bad.tsv:2" "$TMP/err" && [ ! -e "$TMP/bad.model" ] && [ ! -e "$TMP/bad.vocab" ]; then pass "bad rule tsv refused: $(cat "$TMP/err")"
else fail "bad rule tsv: $(cat "$TMP/err")"; fi
finish
