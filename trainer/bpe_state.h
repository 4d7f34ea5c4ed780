/* bpe_state.h - the BPE merge loop's state and its steps (private to
 * trainer/bpe_train.c and trainer/bpe_sweep.c).
 *
 * tkmi_bpe_train is setup, then "pop an entry, step on it" until the
 * vocabulary is full, then finish. bpe_sweep.c drives the same steps for
 * many budget-balanced points at once: one unbalanced trunk, cloned
 * (tkmi_bpe_clone) at the step where a point's budgets first block a
 * merge; see HACKING.md, "Sweeps share the merge prefix". */
#ifndef TKM_BPE_STATE_H
#define TKM_BPE_STATE_H

#include "trainer_internal.h"

enum { F_LEAD_WS = 1, F_HAS_DIGIT = 2, F_ALL_WS = 4, F_TRAIL_WS = 8 };

/* A word record: this header, then its len symbols, 2 bytes each when
 * every symbol id fits in 16 bits (vocab size <= 65536: B->narrow), else
 * 4 (the merge loop is bound by cache misses on the words: narrow records
 * take fewer lines). */
typedef struct { int64_t cnt; uint32_t len, stamp; } word_t;
#define WSYMS(W) ((void *)((word_t *)(W) + 1))
/* symbol i of an array of narrow (uint16_t) or wide (int32_t) symbols */
static inline int32_t sym_get(const void *s, size_t i, int narrow)
{
    return narrow ? (int32_t)((const uint16_t *)s)[i] : ((const int32_t *)s)[i];
}
static inline void sym_set(void *s, size_t i, int32_t v, int narrow)
{
    if (narrow) ((uint16_t *)s)[i] = (uint16_t)v;
    else ((int32_t *)s)[i] = v;
}
/* A word is named by a 32-bit handle, its offset in the word array in
 * units of 8 << hshift bytes: hshift is 0 (8-byte units) until the array
 * would pass 2^32 units (32 GiB), then words are aligned to larger units,
 * so handles (and the postings that hold them) stay 4 bytes at any size. */
typedef uint32_t whandle;
/* pair ids: 64-bit, the number of distinct pairs has no 32-bit ceiling */
typedef int64_t pairid;
#define WORD(B, h) ((word_t *)((B)->wa + ((size_t)(h) << (B)->hshift)))
/* 8-byte units taken by a word of n symbols, rounded up to a handle unit */
static inline size_t word_units_hs(size_t n, unsigned hs, int narrow)
{
    size_t u = 2 + (narrow ? (n + 3) / 4 : (n + 1) / 2), m = ((size_t)1 << hs) - 1;
    return (u + m) & ~m;
}

/* Within one merge (a,b)->c, the pairs a word's rewrite touches are (x,a),
 * (b,y), (x,c) and (c,y), each named by one neighbour symbol: their ids are
 * kept per symbol and role for the merge (valid while the stamp is the
 * merge's), so the pair table is probed once per neighbour, not once per
 * occurrence. Pair ids never change, and every adjacent pair of a word is
 * in the table. */
struct memo { uint32_t stamp[4]; pairid id[4]; };

