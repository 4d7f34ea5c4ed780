#!/usr/bin/env bash
# analyze.sh - `tokenmill analyze`: compression counts equal `tokenmill encode`
# piped to wc, 1 and 2 threads agree, gzip/directory/glob corpora, JSON parses,
# CSV parses and holds the JSON's numbers,
# vocab counts on the reference models equal those in tokenmill-analyze(1),
# the HTML report is written, errors exit 1/2 and name the file.
. "$(dirname "$0")/lib.sh"
T=$TKM_BIN
R=${TKM_REFMODELS:-}

# train --eval: the closing report's compression equals analyze compression's
mkdir -p "$TMP/tr"
for i in $(seq 1 300); do echo "line $i of the training text, with words like tokenizer and vocabulary $((i * 7))"; done > "$TMP/tr/a.txt"
for i in $(seq 1 50); do echo "held-out line $i: a tokenizer splits text into pieces $((i * 13))"; done > "$TMP/tr/h.txt"
"$T" train --vocab-size 300 -t 1 -o "$TMP/tr/m.model" "$TMP/tr/a.txt" --eval "ho=$TMP/tr/h.txt" 2> "$TMP/tr/log"
bpt=$(sed -n 's/^  eval ho *\([0-9.]*\) bytes\/token.*/\1/p' "$TMP/tr/log")
"$T" analyze compression -m "$TMP/tr/m.model" --corpus "ho=$TMP/tr/h.txt" --format json > "$TMP/tr/c.json"
python3 - "$TMP/tr/c.json" "$bpt" <<'PY' && pass "train --eval reports analyze's bytes/token" || fail "train --eval ($bpt)"
import json, sys
x = json.load(open(sys.argv[1]))
f = x["corpora"][0]["tokenizers"][0]["bytes_per_token"]
t = float(sys.argv[2])
assert abs(f - t) < 0.0015, (f, t)
PY
grep -q '^  categories latin [0-9]*, japanese_multi 0,' "$TMP/tr/log" && pass "train reports categories" || fail "train categories"

[ -f "$R/llama.model" ] && [ -f "$R/nerdstash.model" ] || skip "reference models missing"
M1=$R/llama.model
M2=$R/nerdstash.model
mkdir -p "$TMP/c"
printf 'The quick brown fox jumps over the lazy dog.\nhello  world\t again\n\n東京は日本の首都です。\ncaf\xc3\xa9 na\xc3\xafve \xf0\x9f\x98\x80\n' > "$TMP/c/a.txt"
printf 'Second file, with 12345 digits.\n' > "$TMP/c/b.txt"
gzip -c "$TMP/c/b.txt" > "$TMP/b.gz"

# expected counts from encode + wc
exp_tokens() { cat "$TMP/c/a.txt" "$TMP/c/b.txt" | "$T" encode -m "$1" --output-format id | wc -w; }
lines=$(cat "$TMP/c/a.txt" "$TMP/c/b.txt" | wc -l)
bytes=$(($(cat "$TMP/c/a.txt" "$TMP/c/b.txt" | wc -c) - lines))
chars=$(($(cat "$TMP/c/a.txt" "$TMP/c/b.txt" | LC_ALL=C.UTF-8 wc -m) - lines))
words=$(cat "$TMP/c/a.txt" "$TMP/c/b.txt" | wc -w)
t1=$(exp_tokens "$M1")
t2=$(exp_tokens "$M2")
bytetok=$(cat "$TMP/c/a.txt" "$TMP/c/b.txt" | "$T" encode -m "$M1" | tr ' ' '\n' | grep -c '^<0x..>$' || true)

"$T" analyze compression -m "$M1" -m "$M2" --corpus "t=$TMP/c" --format json -t 2 > "$TMP/a.json" \
  && pass "compression json runs" || fail "compression json failed"
python3 -m json.tool "$TMP/a.json" > /dev/null && pass "compression JSON parses" || fail "compression JSON invalid"
python3 - "$TMP/a.json" "$lines" "$bytes" "$chars" "$words" "$t1" "$t2" "$bytetok" <<'PY' \
  && pass "counts equal encode | wc" || fail "counts differ from encode | wc"
