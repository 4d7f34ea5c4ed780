#!/usr/bin/env bash
# tests/refmodels.sh - a registry stand-in for ../shared/reference-models: real
# sentencepiece models that PyPI ships, for the tests to use where that folder
# is absent (a fresh machine). PyPI mistral-common (Apache-2.0) carries Mistral
# AI's tokenizers as data files; its tokenizer.model.v1 is byte for byte the
# reference mistral.model (Mistral 7B, 32000 pieces, BPE, byte fallback), and
# mistral_instruct_tokenizer_240323.model.v3 the v3 instruct tokenizer (32768
# pieces: [INST], [TOOL_CALLS] and other control pieces). The wheel is fetched
# with pip (no dependencies, nothing installed), the two files are taken out,
# checked against their SHA-256 and written to tests/refmodels/ (git-ignored;
# never committed). The Makefile's TKM_REFMODELS points there when
# ../shared/reference-models is absent.
# Usage: tests/refmodels.sh   (run by tests/deps.sh; make check-deps)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=tests/refmodels
version=1.13.1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps --only-binary :all: -d "$tmp" "mistral-common==$version" \
  || { echo "refmodels.sh: pip could not fetch mistral-common $version: the reference-model tests will skip" >&2; exit 1; }
mkdir -p "$dest"
python3 - "$tmp" "$dest" <<'PY'
import glob, hashlib, os, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
whl = glob.glob(os.path.join(tmp, "mistral_common-*.whl"))[0]
files = {  # name here: (member of the wheel, SHA-256)
    "mistral.model": ("mistral_common/data/tokenizer.model.v1",
                      "dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055"),
    "mistral_v3.model": ("mistral_common/data/mistral_instruct_tokenizer_240323.model.v3",
                         "9addc8bdce5988448ae81b729336f43a81262160ae8da760674badab9d4c7d33"),
}
with zipfile.ZipFile(whl) as z:
    for name, (member, sha) in files.items():
        data = z.read(member)
        got = hashlib.sha256(data).hexdigest()
        if got != sha:
            sys.exit("refmodels.sh: %s in %s has SHA-256 %s, expected %s" % (member, os.path.basename(whl), got, sha))
        tmpname = os.path.join(dest, name + ".tmp")
        with open(tmpname, "wb") as f:
            f.write(data)
        os.replace(tmpname, os.path.join(dest, name))
        print("refmodels.sh: %s/%s (%d bytes) from %s" % (dest, name, len(data), os.path.basename(whl)))
PY
