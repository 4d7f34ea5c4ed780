#!/bin/sh
# balance.sh - held-out compression per language for language balancing
# (issue 20). Two modes:
#
#   bench/balance.sh eval MODEL...   bytes/token of each model on the held-out
#       English and Japanese text (in-domain lines split off the default
#       corpus, and other-source text), with the change against the first model
#   bench/balance.sh compare         trains on the training split (--preset
#       nerdstash, 2 threads): unbalanced, --balance latin=0.44,japanese=0.44
#       with each --balance-method, then a 9-point --sweep against 9 separate
#       runs at the same settings (models compared with cmp; CPU seconds and
#       max RSS from /usr/bin/time, and the ratio separate / sweep), and
#       evaluates them
#
# The split comes from bench/heldout_split.sh (made in $SPLIT, default
# /tmp/tkm-balance-split, when missing). TOKENMILL: the binary (./tokenmill).
set -eu
TM=${TOKENMILL:-./tokenmill}
SPLIT=${SPLIT:-/tmp/tkm-balance-split}
OUT=${OUT:-/tmp/tkm-balance-out}
THREADS=${THREADS:-2}
[ -f "$SPLIT/heldout/en.txt" ] || bench/heldout_split.sh "$SPLIT" >/dev/null
mode=${1:-}
[ $# -gt 0 ] && shift

evaluate() {
    set -- $(for m in "$@"; do printf -- '-m %s ' "$m"; done)
    corp="--corpus heldout-en=$SPLIT/heldout/en.txt --corpus heldout-ja=$SPLIT/heldout/ja.txt"
    [ -f "$SPLIT/other/en.txt" ] && corp="$corp --corpus other-en=$SPLIT/other/en.txt --corpus other-ja=$SPLIT/other/ja.txt"
    # shellcheck disable=SC2086
    "$TM" analyze compression "$@" $corp --csv -t "$THREADS" | awk -F, '
        NR == 1 { next }
        { if (!($1 in first)) first[$1] = $12; key = $2; if (!(key in seen)) { seen[key] = 1; order[++n] = key }
          v[key, $1] = $12; c[++nc] = $1; if (!(($1) in cs)) { cs[$1] = 1; cols[++ncol] = $1 } }
        END { printf "%-28s", "model"; for (j = 1; j <= ncol; j++) printf " %20s", cols[j] " b/tok"; printf "\n"
              for (i = 1; i <= n; i++) { printf "%-28s", order[i]
                  for (j = 1; j <= ncol; j++) printf " %10.4f (%+6.2f%%)", v[order[i], cols[j]], 100 * (v[order[i], cols[j]] / first[cols[j]] - 1)
                  printf "\n" } }'
}

case "$mode" in
eval)
    [ $# -gt 0 ] || { echo "usage: bench/balance.sh eval MODEL..." >&2; exit 2; }
    evaluate "$@"
    ;;
compare)
    mkdir -p "$OUT/sep" "$OUT/sweep"
    TR="$SPLIT/train/en/*.txt $SPLIT/train/ja/*.txt"
    tm() { tn=$1; shift; /usr/bin/time -f "%U %S %e %M" -o "$OUT/time.$tn" "$TM" train --preset nerdstash -t "$THREADS" -q "$@" 2>/dev/null; }
    cpu() { awk '{ printf "%.2f s CPU (user+sys), %.2f s wall, %.0f MB max RSS", $1 + $2, $3, $4 / 1024 }' "$OUT/time.$1"; }
    # shellcheck disable=SC2086
    tm unbal -o "$OUT/unbalanced.model" $TR; echo "unbalanced:      $(cpu unbal)"
    # shellcheck disable=SC2086
    tm budget --balance latin=0.44,japanese=0.44 --balance-method budget -o "$OUT/budget-44-44.model" $TR
    echo "budget 44/44:    $(cpu budget)"
    # shellcheck disable=SC2086
    tm weights --balance latin=0.44,japanese=0.44 --balance-method weights -o "$OUT/weights-44-44.model" $TR
    echo "weights 44/44:   $(cpu weights)"
    evaluate "$OUT/unbalanced.model" "$OUT/budget-44-44.model" "$OUT/weights-44-44.model"
    # a 9-point sweep (unbalanced + Japanese 30..50% in 2.5-point steps) ...
    rm -f "$OUT"/sweep/*.model
    # shellcheck disable=SC2086
    /usr/bin/time -f "%U %S %e %M" -o "$OUT/time.sweep" "$TM" train --preset nerdstash -t "$THREADS" \
        --sweep none,0.30:0.50:0.025 --keep-models "$OUT/sweep" --sweep-report "$OUT/sweep.html" \
        --eval heldout-en="$SPLIT/heldout/en.txt" --eval heldout-ja="$SPLIT/heldout/ja.txt" $TR
    echo "sweep (9 balanced points + unbalanced, with evaluation): $(cpu sweep)"
    # ... against separate runs at the same settings (the latin share each point used is in its name)
    tot_u=0; tot_e=0; same=0; n=0
    rm -f "$OUT"/time.sep*
    for f in "$OUT"/sweep/*.model; do
        name=$(basename "$f" .model)
        case "$name" in
        *-bpe) set -- ;;
        *) j=$(echo "$name" | sed 's/^[0-9]*-j\([0-9.]*\)b-l\([0-9.]*\)$/\1/'); l=$(echo "$name" | sed 's/^[0-9]*-j\([0-9.]*\)b-l\([0-9.]*\)$/\2/')
           set -- --balance "latin=$l,japanese=$j" ;;
        esac
        # shellcheck disable=SC2086
        tm "sep$n" "$@" -o "$OUT/sep/$name.model" --eval heldout-en="$SPLIT/heldout/en.txt" --eval heldout-ja="$SPLIT/heldout/ja.txt" $TR
        cmp -s "$f" "$OUT/sep/$name.model" && same=$((same + 1))
        n=$((n + 1))
    done
    awk '{ u += $1 + $2; e += $3 } END { printf "%d separate runs (with evaluation): %.2f s CPU, %.2f s wall\n", NR, u, e }' "$OUT"/time.sep*
    echo "sweep models identical to the separate runs: $same of $n"
    cat "$OUT"/time.sep* | awk -v s="$(cat "$OUT/time.sweep")" '{ u += $1 + $2; e += $3 }
        END { split(s, a, " "); printf "separate runs / sweep: %.2fx CPU, %.2fx wall\n", u / (a[1] + a[2]), e / a[3] }'
    ;;
*)
    echo "usage: bench/balance.sh eval MODEL... | bench/balance.sh compare" >&2
    exit 2
    ;;
esac
