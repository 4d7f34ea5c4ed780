#!/usr/bin/env bash
# bench/softemb.sh - soft-embedding training throughput on the MiniLM teacher
# (corpora/teacher.sh): rows/s, tokens/s and achieved GFLOP/s of
# `tokenmill softemb train` for a few encoder sizes, median of the progress
# reports after the first (warm-up) one. CPU unless --device is given. Every
# configuration has the default n-gram bag (131072 rows) unless it says "no bag".
#
# usage: bench/softemb.sh [--steps N] [--device cpu|cuda] [--threads N]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
T=${TOKENMILL:-$here/tokenmill}
M=$here/corpora/data/teachers/minilm/model.safetensors
steps=120 device=cpu threads=2
while [ $# -gt 0 ]; do
    case $1 in
    --steps) steps=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/softemb.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -f "$M" ] || "$here/corpora/teacher.sh"
every=$((steps / 4))
printf '%-48s %10s %12s %10s\n' "configuration (MiniLM 30522 x 384, batch 256)" "rows/s" "tokens/s" "GFLOP/s"
run() {  # run LABEL ARGS...
    local label=$1; shift
    "$T" softemb train --teacher "$M" --steps "$steps" --log-every "$every" --device "$device" --threads "$threads" \
        --no-eval -o /dev/null "$@" 2>&1 >/dev/null | awk -v label="$label" '
        /^step/ { n++; if (n > 1) { r[n-1] = $11; t[n-1] = $13; g[n-1] = $15 } }
        function med(a, k,   i, j, x) { for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
                                       return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
        END { k = n - 1; if (k < 1) { print label ": no progress lines" > "/dev/stderr"; exit 1 }
              printf "%-48s %10.0f %12.0f %10.1f\n", label, med(r, k), med(t, k), med(g, k) }'
}
run "2 layers, width 128, cos+mse, no bag"      --width 128 --cos 1 --mse 1 --ngram-buckets 0
run "2 layers, width 128, cos+mse"              --width 128 --cos 1 --mse 1
run "2 layers, width 128, cos+mse+contrastive" --width 128
run "2 layers, width 256, cos+mse+contrastive" --width 256
# the soft-tokenizer seed's encoder (a GPU configuration): a smaller batch on CPU
run "4 layers, 8 heads, width 768 (seed), batch 32" --layers 4 --heads 8 --width 768 --cos 1 --batch 32
