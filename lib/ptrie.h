/* ptrie.h - the frozen piece trie (lib/ptrie.c): Unigram lattices (encoder
 * and trainer), longest match of user-defined symbols and added tokens. */
#ifndef TKM_PTRIE_H
#define TKM_PTRIE_H

#include "tkm_internal.h"

/* Frozen byte trie over piece strings (Unigram lattices, and the
 * longest-match of user-defined symbols, sentencepiece's PrefixMatcher): node 0 is the
 * root, with a direct table for the first byte; other nodes keep their
 * children as a sorted edge range. id[node] is the piece ending there or -1. */
typedef struct {
    int32_t root[256];
    int32_t *id;         /* per node */
    uint32_t *first;     /* per node: first edge; first[n+1] ends the range */
    uint8_t *ebyte;      /* per edge */
    int32_t *echild;     /* per edge */
    size_t n_nodes, n_edges;
} tkmi_ptrie;
/* Builds the trie of the given pieces (ids[i] for strs[i]). */
int tkmi_ptrie_build(tkmi_ptrie *t, const char *const *strs, const uint32_t *lens, const int32_t *ids, size_t n);
/* Builds the trie of m's pieces whose type is in `types` (bits 1u << TKM_PIECE_*),
 * each with its id: user-defined symbols, the Unigram encoder's candidates. */
int tkmi_ptrie_build_model(tkmi_ptrie *t, const tkm_model *m, unsigned types);
void tkmi_ptrie_free(tkmi_ptrie *t);
static inline int32_t tkmi_ptrie_child(const tkmi_ptrie *t, int32_t node, uint8_t b)
{
    if (node == 0) return t->root[b];
    uint32_t lo = t->first[node], hi = t->first[node + 1];
    if (hi - lo == 1) return t->ebyte[lo] == b ? t->echild[lo] : -1; /* most nodes */
    while (lo < hi) {
        uint32_t mid = (lo + hi) >> 1;
        if (t->ebyte[mid] < b) lo = mid + 1;
        else hi = mid;
    }
    return (lo < t->first[node + 1] && t->ebyte[lo] == b) ? t->echild[lo] : -1;
}

/* Length of the longest piece that is a prefix of s[0..len), or 0 (inline:
 * the trainer's pre-tokenizer asks at every U+2581 with nerdstash's symbols). */
static inline size_t tkmi_ptrie_longest(const tkmi_ptrie *t, const char *s, size_t len)
{
    size_t best = 0;
    int32_t node = 0;
    for (size_t i = 0; i < len; i++) {
        node = tkmi_ptrie_child(t, node, (uint8_t)s[i]);
        if (node < 0) break;
        if (t->id[node] >= 0) best = i + 1;
    }
    return best;
}

#endif
