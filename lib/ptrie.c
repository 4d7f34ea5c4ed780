/* ptrie.c - the frozen piece trie: Unigram lattices (encoder and trainer)
 * and the longest-match of user-defined symbols. */
#include <stdlib.h>

#include "model_internal.h"
#include "ptrie.h"

/* ---- trie ---- */
/* a string, its id, and its first 8 bytes big-endian, padded with zeros:
 * most comparisons end there (the order is memcmp's, then shorter first,
 * whatever the bytes: padded prefixes that differ beyond the shorter
 * string's end differ by a byte of the longer one against a 0) */
typedef struct { uint64_t pfx; const char *s; uint32_t len; int32_t id; } tent;

static int cmp_tent(const void *a, const void *b)
{
    const tent *x = a, *y = b;
    return tkmi_key_pfx_cmp(x->pfx, x->s, x->len, y->pfx, y->s, y->len);
}

/* a string's key for tkmi_rsort (lib/radix.c): its prefix */
static void tent_key(const void *item, tkmi_rkey *k) { k->hi = 0, k->lo = ((const tent *)item)->pfx; }

void tkmi_ptrie_free(tkmi_ptrie *t)
{
    tkmi_free(t->id);
    tkmi_free(t->first);
    tkmi_free(t->ebyte);
    tkmi_free(t->echild);
    memset(t, 0, sizeof *t);
}

/* Construction over the sorted range [lo,hi) sharing a prefix of depth d:
 * children are the distinct bytes at position d. Nodes are expanded depth
 * first and numbered when expanded, so node k + 1 is expanded right after
 * node k (first[k + 1] ends k's edges) and a path of single children (every
 * multi-byte character) lies in consecutive nodes and edges: a walk down
 * the trie stays in a few cache lines. */
typedef struct { size_t lo, hi; uint32_t depth; int64_t edge; uint8_t byte; } frame;

int tkmi_ptrie_build(tkmi_ptrie *t, const char *const *strs, const uint32_t *lens, const int32_t *ids, size_t n)
{
    memset(t, 0, sizeof *t);
    tent *e = tkmi_malloc((n + 1) * sizeof *e);
    TKM_RETURN_ERROR_IF(!e, TKM_ENOMEM, "out of memory (trie)");
    size_t m = 0, total = 1;
    for (size_t i = 0; i < n; i++)
        if (lens[i]) {
            e[m++] = (tent){tkmi_key_pfx8(strs[i], lens[i]), strs[i], lens[i], ids[i]};
            total += lens[i];
        }
    tkmi_rsort(e, m, sizeof *e, tent_key, cmp_tent);
    /* at most one node per byte of input, plus the root */
    t->id = tkmi_malloc(total * sizeof *t->id);
    t->first = tkmi_malloc((total + 1) * sizeof *t->first);
    t->ebyte = tkmi_malloc(total);
    t->echild = tkmi_malloc(total * sizeof *t->echild);
    frame *q = tkmi_malloc((total + 1) * sizeof *q); /* a stack */
    if (!t->id || !t->first || !t->ebyte || !t->echild || !q) {
        tkmi_free(e);
        tkmi_free(q);
        tkmi_ptrie_free(t);
        return tkmi_error(TKM_ENOMEM, "out of memory (trie)");
    }
    for (int b = 0; b < 256; b++) t->root[b] = -1;
    t->n_nodes = 0;
    size_t qt = 0;
    q[qt++] = (frame){0, m, 0, -1, 0};
    while (qt > 0) {
        frame f = q[--qt];
        int32_t node = (int32_t)t->n_nodes++;
        if (f.edge >= 0) t->echild[f.edge] = node;
        if (f.depth == 1) t->root[f.byte] = node;
        t->id[node] = -1;
        t->first[node] = (uint32_t)t->n_edges;
        size_t i = f.lo;
        /* a string ending exactly at this depth marks the node */
        while (i < f.hi && e[i].len == f.depth) { t->id[node] = e[i].id; i++; }
        size_t first_child = qt;
        while (i < f.hi) {
            uint8_t b = (uint8_t)e[i].s[f.depth];
            size_t j = i;
            while (j < f.hi && e[j].len > f.depth && (uint8_t)e[j].s[f.depth] == b) j++;
            t->ebyte[t->n_edges] = b;
            t->echild[t->n_edges] = -1; /* set when the child is expanded */
            q[qt++] = (frame){i, j, f.depth + 1, (int64_t)t->n_edges, b};
            t->n_edges++;
            i = j;
        }
        /* reverse the children on the stack: the first is expanded next */
        for (size_t a = first_child, b = qt; a + 1 < b; a++, b--) {
            frame tmp = q[a];
            q[a] = q[b - 1];
            q[b - 1] = tmp;
        }
    }
    t->first[t->n_nodes] = (uint32_t)t->n_edges;
    tkmi_free(q);
    tkmi_free(e);
    return 0;
}

int tkmi_ptrie_build_model(tkmi_ptrie *t, const tkm_model *m, unsigned types)
{
    const char **strs = tkmi_malloc((size_t)m->n * sizeof *strs);
    uint32_t *lens = tkmi_malloc((size_t)m->n * sizeof *lens);
    int32_t *ids = tkmi_malloc((size_t)m->n * sizeof *ids);
    size_t k = 0;
    int rc = (!strs || !lens || !ids) ? tkmi_error(TKM_ENOMEM, "out of memory") : 0;
    for (int i = 0; rc == 0 && i < m->n; i++)
        if (m->type[i] < 32 && (types >> m->type[i] & 1u)) {
            strs[k] = tkmi_piece(m, i);
            lens[k] = m->plen[i];
            ids[k++] = i;
        }
    if (rc == 0) rc = tkmi_ptrie_build(t, strs, lens, ids, k);
    tkmi_free(strs);
    tkmi_free(lens);
    tkmi_free(ids);
    return rc;
}
