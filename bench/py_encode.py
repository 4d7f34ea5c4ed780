#!/usr/bin/env python3
"""Encode a text file line by line with PyPI sentencepiece or HF tokenizers
and time only the batch encode call.

usage: py_encode.py {spm|hf} MODEL INPUT [--threads N] [--ids-out FILE]

  spm: MODEL is a sentencepiece .model; sp.encode(lines, num_threads=N)
  hf:  MODEL is a tokenizer.json; tok.encode_batch(lines). The thread count
       comes from RAYON_NUM_THREADS, which must be set before this starts
       (bench/run.sh does); --threads is only recorded.

Lines are split on "\\n" only (as spm_encode / tokenmill encode do), without
the newline. --ids-out writes one line of space-separated ids per input line
(after the timed part), so the result can be compared with spm_encode's.
Prints one JSON object: encode_s, bytes (file size), text_bytes (without
newlines), lines, tokens, threads, threads_honoured.
"""
import argparse
import json
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=("spm", "hf"))
    ap.add_argument("model")
    ap.add_argument("input")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ids-out")
    a = ap.parse_args()

    with open(a.input, "rb") as f:
        data = f.read()
    lines = data.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    honoured = True

    if a.kind == "spm":
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=a.model)
        t0 = time.perf_counter()
        try:
            ids = sp.encode(lines, out_type=int, num_threads=a.threads)
        except TypeError:  # sentencepiece < 0.2: no num_threads
            honoured = False
            t0 = time.perf_counter()
            ids = sp.encode(lines, out_type=int)
        t1 = time.perf_counter()
    else:
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(a.model)
        t0 = time.perf_counter()
        encs = tok.encode_batch(lines, add_special_tokens=False)
        t1 = time.perf_counter()
        ids = [e.ids for e in encs]

    tokens = sum(len(x) for x in ids)
    if a.ids_out:
        with open(a.ids_out, "w", encoding="ascii") as f:
            for x in ids:
                f.write(" ".join(map(str, x)))
                f.write("\n")

    json.dump({
        "encode_s": t1 - t0,
        "bytes": len(data),
        "text_bytes": len(data) - data.count(b"\n"),
        "lines": len(lines),
        "tokens": tokens,
        "threads": a.threads,
        "threads_honoured": honoured,
    }, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
