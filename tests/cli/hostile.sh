#!/usr/bin/env bash
# hostile.sh - regressions for defects found by fuzzing and a bad-input sweep
# (issue 14): whitespace pieces survive decode, empty input, error paths that
# must not leak, interrupted `encode -o` leaves no temp file, truncated models
# are reported. Needs no corpus: every input is generated here.
. "$(dirname "$0")/lib.sh"
T=$TKM_BIN

# a small model whose pieces include TAB and CR (byte fallback on)
for i in $(seq 1 50); do printf '\tA\r\n\t\tcode(%d);\n\tx = y\t# tab %d\n' "$i" "$i"; done > "$TMP/tabs.txt"
"$T" train -q --vocab-size 300 --byte-fallback --allow-whitespace-only-pieces -o "$TMP/m.model" "$TMP/tabs.txt"

# F6: decode --input-format piece splits on the separator encode writes (one
# space), not on TAB or CR, which are pieces themselves
"$T" encode -m "$TMP/m.model" < "$TMP/tabs.txt" > "$TMP/tabs.pieces"
grep -q $'\t' "$TMP/tabs.pieces" || fail "the test model has no TAB piece"
"$T" decode -m "$TMP/m.model" --input-format piece < "$TMP/tabs.pieces" > "$TMP/tabs.back"
cmp -s "$TMP/tabs.txt" "$TMP/tabs.back" && pass "piece round trip keeps TAB and CR pieces" \
  || fail "piece round trip lost whitespace pieces: $(diff <(od -c "$TMP/tabs.txt") <(od -c "$TMP/tabs.back") | head -4)"
if command -v "${SPM_DECODE:-spm_decode}" > /dev/null 2>&1; then
  "${SPM_DECODE:-spm_decode}" --model "$TMP/m.model" < "$TMP/tabs.pieces" > "$TMP/tabs.spm"
  cmp -s "$TMP/tabs.spm" "$TMP/tabs.back" && pass "piece decode equals spm_decode" || fail "piece decode differs from spm_decode"
fi
printf '  \t  \n' > "$TMP/sp.pieces"
printf '\t\n' > "$TMP/sp.want"
"$T" decode -m "$TMP/m.model" --input-format piece < "$TMP/sp.pieces" > "$TMP/sp.out"
cmp -s "$TMP/sp.want" "$TMP/sp.out" && pass "runs of spaces between pieces are skipped, TAB kept" \
  || fail "spaces/TAB: $(od -c "$TMP/sp.out" | head -2)"
printf '5\t6 7\r\n' > "$TMP/ids.tab"
"$T" decode -m "$TMP/m.model" --input-format id < "$TMP/ids.tab" > /dev/null && pass "ids may still be separated by TAB or CR" \
  || fail "ids separated by TAB/CR refused"

# F3: empty input and an empty first line in u16 mode (NULL + 0 bytes to
# memcpy/fwrite: UBSan aborted, leaving OUT.tmp.PID)
: > "$TMP/empty.txt"
if "$T" encode -m "$TMP/m.model" -o "$TMP/empty.out" "$TMP/empty.txt" 2> "$TMP/err" && [ -f "$TMP/empty.out" ] \
   && [ ! -s "$TMP/empty.out" ]; then pass "empty input: empty output file"
else fail "empty input: $(cat "$TMP/err")"; fi
printf '\nhello\n' > "$TMP/first_empty.txt"
if "$T" encode -m "$TMP/m.model" --output-format u16 --doc-per-line -o "$TMP/fe.u16" "$TMP/first_empty.txt" 2> "$TMP/err" \
   && [ "$(wc -c < "$TMP/fe.u16")" -gt 2 ]; then pass "u16: empty first line"
