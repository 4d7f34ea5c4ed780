#!/usr/bin/env bash
# corpora/build.sh - build tokenmill's default training corpus.
#
# Usage: corpora/build.sh [--force] [OUTDIR]
#
# Downloads a few Debian packages with `apt-get download` (nothing is
# installed, no dependencies are pulled), unpacks them with `dpkg-deb -x`
# into a temporary directory and extracts plain text:
#
#   OUTDIR/en/<package>.txt   English (SWORD Bible/commentary modules, fortunes)
#   OUTDIR/ja/<package>.txt   Japanese (manpages-ja roff sources)
#   OUTDIR/MANIFEST           "package version bytes sha256 relative/path"
#
# Every .txt file is UTF-8, one paragraph per line, LF line ends, no empty
# lines.  OUTDIR defaults to the "data" directory next to this script.
# If OUTDIR/MANIFEST matches the files on disk, nothing is done unless
# --force is given.
#
# Environment:
#   CC             C compiler for the helper programs (default: cc)
#   SWORD_EXTRACT  prebuilt sword_extract binary (else compiled from source)
#   ROFF2TXT       prebuilt roff2txt binary (else compiled from source)
#   TMPDIR         where the temporary work directory is created

set -euo pipefail
export LC_ALL=C
umask 022

EN_PKGS=(fortunes fortunes-min sword-comm-mhcc sword-comm-tdavid sword-text-web)
JA_PKGS=(manpages-ja manpages-ja-dev)

prog=build.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

msg() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 1
}

usage() {
	cat <<EOF
Usage: $0 [--force] [OUTDIR]

Build the default tokenmill corpus (English + Japanese plain text) from
Debian packages into OUTDIR (default: $here/data).

  --force     rebuild even if OUTDIR/MANIFEST is up to date
  -h, --help  show this help
EOF
}

force=0
outdir=
while (($# > 0)); do
	case $1 in
	--force) force=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	--)
		shift
		break
		;;
	-*)
		usage >&2
		die "unknown option: $1"
		;;
	*)
		[[ -z $outdir ]] || die "more than one OUTDIR given"
		outdir=$1
		;;
	esac
	shift