import json, sys
d = json.load(open(sys.argv[1]))
lines, nbytes, chars, words, t1, t2, bt = map(int, sys.argv[2:])
c = d["corpora"][0]
assert (c["lines"], c["bytes"], c["chars"], c["words"]) == (lines, nbytes, chars, words), c
a, b = c["tokenizers"]
assert a["tokens"] == t1 and b["tokens"] == t2, (a["tokens"], t1, b["tokens"], t2)
assert a["byte_tokens"] == bt, (a["byte_tokens"], bt)
assert abs(a["bytes_per_token"] - nbytes / t1) < 1e-4
assert abs(b["tokens_vs_first"] - (t2 / t1 - 1)) < 1e-4
assert a["tokens_vs_first"] == 0
PY

# threads, directory vs glob vs list with gzip
"$T" analyze compression -m "$M1" -m "$M2" --corpus "t=$TMP/c" -t 1 > "$TMP/t1.txt"
"$T" analyze compression -m "$M1" -m "$M2" --corpus "t=$TMP/c/*.txt" -t 2 > "$TMP/t2.txt"
cmp -s "$TMP/t1.txt" "$TMP/t2.txt" && pass "1 thread (directory) = 2 threads (glob)" || fail "output depends on threads or spec"
grep -q 'more tokens' "$TMP/t1.txt" && pass "text states the ratio convention" || fail "convention missing"
"$T" analyze compression -m "$M1" --corpus "g=$TMP/b.gz" --format json > "$TMP/g.json"
python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["corpora"][0]; assert c["lines"]==1 and c["bytes"]==31, c' "$TMP/g.json" \
  && pass "gzip corpus read" || fail "gzip corpus"

# vocab: documented counts
"$T" analyze vocab -m "$M2" -m "$M1" --format json > "$TMP/v.json" && python3 -m json.tool "$TMP/v.json" >/dev/null \
  && pass "vocab JSON parses" || fail "vocab JSON invalid"
python3 - "$TMP/v.json" <<'PY' && pass "vocab counts as documented" || fail "vocab counts differ from the man page"
import json, sys
v = json.load(open(sys.argv[1]))["vocabularies"]
want = [(28586, 18123, 9626, 8940, 4, 256), (23964, 0, 836, 6941, 3, 256)]
for x, w in zip(v, want):
    c = x["categories"]
    got = (c["latin"], c["japanese_multi"], c["japanese_single"], c["other"], c["special"], c["byte"])
    assert got == w, (x["model"], got, w)
    assert sum(x["length_chars"].values()) == x["pieces"] - c["special"] - c["byte"]
PY
"$T" analyze vocab -m "$M1" --corpus "t=$TMP/c" --format json > "$TMP/u.json" && python3 - "$TMP/u.json" <<'PY' \
  && pass "unused pieces reported" || fail "unused pieces"
import json, sys
x = json.load(open(sys.argv[1]))["vocabularies"][0]
u = x["unused"]
assert 0 < u["latin"] < x["categories"]["latin"] and u["byte"] < 256, u
PY
"$T" analyze vocab -m "$M2" | grep -q '28586' && pass "vocab text table" || fail "vocab text table"

# CSV: parses (RFC 4180: a corpus name with a comma and a quote), and every
# number equals the JSON output's for the same arguments; --csv = -f csv
C2='t,"2"'
for sub in compression vocab; do
  args=(-m "$M1" -m "$M2" --corpus "t=$TMP/c" --corpus "$C2=$TMP/b.gz" -t 2)
  "$T" analyze $sub "${args[@]}" --format json > "$TMP/$sub.json" \
    && "$T" analyze $sub "${args[@]}" --csv > "$TMP/$sub.csv" \
    && "$T" analyze $sub "${args[@]}" -f csv -o "$TMP/$sub.o.csv" \
    && cmp -s "$TMP/$sub.csv" "$TMP/$sub.o.csv" && pass "$sub: --csv = -f csv -o" || fail "$sub: csv runs"
done
python3 - "$TMP/compression.json" "$TMP/compression.csv" "$C2" <<'PY' && pass "compression CSV = JSON" || fail "compression CSV differs from JSON"
import csv, json, math, sys
j = json.load(open(sys.argv[1]))
with open(sys.argv[2], newline="") as f:
    rows = list(csv.reader(f, strict=True))
