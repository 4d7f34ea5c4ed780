#!/usr/bin/env bash
# bench/softemb_quality.sh - held-out quality of `tokenmill softemb train` on the
# MiniLM teacher (corpora/teacher.sh) against the four baselines that
# `softemb eval` computes on the same grouped 90/10 split, for the default
# encoder (with the n-gram bag) and, with --ablation, the same encoder without
# the bag and the bag with a one-layer, 64-wide transformer. Prints each run's
# wall time and the eval tables; CPU unless --device is given.
#
# usage: bench/softemb_quality.sh [--steps N] [--device cpu|cuda] [--threads N] [--ablation]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
T=${TOKENMILL:-$here/tokenmill}
M=$here/corpora/data/teachers/minilm/model.safetensors
steps=1200 device=cpu threads=2 ablation=0
while [ $# -gt 0 ]; do
    case $1 in
    --steps) steps=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --ablation) ablation=1; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/softemb_quality.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -f "$M" ] || "$here/corpora/teacher.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {  # run LABEL ARGS...
    local label=$1; shift
    local t0 t1
    t0=$(date +%s.%N)
    "$T" softemb train --teacher "$M" --steps "$steps" --device "$device" --threads "$threads" --log-every 0 \
        --no-eval -o "$tmp/e.tkse" "$@" 2>/dev/null
    t1=$(date +%s.%N)
    printf '== %s: trained in %.1f s\n' "$label" "$(echo "$t1 - $t0" | bc)"
    "$T" softemb eval --teacher "$M" --encoder "$tmp/e.tkse" --threads "$threads" "${base[@]}"
    base=(--no-baselines)
}
base=()
run "defaults (2 layers, width 128, n-gram bag of 131072)"
if [ "$ablation" = 1 ]; then
    run "no n-gram bag" --ngram-buckets 0
    run "n-gram bag, 1 layer, width 64" --layers 1 --width 64 --heads 2
fi
