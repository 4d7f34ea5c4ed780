#!/usr/bin/env bash
# bench/gpu_session.sh - the whole GPU check of issue 21 in one run on a lent
# GPU machine that cannot build tokenmill: unpacks the bundle made by
# bench/gpu_bundle.sh and runs, each under its own time limit, writing every
# output into OUTDIR and a compact summary (OUTDIR/SUMMARY.txt) at the end:
#   a  nvidia-smi; tests/check_kernels (every op and a full step against the
#      CPU reference, each measured error printed)
#   b  bench/softemb_gpu.sh: the seed configuration (4 x 8 x 768, T 50, batch
#      640, 32000 x 4096 random teacher) in fp32 and TF32: steps/s, TFLOP/s, MFU
#   c  bench/softemb_torch.py: the same encoder and loss in PyTorch on the same
#      GPU (fp32, TF32, bf16 eager, then torch.compile as time allows): ratios
#   d  quality on MiniLM (f16 teacher from the bundle): the default encoder
#      (1200 steps, fp32) and a larger one (4 layers, width 384, TF32, as many
#      steps as fit, best step by validation), `softemb eval` on the held-out split
#   e  determinism: the same short training twice gives the same bytes (cmp)
#   f  if time is left and nsys exists: the seed step's kernel time table
# Setup or a failing/timed-out a or b stops the run (the CUDA backend is not
# usable); c, d and e are independent of each other. GPU_SESSION_KEEP_GOING=1
# goes on after any failure. The summary is written in every case.
#
# usage: bench/gpu_session.sh [--bundle FILE.tar.xz] [--out OUTDIR] [--steps "a b c d e"]
#                             [--budget SECONDS] [--dry-run]
#        bench/gpu_session.sh --summary-only OUTDIR   (the summary again)
#   --bundle   default out/gpu/tkm-gpu.tar.xz (bench/gpu_bundle.sh)
#   --out      default $OUT when set, else out/gpu-session
#   --budget   wall-clock seconds for everything (default 480); each step also
#              has its own limit (GPU_SESSION_LIMIT_A ... _E override them)
#   --dry-run  (or GPU_SESSION_DRYRUN=1; automatic when no NVIDIA device is
#              visible): the same steps on the CPU with tiny shapes, so that the
#              bundle, the wrappers and this script are tested where there is no GPU
#   GPU_SESSION_MODE=loader|system-cxx runs the binaries through the bundled
#   glibc, or directly with this machine's libstdc++, even
#   where they run directly (to test that path); GPU_SESSION_KEEP_WORK=1 keeps
#   the unpacked bundle and the trained encoders (out/gpu-work.*)
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self=$here/bench/gpu_session.sh

