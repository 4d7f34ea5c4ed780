#!/usr/bin/env python3
"""hf_encode.py - encodes or decodes a text file line by line with the HF
`tokenizers` library, for parity tests against spm_encode / tokenmill.

  hf_encode.py [--split-special] TOKENIZER_JSON TEXT      ids per line, as spm_encode --output_format=id
  hf_encode.py --decode TOKENIZER_JSON IDS                text per line, as spm_decode --input_format=id
  hf_encode.py --transformers MODEL TEXT                  ids from transformers' own conversion
  hf_encode.py --tiktoken RANKS PATTERN TEXT              ids from PyPI tiktoken (PATTERN: r50k,
                                                          cl100k or o200k) on a rank file
  hf_encode.py --make-tiktoken TOKENIZER_JSON OUT         writes the byte-level BPE's vocabulary as a
                                                          tiktoken rank file (rank = id, specials left out)
  hf_encode.py --ties TOKENIZER_JSON A.ids B.ids          lines where A and B differ, and whether
                                                          each is an exact tie of Unigram scores

Lines are split on '\\n' only (a '\\r' stays in the line, as in spm_encode).
Invalid UTF-8 becomes U+FFFD per byte, as sentencepiece's normalizer does:
HF tokenizers take str, so turning bytes into text is the caller's job.
--split-special sets encode_special_tokens (not stored in tokenizer.json):
special tokens written in the text are then encoded as text, as
sentencepiece does, instead of being matched as tokens.
"""
import codecs
import sys


def per_byte(err):
    return ("\ufffd" * (err.end - err.start), err.end)


codecs.register_error("tkm_per_byte", per_byte)


def lines(path):
    with open(path, "rb") as f:
        data = f.read()
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    return [p.decode("utf-8", errors="tkm_per_byte") for p in parts]


def spm_type(path):
    """trainer_spec.model_type of a .model (1 = Unigram, 2 = BPE)."""
    from transformers.convert_slow_tokenizer import import_protobuf
    m = import_protobuf().ModelProto()
    with open(path, "rb") as f:
        m.ParseFromString(f.read())
    return m.trainer_spec.model_type


def llama_converter(path):
    """transformers' LlamaConverter on a Unigram .model, as LlamaTokenizerFast
    (from_slow) did in transformers 4.x: transformers 5 builds a BPE model
    for LlamaTokenizerFast whatever the .model's type, so the converter is
    called directly, with the slow tokenizer's defaults (legacy, prefix space)."""
    import sentencepiece
    from transformers.convert_slow_tokenizer import LlamaConverter

    class Slow:
        legacy = True
        add_prefix_space = True

        def __init__(self, p):
            self.vocab_file = p
            self.sp = sentencepiece.SentencePieceProcessor(model_file=p)

        def convert_ids_to_tokens(self, i):
            return self.sp.IdToPiece(i)

    return LlamaConverter(Slow(path)).converted()


def ties(tokenizer_json, a_path, b_path):
    """Prints one line per line where the id lists differ: its number and
    'tie' when both segmentations have exactly the same total score under
    the Unigram vocab's scores (byte and unknown ids, forced on both sides at
    the same characters, count 0), else 'NOT-A-TIE' with both totals; then a
    summary line 'differ N ties K'."""
    import json
    import re
    from fractions import Fraction
    model = json.load(open(tokenizer_json, encoding="utf-8"))["model"]
    vocab = model["vocab"]
    skip = {i for i, (p, _) in enumerate(vocab) if re.fullmatch(r"<0x[0-9A-F]{2}>", p)}
    skip.add(model.get("unk_id"))

    def total(ids):
        return sum(Fraction(vocab[i][1]) for i in ids if i not in skip)
    a = open(a_path).read().split("\n")
    b = open(b_path).read().split("\n")
    n = k = 0
    for no, (x, y) in enumerate(zip(a, b), 1):
        if x == y:
            continue
        n += 1
        tx = total([int(t) for t in x.split()])
        ty = total([int(t) for t in y.split()])
        if tx == ty:
            k += 1
            print(no, "tie")
        else:
            print(no, "NOT-A-TIE", float(tx), float(ty))
    print("differ", n, "ties", k)


