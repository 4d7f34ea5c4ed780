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

typedef struct { int64_t cnt; uint32_t len, stamp; int32_t s[]; } word_t;
/* A word is named by a 32-bit handle, its offset in the word array in
 * units of 8 << hshift bytes: hshift is 0 (8-byte units) until the array
 * would pass 2^32 units (32 GiB), then words are aligned to larger units,
 * so handles (and the postings that hold them) stay 4 bytes at any size. */
typedef uint32_t whandle;
/* pair ids: 64-bit, the number of distinct pairs has no 32-bit ceiling */
typedef int64_t pairid;
#define WORD(B, h) ((word_t *)((B)->wa + ((size_t)(h) << (B)->hshift)))
/* 8-byte units taken by a word of n symbols, rounded up to a handle unit */
static inline size_t word_units_hs(size_t n, unsigned hs)
{
    size_t u = 2 + (n + 1) / 2, m = ((size_t)1 << hs) - 1;
    return (u + m) & ~m;
}

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
    /* pairs */
    struct hslot { uint64_t key; pairid val; } *H; /* pair hash: key 0 = empty */
    size_t h_cap, n_pairs, p_cap;
    /* one record per pair: a merge step touches one cache line per pair */
    struct prec {
        int64_t cnt;
        whandle *post;           /* words containing the pair (may hold stale entries) */
        int32_t a, b;
        uint32_t post_n, post_cap;
        int8_t valid;
        uint8_t dirty, blocked;
    } *P;
    pairid *dirty;
    size_t n_dirty, dirty_cap;
    whandle *slab; /* initial postings of all pairs, exactly sized */
    size_t slab_n;
    /* postings created during merges: power-of-two blocks from 1 MB chunks,
     * recycled through per-size free lists (no malloc header per list) */
    void *pool_free[32];
    char **pool_chunks;
    size_t pool_n, pool_cap;
    char *bump;
    size_t bump_left;
    /* heap */
    /* len: chars of the merged piece (first tie-break); 16 bytes an entry */
    struct hent { int64_t cnt; uint64_t pair : 48, len : 16; } *heap;
    size_t heap_n, heap_cap;
    /* Only pairs counted at least T are in the heap ("cold" ones wait in
     * the pair table): a small heap is a fast heap. Every pair with a count
     * >= T has an entry, and T only falls, when the heap runs empty, so the
     * order of the merges is that of one heap holding every pair. */
    int64_t T;
    /* scratch */
    const tkm_train_options *o;
    /* balancing: per-class merge budgets; a pair whose piece would exceed
     * its class budget is blocked (kept counted, not merged) */
    pairid *blocked;
    size_t n_blocked, blocked_cap;
    long budget[TKMI_N_CLASSES], used[TKMI_N_CLASSES];
    int balancing;
    int track_used; /* count used[] without balancing (a sweep's trunk) */
    int closed[TKMI_N_CLASSES]; /* out of candidates or over: receives no surplus */
    tkm_train_stats *st;        /* the run's stats (budgets given and short) */
    /* the merges so far (new pieces, in order), out of target */
    int32_t *final;
    long merges, target;
    uint32_t stamp;
    size_t n_char_syms;
    int n_meta;
    int fixed[TKMI_N_CLASSES]; /* pieces each class holds before any merge */
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
 * frees with tkmi_vbase_free after tkmi_bpe_free), the words (the counts
 * are freed), the pair table, the heap. Writes the setup's stats to
 * t->stats. On error B is still to be freed. */
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
/* A deep copy of B between steps, postings in one exactly sized slab; the
 * meta map is shared (read-only) with B (bpe_sweep.c). */
int tkmi_bpe_clone(const bpe *B, bpe *out);

#endif