# ---------------------------------------------------------------- one step (child)
if [ "${1:-}" = "--run-step" ]; then
    step=$2
    # environment from the parent: W (unpacked bundle), O (output dir), DRY,
    # PY (python with torch or empty), NPROC, STEP_DEADLINE (epoch seconds)
    TM=$W/bin/tokenmill
    TEACHER=$W/teacher/minilm-f16.gguf
    left() { echo $(( STEP_DEADLINE - $(date +%s) )); }
    if [ "$DRY" = 1 ]; then DEV=cpu; else DEV=cuda; fi
    case $step in
    a)
        if [ "$DRY" = 1 ]; then
            echo "dry run: no nvidia-smi; check_kernels runs CPU against CPU (TKM_KERNELS_SELFTEST=1)" | tee "$O/a_nvidia-smi.txt"
            export TKM_KERNELS_SELFTEST=1
        else
            nvidia-smi >"$O/a_nvidia-smi.txt" 2>&1
            nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem,power.limit \
                --format=csv >>"$O/a_nvidia-smi.txt" 2>&1
            cat "$O/a_nvidia-smi.txt"
        fi
        TKM_KERNELS_VERBOSE=1 "$W/bin/check_kernels" >"$O/a_check_kernels.txt" 2>&1
        rc=$?
        cat "$O/a_check_kernels.txt"
        exit $rc
        ;;
    b)
        if [ "$DRY" = 1 ]; then
            # the seed configuration's code path at tiny shapes on the CPU
            "$W/bin/softemb_step" --device cpu --layers 2 --heads 4 --width 64 --bytes 14 --batch 32 \
                --teacher-width 96 --teacher-rows 500 --steps 3 --warmup 1 --profile 2 2>&1 | tee "$O/b_softemb_gpu.txt"
            exit "${PIPESTATUS[0]}"
        fi
        SOFTEMB_STEP=$W/bin/softemb_step bash "$here/bench/softemb_gpu.sh" --no-cpu --steps 20 >"$O/b_softemb_gpu.txt" 2>&1
        rc=$?
        cat "$O/b_softemb_gpu.txt"
        # softemb_gpu.sh maps "no CUDA backend" (77) to success; here it is a failure
        grep -q 'skipped: no CUDA backend' "$O/b_softemb_gpu.txt" && rc=1
        exit $rc
        ;;
    c)
        [ -n "$PY" ] || { echo "no python with torch on this machine: PyTorch reference skipped" | tee "$O/c_torch.txt"; exit 77; }
        if [ "$DRY" = 1 ]; then
            shapes=(--device cpu --layers 2 --heads 4 --width 64 --bytes 14 --batch 32 --teacher-width 96
                --teacher-rows 500 --steps 3 --warmup 1 --threads 2)
            "$PY" -u "$here/bench/softemb_torch.py" --check >"$O/c_torch.txt" 2>&1 || { cat "$O/c_torch.txt"; exit 1; }
        else
            shapes=(--device cuda)
            : >"$O/c_torch.txt"
        fi
        "$PY" -u "$here/bench/softemb_torch.py" "${shapes[@]}" --precision fp32,tf32,bf16 >>"$O/c_torch.txt" 2>&1
        rc=$?
        # torch.compile where time is left (it compiles for a while; never fatal)
        t=$(( $(left) - 5 ))
        if [ "$rc" = 0 ] && [ "$t" -gt 45 ]; then
            timeout -k 5 "$t" "$PY" -u "$here/bench/softemb_torch.py" "${shapes[@]}" --precision tf32,bf16 \
                --only-compile --time-limit $(( t / 2 )) >>"$O/c_torch.txt" 2>&1 ||
                echo "== torch.compile runs: exit $? (timeout 124; ignored)" >>"$O/c_torch.txt"
        else
            echo "== torch.compile runs skipped (${t} s left)" >>"$O/c_torch.txt"
        fi
        cat "$O/c_torch.txt"
        exit $rc
        ;;
    d)
        # default encoder, fp32 gemm: the configuration of the CPU table (1200 steps)
        if [ "$DRY" = 1 ]; then sd=10 tf=""; else sd=1200 tf=""; fi
        t0=$(date +%s.%N)
        "$TM" softemb train --teacher "$TEACHER" --device "$DEV" $tf --threads "$NPROC" --steps "$sd" \
            --log-every 100 --no-eval -o "$W/d_default.tkse" >"$O/d_default_train.txt" 2>&1 || {
            cat "$O/d_default_train.txt"; exit 1; }
        t1=$(date +%s.%N)
        awk -v a="$t0" -v b="$t1" 'BEGIN { printf "trained in %.1f s\n", b - a }' >>"$O/d_default_train.txt"
        cat "$O/d_default_train.txt"
        "$TM" softemb eval --teacher "$TEACHER" --encoder "$W/d_default.tkse" --threads "$NPROC" \
            >"$O/d_default_eval.txt" 2>&1 || { cat "$O/d_default_eval.txt"; exit 1; }
        cat "$O/d_default_eval.txt"
        # the larger encoder: its step rate measured first, then as many steps as fit
        if [ "$DRY" = 1 ]; then
            big=(--layers 1 --heads 2 --width 64) probe=(--device cpu --steps 2 --warmup 1)
        else
            big=(--layers 4 --heads 6 --width 384) probe=(--device cuda --tf32 --steps 10 --warmup 2)
        fi
        "$W/bin/softemb_step" "${probe[@]}" "${big[@]}" --bytes 32 --batch 256 --teacher-width 384 \
            --teacher-rows 25000 --ctr 1 --ngram-buckets 131072 >"$O/d_large_probe.txt" 2>&1 || {
            cat "$O/d_large_probe.txt"; exit 1; }
        sps=$(awk '/^steps\/s/ { print $2 }' "$O/d_large_probe.txt")
        # leave ~60 s for the eval (CPU) and the validation passes; 80% of the rest for steps
        avail=$(( $(left) - 60 ))
        if [ "$DRY" = 1 ]; then sl=12; else
            sl=$(awk -v s="$sps" -v t="$avail" 'BEGIN { n = int(s * t * 0.8 / 100) * 100; if (n > 8000) n = 8000; print n }')
        fi
        echo "large encoder: probe ${sps} steps/s, ${avail} s available -> ${sl} steps" | tee "$O/d_large_train.txt"
        [ "$sl" -ge 300 ] || [ "$DRY" = 1 ] || { echo "not enough time left for the larger encoder"; exit 1; }
        [ "$DRY" = 1 ] && tf="" || tf=--tf32
        t0=$(date +%s.%N)
        if ! "$TM" softemb train --teacher "$TEACHER" --device "$DEV" $tf --threads "$NPROC" "${big[@]}" \
            --steps "$sl" --valid-frac 0.05 --log-every 250 --no-eval -o "$W/d_large.tkse" >>"$O/d_large_train.txt" 2>&1; then
            # diverged at the default learning rate: once more at 1e-3 in the time left
            grep -q diverged "$O/d_large_train.txt" || { cat "$O/d_large_train.txt"; exit 1; }
            t1=$(date +%s.%N)
            sl=$(awk -v s="$sl" -v a="$t0" -v b="$t1" -v t="$(( $(left) - 60 ))" \
                'BEGIN { n = int(s / (b - a) * t * 0.8 / 100) * 100; if (n > s) n = s; print n }')
            echo "diverged; again with --lr 1e-3 for $sl steps" >>"$O/d_large_train.txt"
            [ "$sl" -ge 300 ] || { cat "$O/d_large_train.txt"; exit 1; }
            t0=$(date +%s.%N)
            "$TM" softemb train --teacher "$TEACHER" --device "$DEV" $tf --threads "$NPROC" "${big[@]}" --lr 1e-3 \
                --steps "$sl" --valid-frac 0.05 --log-every 250 --no-eval -o "$W/d_large.tkse" >>"$O/d_large_train.txt" 2>&1 || {
                cat "$O/d_large_train.txt"; exit 1; }
        fi
        t1=$(date +%s.%N)
        awk -v a="$t0" -v b="$t1" 'BEGIN { printf "trained in %.1f s\n", b - a }' >>"$O/d_large_train.txt"
        cat "$O/d_large_train.txt"
        "$TM" softemb eval --teacher "$TEACHER" --encoder "$W/d_large.tkse" --threads "$NPROC" --no-baselines \
            >"$O/d_large_eval.txt" 2>&1
        rc=$?
        cat "$O/d_large_eval.txt"
        exit $rc
        ;;
    e)
        # the larger encoder's shapes (bigger gemms than the default) in fp32 and
        # TF32, each trained twice, plus the fp32 run with another host thread count
        if [ "$DRY" = 1 ]; then
            cfg=(--layers 1 --heads 2 --width 32 --steps 6) tfs=("")
        else
            cfg=(--layers 4 --heads 6 --width 384 --steps 40) tfs=("" "--tf32")
        fi
        rc=0
        : >"$O/e_determinism.txt"
        for tf in "${tfs[@]}"; do
            name=fp32; [ -n "$tf" ] && name=tf32
            for r in 1 2 3; do
                th=$NPROC; [ "$r" = 3 ] && th=3
                [ "$r" = 3 ] && [ -n "$tf" ] && continue
                "$TM" softemb train --teacher "$TEACHER" --device "$DEV" $tf --threads "$th" "${cfg[@]}" \
                    --valid-frac 0.05 --valid-every 20 --seed 7 --log-every 0 --no-eval -o "$W/e_${name}_$r.tkse" \
                    >>"$O/e_determinism.txt" 2>&1 || { echo "run $name $r failed" >>"$O/e_determinism.txt"; rc=1; continue; }
                sum=$(sha256sum <"$W/e_${name}_$r.tkse" | cut -c1-16)
                echo "$name run $r (threads $th): sha256 $sum" >>"$O/e_determinism.txt"
            done
            for r in 2 3; do
                [ -f "$W/e_${name}_$r.tkse" ] || continue
                if cmp "$W/e_${name}_1.tkse" "$W/e_${name}_$r.tkse" >/dev/null 2>&1 ||
                    { ! command -v cmp >/dev/null && [ "$(sha256sum <"$W/e_${name}_1.tkse")" = "$(sha256sum <"$W/e_${name}_$r.tkse")" ]; }; then
                    echo "IDENTICAL $name run 1 vs run $r" >>"$O/e_determinism.txt"
                else
                    echo "DIFFERENT $name run 1 vs run $r" >>"$O/e_determinism.txt"; rc=1
                fi
            done
        done
        cat "$O/e_determinism.txt"
        exit $rc
        ;;
    f)
        # where the seed step's time goes (TF32): Nsight Systems' kernel table, if nsys is here
        NSYS=$(command -v nsys 2>/dev/null || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -n 1)
        [ -n "$NSYS" ] && [ "$DRY" != 1 ] || { echo "no nsys (or dry run): profile skipped" | tee "$O/f_nsys.txt"; exit 77; }
        "$NSYS" profile --force-overwrite true -o "$W/prof" --trace cuda --sample none --cpuctxsw none \
            "$W/bin/softemb_step" --device cuda --tf32 --layers 4 --heads 8 --width 768 --bytes 48 --batch 640 \
            --teacher-width 4096 --teacher-rows 32000 --steps 5 --warmup 2 >"$O/f_nsys.txt" 2>&1 || { cat "$O/f_nsys.txt"; exit 1; }
        "$NSYS" stats --report cuda_gpu_kern_sum --report cuda_api_sum "$W/prof.nsys-rep" 2>&1 | cut -c1-220 >>"$O/f_nsys.txt"
        rc=$?
        head -c 20000 "$O/f_nsys.txt"
        exit $rc
        ;;
    esac
    echo "unknown step $step" >&2
    exit 2
