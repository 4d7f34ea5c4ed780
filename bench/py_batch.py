#!/usr/bin/env python3
"""py_batch.py - batch encoding from Python: the tokenmill package
(python/, over libtokenmill) against sentencepiece's Python API
(encode(list, num_threads=...)) and HF tokenizers (encode_batch of the
model's tokenizer.json written by `tokenmill export --hf-json`), same model,
same lines, same thread count; medians of --reps runs, ids checked equal.

    pip install ./python     # or PYTHONPATH=<dir with the built package>
    python3 bench/py_batch.py --model ../shared/reference-models/llama.model \\
        --text corpora/data/en/sword-text-web.txt --lines 200000 --threads 2
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import tokenmill

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--text", action="append", required=True, help="UTF-8 text file (repeatable)")
ap.add_argument("--lines", type=int, default=100000)
ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--tokenmill-bin", default=os.environ.get("TOKENMILL", "./tokenmill"))
a = ap.parse_args()

lines = []
for f in a.text:
    with open(f, encoding="utf-8", errors="replace") as fh:
        lines += fh.read().split("\n")
lines = lines[:a.lines]
mb = sum(len(s.encode("utf-8")) for s in lines) / 1e6
print("%d lines, %.1f MB, %d threads, model %s, medians of %d" % (len(lines), mb, a.threads, a.model, a.reps))


def bench(name, fn, check):
    ts = []
    out = None
    for _ in range(a.reps):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    med = statistics.median(ts)
    ok = check(out)
    print("%-34s %8.3f s  %7.2f MB/s  ids %s" % (name, med, mb / med, "identical" if ok else "DIFFER"))
    return med


tok = tokenmill.Tokenizer(a.model)
ref = [list(map(int, x)) for x in tok.encode(lines, threads=a.threads)]
res = {}
res["tokenmill encode(list) numpy"] = bench("tokenmill encode(list) -> numpy", lambda: tok.encode(lines, threads=a.threads),
                                            lambda o: [x.tolist() for x in o] == ref)
res["tokenmill lists"] = bench("tokenmill encode(list) -> lists",
                               lambda: tok.encode(lines, threads=a.threads, as_numpy=False), lambda o: o == ref)
res["tokenmill flat"] = bench("tokenmill encode_flat (one array)", lambda: tok.encode_flat(lines, threads=a.threads),
                              lambda o: o[0].tolist() == [i for x in ref for i in x])
try:
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=a.model)
    res["sp"] = bench("sentencepiece %s encode(list)" % spm.__version__,
                      lambda: sp.encode(lines, num_threads=a.threads), lambda o: o == ref)
except ImportError:
    print("sentencepiece not installed: skipped")
try:
    os.environ.setdefault("RAYON_NUM_THREADS", str(a.threads))  # before tokenizers starts its pool
    import tokenizers
    with tempfile.TemporaryDirectory() as d:
        j = os.path.join(d, "tokenizer.json")
        subprocess.run([a.tokenmill_bin, "export", "--hf-json", "-m", a.model, "-o", j], check=True)
        hf = tokenizers.Tokenizer.from_file(j)
        hf.encode_special_tokens = True
    res["hf"] = bench("tokenizers %s encode_batch" % tokenizers.__version__,
                      lambda: [e.ids for e in hf.encode_batch(lines, add_special_tokens=False)], lambda o: o == ref)
except ImportError:
    print("tokenizers not installed: skipped")
base = res["tokenmill encode(list) numpy"]
for k in ("sp", "hf"):
    if k in res:
        print("tokenmill (numpy) is %.2fx %s" % (res[k] / base, "sentencepiece" if k == "sp" else "tokenizers"))
sys.exit(0)
