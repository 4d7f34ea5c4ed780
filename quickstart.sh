#!/usr/bin/env bash
# quickstart.sh - on a fresh Debian 12 machine: install the build dependencies,
# build tokenmill, build the default English + Japanese corpus from Debian
# packages, train a 32k BPE tokenizer on it and print a short report.
# Usage: ./quickstart.sh [VOCAB_SIZE]
set -euo pipefail
cd "$(dirname "$0")"
vocab=${1:-32000}

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
corpora/build.sh

echo "== training a ${vocab}-piece BPE tokenizer"
mkdir -p out
# hold out the last 2000 lines of each file for the report
rm -rf out/train out/heldout; mkdir -p out/train out/heldout
for f in corpora/data/en/*.txt corpora/data/ja/*.txt; do
  b=$(basename "$(dirname "$f")")-$(basename "$f")
  n=$(wc -l < "$f")
  head -n $((n > 4000 ? n - 2000 : n)) "$f" > "out/train/$b"
  tail -n $((n > 4000 ? 2000 : 0)) "$f" > "out/heldout/$b"
done
./tokenmill train --model-type bpe --vocab-size "$vocab" --split-digits --byte-fallback \
    --character-coverage 0.9995 -o out/quickstart.model out/train/*
echo
echo "== report: held-out text (never seen in training)"
printf '%-28s %10s %10s %8s %s\n' file bytes tokens bytes/tok "ids == spm_encode"
for f in out/heldout/*; do
  [ -s "$f" ] || continue
  ./tokenmill encode -m out/quickstart.model --output-format id < "$f" > out/tkm.ids
  bytes=$(wc -c < "$f"); toks=$(wc -w < out/tkm.ids)
  same=skipped
  if command -v spm_encode >/dev/null; then
    spm_encode --model out/quickstart.model --output_format=id < "$f" > out/spm.ids
    cmp -s out/tkm.ids out/spm.ids && same=yes || same=NO
  fi
  printf '%-28s %10d %10d %8.2f %s\n' "$(basename "$f")" "$bytes" "$toks" "$(echo "$bytes / $toks" | bc -l)" "$same"
done
echo
echo "sample: $(head -n 1 out/heldout/en-* | cut -c1-80)"
head -n 1 out/heldout/en-* | cut -c1-80 | ./tokenmill encode -m out/quickstart.model --output-format piece
