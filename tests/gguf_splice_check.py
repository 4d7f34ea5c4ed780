#!/usr/bin/env python3
"""gguf_splice_check.py - for tests/cli/gguf_splice.sh: builds small synthetic
llama.cpp models with PyPI gguf (llama.cpp's gguf-py) and checks what
`tokenmill softemb splice` made of them, read back with gguf-py's reader.

  build OLD.model OUT.gguf VARIANT   VARIANT: f32 (F32 token_embd, untied F16
                                     output.weight, alignment 64), q8 (Q8_0
                                     token_embd, tied, default alignment) or
                                     full (every tensor llama.cpp's llama
                                     architecture needs, one block: a model
                                     llama.cpp loads and runs)
  check OLD.gguf OUT.gguf NEW.model APPLIED.gguf PRED.npy
        every tensor but token_embd/output.weight byte-identical; every pair
        but the tokenizer's and llama.vocab_size identical; the tokenizer
        pairs equal to those `softemb apply` wrote for NEW.model (APPLIED);
        each new row the old row byte for byte where the rules say so (role,
        piece, text bytes), the encoder's prediction (PRED, `softemb apply
        --format npy` without a teacher) otherwise, the mean of the old
        normal rows for unmatched control/unknown/unused pieces.
"""
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb

DIM = 32


