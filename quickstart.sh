#!/usr/bin/env bash
# quickstart.sh - on a fresh Debian 12 machine: install the build dependencies,
# build tokenmill, build the default English + Japanese corpus from Debian
# packages, train a nerdstash-style BPE tokenizer on it (65535 pieces, Latin
# and Japanese balanced) and print a report: categories, compression on
# held-out text beside sentencepiece's trainer, parity with spm_encode.
# Usage: ./quickstart.sh [VOCAB_SIZE]   (default: the preset's 65535)
set -euo pipefail
cd "$(dirname "$0")"
vocab=${1:-}

deps=(build-essential autoconf automake libtool pkg-config libicu-dev zlib1g-dev check
      libsentencepiece-dev sentencepiece)
missing=()
for p in "${deps[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "== building"
[ -x configure ] || autoreconf -fi >/dev/null
[ -f Makefile ] || ./configure -q
make -s -j"$(nproc)" >/dev/null

echo "== building the default corpus (corpora/data)"
# apt-get download needs package lists; a fresh machine may have none yet
if [ ! -f corpora/data/MANIFEST ] && ! apt-cache show sword-text-web >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
fi
corpora/build.sh

echo "== training a nerdstash-style tokenizer (65535 pieces, Latin and Japanese balanced)"
# hold out the last 2000 lines of each file: the report measures text the model never saw
rm -rf out/train out/heldout; mkdir -p out/train/en out/train/ja out/heldout/en out/heldout/ja
for f in corpora/data/en/*.txt corpora/data/ja/*.txt; do
  lang=$(basename "$(dirname "$f")")
  n=$(wc -l < "$f")
  head -n $((n > 4000 ? n - 2000 : n)) "$f" > "out/train/$lang/$(basename "$f")"
  tail -n $((n > 4000 ? 2000 : 0)) "$f" > "out/heldout/$lang/$(basename "$f")"
done
./tokenmill train --preset nerdstash --balance latin=0.44,japanese=0.44 ${vocab:+--vocab-size "$vocab"} \
    --input en=out/train/en --input ja=out/train/ja -o out/nerd.model

# a peer with the same size and options (no balancing: sentencepiece has none)
models=(-m out/nerd.model)
size=$(spm_export_vocab --model out/nerd.model 2>/dev/null | grep -c $'\t' || true)
if python3 -c 'import sentencepiece' 2>/dev/null || python3 -m pip install -q sentencepiece >/dev/null 2>&1; then
  echo
  echo "== training sentencepiece's BPE (PyPI, newest trainer) with the same options, for comparison"
  python3 - "$size" <<'PY' && models+=(-m out/spm.model)
import glob, sys, sentencepiece as spm
ws = "\u2581"
user = [ws * 2, ws * 4, ws * 8, ws * 12, ws * 16, "\n", "\t", "\t\t", "\u3000", "\u2003", "\u2002"]
spm.SentencePieceTrainer.train(
    input=sorted(glob.glob("out/train/*/*")), model_prefix="out/spm", model_type="bpe",
    vocab_size=int(sys.argv[1]), character_coverage=0.9999985, normalization_rule_name="identity",
    add_dummy_prefix=False, remove_extra_whitespaces=False, byte_fallback=True, split_digits=True,
    allow_whitespace_only_pieces=True, user_defined_symbols=user, pad_id=0, unk_id=1, bos_id=2, eos_id=3,
    pad_piece="<|pad|>", unk_piece="<|unknown|>", bos_piece="<|startoftext|>", eos_piece="<|endoftext|>",
    max_sentence_length=100000000, num_threads=2, minloglevel=2)
PY
fi
echo
echo "== report: compression on held-out text (never seen in training)"
./tokenmill analyze compression "${models[@]}" --corpus en=out/heldout/en --corpus ja=out/heldout/ja
echo
echo "== vocabulary categories"
./tokenmill analyze vocab "${models[@]}" | head -n 12
if command -v spm_encode >/dev/null; then
  cat out/heldout/*/* > out/heldout.txt
  spm_encode --model out/nerd.model --output_format=id < out/heldout.txt > out/spm.ids
  ./tokenmill encode -m out/nerd.model --output-format id < out/heldout.txt > out/tkm.ids
  echo
  if cmp -s out/tkm.ids out/spm.ids; then echo "ids == spm_encode (libsentencepiece) on all $(wc -l < out/heldout.txt) held-out lines"
  else echo "ids DIFFER from spm_encode"; exit 1; fi
fi