def tiktoken_encode(ranks_path, pattern, text):
    """PyPI tiktoken on our own rank file, with the pattern of one of its
    encodings (taken from tiktoken itself, without downloading its ranks)."""
    import base64
    import tiktoken
    import tiktoken_ext.openai_public as pub
    pub.load_tiktoken_bpe = lambda *a, **k: {}
    pub.data_gym_to_mergeable_bpe_ranks = lambda *a, **k: {}
    pat = {"r50k": pub.r50k_base, "cl100k": pub.cl100k_base, "o200k": pub.o200k_base}[pattern]()["pat_str"]
    ranks = {}
    for line in open(ranks_path, "rb"):
        tok, rank = line.split()
        ranks[base64.b64decode(tok)] = int(rank)
    enc = tiktoken.Encoding("test-" + pattern, pat_str=pat, mergeable_ranks=ranks, special_tokens={})
    out = sys.stdout.buffer
    for line in lines(text):
        out.write(" ".join(map(str, enc.encode_ordinary(line))).encode() + b"\n")


def make_tiktoken(tokenizer_json, out_path):
    import base64
    import json
    j = json.load(open(tokenizer_json, encoding="utf-8"))
    special = {t["id"] for t in j.get("added_tokens", []) if t.get("special")}
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    k = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + k)
            k += 1
    byte_of = {chr(c): b for b, c in zip(bs, cs)}
    with open(out_path, "wb") as f:
        for piece, i in sorted(j["model"]["vocab"].items(), key=lambda x: x[1]):
            if i in special:
                continue
            raw = bytes(byte_of[ch] for ch in piece)
            f.write(base64.b64encode(raw) + b" " + str(i).encode() + b"\n")


def main(argv):
    mode = "encode"
    split_special = False
    while argv and argv[0].startswith("--"):
        opt = argv.pop(0)
        if opt == "--decode":
            mode = "decode"
        elif opt == "--transformers":
            mode = "transformers"
        elif opt == "--ties":
            mode = "ties"
        elif opt == "--tiktoken":
            mode = "tiktoken"
        elif opt == "--make-tiktoken":
            mode = "make-tiktoken"
        elif opt == "--split-special":
            split_special = True
        else:
            sys.exit("hf_encode.py: unknown option " + opt)
    if mode == "ties":
        return ties(*argv)
    if mode == "tiktoken":
        return tiktoken_encode(*argv)
    if mode == "make-tiktoken":
        return make_tiktoken(*argv)
    if len(argv) != 2:
        sys.exit(__doc__)
    out = sys.stdout.buffer
    if mode == "transformers":
        import os
        import tempfile
        from transformers import LlamaTokenizerFast
        # transformers >= 5 converts a tokenizer.model found by from_pretrained
        # (its vocab_file argument alone gives an empty vocabulary); 4.x also
        # takes LlamaTokenizerFast(vocab_file=MODEL, from_slow=True).
        if spm_type(argv[0]) == 1:
            tok = llama_converter(argv[0])
        else:
            with tempfile.TemporaryDirectory() as d:
                os.symlink(os.path.abspath(argv[0]), os.path.join(d, "tokenizer.model"))
                tok = LlamaTokenizerFast.from_pretrained(d, from_slow=True).backend_tokenizer
    else:
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(argv[0])
    if split_special:
        tok.encode_special_tokens = True
    if mode == "decode":
        for line in lines(argv[1]):
            ids = [int(x) for x in line.split()]
            out.write(tok.decode(ids, skip_special_tokens=False).encode("utf-8") + b"\n")
        return
    for line in lines(argv[1]):
        ids = tok.encode(line, add_special_tokens=False).ids
        out.write(" ".join(map(str, ids)).encode() + b"\n")


if __name__ == "__main__":
    main(sys.argv[1:])
