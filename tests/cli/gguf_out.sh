#!/usr/bin/env bash
# gguf_out.sh - `softemb apply` writes a GGUF whose tokenizer llama.cpp reads:
# read back with PyPI gguf (llama.cpp's own gguf-py), every token string, type
# (llama.cpp's numbering), score, special id and flag is checked against the
# model as sentencepiece reads it, and every row of token_embd against the
# same rows written as .npy. Skips (77) without python3 gguf/numpy/sentencepiece.
. "$(dirname "$0")/lib.sh"
T=$TKM_BIN
python3 -c 'import gguf, numpy, sentencepiece, google.protobuf' 2>/dev/null \
  || skip "python3 modules gguf, numpy, sentencepiece, protobuf needed (pip install gguf sentencepiece protobuf)"

for i in $(seq 1 300); do
  echo "line $i: the quick brown fox <sep> jumps over the lazy dog $((i * 7)) times; näive café"
  echo "東京は日本の首都です。今日は$((i % 12 + 1))月の良い天気でした。<|endoftext|>"
done > "$TMP/c.txt"
# BPE with every piece type: unk/bos/eos/pad, a control symbol, user-defined
# symbols, byte fallback; Unigram with a dummy prefix and the defaults
"$T" train -q -t 1 --vocab-size 600 --byte-fallback --pad-id 3 --control-symbols '<ctl>' \
  --user-defined-symbols '<sep>,<|endoftext|>' -o "$TMP/bpe.model" "$TMP/c.txt"
"$T" train -q -t 1 --model-type unigram --vocab-size 400 --add-dummy-prefix --remove-extra-whitespaces \
  --unk-id 2 --bos-id -1 --eos-id 1 -o "$TMP/uni.model" "$TMP/c.txt"
# a small teacher over the BPE model's pieces (random rows) and a tiny encoder
python3 - "$TMP/teach.npy" <<'PY'
import sys, numpy as np
np.save(sys.argv[1], np.random.default_rng(7).standard_normal((600, 16)).astype("<f4"))
PY
"$T" softemb train --teacher "$TMP/teach.npy" --teacher-vocab "$TMP/bpe.model" --layers 1 --width 16 --heads 2 \
  --ngram-buckets 1024 --steps 4 --batch 32 --log-every 0 --no-eval --threads 1 -o "$TMP/e.tkse" 2>/dev/null \
  || fail "softemb train"
for m in bpe uni; do
  "$T" softemb apply --encoder "$TMP/e.tkse" -m "$TMP/$m.model" --teacher "$TMP/teach.npy" \
    --teacher-vocab "$TMP/bpe.model" -o "$TMP/$m.gguf" 2>/dev/null || fail "apply $m gguf"
  "$T" softemb apply --encoder "$TMP/e.tkse" -m "$TMP/$m.model" --teacher "$TMP/teach.npy" \
    --teacher-vocab "$TMP/bpe.model" -o "$TMP/$m.npy" 2>/dev/null || fail "apply $m npy"
  "$T" softemb apply --encoder "$TMP/e.tkse" -m "$TMP/$m.model" --dtype f16 -o "$TMP/${m}16.gguf" 2>/dev/null \
    || fail "apply $m f16"
  out=$(python3 - "$TMP/$m" <<'PY' 2>&1
import sys, numpy as np, gguf, sentencepiece as spm
base = sys.argv[1]
sp = spm.SentencePieceProcessor(model_file=base + ".model")
from sentencepiece import sentencepiece_model_pb2 as pb  # piece types incl. USER_DEFINED
mp = pb.ModelProto(); mp.ParseFromString(open(base + ".model", "rb").read())
n = sp.get_piece_size()
r = gguf.GGUFReader(base + ".gguf")
def val(key):
    f = r.fields[key]
    return f.contents()
tokens = val("tokenizer.ggml.tokens")
assert len(tokens) == n, (len(tokens), n)
bad = [i for i in range(n) if tokens[i] != sp.id_to_piece(i)]
assert not bad, "token strings differ at %s: %r vs %r" % (bad[:5], tokens[bad[0]], sp.id_to_piece(bad[0]))
# llama.cpp's llama_token_type: NORMAL 1, UNKNOWN 2, CONTROL 3, USER_DEFINED 4, UNUSED 5, BYTE 6
types = val("tokenizer.ggml.token_type")
want = [p.type for p in mp.pieces]
assert list(types) == want, [(i, types[i], want[i]) for i in range(n) if types[i] != want[i]][:5]
for i in range(n):
    t = types[i]
    assert (t == 2) == sp.is_unknown(i) and (t == 3) == sp.is_control(i) and (t == 6) == sp.is_byte(i) \
        and (t == 5) == sp.is_unused(i), i
scores = np.array(val("tokenizer.ggml.scores"), dtype=np.float32)
assert np.array_equal(scores, np.array([sp.get_score(i) for i in range(n)], dtype=np.float32))
kind = mp.trainer_spec.model_type  # 1 unigram, 2 bpe
assert val("tokenizer.ggml.model") == ("llama" if kind == 2 else "t5"), val("tokenizer.ggml.model")
for key, want in (("unknown", sp.unk_id()), ("bos", sp.bos_id()), ("eos", sp.eos_id()), ("padding", sp.pad_id())):
    k = "tokenizer.ggml.%s_token_id" % key
    if want < 0:
        assert k not in r.fields, k
    else:
        assert int(val(k)) == want, (k, val(k), want)
ns = mp.normalizer_spec
assert bool(val("tokenizer.ggml.add_bos_token")) == (sp.bos_id() >= 0) if "tokenizer.ggml.add_bos_token" in r.fields else sp.bos_id() < 0
assert val("tokenizer.ggml.add_eos_token") is False or val("tokenizer.ggml.add_eos_token") == False
assert bool(val("tokenizer.ggml.add_space_prefix")) == ns.add_dummy_prefix
assert bool(val("tokenizer.ggml.remove_extra_whitespaces")) == ns.remove_extra_whitespaces
t = r.get_tensor(0)
assert t.name == "token_embd.weight" and t.tensor_type == gguf.GGMLQuantizationType.F32
assert list(t.shape) == [16, n], t.shape
rows = np.load(base + ".npy")
assert rows.shape == (n, 16) and np.array_equal(np.asarray(t.data).reshape(n, 16), rows)
r16 = gguf.GGUFReader(base + "16.gguf")
t16 = r16.get_tensor(0)
assert t16.tensor_type == gguf.GGMLQuantizationType.F16
assert list(r16.fields["tokenizer.ggml.tokens"].contents()) == list(tokens)
print("%d tokens, types %s" % (n, sorted(set(types))))
PY
) && pass "$m: gguf-py reads every token, type, score, special id, flag and row ($out)" || { echo "$out"; fail "$m gguf"; }
done
finish
