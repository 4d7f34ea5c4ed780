#!/usr/bin/env bash
# softemb_io.sh - teacher I/O against independent implementations: piece bytes
# of a byte-level tokenizer.json (trained here with HF tokenizers) against HF's
# own decoding; the MiniLM teacher (corpora/teacher.sh) read through vocab.txt
# and tokenizer.json alike, and its GGUF imports (f32/f16/bf16) parsed by a
# small Python GGUF reader and compared bit for bit with numpy's rounding.
# Each part skips without its tools/data; the whole test skips when none ran.
. "$(dirname "$0")/lib.sh"
T=$TKM_BIN
ran=0

# decoded bytes of `softemb info --rows N` as "row hex" lines
info_hex() { # file [info options...]
  "$T" softemb info --teacher "$@" --rows 100000000 | python3 -c '
import re, sys
for l in sys.stdin:
    m = re.match(r"row (\d+) +(\w+) .* -> \"(.*)\"$", l.rstrip("\n"))
    if not m: continue
    s, out, i = m.group(3).encode(), bytearray(), 0
    while i < len(s):
        if s[i:i+2] == b"\\x": out.append(int(s[i+2:i+4], 16)); i += 4
        elif s[i:i+1] == b"\\": out += s[i+1:i+2]; i += 2
        else: out.append(s[i]); i += 1
    print(m.group(1), m.group(2), out.hex())'
}

if python3 -c 'import tokenizers, numpy' 2>/dev/null; then
  ran=1
  mkdir -p "$TMP/bl"
  python3 - "$TMP/bl" <<'PY'
import sys, numpy as np
from tokenizers import Tokenizer, models, trainers, pre_tokenizers, decoders, AddedToken
d = sys.argv[1]
text = ["the cat sat on the mat", "h\u00e9llo w\u00f6rld \u00fcn\u00efcode \u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
        "tabs\tand\nnewlines  double  spaces", "emoji \U0001f642 ok \u00a0nbsp \u00ad"] * 50
tk = Tokenizer(models.BPE())
tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tk.decoder = decoders.ByteLevel()
tk.train_from_iterator(text, trainers.BpeTrainer(vocab_size=420, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                 special_tokens=["<|endoftext|>"]))
tk.add_tokens([AddedToken("  ", normalized=False), AddedToken("h\u00e9llo w\u00f6rld", normalized=False)])
tk.add_special_tokens(["<|im_start|>"])
tk.save(d + "/tokenizer.json")
n = tk.get_vocab_size()
np.save(d + "/m.npy", np.arange(n * 4, dtype=np.float32).reshape(n, 4))
with open(d + "/expect", "w") as f:
    for i in range(n):
        s = tk.decode([i], skip_special_tokens=False)
        if "\ufffd" not in s:  # a partial UTF-8 sequence: HF's decode is lossy there
            f.write("%d %s\n" % (i, s.encode().hex()))
PY
  info_hex "$TMP/bl/m.npy" > "$TMP/bl/ours"
  n=$(wc -l < "$TMP/bl/expect")
  bad=$(join <(sort "$TMP/bl/expect") <(sort "$TMP/bl/ours") | awk '$2 != $4' | wc -l)
  comp=$(join <(sort "$TMP/bl/expect") <(sort "$TMP/bl/ours") | wc -l)
  [ "$n" -gt 150 ] && [ "$comp" -eq "$n" ] && [ "$bad" -eq 0 ] \
    && pass "byte-level tokenizer.json: bytes of $n tokens equal HF's decode (added tokens raw)" \
    || fail "byte-level decoding: $bad of $comp differ"
  "$T" softemb import --teacher "$TMP/bl/m.npy" -o "$TMP/bl/m.gguf" 2>/dev/null
  info_hex "$TMP/bl/m.gguf" > "$TMP/bl/ours2"
  cmp -s "$TMP/bl/ours" "$TMP/bl/ours2" && pass "byte-level vocabulary survives import to GGUF" || fail "byte-level GGUF"
fi

D=${TKM_CORPUS:-}/teachers/minilm
if [ -f "$D/model.safetensors" ] && [ -f "$D/vocab.txt" ] && [ -f "$D/tokenizer.json" ]; then
  ran=1
  "$T" softemb info --teacher "$D/model.safetensors" --teacher-vocab "$D/vocab.txt" --rows 40000 | sed 1d > "$TMP/a"
  "$T" softemb info --teacher "$D/model.safetensors" --teacher-vocab "$D/tokenizer.json" --rows 40000 | sed 1d > "$TMP/b"
  cmp -s "$TMP/a" "$TMP/b" && [ "$(grep -c '^row ' "$TMP/a")" -eq 30522 ] \
    && pass "MiniLM: vocab.txt and tokenizer.json give the same 30522 rows" || fail "vocab.txt vs tokenizer.json"
  ok=1
  for want in 'row 0 special \[PAD\]' 'row 1 unused \[unused0\]' 'row 100 special \[UNK\]' 'row 101 special \[CLS\]' \
              'row 102 special \[SEP\]' 'row 103 special \[MASK\]' 'row 1996 normal the -> " the"' \
              'row 2015 normal ##s -> "s"' 'row 1012 normal \. -> " \."'; do
    sed 's/  */ /g' "$TMP/a" | grep -q "^$want" || { ok=0; echo "missing: $want"; }
  done
  [ $ok -eq 1 ] && pass "MiniLM: specials, [unusedN], word starts and ## pieces" || fail "MiniLM rows"

  if python3 -c 'import numpy, safetensors' 2>/dev/null; then
    for dt in f32 f16 bf16; do "$T" softemb import --teacher "$D/model.safetensors" --dtype $dt -o "$TMP/m_$dt.gguf" 2>/dev/null; done
    python3 - "$D/model.safetensors" "$TMP" <<'PY' && pass "MiniLM import: f32 bit-identical, f16/bf16 round to nearest even (numpy), tokens and types" || fail "MiniLM import vs numpy"
