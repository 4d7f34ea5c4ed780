#!/usr/bin/env bash
# bench/softemb_gpu.sh - the seed configuration of the soft-embedding encoder
# on a GPU (4 layers, 8 heads, width 768, T = 50, batch 640, 32000 random
# teacher rows x 4096) in fp32 and TF32, plus a small configuration on the CPU
# backend; steps/s, TFLOP/s and MFU from bench/softemb_step (see its header
# for the FLOP formula: 3 x forward, forward per sequence
# layers * (24 T D^2 + 4 T^2 D) + 2 D E, plus 4 B R E with the contrastive loss;
# seed: 3 * 2.868e9 * 640 = 5.51 TFLOP per step). Needs a GPU for the CUDA part
# (it is skipped, with a note, when there is none). Run by hand:
#
# usage: bench/softemb_gpu.sh [--steps N] [--no-cpu] [--no-gpu]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
B=${SOFTEMB_STEP:-$here/bench/softemb_step}
steps=20 cpu=1 gpu=1
while [ $# -gt 0 ]; do
    case $1 in
    --steps) steps=$2; shift 2 ;;
    --no-cpu) cpu=0; shift ;;
    --no-gpu) gpu=0; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/softemb_gpu.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -x "$B" ] || make -C "$here" bench/softemb_step >&2
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

run() {  # run TITLE ARGS...
    local title=$1 rc=0; shift
    echo "== $title"
    "$B" "$@" || rc=$?
    [ $rc -eq 77 ] && echo "   (skipped: no CUDA backend here)"
    [ $rc -eq 0 ] || [ $rc -eq 77 ] || return $rc
    echo
}
seed=(--layers 4 --heads 8 --width 768 --bytes 48 --batch 640 --teacher-width 4096 --teacher-rows 32000)
if [ $gpu = 1 ]; then
    run "seed, fp32 (cuBLAS pedantic fp32)" --device cuda "${seed[@]}" --steps "$steps"
    run "seed, TF32 tensor cores" --device cuda --tf32 "${seed[@]}" --steps "$steps"
    run "seed, TF32, + contrastive loss over all 32000 rows" --device cuda --tf32 "${seed[@]}" --ctr 0.1 --steps "$steps"
    run "seed, TF32, + n-gram bag of 131072 rows (tokenmill's default)" --device cuda --tf32 "${seed[@]}" \
        --ngram-buckets 131072 --steps "$steps"
    # where the TF32 step's time goes, op by op (softemb_step --profile: each op
    # synchronized, so its steps are slower than the timed ones); never fatal
    run "seed, TF32, op profile (3 synchronized steps)" --device cuda --tf32 "${seed[@]}" --steps 3 --warmup 2 \
        --profile 3 || echo "   (op profile failed: exit $?)"
fi
if [ $cpu = 1 ]; then
    run "CPU: 2 layers, 4 heads, width 128, T 18, batch 128, 30000 x 384" --device cpu --layers 2 --heads 4 \
        --width 128 --bytes 16 --batch 128 --teacher-width 384 --teacher-rows 30000 --steps 10 --warmup 2
    run "CPU: the same + n-gram bag of 131072 rows" --device cpu --layers 2 --heads 4 \
        --width 128 --bytes 16 --batch 128 --teacher-width 384 --teacher-rows 30000 --steps 10 --warmup 2 \
        --ngram-buckets 131072
fi