done
if (($# > 0)); then
	[[ -z $outdir && $# -eq 1 ]] || die "more than one OUTDIR given"
	outdir=$1
fi
outdir=${outdir:-$here/data}

# ---------------------------------------------------------------------------
# Up-to-date check: every expected package listed once, every file present
# with the recorded size and sha256.

manifest_ok() {
	local manifest=$outdir/MANIFEST pkg bytes sum path extra f
	local -a seen=()
	[[ -f $manifest ]] || return 1
	while read -r pkg _ bytes sum path extra; do
		[[ -n $path && -z $extra ]] || return 1
		f=$outdir/$path
		[[ -f $f ]] || return 1
		[[ "$(stat -c %s "$f")" == "$bytes" ]] || return 1
		[[ "$(sha256sum <"$f")" == "$sum  -" ]] || return 1
		seen+=("$pkg")
	done <"$manifest"
	[[ "$(printf '%s\n' "${seen[@]}" | sort)" == \
		"$(printf '%s\n' "${EN_PKGS[@]}" "${JA_PKGS[@]}" | sort)" ]]
}

if ((!force)) && manifest_ok; then
	echo "corpus up to date: $outdir (use --force to rebuild)"
	exit 0
fi

for tool in apt-get dpkg-deb sha256sum iconv find sort xargs awk tr stat; do
	command -v "$tool" >/dev/null 2>&1 || die "required tool not found: $tool"
done

mkdir -p "$outdir/en" "$outdir/ja"
outdir=$(cd "$outdir" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/tokenmill-corpus.XXXXXX")
partials=()
cleanup() {
	local f
	for f in "${partials[@]}"; do
		rm -f "$f"
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# Helper programs

# tool NAME ENVVAR: path of a usable binary for corpora/NAME.c
tool() {
	local name=$1 var=$2 bin
	bin=${!var:-}
	if [[ -n $bin ]]; then
		[[ -x $bin ]] || die "$var=$bin is not an executable file"
		printf '%s\n' "$bin"
		return
	fi
	# a binary built in the source tree (e.g. by make) is fine if current
	if [[ -x $here/$name && $here/$name -nt $here/$name.c ]]; then
		printf '%s\n' "$here/$name"
		return
	fi
	local -a cc
	read -r -a cc <<<"${CC:-cc}"
	"${cc[@]}" -O2 -o "$work/$name" "$here/$name.c" -lz >&2 ||
		die "cannot compile $here/$name.c (needs a C compiler and zlib headers, e.g. apt-get install gcc zlib1g-dev)"
	printf '%s\n' "$work/$name"
}

sword_extract=$(tool sword_extract SWORD_EXTRACT)
roff2txt=$(tool roff2txt ROFF2TXT)

# ---------------------------------------------------------------------------
# Download and unpack

all_pkgs=("${EN_PKGS[@]}" "${JA_PKGS[@]}")
mkdir -p "$work/debs"
apt_opts=(-q)
if ((EUID == 0)); then
	# avoid the "_apt cannot access the download directory" warning
	apt_opts+=(-o APT::Sandbox::User=root)
fi
msg "downloading ${all_pkgs[*]}"
if ! (cd "$work/debs" && apt-get download "${apt_opts[@]}" "${all_pkgs[@]}") \
	>"$work/apt.log" 2>&1; then
	sed 's/^/  /' "$work/apt.log" >&2
	die "apt-get download failed (run 'apt-get update' if packages are not found)"
fi

declare -A deb version
for pkg in "${all_pkgs[@]}"; do
	debs=("$work/debs/${pkg}_"*.deb)
	[[ -f ${debs[0]} ]] || die "package $pkg was not downloaded"
	((${#debs[@]} == 1)) || die "more than one .deb for $pkg: ${debs[*]}"
	deb[$pkg]=${debs[0]}
	version[$pkg]=$(dpkg-deb -f "${deb[$pkg]}" Version)
	[[ -n ${version[$pkg]} ]] || die "${deb[$pkg]}: no Version field"
	mkdir -p "$work/x/$pkg"
	dpkg-deb -x "${deb[$pkg]}" "$work/x/$pkg" ||
		die "cannot unpack ${deb[$pkg]}"
done

# ---------------------------------------------------------------------------
# Extractors: each writes the package's text to stdout.

# Fortune files: entries separated by "%" lines; each entry becomes one
# line.  Backspace overstrike (underline/bold) is resolved, other control
# characters become spaces.
extract_fortunes() {
	local root=$1/usr/share/games/fortunes f
	local -a files=()
	[[ -d $root ]] || die "$pkg: no usr/share/games/fortunes directory"
	# plain files only: *.u8 are symlinks, *.dat are strfile indexes;
	# ascii-art is pictures, not prose; off/ would be the offensive set
	while IFS= read -r -d '' f; do
		files+=("$f")
	done < <(find "$root" -type f ! -name '*.dat' ! -name 'ascii-art' \
		! -path '*/off/*' ! -name '*rot13*' -print0 | sort -z)
	((${#files[@]} > 0)) || die "$pkg: no fortune files found"
	for f in "${files[@]}"; do
		tr '\001-\007\011\013-\037\177' ' ' <"$f" |
			awk -v bs="$(printf '\b')" '
				function flush() {
					gsub(/ +/, " ", buf)
					sub(/^ /, "", buf)
					sub(/ $/, "", buf)
					if (buf != "")
						print buf
					buf = ""
				}
				/^%$/ { flush(); next }
				{
					line = $0
					while (index(line, bs) > 0)
						if (!sub("[^" bs "]" bs, "", line))
							sub(bs, "", line)
					buf = buf " " line
				}
				END { flush() }'
	done
}

# SWORD modules: every mods.d/*.conf of the package names a module.
extract_sword() {
	local root=$1/usr/share/sword conf datapath drv cipher compress
	local -a confs=() flags
	[[ -d $root/mods.d ]] || die "$pkg: no usr/share/sword/mods.d directory"
	while IFS= read -r -d '' conf; do
		confs+=("$conf")
	done < <(find "$root/mods.d" -type f -name '*.conf' -print0 | sort -z)
	((${#confs[@]} > 0)) || die "$pkg: no SWORD module .conf files"
	for conf in "${confs[@]}"; do
		datapath=$(sed -n 's/\r$//; s/^DataPath=//p' "$conf" | head -n 1)
		drv=$(sed -n 's/\r$//; s/^ModDrv=//p' "$conf" | head -n 1)
		cipher=$(sed -n 's/\r$//; s/^CipherKey=//p' "$conf" | head -n 1)
		compress=$(sed -n 's/\r$//; s/^CompressType=//p' "$conf" | head -n 1)
		[[ -n $datapath ]] || die "$conf: no DataPath"
		[[ -z $cipher ]] || die "$conf: enciphered modules are not supported"
		[[ ${compress:-ZIP} == ZIP ]] ||
			die "$conf: CompressType=$compress is not supported (only ZIP)"
		case $drv in
		zText | zCom) flags=() ;;
		zText4 | zCom4) flags=(-4) ;;
		*) die "$conf: ModDrv=$drv is not supported (only zText/zCom[4])" ;;
		esac
		datapath=${datapath#./}
		"$sword_extract" "${flags[@]}" "$root/${datapath%/}"
	done
}

# Japanese manual pages (gzip-compressed roff, symlinks skipped).
extract_man() {
	local root=$1/usr/share/man/ja
	[[ -d $root ]] || die "$pkg: no usr/share/man/ja directory"
	find "$root" -type f -name '*.gz' -print0 | sort -z |
		xargs -0 -r "$roff2txt"
}

# ---------------------------------------------------------------------------
# Build

manifest_lines=()

# build LANG PKG EXTRACTOR
build() {
	local lang=$1 pkg=$2 fn=$3
	local rel=$lang/$pkg.txt
	local dest=$outdir/$rel tmp
	tmp=$outdir/$lang/.$pkg.txt.tmp.$$
	partials+=("$tmp")
	msg "extracting $pkg ${version[$pkg]}"
	"$fn" "$work/x/$pkg" >"$tmp"
	[[ -s $tmp ]] || die "$pkg: no text extracted"
	iconv -f UTF-8 -t UTF-8 "$tmp" >/dev/null 2>&1 ||
		die "$pkg: extracted text is not valid UTF-8"
	! grep -q '^$' "$tmp" || die "$pkg: extracted text has empty lines"
	local bytes sum
	bytes=$(stat -c %s "$tmp")
	sum=$(sha256sum <"$tmp")
	sum=${sum%% *}
	mv -f "$tmp" "$dest"
	manifest_lines+=("$pkg ${version[$pkg]} $bytes $sum $rel")
}

for pkg in "${EN_PKGS[@]}"; do
	case $pkg in
	fortunes*) build en "$pkg" extract_fortunes ;;
	sword-*) build en "$pkg" extract_sword ;;
	*) die "no extractor for $pkg" ;;
	esac
done
for pkg in "${JA_PKGS[@]}"; do
	build ja "$pkg" extract_man
done

tmp=$outdir/.MANIFEST.tmp.$$
partials+=("$tmp")
printf '%s\n' "${manifest_lines[@]}" >"$tmp"
mv -f "$tmp" "$outdir/MANIFEST"

# ---------------------------------------------------------------------------
# Summary

echo "corpus written to $outdir"
total_bytes=0
total_lines=0
for line in "${manifest_lines[@]}"; do
	read -r pkg _ bytes _ rel <<<"$line"
	lines=$(wc -l <"$outdir/$rel")
	total_bytes=$((total_bytes + bytes))
	total_lines=$((total_lines + lines))
	awk -v p="$rel" -v b="$bytes" -v l="$lines" \
		'BEGIN { printf "  %-26s %8.2f MB %9d lines\n", p, b / 1e6, l }'
done
awk -v b="$total_bytes" -v l="$total_lines" -v s="$SECONDS" \
	'BEGIN { printf "  %-26s %8.2f MB %9d lines  (%d s)\n", "total", b / 1e6, l, s }'