import struct, sys, numpy as np
from safetensors.numpy import load_file
ref = load_file(sys.argv[1])["embeddings.word_embeddings.weight"]
vocab = open(sys.argv[1].rsplit("/", 1)[0] + "/vocab.txt", encoding="utf-8").read().split("\n")[:-1]

def gguf(path):  # a minimal independent GGUF v3 reader
    b = open(path, "rb").read()
    assert b[:4] == b"GGUF" and struct.unpack_from("<I", b, 4)[0] == 3
    nt, nkv = struct.unpack_from("<QQ", b, 8); o = 24; kv = {}
    def s(o):
        n = struct.unpack_from("<Q", b, o)[0]; return b[o + 8:o + 8 + n].decode(), o + 8 + n
    def val(t, o):
        if t == 8: return s(o)
        if t == 9:
            et, n = struct.unpack_from("<IQ", b, o); o += 12; out = []
            for _ in range(n):
                v, o = val(et, o); out.append(v)
            return out, o
        f = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}[t]
        return struct.unpack_from("<" + f, b, o)[0], o + struct.calcsize(f)
    for _ in range(nkv):
        k, o = s(o); t = struct.unpack_from("<I", b, o)[0]; kv[k], o = val(t, o + 4)
    tens = {}
    for _ in range(nt):
        name, o = s(o); nd = struct.unpack_from("<I", b, o)[0]; o += 4
        ne = struct.unpack_from("<%dQ" % nd, b, o); o += 8 * nd
        ty, off = struct.unpack_from("<IQ", b, o); o += 12; tens[name] = (ne, ty, off)
    al = kv.get("general.alignment", 32); data = (o + al - 1) // al * al
    return kv, tens, b, data

for dt, ty, np_t in (("f32", 0, np.uint32), ("f16", 1, np.uint16), ("bf16", 30, np.uint16)):
    kv, tens, b, data = gguf(sys.argv[2] + "/m_%s.gguf" % dt)
    ne, t, off = tens["token_embd.weight"]
    assert ne == (384, 30522) and t == ty, (ne, t)
    got = np.frombuffer(b, dtype=np_t, count=ref.size, offset=data + off).reshape(ref.shape)
    if dt == "f32":
        want = ref.view(np.uint32)
    elif dt == "f16":
        want = ref.astype(np.float16).view(np.uint16)
    else:
        u = ref.view(np.uint32).astype(np.uint64)
        want = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    assert np.array_equal(got, want), (dt, int((got != want).sum()))
    assert kv["tokenizer.ggml.tokens"] == vocab and kv["tokenizer.ggml.model"] == "bert"
    types = kv["tokenizer.ggml.token_type"]
    assert types[0] == 3 and types[1] == 5 and types[101] == 3 and types[1996] == 1
    assert sum(1 for x in types if x == 5) == 994 and sum(1 for x in types if x == 3) == 5
PY
  fi

  # errors: a tensor that is not there, a vocabulary longer than the matrix, an unwritable output
  set +e
  "$T" softemb info --teacher "$D/model.safetensors" --tensor no.such.weight > /dev/null 2> "$TMP/e1"; r1=$?
  { cat "$D/vocab.txt"; echo extra; } > "$TMP/long.txt"
  "$T" softemb info --teacher "$D/model.safetensors" --teacher-vocab "$TMP/long.txt" > /dev/null 2> "$TMP/e2"; r2=$?
  "$T" softemb import --teacher "$D/model.safetensors" -o "$TMP/no/dir/x.gguf" 2> "$TMP/e3"; r3=$?
  set -e
  [ $r1 -eq 1 ] && grep -q 'model.safetensors: no 2-D tensor named no.such.weight' "$TMP/e1" \
    && pass "missing tensor named" || fail "missing tensor ($r1): $(cat "$TMP/e1")"
  [ $r2 -eq 1 ] && grep -q 'long.txt: the vocabulary has 30523 entries but the matrix only 30522 rows' "$TMP/e2" \
    && pass "vocabulary longer than the matrix refused" || fail "long vocabulary ($r2): $(cat "$TMP/e2")"
  [ $r3 -eq 1 ] && [ ! -e "$TMP/no" ] && pass "unwritable output: exit 1, nothing left" || fail "unwritable ($r3)"
fi

[ $ran -eq 1 ] || skip "neither HF tokenizers (python3) nor the MiniLM teacher (corpora/teacher.sh) available"
finish
