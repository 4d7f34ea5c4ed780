#!/usr/bin/env bash
# tests/deps.sh - installs what the test suite uses on Debian 12 (as root or
# with sudo), so that `make check` runs every test program: build and peer
# packages (apt-get), Python peers (pip; PEP 668 systems retried with
# --break-system-packages), HTML Tidy and Chromium for the report checks, the
# default corpus (corpora/build.sh) and the MiniLM teacher (corpora/teacher.sh).
# Without ../shared/reference-models, tests/refmodels.sh takes real sentencepiece
# models from a PyPI package (mistral-common) as a stand-in for the ones it has.
# What cannot be had (no GPU; the reference models PyPI does not ship) still
# skips, saying why.
# Usage: tests/deps.sh   (or make check-deps)
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq build-essential autoconf automake libtool pkg-config libicu-dev zlib1g-dev \
    check libsubunit-dev libsentencepiece-dev sentencepiece bc unzip python3-pip python3-dev \
    openmpi-bin libopenmpi-dev >/dev/null
$sudo apt-get install -y -qq chromium tidy >/dev/null \
  || echo "note: chromium/tidy unavailable; the report checks will skip"
pips="tokenizers transformers sentencepiece protobuf tiktoken gguf numpy pytest setuptools wheel"
# shellcheck disable=SC2086
python3 -m pip install -q $pips 2>/dev/null || python3 -m pip install -q --break-system-packages $pips \
  || echo "note: pip could not install the Python peers; the tests that need them will skip"
[ -f corpora/data/MANIFEST ] || corpora/build.sh
corpora/teacher.sh || echo "note: MiniLM teacher unavailable; the softemb CLI test will skip"
[ -d ../shared/reference-models ] || tests/refmodels.sh \
  || echo "note: no stand-in reference models; the tests that need them will skip"
