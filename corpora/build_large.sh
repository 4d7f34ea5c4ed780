#!/usr/bin/env bash
# corpora/build_large.sh - the ~100 MB real-text regression corpus (English +
# Japanese, about 75/25 by bytes) for training measurements beyond the 36 MB
# default corpus (bench/unigram.sh --large, issue: Unigram collapse).
#
# Usage: corpora/build_large.sh [OUTDIR]     (default: corpora/large)
#
# OUTDIR/train/en/*.txt, OUTDIR/train/ja/*.txt   training text
# OUTDIR/heldout/en.txt, OUTDIR/heldout/ja.txt   every 50th line of every file,
#                                                 removed from the training text
# OUTDIR/MANIFEST                                 package version bytes path
#
# Sources (Debian 12 packages, downloaded with apt-get download, never installed):
#   the default corpus (corpora/build.sh: fortunes, SWORD WEB/MHCC/Treasury of
#   David, manpages-ja), plus
#   en: dict-gcide (GCIDE dictionary text), sword-text-kjv, sword-comm-scofield,
#       debian-handbook (en-US HTML), debian-reference-en (text)
#   ja: debian-handbook (ja-JP HTML), debian-reference-ja (text),
#       developers-reference-ja, debian-policy-ja, debian-faq-ja,
#       debian-edu-doc-ja, aptitude-doc-ja (HTML), edict (EUC-JP dictionary,
#       first 9 MB of UTF-8 lines)
# HTML is reduced to text by a tag stripper (sed), good enough for statistics.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/large}
prog=build_large.sh
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }

EN_PKGS=(dict-gcide sword-text-kjv sword-comm-scofield debian-handbook debian-reference-en)
JA_PKGS=(debian-reference-ja developers-reference-ja debian-policy-ja debian-faq-ja
	debian-edu-doc-ja aptitude-doc-ja edict)

work=$(mktemp -d "${TMPDIR:-/tmp}/tokenmill-large.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# the default corpus first (its own script, its own up-to-date check)
"$here/build.sh" "$work/base" >&2 || die "corpora/build.sh failed"

mkdir -p "$work/debs" "$work/raw/en" "$work/raw/ja"
apt_opts=(-q)
((EUID != 0)) || apt_opts+=(-o APT::Sandbox::User=root)
(cd "$work/debs" && apt-get download "${apt_opts[@]}" "${EN_PKGS[@]}" "${JA_PKGS[@]}") \
	>"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; die "apt-get download failed"; }
declare -A ver
for pkg in "${EN_PKGS[@]}" "${JA_PKGS[@]}"; do
	deb=("$work/debs/${pkg}_"*.deb)
	[[ -f ${deb[0]} ]] || die "package $pkg was not downloaded"
	ver[$pkg]=$(dpkg-deb -f "${deb[0]}" Version)
	mkdir -p "$work/x/$pkg"
	dpkg-deb -x "${deb[0]}" "$work/x/$pkg"
done

sword=$work/sword_extract
"${CC:-cc}" -O2 -o "$sword" "$here/sword_extract.c" -lz || die "cannot compile sword_extract.c"

# text cleanup shared by every extractor: one paragraph per line, no empty lines
squeeze() { tr '\001-\011\013-\037\177' ' ' | sed -e 's/  */ /g; s/^ //; s/ $//' | grep -v '^$' || true; }

# HTML -> text: drop scripts/styles, tags, a few entities; block tags end lines
html_text() { # invalid UTF-8 bytes dropped (iconv -c)
	sed -e 's/\r//g' "$@" | tr '\n' ' ' |
		sed -e 's#<script[^>]*>[^<]*</script>##g; s#<style[^>]*>[^<]*</style>##g' \
			-e 's#</\(p\|div\|h[1-6]\|li\|pre\|tr\|dt\|dd\|title\|table\)>#&\n#g; s#<br */*>#\n#g' \
			-e 's/<[^>]*>//g; s/&lt;/</g; s/&gt;/>/g; s/&quot;/"/g; s/&nbsp;/ /g; s/&#160;/ /g; s/&amp;/\&/g' |
		iconv -c -f UTF-8 -t UTF-8 | squeeze
}

sword_text() { # module dirs under usr/share/sword/modules
	local d
	find "$1/usr/share/sword/modules" -name '*.bzs' -printf '%h\n' | sort -u | while read -r d; do
		"$sword" "$d"
	done | squeeze
}

x=$work/x
# GCIDE: dictd text; entries are blocks separated by blank lines; join each block
zcat "$x/dict-gcide/usr/share/dictd/gcide.dict.dz" | iconv -c -f UTF-8 -t UTF-8 | sed -e 's/^ *//' |
	awk 'BEGIN{RS=""} {gsub(/\n/, " "); print}' | squeeze >"$work/raw/en/dict-gcide.txt"
sword_text "$x/sword-text-kjv" >"$work/raw/en/sword-text-kjv.txt"
sword_text "$x/sword-comm-scofield" >"$work/raw/en/sword-comm-scofield.txt"
html_text $(find "$x/debian-handbook/usr/share/doc/debian-handbook/html/en-US" -name '*.html' | sort) \
	>"$work/raw/en/debian-handbook.txt"
zcat "$x/debian-reference-en/usr/share/debian-reference/debian-reference.en.txt.gz" | squeeze \
	>"$work/raw/en/debian-reference-en.txt"

html_text $(find "$x/debian-handbook/usr/share/doc/debian-handbook/html/ja-JP" -name '*.html' | sort) \
	>"$work/raw/ja/debian-handbook-ja.txt"
zcat "$x/debian-reference-ja/usr/share/debian-reference/debian-reference.ja.txt.gz" | squeeze \
	>"$work/raw/ja/debian-reference-ja.txt"
for pkg in developers-reference-ja debian-policy-ja debian-faq-ja debian-edu-doc-ja aptitude-doc-ja; do
	html_text $(find "$x/$pkg" -name '*.html' -type f | sort) >"$work/raw/ja/$pkg.txt"
done
iconv -f EUC-JP -t UTF-8 "$x/edict/usr/share/edict/edict" | squeeze >"$work/edict.txt"
head -c 9000000 "$work/edict.txt" | sed '$d' >"$work/raw/ja/edict.txt"

cp "$work/base/en/"*.txt "$work/raw/en/"
cp "$work/base/ja/"*.txt "$work/raw/ja/"

rm -rf "$out.tmp"
mkdir -p "$out.tmp/train/en" "$out.tmp/train/ja" "$out.tmp/heldout"
for lang in en ja; do
	for f in "$work/raw/$lang/"*.txt; do
		iconv -f UTF-8 -t UTF-8 "$f" >/dev/null || die "$f is not UTF-8"
		awk -v h="$out.tmp/heldout/$lang.txt" 'NR % 50 == 0 { print >> h; next } { print }' \
			"$f" >"$out.tmp/train/$lang/$(basename "$f")"
	done
done
{
	for pkg in "${EN_PKGS[@]}" "${JA_PKGS[@]}"; do echo "$pkg ${ver[$pkg]}"; done
	(cd "$out.tmp" && find . -type f -name '*.txt' | sort | xargs stat -c '%s %n')
} >"$out.tmp/MANIFEST"
rm -rf "$out"
mv "$out.tmp" "$out"
du -sb "$out/train/en" "$out/train/ja" "$out/heldout" >&2