def build(model, out, variant):
    mp = pb.ModelProto()
    mp.ParseFromString(open(model, "rb").read())
    n = len(mp.pieces)
    rng = np.random.default_rng(11)
    w = gguf.GGUFWriter(out, "llama")
    if variant == "f32":
        w.add_custom_alignment(64)
    w.add_name("tokenmill splice test")
    w.add_uint32("llama.vocab_size", n)
    w.add_context_length(128)
    w.add_embedding_length(DIM)
    w.add_block_count(1)
    w.add_feed_forward_length(64)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list([p.piece.encode() for p in mp.pieces])
    w.add_token_scores([p.score for p in mp.pieces])
    w.add_token_types([p.type for p in mp.pieces])
    w.add_bos_token_id(mp.trainer_spec.bos_id)
    w.add_eos_token_id(mp.trainer_spec.eos_id)
    w.add_unk_token_id(mp.trainer_spec.unk_id)
    w.add_add_bos_token(True)
    w.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    w.add_array("tokenmill.test.list", [1, 2, 3])
    emb = rng.standard_normal((n, DIM)).astype(np.float32)
    if variant == "q8":
        q = gguf.quants.quantize(emb, QT.Q8_0)
        w.add_tensor("token_embd.weight", q, raw_shape=q.shape, raw_dtype=QT.Q8_0)
    else:
        w.add_tensor("token_embd.weight", emb)
    w.add_tensor("blk.0.attn_norm.weight", rng.standard_normal(DIM).astype(np.float32))
    w.add_tensor("blk.0.attn_q.weight", rng.standard_normal((DIM, DIM)).astype(np.float16))
    if variant == "full":
        for t in ("attn_k", "attn_v", "attn_output"):
            w.add_tensor("blk.0.%s.weight" % t, (rng.standard_normal((DIM, DIM)) * 0.1).astype(np.float16))
        w.add_tensor("blk.0.ffn_norm.weight", np.ones(DIM, np.float32))
        w.add_tensor("blk.0.ffn_gate.weight", (rng.standard_normal((64, DIM)) * 0.1).astype(np.float32))
        w.add_tensor("blk.0.ffn_down.weight", (rng.standard_normal((DIM, 64)) * 0.1).astype(np.float32))
    w.add_tensor("blk.0.ffn_up.weight", rng.standard_normal((64, DIM)).astype(np.float32))
    w.add_tensor("output_norm.weight", rng.standard_normal(DIM).astype(np.float32))
    if variant in ("f32", "full"):
        w.add_tensor("output.weight", rng.standard_normal((n, DIM)).astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def fields(r):
    out = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        out[k] = (list(f.types), f.contents())
    return out


def raw(r, t):
    return bytes(r.data[t.data_offset:t.data_offset + t.n_bytes])


def rows_of(r, t):
    """[rows][bytes] raw rows and float rows of a 2-D tensor."""
    n = int(t.shape[1])
    b = np.frombuffer(raw(r, t), dtype=np.uint8).reshape(n, -1)
    f = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(n, -1).astype(np.float32)
    return b, f


def piece_bytes(piece, ptype):
    if ptype == 6 and len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
        return bytes([int(piece[3:5], 16)])
    return piece.replace("\u2581", " ").encode()


def check(old_path, out_path, new_model, applied_path, pred_path):
    ro, rn, ra = gguf.GGUFReader(old_path), gguf.GGUFReader(out_path), gguf.GGUFReader(applied_path)
    sp = spm.SentencePieceProcessor(model_file=new_model)
    mp = pb.ModelProto()
    mp.ParseFromString(open(new_model, "rb").read())
    n = sp.get_piece_size()
    fo, fn, fa = fields(ro), fields(rn), fields(ra)
    # metadata: the tokenizer's from apply, vocab_size the new size, the rest as before
    tok = lambda k: k.startswith("tokenizer.ggml.") or k == "tokenizer.huggingface.json"
    for k, v in fo.items():
        if tok(k):
            continue
        assert k in fn, "pair %s lost" % k
        if k == "llama.vocab_size":
            assert fn[k][1] == n and fn[k][0] == v[0], (k, fn[k])
        else:
            assert fn[k] == v, (k, fn[k], v)
    for k in fn:
        assert k in fo or tok(k), "new pair %s" % k
    want_tok = {k: v for k, v in fa.items() if tok(k)}
    got_tok = {k: v for k, v in fn.items() if tok(k)}
    assert got_tok.keys() == want_tok.keys(), (sorted(got_tok), sorted(want_tok))
    for k in want_tok:
        assert got_tok[k] == want_tok[k], k
    # tensors: same order, names, types; all but the two matrices byte-identical
    align = int(fo["general.alignment"][1]) if "general.alignment" in fo else 32
    assert [t.name for t in rn.tensors] == [t.name for t in ro.tensors]
    for a, b in zip(ro.tensors, rn.tensors):
        assert a.tensor_type == b.tensor_type, a.name
        assert b.data_offset % align == 0, (b.name, b.data_offset, align)
        if a.name in ("token_embd.weight", "output.weight"):
            assert list(b.shape) == [DIM, n], (b.name, b.shape)
            continue
        assert list(a.shape) == list(b.shape) and raw(ro, a) == raw(rn, b), a.name
    # which old row each new piece should take
    old_tokens = [bytes(ro.fields["tokenizer.ggml.tokens"].parts[i]).decode("utf-8", "surrogateescape")
                  for i in ro.fields["tokenizer.ggml.tokens"].data]
    old_types = list(fo["tokenizer.ggml.token_type"][1])
    first_piece, first_bytes = {}, {}
    for i, (p, t) in enumerate(zip(old_tokens, old_types)):
        first_piece.setdefault(p, i)
        if t not in (2, 3, 5):
            b = piece_bytes(p, t)
            if b:
                first_bytes.setdefault(b, i)
    role = lambda key: int(fo[key][1]) if key in fo else -1
    old_role = [role("tokenizer.ggml.%s_token_id" % k) for k in ("unknown", "bos", "eos", "padding")]
    new_role = [sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()]
    src, how = [], []
    for i in range(n):
        p, t = mp.pieces[i].piece, mp.pieces[i].type
        s = next((old_role[k] for k in range(4) if new_role[k] == i and old_role[k] >= 0), -1)
        h = "role"
        if s < 0:
            s, h = first_piece.get(p, -1), "piece"
        if s < 0 and t not in (2, 3, 5):
            s, h = first_bytes.get(piece_bytes(p, t), -1), "bytes"
        if s < 0:
            h = "pred" if t not in (2, 3, 5) else "mean"
        src.append(s)
        how.append(h)
    pred = np.load(pred_path)
    counts = {}
    for name in ("token_embd.weight", "output.weight"):
        ta = [t for t in ro.tensors if t.name == name]
        if not ta:
            assert name not in [t.name for t in rn.tensors]
            continue
        ob, of = rows_of(ro, ta[0])
        nb, nf = rows_of(rn, [t for t in rn.tensors if t.name == name][0])
        normal = [i for i in range(len(old_types)) if old_types[i] not in (2, 3, 5)]
        mean = of[normal].astype(np.float64).mean(axis=0).astype(np.float32)
        qt = ta[0].tensor_type
        for i in range(n):
            if src[i] >= 0:
                assert bytes(nb[i]) == bytes(ob[src[i]]), (name, i, how[i], src[i])
                continue
            want = pred[i] if how[i] == "pred" and name == "token_embd.weight" else mean
            if qt == QT.F32:
                ok = np.allclose(nf[i], want, rtol=0, atol=1e-6 * max(1.0, float(np.abs(want).max())))
            elif qt in (QT.F16, QT.BF16):
                ok = np.allclose(nf[i], want, rtol=1e-2, atol=1e-3)
            else:  # Q8_0: half a step of each block's scale, plus the scale's f16 rounding (127 * 2^-11 steps)
                step = np.abs(want.reshape(-1, 32)).max(axis=1) / 127
                ok = np.all(np.abs(nf[i] - want).reshape(-1, 32) <= step[:, None] * 0.57 + 1e-6)
            assert ok, (name, i, how[i], nf[i][:4], want[:4])
        counts[name] = len(normal)
    tally = {h: how.count(h) for h in ("role", "piece", "bytes", "pred", "mean")}
    assert tally["pred"] > 0 and tally["piece"] > 0, tally
    print(" ".join("%s=%d" % kv for kv in tally.items()))


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(*sys.argv[2:5])
    else:
        check(*sys.argv[2:7])
