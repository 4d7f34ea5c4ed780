#!/usr/bin/env bash
# softemb.sh - `tokenmill softemb` end to end on the MiniLM teacher (skipped
# without corpora/data/teachers, see corpora/teacher.sh): info, import to GGUF
# and back, a short CPU training run, eval with baselines as JSON, apply to a
# trained vocabulary, resumable checkpoints, and bad input.
. "$(dirname "$0")/lib.sh"
T=$TKM_BIN
M=${TKM_CORPUS:-}/teachers/minilm/model.safetensors
[ -f "$M" ] || skip "MiniLM teacher missing (run corpora/teacher.sh)"

"$T" softemb info --teacher "$M" --rows 0 --checksum > "$TMP/info"
grep -q '^rows *30522$' "$TMP/info" && grep -q '^width *384$' "$TMP/info" && grep -q '^vocabulary *wordpiece$' "$TMP/info" \
  && grep -q '^special rows *5$' "$TMP/info" && grep -q '^unused rows *994$' "$TMP/info" \
  && pass "info: 30522 x 384 WordPiece, 5 special, 994 unused" || fail "info"
"$T" softemb info --teacher "$M" --rows 30522 > "$TMP/rows"
grep -q '^row 101 .*special *\[CLS\] -> " \[CLS\]"$' "$TMP/rows" && grep -q 'normal *##s -> "s"$' "$TMP/rows" \
  && grep -q 'normal *the -> " the"$' "$TMP/rows" && pass "WordPiece pieces decode to bytes" || fail "decoding"

# import: f32 GGUF has the same matrix; f16 reads back with the same shape and vocabulary
"$T" softemb import --teacher "$M" -o "$TMP/m.gguf" 2>/dev/null
"$T" softemb info --teacher "$TMP/m.gguf" --rows 0 --checksum > "$TMP/info2"
[ "$(grep checksum "$TMP/info")" = "$(grep checksum "$TMP/info2")" ] && grep -q '^format *gguf$' "$TMP/info2" \
  && pass "import f32 GGUF: identical matrix" || fail "import f32"
"$T" softemb import --teacher "$M" --dtype f16 -o "$TMP/h.gguf" 2>/dev/null
"$T" softemb info --teacher "$TMP/h.gguf" --rows 30522 | sed 1,2d > "$TMP/rows16"
diff <(sed 1,2d "$TMP/rows" | grep -v checksum) <(grep -v checksum "$TMP/rows16") > /dev/null \
  && pass "import f16 GGUF: same rows and pieces" || fail "import f16"

# a short training run (tiny encoder), evaluation with baselines, JSON
"$T" softemb train --teacher "$TMP/h.gguf" --layers 1 --width 32 --heads 2 --steps 40 --batch 64 --log-every 20 \
    --valid-frac 0.05 --threads 2 --checkpoint "$TMP/ck.tkse" --checkpoint-every 20 -o "$TMP/e.tkse" > "$TMP/train.out" 2> "$TMP/train.err"
grep -q '^step     40/40' "$TMP/train.err" && grep -q '^  softemb ' "$TMP/train.out" && [ -f "$TMP/ck.tkse" ] \
  && pass "train: progress, closing evaluation, checkpoint" || fail "train"
"$T" softemb train --teacher "$TMP/h.gguf" --layers 1 --width 32 --heads 2 --steps 40 --batch 64 --log-every 0 \
    --valid-frac 0.05 --threads 1 --resume "$TMP/ck.tkse" --no-eval -o "$TMP/r.tkse" 2>/dev/null
cmp -s "$TMP/e.tkse" "$TMP/r.tkse" && pass "resumed run is byte-identical (1 vs 2 threads)" || fail "resume"
"$T" softemb eval --teacher "$TMP/h.gguf" --encoder "$TMP/e.tkse" --json --train-sample 300 > "$TMP/eval.json"
python3 - "$TMP/eval.json" <<'PY' && pass "eval JSON: split, encoder, 5 rows each" || fail "eval JSON"
import json, sys
x = json.load(open(sys.argv[1]))
assert x["teacher"]["rows"] == 30522 and x["split"]["test"] > 2500 and x["split"]["excluded"] == 999
assert x["encoder"]["ngram_buckets"] == 131072 and x["encoder"]["ngram_max"] == 5  # the default bag
# --valid-frac 0.05: ~5% of the train rows held back, a step chosen among 1..40
assert 1000 < x["split"]["validation"] < 2500 and 1 <= x["split"]["selected_step"] <= 40
assert x["split"]["train"] + x["split"]["validation"] + x["split"]["test"] + x["split"]["excluded"] == 30522
names = [r["name"] for r in x["heldout"]["results"]]
assert names == ["softemb", "subtoken-mean", "ngram-ridge", "nearest-string", "global-mean"], names
for r in x["heldout"]["results"] + x["train_sample"]["results"]:
    assert 0 <= r["top1_cos"] <= r["top10_cos"] <= 1 and 0 < r["mrr_cos"] <= 1
