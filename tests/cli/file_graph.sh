#!/usr/bin/env bash
# file_graph.sh - the file-level call graph of lib/ has no cycles: from the
# built objects, file A depends on file B when A uses a global symbol that B
# defines (nm); tsort then finds any cycle. Cycles among trainer/ files are
# reported as a note (not yet a failure: trainer.c and count_file.c call each
# other). Also lib/ never uses a symbol defined in trainer/ (the directory
# rule), and no two source files share a name (HACKING.md). With -v (or
# TKM_GRAPH=1) it prints the edges.
. "$(dirname "$0")/lib.sh"
same=$(cd "$TKM_SRCDIR" && find lib trainer analyze softemb kernels cli include corpora bench tests \
         \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) 2> /dev/null \
       | awk -F/ '{print $NF}' | sort | uniq -d)
[ -z "$same" ] && pass "source file names are unique across the tree" || fail "files that share a name: $same"
B=$(cd "$(dirname "$TKM_BIN")" && pwd)
command -v nm > /dev/null || skip "nm not installed"
command -v tsort > /dev/null || skip "tsort not installed"
objs=$(ls "$B"/lib/.libs/libtkm_core_la-*.o "$B"/trainer/.libs/libtkm_core_la-*.o 2> /dev/null || true)
[ -n "$objs" ] || objs=$(ls "$B"/lib/libtkm_core_la-*.o "$B"/trainer/libtkm_core_la-*.o 2> /dev/null || true)
[ -n "$objs" ] || skip "no objects of libtkm_core under $B (build first)"
name() { local d f; d=$(basename "$(dirname "$(dirname "$1")")"); [ "$d" = "$(basename "$B")" ] && d=$(basename "$(dirname "$1")"); f=$(basename "$1" .o); echo "$d/${f#libtkm_core_la-}.c"; }
: > "$TMP/defs"
for o in $objs; do
  n=$(name "$o")
  case $n in .libs/*) n=$(basename "$(dirname "$(dirname "$o")")")/${n#.libs/} ;; esac
  nm --defined-only -g "$o" | awk -v f="$n" 'NF == 3 {print $3, f}' >> "$TMP/defs"
  nm -u "$o" | awk -v f="$n" '{print $2, f}' >> "$TMP/uses"
done
sort -k1,1 "$TMP/defs" > "$TMP/defs.s"
sort -k1,1 "$TMP/uses" > "$TMP/uses.s"
# edges: user -> definer (self-edges dropped)
join "$TMP/uses.s" "$TMP/defs.s" | awk '$2 != $3 {print $2, $3}' | sort -u > "$TMP/edges"
[ "${TKM_GRAPH:-}" = 1 ] || [ "${1:-}" = -v ] && cat "$TMP/edges"
awk '$1 ~ /^lib\// && $2 ~ /^lib\//' "$TMP/edges" > "$TMP/lib_edges"
if tsort "$TMP/lib_edges" > /dev/null 2> "$TMP/cycle"; then
  pass "no file-level cycles among $(wc -l < "$TMP/lib_edges") call edges inside lib/"
else
  fail "file-level cycle in lib/: $(tr '\n' ' ' < "$TMP/cycle")"
fi
tsort "$TMP/edges" > /dev/null 2> "$TMP/cycle" || echo "# note: cycle outside lib/: $(tr '\n' ' ' < "$TMP/cycle")"
bad=$(awk '$1 ~ /^lib\// && $2 ~ /^trainer\//' "$TMP/edges")
[ -z "$bad" ] && pass "lib/ uses nothing defined in trainer/" || fail "lib/ -> trainer/: $bad"
finish
