#!/bin/sh
# heldout_split.sh - the held-out evaluation set-up for language balancing
# (issue 20): splits the default corpus into a training part and held-out
# lines, and gathers held-out text from other sources than the default corpus.
#
#   bench/heldout_split.sh OUTDIR [CORPUS [LARGE]]
#
# CORPUS: the default corpus (corpora/build.sh output; default corpora/data).
# LARGE:  corpora/build_large.sh output (default corpora/large), optional.
#
# Writes (deterministic: the same inputs give byte-identical files):
#   OUTDIR/train/en/*.txt, OUTDIR/train/ja/*.txt  every line of every corpus
#       file whose line number (1-based, per file) is not a multiple of 20
#   OUTDIR/heldout/en.txt, OUTDIR/heldout/ja.txt  the lines whose number is a
#       multiple of 20 (5%, in file-name order): same sources as training,
#       unseen lines ("in-domain")
#   OUTDIR/other/en.txt, OUTDIR/other/ja.txt  (when LARGE exists) text of
#       sources the default corpus does not use ("other sources"): English
#       debian-handbook, debian-reference-en, sword-comm-scofield,
#       sword-text-kjv; Japanese the Debian documentation (handbook, reference,
#       policy, developers-reference, FAQ, Edu, aptitude) and EDICT.
# Models for the balancing measurements are trained on OUTDIR/train only.
set -eu
out=${1:?usage: heldout_split.sh OUTDIR [CORPUS [LARGE]]}
corpus=${2:-corpora/data}
large=${3:-corpora/large}
export LC_ALL=C
for lang in en ja; do
    [ -d "$corpus/$lang" ] || { echo "heldout_split.sh: $corpus/$lang: no such directory (run corpora/build.sh)" >&2; exit 1; }
done
mkdir -p "$out/train/en" "$out/train/ja" "$out/heldout"
for lang in en ja; do
    : > "$out/heldout/$lang.txt.tmp"
    for f in $(ls "$corpus/$lang" | grep '\.txt$' | sort); do
        awk -v held="$out/heldout/$lang.txt.tmp" 'NR % 20 == 0 { print >> held; next } { print }' \
            "$corpus/$lang/$f" > "$out/train/$lang/$f.tmp"
        mv "$out/train/$lang/$f.tmp" "$out/train/$lang/$f"
    done
    mv "$out/heldout/$lang.txt.tmp" "$out/heldout/$lang.txt"
done
if [ -d "$large/train/en" ] && [ -d "$large/train/ja" ]; then
    mkdir -p "$out/other"
    ( cd "$large/train/en" && cat debian-handbook.txt debian-reference-en.txt sword-comm-scofield.txt sword-text-kjv.txt ) \
        > "$out/other/en.txt.tmp"
    ( cd "$large/train/ja" && cat aptitude-doc-ja.txt debian-edu-doc-ja.txt debian-faq-ja.txt debian-handbook-ja.txt \
        debian-policy-ja.txt debian-reference-ja.txt developers-reference-ja.txt edict.txt ) > "$out/other/ja.txt.tmp"
    mv "$out/other/en.txt.tmp" "$out/other/en.txt"
    mv "$out/other/ja.txt.tmp" "$out/other/ja.txt"
else
    echo "heldout_split.sh: $large: not built, no other-source held-out text (corpora/build_large.sh)" >&2
fi
wc -c "$out"/heldout/*.txt "$out"/other/*.txt 2>/dev/null | sed 's/^/heldout_split.sh: /' >&2