else fail "u16 with an empty first line: $(cat "$TMP/err")"; fi
leftovers() { ls "$TMP"/*.tmp.* 2> /dev/null || true; }
[ -z "$(leftovers)" ] && pass "no temp files left by the runs above" || fail "temp files left: $(leftovers)"

# F4: an output that cannot be created: clear error, and nothing leaks (the
# encoders used to stay allocated); checked by valgrind where present, by
# LeakSanitizer in the sanitizer build
set +e; "$T" encode -m "$TMP/m.model" -o /nonexistent/dir/x "$TMP/tabs.txt" 2> "$TMP/err"; rc=$?; set -e
[ "$rc" = 1 ] && grep -q "/nonexistent/dir/x.tmp.[0-9]*: cannot create" "$TMP/err" && pass "encode -o into a missing directory: exit 1" \
  || fail "encode -o /nonexistent: exit $rc, $(cat "$TMP/err")"
LT=$(dirname "$T")/libtool
if command -v valgrind > /dev/null 2>&1 && [ -x "$LT" ] && ! grep -q __asan "$(dirname "$T")/.libs/tokenmill" 2> /dev/null; then
  set +e
  "$LT" --mode=execute valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
    "$T" encode -m "$TMP/m.model" -o /nonexistent/dir/x "$TMP/tabs.txt" > /dev/null 2> "$TMP/vg"
  rc=$?; set -e
  [ "$rc" = 1 ] && pass "encode -o /nonexistent: no leak (valgrind)" || fail "encode -o /nonexistent under valgrind: exit $rc $(head -c 600 "$TMP/vg")"
else
  echo "note: valgrind not used (absent, or a sanitizer build: LeakSanitizer checked the run above)"
fi

# Interrupted output: encode -o reads a FIFO, so it is mid-run with OUT.tmp.PID
# open when the signal comes. SIGTERM/SIGINT/SIGHUP: the handler removes it.
# A shell started with a signal ignored (nohup, some CI runners) passes the
# ignore on, and bash cannot undo it: env --default-signal (coreutils 8.31+)
# gives tokenmill the default dispositions back.
DEFSIG=()
if env --default-signal=HUP true 2> /dev/null; then DEFSIG=(env --default-signal=TERM,INT,HUP); fi
start_blocked() { # $1 = output; sets PID
  rm -f "$TMP/fifo"; mkfifo "$TMP/fifo"
  # job control on: without it, background jobs start with SIGINT ignored
  # (and tokenmill leaves an ignored signal ignored)
  set -m
  "${DEFSIG[@]}" "$T" encode -m "$TMP/m.model" -o "$1" "$TMP/fifo" 2> /dev/null &
  PID=$!
  set +m
  exec 3> "$TMP/fifo"
  head -n 20 "$TMP/tabs.txt" >&3
  for _ in $(seq 1 100); do [ -e "$1.tmp.$PID" ] && return 0; sleep 0.05; done
  return 1
}
for sig in TERM INT HUP; do
  out=$TMP/sig_$sig.out
  if ! start_blocked "$out"; then fail "SIG$sig: $out.tmp.$PID never appeared"; exec 3>&-; wait "$PID" || true; continue; fi
  kill -s "$sig" "$PID"
  for _ in $(seq 1 100); do kill -0 "$PID" 2> /dev/null || break; sleep 0.05; done
  if kill -0 "$PID" 2> /dev/null; then # still running: the signal is ignored
    kill -s KILL "$PID"; exec 3>&-; wait "$PID" 2> /dev/null || true
    fail "SIG$sig: tokenmill kept running 5 s after the signal (was SIG$sig ignored when this test started?)"; continue
  fi
  set +e; wait "$PID"; rc=$?; set -e
  exec 3>&-
  if [ "$rc" -gt 128 ] && [ ! -e "$out.tmp.$PID" ] && [ ! -e "$out" ]; then pass "SIG$sig during encode -o: no partial file (exit $rc)"
  else fail "SIG$sig: exit $rc, left: $(ls "$out"* 2> /dev/null)"; fi
done
# SIGKILL cannot be caught: the next run writing the same OUT removes temp
# files of processes that are gone, and keeps others
out=$TMP/kill.out
if start_blocked "$out"; then
  kill -s KILL "$PID"; wait "$PID" 2> /dev/null || true; exec 3>&-
  [ -e "$out.tmp.$PID" ] && pass "SIGKILL leaves $out.tmp.PID (as expected)" || fail "SIGKILL: no temp file to clean?"
  dead=$PID
  : > "$out.tmp.$$"        # this shell is alive: kept
  : > "$out.tmp.x12"       # not the pattern: kept
  : > "$TMP/other.out.tmp.$dead"  # another output's temp file: kept
  "$T" encode -m "$TMP/m.model" -o "$out" "$TMP/tabs.txt"
  if [ ! -e "$out.tmp.$dead" ] && [ -e "$out.tmp.$$" ] && [ -e "$out.tmp.x12" ] && [ -e "$TMP/other.out.tmp.$dead" ] && [ -s "$out" ]; then
    pass "next run removed the dead process's temp file, kept the others"
  else fail "stale temp cleanup: $(ls "$TMP"/*.tmp.* 2> /dev/null)"; fi
  rm -f "$out.tmp.$$" "$out.tmp.x12" "$TMP/other.out.tmp.$dead"
else
  fail "SIGKILL: temp file never appeared"; exec 3>&-; wait "$PID" || true
fi
# SIGXFSZ (a file-size limit): an ordinary write error, the temp file removed
for i in $(seq 1 40); do cat "$TMP/tabs.txt"; done > "$TMP/big.txt"
set +e; (ulimit -f 8; exec "$T" encode -m "$TMP/m.model" -o "$TMP/fsz.out" "$TMP/big.txt") 2> "$TMP/err"; rc=$?; set -e
if [ "$rc" = 1 ] && grep -q "File too large" "$TMP/err" && [ -z "$(ls "$TMP"/fsz.out* 2> /dev/null)" ]; then
  pass "file-size limit: clear error, no partial file"
else fail "file-size limit: exit $rc, $(head -c 300 "$TMP/err"), left: $(ls "$TMP"/fsz.out* 2> /dev/null)"; fi

# Truncated models: the pieces come first, so a .model cut between two pieces
# still parses (as a smaller Unigram model with default settings): the CLI
# warns, naming the file, and goes on (sentencepiece loads them silently)
"$T" train -q --vocab-size 150 -o "$TMP/nb.model" "$TMP/tabs.txt"
"$T" encode -m "$TMP/nb.model" < "$TMP/tabs.txt" > /dev/null 2> "$TMP/err"
[ ! -s "$TMP/err" ] && pass "a whole model loads without a warning" || fail "whole model: $(cat "$TMP/err")"
loaded=0 silent=0
for cut in $(seq 400 460); do
  head -c "$cut" "$TMP/nb.model" > "$TMP/cut.model"
  if echo hello | "$T" encode -m "$TMP/cut.model" > /dev/null 2> "$TMP/err"; then
    loaded=$((loaded + 1))
    grep -q "warning: $TMP/cut.model has no trainer_spec and no normalizer_spec: the file is probably truncated" "$TMP/err" \
      || silent=$((silent + 1))
  fi
done
[ "$loaded" -gt 0 ] && [ "$silent" = 0 ] && pass "truncated models: $loaded of 61 cuts load, each with a warning" \
  || fail "truncated models: $loaded load, $silent without the warning"

finish