head, rows = rows[0], rows[1:]
assert all(len(r) == len(head) for r in rows), "ragged rows"
rows = [dict(zip(head, r)) for r in rows]
want = [(c, t) for c in j["corpora"] for t in c["tokenizers"]]
assert len(rows) == len(want) == 4, (len(rows), len(want))
assert [r["corpus"] for r in rows] == ["t", "t", sys.argv[3], sys.argv[3]], [r["corpus"] for r in rows]
n = 0
for r, (c, t) in zip(rows, want):
    assert r["corpus"] == c["name"] and r["model"] == t["model"], (r, c["name"], t["model"])
    assert int(r["files"]) == len(c["files"])
    for k in ("lines", "bytes", "chars", "words"):
        assert int(r[k]) == c[k], (k, r[k], c[k]); n += 1
    for k, v in t.items():
        if k == "model": continue
        assert k in r, "CSV lacks " + k
        got = float(r[k]) if r[k] != "" else None
        assert got == v, (k, r[k], v); n += 1
assert n == 4 * 4 + 4 * 9, n
PY
python3 - "$TMP/vocab.json" "$TMP/vocab.csv" <<'PY' && pass "vocab CSV = JSON (categories, unused, lengths, scripts)" || fail "vocab CSV differs from JSON"
import csv, json, sys
j = json.load(open(sys.argv[1]))["vocabularies"]
with open(sys.argv[2], newline="") as f:
    rows = list(csv.reader(f, strict=True))
head, rows = rows[0], rows[1:]
assert head == ["table", "key", "llama", "nerdstash"], head
assert all(len(r) == len(head) for r in rows), "ragged rows"
got = {}
for r in rows:
    assert (r[0], r[1]) not in got, ("duplicate row", r)
    got[(r[0], r[1])] = [int(x) for x in r[2:]]
tables = {"category": "categories", "unused": "unused", "length_chars": "length_chars",
          "length_bytes": "length_bytes", "script": "scripts"}
n = 0
for k, v in enumerate(j):
    assert got[("pieces", "total")][k] == v["pieces"] and got[("pieces", "user_defined")][k] == v["user_defined"]
    for t, jk in tables.items():
        csv_keys = {key for (tt, key) in got if tt == t}
        assert csv_keys >= set(v[jk]), (t, set(v[jk]) - csv_keys)
        for key in csv_keys: # JSON leaves out zero lengths and scripts the model lacks
            assert got[(t, key)][k] == v[jk].get(key, 0), (t, key, got[(t, key)][k], v[jk].get(key)); n += 1
assert {t for (t, _) in got} == set(tables) | {"pieces"}, {t for (t, _) in got}
assert n > 100, n
PY
set +e
"$T" analyze report -m "$M1" --corpus "t=$TMP/c" -o "$TMP/x.html" --csv > /dev/null 2>&1; rc=$?
"$T" analyze vocab -m "$M1" -f xml > /dev/null 2>&1; rc2=$?
set -e
[ $rc -eq 2 ] && [ $rc2 -eq 2 ] && [ ! -e "$TMP/x.html" ] && pass "report --csv and -f xml: usage errors" || fail "report --csv ($rc), -f xml ($rc2)"

# report
"$T" analyze report -m "$M1" -m "$M2" --corpus "t=$TMP/c" -o "$TMP/r.html" \
  && grep -q '<svg' "$TMP/r.html" && grep -q '</html>' "$TMP/r.html" && ! ls "$TMP"/r.html.tmp.* 2>/dev/null \
  && pass "HTML report written" || fail "HTML report"

# errors
set +e
"$T" analyze compression -m "$M1" --corpus "t=$TMP/none" > /dev/null 2> "$TMP/e1"; rc1=$?
"$T" analyze compression -m "$TMP/none.model" --corpus "t=$TMP/c" > /dev/null 2> "$TMP/e2"; rc2=$?
"$T" analyze compression -m "$M1" > /dev/null 2>&1; rc3=$?
"$T" analyze frobnicate > /dev/null 2>&1; rc4=$?
"$T" analyze compression -m "$M1" --corpus bad > /dev/null 2>&1; rc5=$?
set -e
[ $rc1 -eq 1 ] && grep -q "$TMP/none" "$TMP/e1" && pass "missing corpus: exit 1, names it" || fail "missing corpus ($rc1)"
[ $rc2 -eq 1 ] && grep -q "none.model" "$TMP/e2" && pass "missing model: exit 1, names it" || fail "missing model ($rc2)"
[ $rc3 -eq 2 ] && [ $rc4 -eq 2 ] && [ $rc5 -eq 2 ] && pass "usage errors exit 2" || fail "usage errors ($rc3 $rc4 $rc5)"
finish
