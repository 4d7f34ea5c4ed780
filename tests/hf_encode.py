#!/usr/bin/env python3
"""hf_encode.py - encodes or decodes a text file line by line with the HF
`tokenizers` library, for parity tests against spm_encode / tokenmill.

  hf_encode.py [--split-special] TOKENIZER_JSON TEXT      ids per line, as spm_encode --output_format=id
  hf_encode.py --decode TOKENIZER_JSON IDS                text per line, as spm_decode --input_format=id
  hf_encode.py --transformers MODEL TEXT                  ids from transformers' own conversion

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


def main(argv):
    mode = "encode"
    split_special = False
    while argv and argv[0].startswith("--"):
        opt = argv.pop(0)
        if opt == "--decode":
            mode = "decode"
        elif opt == "--transformers":
            mode = "transformers"
        elif opt == "--split-special":
            split_special = True
        else:
            sys.exit("hf_encode.py: unknown option " + opt)
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
