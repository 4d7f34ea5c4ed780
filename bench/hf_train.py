#!/usr/bin/env python3
"""Train a Hugging Face `tokenizers` BPE model with options as close to
tokenmill / sentencepiece BPE as the library allows (see bench/README.md).

usage: hf_train.py --vocab-size N -o tokenizer.json FILE...

Threads: set RAYON_NUM_THREADS in the environment (bench/run.sh uses 2).

Lines are read without their trailing "\\n" (like sentencepiece does); the
plain `Tokenizer.train(files)` would keep the newline glued to the last word
of every line, because Metaspace only replaces ' '.
Prints one JSON object: {"vocab_size": ..., "lines": ...}.
"""
import argparse
import json
import sys

from tokenizers import Tokenizer, models, pre_tokenizers, trainers


def batches(paths, counter, size=1000):
    batch = []
    for path in paths:
        with open(path, "r", encoding="utf-8", newline="\n") as f:
            for line in f:
                if line.endswith("\n"):
                    line = line[:-1]
                batch.append(line)
                counter[0] += 1
                if len(batch) >= size:
                    yield batch
                    batch = []
    if batch:
        yield batch


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab-size", type=int, required=True)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()

    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never"),
        pre_tokenizers.Digits(individual_digits=True),
    ])
    trainer = trainers.BpeTrainer(
        vocab_size=a.vocab_size,
        special_tokens=["<unk>", "<s>", "</s>"],
        show_progress=False,
    )
    counter = [0]
    tok.train_from_iterator(batches(a.files, counter), trainer=trainer)
    tok.save(a.output)
    json.dump({"vocab_size": tok.get_vocab_size(), "lines": counter[0]},
              sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