fi

# ---------------------------------------------------------------- summary
# summarize OUTDIR: the compact summary of a session's outputs on stdout
summarize() {
    local O=$1 s st sec T0 dry
    T0=$(awk -F'\t' '$1 == "start" { print $2 }' "$O/steps.txt" 2>/dev/null)
    dry=$(awk -F'\t' '$1 == "start" { print $3 }' "$O/steps.txt" 2>/dev/null)
    echo "==================== GPU SESSION SUMMARY$([ "$dry" = dry ] && echo ' (DRY RUN: CPU, tiny shapes)')"
    echo "total $([ -n "$T0" ] && echo $(( $(date +%s) - T0 )) || echo '?') s; $(grep '^mode' "$O/env.txt" 2>/dev/null); outputs in $O"
    grep -E '^(host|driver|cublas13|python)' "$O/env.txt" 2>/dev/null | sed 's/^/  /'
    for s in setup a b c d e f; do
        st=$(awk -F'\t' -v s="$s" '$1 == s { print $2 }' "$O/steps.txt" 2>/dev/null)
        sec=$(awk -F'\t' -v s="$s" '$1 == s { print $3 }' "$O/steps.txt" 2>/dev/null)
        printf '  %-6s %-34s %s\n' "$s" "${st:-not run}" "${sec:+$sec s}"
    done
    if [ -f "$O/a_check_kernels.txt" ]; then
        echo "-- a: check_kernels"
        grep -E '^[0-9]+%: Checks' "$O/a_check_kernels.txt" | sed 's/^/  /'
        awk '/^error / { n++; if ($0 ~ /FAIL/) f++; } /^error full step/ { sub(/^error /, ""); print "  " $0 }
             END { printf "  %d comparisons printed, %d over tolerance\n", n, f }' "$O/a_check_kernels.txt"
        awk '/^error / { for (i = 3; i <= NF; i++) if ($i == "tolerance") e = $(i - 1); if (e + 0 > m + 0) { m = e; w = $0 } }
             END { if (w) { sub(/^error /, "", w); print "  largest: " w } }' "$O/a_check_kernels.txt"
        grep -E '^SKIP|:[FE]:' "$O/a_check_kernels.txt" | head -n 5 | sed 's/^/  /'
    fi
    if [ -f "$O/b_softemb_gpu.txt" ]; then
        echo "-- b: tokenmill, seed configuration (4 x 8 x 768, T 50, batch 640, 32000 x 4096)"
        awk '/^== /{ t = substr($0, 4) } /^steps\/s/ { s = $2 } /^achieved/ { f = $2 }
             /^MFU/ { printf "  %-62s %8.3f steps/s %8.2f TFLOP/s  MFU %s bf16-989, %s TF32-494, %s fp32-67\n", t, s, f, $2, $10, $15; s = "" }
             END { if (s != "") printf "  %-62s %8.3f steps/s %8.3f TFLOP/s\n", t, s, f }' "$O/b_softemb_gpu.txt"
        # the op profile (softemb_step --profile): its header and the 14 costliest ops
        awk '/^profile / { p = 1; n = 0; print "  " $0; next } p && /^  / { if (n++ < 15) print "  " $0; next } { p = 0 }' "$O/b_softemb_gpu.txt"
    fi
    if [ -f "$O/c_torch.txt" ]; then
        echo "-- c: PyTorch reference (same shapes, loss, AdamW) and tokenmill/PyTorch steps/s"
        awk '/^RESULT torch/ { for (i = 3; i <= NF; i++) { split($i, kv, "="); r[kv[1]] = kv[2] }
               printf "  torch %-5s %-8s %8.3f steps/s %8.2f TFLOP/s  %.2f GiB\n", r["precision"], r["compile"] == 1 ? "compiled" : "eager", r["steps_per_s"], r["tflops"], r["mem_gib"] }
             /FAILED|skipped|SKIP/ { print "  " $0 }' "$O/c_torch.txt"
        if [ -f "$O/b_softemb_gpu.txt" ]; then
            awk 'FNR == NR { if ($0 ~ /^== /) t = $0; if ($0 ~ /^steps\/s/) { if (t ~ /fp32/) tf = $2; else if (t ~ /TF32 tensor cores$/) tt = $2 } next }
                 /^RESULT torch/ { for (i = 3; i <= NF; i++) { split($i, kv, "="); r[kv[1]] = kv[2] }
                   k = r["precision"] (r["compile"] == 1 ? "+compile" : ""); v[k] = r["steps_per_s"]; if (r["steps_per_s"] > best) { best = r["steps_per_s"]; bk = k } }
                 END {
                   if (tf && v["fp32"]) printf "  ratio fp32: tokenmill %.3f / torch fp32 eager %.3f = %.2fx\n", tf, v["fp32"], tf / v["fp32"]
                   if (tt && v["tf32"]) printf "  ratio TF32: tokenmill %.3f / torch tf32 eager %.3f = %.2fx\n", tt, v["tf32"], tt / v["tf32"]
                   if (tt && v["tf32+compile"]) printf "  ratio TF32: tokenmill %.3f / torch tf32 compiled %.3f = %.2fx\n", tt, v["tf32+compile"], tt / v["tf32+compile"]
                   if (tt && best) printf "  ratio best: tokenmill TF32 %.3f / torch best (%s) %.3f = %.2fx\n", tt, bk, best, tt / best
                 }' "$O/b_softemb_gpu.txt" "$O/c_torch.txt"
        fi
    fi
    if [ -f "$O/d_default_eval.txt" ] || [ -f "$O/d_large_train.txt" ]; then
        echo "-- d: MiniLM (f16), held-out retrieval; CPU default for reference: top1 0.159, top10 0.554, MRR 0.304"
        echo "                                top1-cos top10-cos     MRR mean-cos  rel-L2   train-s"
        for f in default large; do
            [ -f "$O/d_${f}_eval.txt" ] || continue
            tr=$(awk '/^trained in/ { print $3 }' "$O/d_${f}_train.txt" 2>/dev/null)
            awk -v f="$f" -v tr="$tr" '/^held-out/ { h = 1; next } /^$/ { h = 0 } /^train \(/ { h = 0 }
                 h && NF >= 9 { name = ($1 == "softemb") ? "softemb " f : $1;
                   if ($1 == "softemb" || f == "default") printf "  %-28s %8s %9s %7s %8s %7s %9s\n", name, $2, $3, $6, $7, $8, ($1 == "softemb" ? tr : "") }' "$O/d_${f}_eval.txt"
        done
        for f in default large; do
            [ -f "$O/d_${f}_train.txt" ] || continue
            echo "  $f:"
            grep -h -E '^tokenmill softemb train: [0-9]+ rows|^large encoder|^diverged|trained on|^step ' "$O/d_${f}_train.txt" |
                grep -v '^step ' | sed -E 's/^(tokenmill softemb train: )?/    /' | cut -c1-180
            grep -h '^step ' "$O/d_${f}_train.txt" | tail -n 1 | sed 's/^/    last: /' | cut -c1-180
            grep -h '^valid ' "$O/d_${f}_train.txt" | tail -n 1 | sed 's/^/    last: /'
            grep -h -E '^(encoder|validation):' "$O/d_${f}_eval.txt" 2>/dev/null | sed 's/^/    /' | cut -c1-180
        done
    fi
    if [ -f "$O/e_determinism.txt" ]; then
        echo "-- e: determinism"
        grep -E 'IDENTICAL|DIFFERENT|failed|sha256' "$O/e_determinism.txt" | sed 's/^/  /'
    fi
    if [ -f "$O/f_nsys.txt" ] && grep -q 'Time (%)' "$O/f_nsys.txt"; then
        echo "-- f: seed step, TF32, 7 steps under nsys: the top kernels (f_nsys.txt has all)"
        awk '/cuda_gpu_kern_sum/ { k = 1 } k && /Time \(%\)/ { h = 1; next } k && h && NF == 0 { exit }
             k && h && $1 ~ /^[0-9.]+$/ && n < 12 { n++; name = ""; for (i = 9; i <= NF; i++) name = name " " $i;
               printf "  %6s%% %12s ns %6s calls %s\n", $1, $2, $3, substr(name, 1, 90) }' "$O/f_nsys.txt"
    fi
    echo "===================="
}

