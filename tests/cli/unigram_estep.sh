#!/usr/bin/env bash
# unigram_estep.sh - the Unigram E-step does a word in plain doubles when its
# sums stay far from the double range's ends, and in mantissa + exponent
# sums otherwise (trainer/unigram_train.c, estep_plain / estep_word): the two
# must give the same expected counts to the bit. A corpus with short words
# (plain) and runs of hundreds of characters (too small a probability for
# plain doubles) trains the same model, byte for byte, as with every word
# forced through the mantissa sums (TKM_UNIGRAM_ESTEP=exact).
. "$(dirname "$0")/lib.sh"
T=$TKM_BIN
awk 'BEGIN {
  s = 4242; split("the of and to in is that it was for on are with as his they be at one have", W, " ")
  nk = split("日 本 語 文 章 時 間 言 葉 東 京 首 都 天 気 今 日 明 漢 字 仮 名 読 書", K, " ")
  for (l = 0; l < 6000; l++) {
    line = ""
    for (k = 0; k < 12; k++) {
      s = (s * 1103515245 + 12345) % 2147483648; r = s / 2147483648
      if (r < 0.6) w = W[int(r / 0.6 * 20) + 1]
      else { w = ""; n = 2 + int(r * 97) % 7; for (c = 0; c < n; c++) { s = (s * 1103515245 + 12345) % 2147483648; w = w substr("abcdefghijklmnopqrstuvwxyz", int(s / 2147483648 * 26) + 1, 1) } }
      line = line (k ? " " : "") w
    }
    if (l % 4 == 0) { # a run of 100 to 400 kanji without a break
      s = (s * 1103515245 + 12345) % 2147483648; n = 100 + int(s / 2147483648 * 300); run = ""
      for (c = 0; c < n; c++) { s = (s * 1103515245 + 12345) % 2147483648; run = run K[int(s / 2147483648 * nk) + 1] }
      line = line " " run
    }
    print line
  }
}' > "$TMP/c.txt"
TKM_DEBUG_UNIGRAM=1 "$T" spm-train --input="$TMP/c.txt" --model_prefix="$TMP/a" --vocab_size=1000 --num_threads=2 \
  > /dev/null 2> "$TMP/a.log" || { cat "$TMP/a.log"; fail "spm-train"; finish; }
# "E-step done: P of W words in plain doubles" once an E-step
plain=$(sed -n 's/.*E-step done: \([0-9]*\) of \([0-9]*\) words in plain doubles.*/\1/p' "$TMP/a.log" | head -1)
words=$(sed -n 's/.*E-step done: \([0-9]*\) of \([0-9]*\) words in plain doubles.*/\2/p' "$TMP/a.log" | head -1)
if [ -n "$plain" ] && [ "$plain" -gt 0 ] && [ "$plain" -lt "$words" ]; then
  pass "both E-step paths ran ($plain of $words words in plain doubles)"
else
  fail "the corpus does not take both E-step paths (plain: '${plain}', words: '${words}')"
fi
TKM_UNIGRAM_ESTEP=exact TKM_DEBUG_UNIGRAM=1 "$T" spm-train --input="$TMP/c.txt" --model_prefix="$TMP/b" --vocab_size=1000 \
  --num_threads=2 > /dev/null 2> "$TMP/b.log" || { cat "$TMP/b.log"; fail "spm-train (exact)"; finish; }
grep -q 'E-step done: 0 of ' "$TMP/b.log" && pass "TKM_UNIGRAM_ESTEP=exact: no word in plain doubles" \
  || fail "TKM_UNIGRAM_ESTEP=exact still used plain doubles"
cmp -s "$TMP/a.model" "$TMP/b.model" && cmp -s "$TMP/a.vocab" "$TMP/b.vocab" \
  && pass "plain and mantissa sums: identical model and vocab" || fail "plain doubles change the model"
# the objective (debug only) is the same sum too
diff <(grep -o 'objective [0-9.]*' "$TMP/a.log") <(grep -o 'objective [0-9.]*' "$TMP/b.log") > /dev/null \
  && pass "same objectives" || fail "the objectives differ"
finish
