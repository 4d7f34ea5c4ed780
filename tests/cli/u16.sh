#!/usr/bin/env bash
# u16.sh - uint16 token datasets: encode --output-format u16 equals the id
# output (lines joined by the newline piece, eos after each document), is the
# same for 1 and 2 threads, decodes back to the text, and its sidecar is right.
. "$(dirname "$0")/lib.sh"
need_corpus
T=$TKM_BIN
split_corpus 3000 200
"$T" train -q --vocab-size 4000 --byte-fallback --split-digits -o "$TMP/m.model" "$TMP"/train/*
docs=("$TMP"/heldout/*)
"$T" encode -m "$TMP/m.model" --output-format u16 -t 1 -o "$TMP/a.bin" "${docs[@]}"
"$T" encode -m "$TMP/m.model" --output-format u16 -t 2 -o "$TMP/b.bin" "${docs[@]}"
cmp -s "$TMP/a.bin" "$TMP/b.bin" && pass "1 and 2 threads give identical u16 files" || fail "u16 differs across threads"
# expected stream from the id output
python3 - "$TMP" "$T" "${docs[@]}" <<'PY' && pass "u16 equals id output + newline bytes + eos" || fail "u16 stream differs from id output"
import json, struct, subprocess, sys
tmp, tkm, docs = sys.argv[1], sys.argv[2], sys.argv[3:]
expect = []
nl_id = 3 + 0x0A  # <0x0A>: byte pieces start after <unk> <s> </s>
for d in docs:
    out = subprocess.run([tkm, "encode", "-m", tmp + "/m.model", "--output-format", "id", d],
                         capture_output=True, check=True).stdout.decode().split("\n")[:-1]
    for i, line in enumerate(out):
        if i: expect.append(nl_id)
        expect += [int(x) for x in line.split()]
    expect.append(2)  # eos
data = open(tmp + "/a.bin", "rb").read()
got = list(struct.unpack("<%dH" % (len(data) // 2), data))
meta = json.load(open(tmp + "/a.bin.json"))
assert meta["tokens"] == len(got) == len(expect), (meta["tokens"], len(got), len(expect))
assert meta["documents"] == len(docs) and meta["vocab_size"] == 4000 and meta["doc_separator_id"] == 2
sys.exit(0 if got == expect else 1)
PY
"$T" decode -m "$TMP/m.model" --input-format u16 "$TMP/a.bin" > "$TMP/back.txt"
cat "${docs[@]}" > "$TMP/orig.txt"
cmp -s "$TMP/orig.txt" "$TMP/back.txt" && pass "u16 decodes back to the documents" || fail "u16 decode differs"
# one document per line, no separator
"$T" encode -m "$TMP/m.model" --output-format u16 --doc-per-line --doc-separator none -o "$TMP/c.bin" "${docs[0]}"
"$T" encode -m "$TMP/m.model" --output-format id "${docs[0]}" | tr -s ' \n' '\n\n' | grep -c . > "$TMP/n.txt"
[ "$(( $(wc -c < "$TMP/c.bin") / 2 ))" -eq "$(cat "$TMP/n.txt")" ] && pass "--doc-per-line --doc-separator none: only the line ids" \
  || fail "doc-per-line token count"
# truncated u16 input and bad ids are errors
head -c 3 "$TMP/a.bin" > "$TMP/odd.bin"
if "$T" decode -m "$TMP/m.model" --input-format u16 "$TMP/odd.bin" > /dev/null 2> "$TMP/err"; then fail "odd-sized u16 accepted"
else grep -q "truncated" "$TMP/err" && pass "odd-sized u16 rejected" || fail "odd-sized u16: $(cat "$TMP/err")"; fi
printf '\xff\xff' > "$TMP/big.bin"
if "$T" decode -m "$TMP/m.model" --input-format u16 "$TMP/big.bin" > /dev/null 2> "$TMP/err"; then fail "id 65535 accepted"
else grep -q "outside the vocabulary" "$TMP/err" && pass "out-of-vocabulary id rejected" || fail "bad id: $(cat "$TMP/err")"; fi
# the sidecar names the model and sources as JSON strings: a file name that is
# not UTF-8 becomes U+FFFD there, and the sidecar still parses
bad=$(printf '%s/n\xe9e\xff.txt' "$TMP")
printf 'the cat sat\n' > "$bad"
"$T" encode -m "$TMP/m.model" --output-format u16 -o "$TMP/nu.bin" "$bad" \
  && python3 -c 'import json, sys; d = json.load(open(sys.argv[1], encoding="utf-8")); assert d["sources"][0].endswith("n\ufffde\ufffd.txt"), d' "$TMP/nu.bin.json" \
  && pass "u16 sidecar of a non-UTF-8 file name is valid JSON (U+FFFD)" || fail "u16 sidecar with a non-UTF-8 file name: $(head -c 300 "$TMP/nu.bin.json")"
# a model with more than 65536 pieces is refused
if "$T" train -q --vocab-size 65600 --byte-fallback -o "$TMP/big.model" "$TKM_CORPUS"/en/*.txt "$TKM_CORPUS"/ja/*.txt 2>/dev/null; then
  if "$T" encode -m "$TMP/big.model" --output-format u16 -o "$TMP/x.bin" "${docs[0]}" 2> "$TMP/err"; then fail "65600 pieces accepted for u16"
  else grep -q "do not fit in uint16" "$TMP/err" && [ ! -e "$TMP/x.bin" ] && pass "models over 65536 pieces refused" \
    || fail "big model: $(cat "$TMP/err")"; fi
else
  echo "note: corpus too small for a 65600-piece model; refusal not tested"
fi
finish