if [ "${1:-}" = "--summary-only" ]; then summarize "${2:-out/gpu-session}"; exit 0; fi

# ---------------------------------------------------------------- the session (parent)
bundle=$here/out/gpu/tkm-gpu.tar.xz
O=${OUT:-$here/out/gpu-session}
steps=${GPU_SESSION_STEPS:-a b c d e f}
budget=${GPU_SESSION_BUDGET:-480}
DRY=${GPU_SESSION_DRYRUN:-0}
while [ $# -gt 0 ]; do
    case $1 in
    --bundle) bundle=$2; shift 2 ;;
    --out) O=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) sed -n '2,28p' "$self" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_session.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
case $bundle in /*) ;; *) bundle=$PWD/$bundle ;; esac
mkdir -p "$O" || exit 1
O=$(cd "$O" && pwd)
T_START=$(date +%s)
DEADLINE=$(( T_START + budget ))
exec > >(tee -a "$O/session.log") 2>&1
declare -A status secs
summary_extra=()
say() { printf '%s [%4ds] %s\n' "gpu_session" $(( $(date +%s) - T_START )) "$*"; }

if [ "$DRY" != 1 ] && ! command -v nvidia-smi >/dev/null 2>&1 && ! ls /dev/nvidia0 >/dev/null 2>&1; then
    say "no NVIDIA device visible (no nvidia-smi, no /dev/nvidia0): dry run on the CPU"
    DRY=1
fi
NPROC=$(nproc 2>/dev/null || echo 4)
[ "$DRY" = 1 ] && NPROC=2

# the wrappers $W/bin/NAME that run the bundled binaries with library path $LP
make_wrappers() {
    mkdir -p "$W/bin"
    local n
    for n in tokenmill check_kernels softemb_step; do
        if [ $MODE != loader ]; then
            printf '#!/bin/sh\nTKM_CUDA_MODULE=%s/lib/tokenmill-cuda.so LD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec %s/libexec/%s "$@"\n' \
                "$W" "$LP" "$W" "$n" >"$W/bin/$n"
        else
            printf '#!/bin/sh\nTKM_CUDA_MODULE=%s/lib/tokenmill-cuda.so exec %s/lib-glibc/ld-linux-x86-64.so.2 --library-path %s:%s/lib-glibc%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} %s/libexec/%s "$@"\n' \
                "$W" "$W" "$LP" "$W" "${DRIVER_DIR:+:$DRIVER_DIR}" "$W" "$n" >"$W/bin/$n"
        fi
        chmod +x "$W/bin/$n"
    done
}

# ---- setup: unpack, pick how to run the binaries, find cuBLAS
setup() {
    say "bundle $bundle ($(du -h "$bundle" 2>/dev/null | cut -f1))"
    [ -f "$bundle" ] || { say "no bundle: carry out/gpu/tkm-gpu.tar.xz (bench/gpu_bundle.sh makes it)"; return 1; }
    # unpacked inside the tree (out/ is ignored) rather than /tmp, which may be noexec
    mkdir -p "$here/out" 2>/dev/null
    WROOT=$(mktemp -d "$here/out/gpu-work.XXXXXX" 2>/dev/null || mktemp -d "${TMPDIR:-/tmp}/tkm-gpu-session.XXXXXX") || return 1
    W=$WROOT
    if command -v xz >/dev/null 2>&1; then
        tar -C "$W" -xJf "$bundle" || return 1
    else
        python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$bundle" "$W" || return 1
    fi
    W=$W/tkm-gpu
    cp "$W/BUILDINFO" "$O/BUILDINFO"
    (cd "$W" && sed -n '/^[0-9a-f]\{64\}  /p' BUILDINFO | grep -v ' ./BUILDINFO$' | sha256sum -c --quiet -) || { say "bundle checksums differ"; return 1; }
    {
        echo "host      $(uname -srm); $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
        echo "glibc     $(ldd --version 2>&1 | head -n 1)"
        echo "cpus      $(nproc); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
        echo "nvcc      $(nvcc --version 2>/dev/null | tail -n 1)"
        echo "driver    $(nvidia-smi --query-gpu=driver_version,name --format=csv,noheader 2>/dev/null | head -n 1)"
    } >"$O/env.txt"
    # cuBLAS 13 (the module's NEEDED); libcuda comes from the system
    local cands=() d
    [ -n "${CUDA_HOME:-}" ] && cands+=("$CUDA_HOME/lib64" "$CUDA_HOME/lib")
    [ -n "${CUDA_PATH:-}" ] && cands+=("$CUDA_PATH/lib64")
    if command -v nvcc >/dev/null 2>&1; then
        d=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
        cands+=("$d/lib64" "$d/lib" "$d/targets/x86_64-linux/lib")
    fi
    cands+=(/usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64 /usr/lib/x86_64-linux-gnu /usr/lib64)
    for py in python3 python; do
        command -v $py >/dev/null 2>&1 || continue
        for sp in $($py -c 'import site, sys; print(" ".join(site.getsitepackages() + [site.getusersitepackages()] + sys.path))' 2>/dev/null); do
            cands+=("$sp/nvidia/cu13/lib" "$sp/nvidia/cublas/lib")
        done
    done
    CUBLAS_DIR=
    for d in "${cands[@]}"; do
        [ -e "$d/libcublas.so.13" ] && [ -e "$d/libcublasLt.so.13" ] && { CUBLAS_DIR=$d; break; }
    done
    if [ -z "$CUBLAS_DIR" ]; then
        d=$(ldconfig -p 2>/dev/null | awk '$1 == "libcublas.so.13" { print $NF; exit }')
        [ -n "$d" ] && CUBLAS_DIR=$(dirname "$d")
    fi
    say "cuBLAS 13: ${CUBLAS_DIR:-not found}"
    echo "cublas13  ${CUBLAS_DIR:-not found}" >>"$O/env.txt"
    DRIVER_DIR=$(ldconfig -p 2>/dev/null | awk '$1 == "libcuda.so.1" && /x86-64/ { print $NF; exit }')
    [ -n "$DRIVER_DIR" ] && DRIVER_DIR=$(dirname "$DRIVER_DIR")
    echo "libcuda   ${DRIVER_DIR:-not in ldconfig}" >>"$O/env.txt"
    # direct with the bundled libstdc++; direct with this machine's (where its
    # glibc is older than the bundled libstdc++ needs); or through the bundled
    # loader and glibc. GPU_SESSION_MODE=system-cxx|loader starts further down.
    local force=${GPU_SESSION_MODE:-} base=$W/lib${CUBLAS_DIR:+:$CUBLAS_DIR}
    MODE=
    if [ -z "$force" ]; then
        LP=$W/lib:$W/lib-cxx${CUBLAS_DIR:+:$CUBLAS_DIR}
        if LD_LIBRARY_PATH=$LP "$W/libexec/tokenmill" --version >"$O/setup_probe.txt" 2>&1; then MODE=direct; else
            say "not directly with the bundled libstdc++: $(head -n 2 "$O/setup_probe.txt" | tr '\n' ' ')"; fi
    fi
    if [ -z "$MODE" ] && [ "$force" != loader ]; then
        LP=$base
        if LD_LIBRARY_PATH=$LP "$W/libexec/tokenmill" --version >"$O/setup_probe.txt" 2>&1; then MODE=direct-system-libstdc++; else
            say "not directly with this machine's libstdc++: $(head -n 2 "$O/setup_probe.txt" | tr '\n' ' ')"; fi
    fi
    if [ -z "$MODE" ]; then
        MODE=loader
        LP=$W/lib:$W/lib-cxx${CUBLAS_DIR:+:$CUBLAS_DIR}
        "$W/lib-glibc/ld-linux-x86-64.so.2" --library-path "$LP:$W/lib-glibc" "$W/libexec/tokenmill" --version \
            >"$O/setup_probe.txt" 2>&1 || { say "not with the bundled glibc either: $(head -n 2 "$O/setup_probe.txt")"; return 1; }
    fi
    say "binaries run ($MODE): $(head -n 1 "$O/setup_probe.txt")"
    echo "mode      $MODE" >>"$O/env.txt"
    make_wrappers
    PY=
    for py in python3 python; do
        command -v $py >/dev/null 2>&1 && $py -c 'import torch' >/dev/null 2>&1 && { PY=$(command -v $py); break; }
    done
    echo "python    ${PY:-no python with torch} $([ -n "$PY" ] && $PY -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)' 2>/dev/null)" >>"$O/env.txt"
    cat "$O/env.txt"
    [ "$DRY" = 1 ] && return 0
    # can the module open the device? (a 1-step toy run)
    local probe=("$W/bin/softemb_step" --device cuda --layers 1 --heads 1 --width 32 --bytes 4 --batch 2
        --teacher-width 8 --teacher-rows 4 --steps 1 --warmup 0)
    if ! "${probe[@]}" >"$O/setup_cuda_probe.txt" 2>&1; then
        say "CUDA backend probe failed: $(tail -n 1 "$O/setup_cuda_probe.txt")"
        local ok=0 d other
        # a driver older than CUDA 13: the toolkit's forward-compatibility libcuda, if any
        if grep -q insufficient "$O/setup_cuda_probe.txt"; then
            for d in "${cands[@]}"; do
                d=$(dirname "$d")/compat
                [ -e "$d/libcuda.so.1" ] || continue
                say "trying the forward-compatible driver library in $d"
                LP=$LP:$d make_wrappers
                if "${probe[@]}" >>"$O/setup_cuda_probe.txt" 2>&1; then LP=$LP:$d; ok=1; break; fi
            done
            [ $ok = 1 ] || make_wrappers
        fi
        # no cuBLAS 13 but another major version: relink the module's object against it
        other=$(for d in "${cands[@]}"; do ls "$d"/libcublas.so.[0-9]* 2>/dev/null; done | grep -E 'libcublas\.so\.[0-9]+$' | head -n 1)
        if [ $ok = 0 ] && [ -z "$CUBLAS_DIR" ] && [ -n "$other" ] && command -v g++ >/dev/null 2>&1; then
            say "relinking tokenmill-cuda.so against $other"
            if g++ -shared -o "$W/lib/tokenmill-cuda.so" "$W/obj/se_ops_cuda.o" "$W/obj/libcudart_static.a" \
                -L"$(dirname "$other")" -l:"$(basename "$other")" -lrt -ldl -lpthread >>"$O/setup_cuda_probe.txt" 2>&1; then
                LP=$LP:$(dirname "$other")
                make_wrappers
                "${probe[@]}" >>"$O/setup_cuda_probe.txt" 2>&1 && ok=1
            fi
        fi
        [ $ok = 1 ] || { say "the CUDA backend cannot run here: $(tail -n 1 "$O/setup_cuda_probe.txt")"; return 1; }
    fi
    say "CUDA backend works: $(grep '^device' "$O/setup_cuda_probe.txt")"
}

# run_step NAME LIMIT CRITICAL: the step in a child under min(LIMIT, time left)
stopped=""
run_step() {
    local s=$1 lim=$2 crit=$3 rc t0
    case " $steps " in *" $s "*) ;; *) status[$s]="not asked"; return 0 ;; esac
    if [ -n "$stopped" ]; then status[$s]="not run ($stopped)"; printf '%s\t%s\t\n' "$s" "${status[$s]}" >>"$O/steps.txt"; return 0; fi
    local left=$(( DEADLINE - $(date +%s) - 15 ))
    [ "$lim" -gt "$left" ] && lim=$left
    if [ "$lim" -lt 20 ]; then status[$s]="not run (session budget spent)"; printf '%s\t%s\t\n' "$s" "${status[$s]}" >>"$O/steps.txt"; return 0; fi
    say "---- step $s (limit ${lim} s)"
    t0=$(date +%s)
    W=$W O=$O DRY=$DRY PY=$PY NPROC=$NPROC STEP_DEADLINE=$(( t0 + lim )) \
        timeout -k 10 "$lim" bash "$self" --run-step "$s"
    rc=$?
    secs[$s]=$(( $(date +%s) - t0 ))
    case $rc in
    0) status[$s]=ok ;;
    77) status[$s]="skipped" ;;
    124|137) status[$s]="TIMEOUT after ${lim} s" ;;
    *) status[$s]="FAILED (exit $rc)" ;;
    esac
    say "---- step $s: ${status[$s]} in ${secs[$s]} s"
    printf '%s\t%s\t%s\n' "$s" "${status[$s]}" "${secs[$s]}" >>"$O/steps.txt"
    if [ "$crit" = 1 ] && [ "$rc" != 0 ] && [ "${GPU_SESSION_KEEP_GOING:-0}" != 1 ]; then
        stopped="step $s failed"
    fi
}

W= WROOT= PY= MODE=?
say "out $O; steps: $steps; budget ${budget} s$([ "$DRY" = 1 ] && echo '; DRY RUN on the CPU (tiny shapes)')"
t0=$(date +%s)
if setup >"$O/setup.log" 2>&1; then status[setup]=ok; else status[setup]=FAILED; stopped="setup failed"; fi
secs[setup]=$(( $(date +%s) - t0 ))
printf 'start\t%s\t%s\nsetup\t%s\t%s\n' "$T_START" "$([ "$DRY" = 1 ] && echo dry)" "${status[setup]}" "${secs[setup]}" >"$O/steps.txt"
cat "$O/setup.log"

run_step a "${GPU_SESSION_LIMIT_A:-90}" 1
run_step b "${GPU_SESSION_LIMIT_B:-100}" 1
run_step c "${GPU_SESSION_LIMIT_C:-100}" 0
run_step d "${GPU_SESSION_LIMIT_D:-200}" 0
run_step e "${GPU_SESSION_LIMIT_E:-75}" 0
run_step f "${GPU_SESSION_LIMIT_F:-60}" 0

summarize "$O" >"$O/SUMMARY.txt" 2>&1
cat "$O/SUMMARY.txt"
[ -n "$WROOT" ] && [ -d "$WROOT" ] && [ "${GPU_SESSION_KEEP_WORK:-0}" != 1 ] && rm -rf "$WROOT"
case "${status[setup]} ${status[a]:-} ${status[b]:-}" in *FAIL*|*TIMEOUT*) exit 1 ;; esac
exit 0