typedef struct {
    /* symbols */
    size_t *s_off;
    uint32_t *s_len;
    uint16_t *s_nchars, *s_nws;
    int16_t *s_first, *s_last; /* script of first/last non-ws char; -2 none, -1 any */
    uint8_t *s_flags;
    size_t n_sym, sym_cap;
    char *arena;
    size_t arena_n, arena_cap;
    tkmi_strmap by_str;
    /* words */
    /* One record per word, its symbols inline, so a visit starts with one
     * cache miss that a prefetch can hide; a word is named by its handle,
     * the index of its record in units of 8 bytes (postings hold handles). */
    uint64_t *wa;
    size_t wa_n, n_words;
    unsigned hshift;
    int narrow; /* symbols stored in 16 bits */
    struct memo *memo; /* [memo_n] pair ids by neighbour symbol (NULL: none) */
    size_t memo_n;     /* the vocab size: symbol ids stay below it */
    /* pairs */
    struct hslot { uint64_t key; pairid val; } *H; /* pair hash: key 0 = empty */
    size_t h_cap, n_pairs, p_cap;
    /* one record per pair, 32 bytes: a merge step touches one cache line per pair */
    struct prec {
        int64_t cnt;
        union {
            whandle *post;       /* words containing the pair (may hold stale entries) */
            uint64_t seen;       /* step 4's first pass: the last word seen + 1 */
        };
        int32_t a, b;
        uint32_t post_n;
        uint8_t post_k;          /* a pool list of 1 << post_k entries; 0: a slab list, full */
        int8_t valid;
        uint8_t dirty, blocked;
    } *P;
    pairid *dirty;
    size_t n_dirty, dirty_cap;
    /* initial postings of all pairs, exactly sized, in pair order; lists
     * that leave it (merged, grown, or their pair's count fell to 0) are
     * dead space, squeezed out when they are half of it (slab_compact) */
    whandle *slab;
    size_t slab_n, slab_live;
    /* postings created during merges: power-of-two blocks from 1 MB chunks,
     * recycled through per-size free lists (no malloc header per list) */
    void *pool_free[32];
    char **pool_chunks;
    size_t pool_n, pool_cap;
    char *bump;
    size_t bump_left;
    /* heap */
    /* len: chars of the merged piece (first tie-break); pre: its first 8
     * bytes, big-endian, zero-padded (the next: most ties between strings
     * end there without a look at the symbol arena); 24 bytes an entry */
    struct hent { int64_t cnt; uint64_t pair : 48, len : 16; uint64_t pre; } *heap;
    size_t heap_n, heap_cap;
    /* Only pairs counted at least T are in the heap ("cold" ones wait in
     * the pair table): a small heap is a fast heap. Every pair with a count
     * >= T has an entry, and T only falls, when the heap runs empty, so the
     * order of the merges is that of one heap holding every pair. */
    int64_t T;
    /* the run: trainer, options, special pieces and characters (vb), the
     * merges learned so far (final[0..merges), symbol ids) out of target */
    struct tkm_trainer *t;
    const tkm_train_options *o;
    tkmi_vbase *vb; /* the caller's (shared by the copies of a sweep) */
    size_t n_char_syms;
    long target, merges;
    int32_t *final;
    uint32_t stamp; /* one per merge: a word is visited once per merge */
    int closed[TKMI_N_CLASSES]; /* balancing: out of candidates or over, receives no surplus */
    /* balancing: per-class merge budgets; a pair whose piece would exceed
     * its class budget is blocked (kept counted, not merged) */
    pairid *blocked;
    size_t n_blocked, blocked_cap;
    long budget[TKMI_N_CLASSES], used[TKMI_N_CLASSES];
    int balancing;
    int track_used; /* count used[] without balancing (a sweep's trunk) */
    tkmi_strmap meta; /* strings of meta pieces: never learned */
    int has_meta_str;
    /* a concatenation can only be a meta piece if it is this short and
     * starts with one of these bytes (most pairs are ruled out here) */
    size_t meta_maxlen;
    uint8_t meta_first[256];
} bpe;
typedef struct hent bpe_entry;

/* One deterministic step of the merge loop. Between steps no pair is dirty
 * and (in a trunk) none is blocked. */
/* Steps 1-4 of the training: specials and characters (vb, which the caller
 * frees with tkmi_vbase_free after tkmi_bpe_free; B keeps a pointer to it),
 * the words (the counts are freed), the pair table, the heap. Writes the
 * setup's stats to t->stats. On error B is still to be freed. */
int tkmi_bpe_setup(struct tkm_trainer *t, tkmi_counts *counts, bpe *B, tkmi_vbase *vb);
/* The merge budgets of o's balance targets (class_target and balance_short
 * go to *st); returns 1 if o balances, else 0 (budgets all LONG_MAX). */
int tkmi_bpe_budgets(const bpe *B, const tkm_train_options *o, tkm_train_stats *st, long budget[TKMI_N_CLASSES],
                     int closed[TKMI_N_CLASSES]);
/* Pops the next live heap entry into *e: 1, or 0 when there is none left
 * (after lowering the heap threshold and lifting budgets as needed). */
int tkmi_bpe_pop(bpe *B, bpe_entry *e);
/* The class of the piece e would add, or -1 when its piece exists already
 * (no budget is used). */
int tkmi_bpe_new_class(const bpe *B, const bpe_entry *e);
/* Merges the pair of e (a popped entry) everywhere, or blocks it when its
 * class has used its budget. */
int tkmi_bpe_step(bpe *B, const bpe_entry *e);
/* The model of the merges so far (reads B only; stats to t->stats). */
int tkmi_bpe_finish(bpe *B, struct tkm_trainer *t, tkmi_vbase *vb, tkm_model **out);
void tkmi_bpe_free(bpe *B);
/* A deep copy of B between steps (bpe_sweep.c): every live posting list
 * re-laid in one exactly sized slab (slab lists, the pool empty), the memo
 * reset; the vbase and the meta map are shared (read-only) with B. */
int tkmi_bpe_clone(const bpe *B, bpe *out);

#endif