# baselines that look training rows up find them on training rows
t = {r["name"]: r for r in x["train_sample"]["results"]}
assert t["nearest-string"]["top1_cos"] > 0.99 and t["subtoken-mean"]["top1_cos"] > 0.99
PY

# apply to a vocabulary trained here
printf 'the cat sat on the mat\nsoft embeddings for a new vocabulary\n' > "$TMP/c.txt"
"$T" train --vocab-size 60 -q -o "$TMP/v.model" "$TMP/c.txt"
"$T" softemb apply --encoder "$TMP/e.tkse" -m "$TMP/v.model" --teacher "$TMP/h.gguf" -o "$TMP/v.gguf" 2> "$TMP/apply.err"
"$T" softemb info --teacher "$TMP/v.gguf" --rows 0 > "$TMP/vinfo"
grep -q '^rows *60$' "$TMP/vinfo" && grep -q '^width *384$' "$TMP/vinfo" && grep -q 'copied from the teacher' "$TMP/apply.err" \
  && pass "apply: a row per piece, exact teacher matches copied" || fail "apply"
"$T" softemb apply --encoder "$TMP/e.tkse" -m "$TMP/v.model" -o "$TMP/v.npy" 2>/dev/null
python3 - "$TMP/v.npy" <<'PY' && pass "apply: .npy readable" || fail "apply npy"
import sys, struct
b = open(sys.argv[1], "rb").read()
assert b[:6] == b"\x93NUMPY"
hl = struct.unpack("<H", b[8:10])[0]
h = b[10:10 + hl].decode()
assert "'<f4'" in h and "(60, 384)" in h and len(b) == 10 + hl + 60 * 384 * 4 and (10 + hl) % 64 == 0
PY

# bad input
set +e
"$T" softemb info --teacher "$TMP/none.gguf" > /dev/null 2> "$TMP/e1"; r1=$?
head -c 1000 "$TMP/m.gguf" > "$TMP/cut.gguf"
"$T" softemb info --teacher "$TMP/cut.gguf" > /dev/null 2> "$TMP/e2"; r2=$?
head -c 100 "$TMP/e.tkse" > "$TMP/cut.tkse"
"$T" softemb eval --teacher "$TMP/h.gguf" --encoder "$TMP/cut.tkse" > /dev/null 2> "$TMP/e3"; r3=$?
"$T" softemb train --teacher "$M" --heads 3 --width 32 -o "$TMP/x.tkse" > /dev/null 2> "$TMP/e4"; r4=$?
"$T" softemb train --teacher "$M" --frobnicate > /dev/null 2>&1; r5=$?
"$T" softemb apply --encoder "$TMP/e.tkse" -m "$TMP/v.model" > /dev/null 2>&1; r6=$?
# resuming with another validation share would train on other rows: refused
"$T" softemb train --teacher "$TMP/h.gguf" --layers 1 --width 32 --heads 2 --steps 40 --batch 64 --log-every 0 \
    --resume "$TMP/ck.tkse" --no-eval -o "$TMP/x2.tkse" > /dev/null 2> "$TMP/e7"; r7=$?
set -e
[ $r7 -eq 1 ] && grep -q 'validation share 0.05' "$TMP/e7" && [ ! -e "$TMP/x2.tkse" ] \
  && pass "resume with another --valid-frac: refused" || fail "resume valid-frac ($r7)"
[ $r1 -eq 1 ] && grep -q none.gguf "$TMP/e1" && pass "missing teacher: exit 1, named" || fail "missing teacher ($r1)"
[ $r2 -eq 1 ] && grep -q 'cut.gguf: truncated at offset' "$TMP/e2" && pass "truncated GGUF: offset named" || fail "truncated gguf ($r2)"
[ $r3 -eq 1 ] && grep -q 'cut.tkse: truncated at offset' "$TMP/e3" && pass "truncated encoder: offset named" || fail "truncated tkse ($r3)"
[ $r4 -eq 1 ] && grep -q 'heads (3) must divide width (32)' "$TMP/e4" && [ ! -e "$TMP/x.tkse" ] \
  && pass "bad architecture: clear error, no output" || fail "bad architecture ($r4)"
[ $r5 -eq 2 ] && [ $r6 -eq 2 ] && pass "usage errors exit 2" || fail "usage ($r5 $r6)"
ls "$TMP"/*.tmp.* > /dev/null 2>&1 && fail "temporary files left behind" || pass "no temporary files left"
finish
