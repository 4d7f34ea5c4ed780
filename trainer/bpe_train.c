/* bpe_train.c - the BPE merge loop and the .model it produces.
 *
 * Data structures (no rescans of all pairs per merge):
 *   words    unique pre-token segments: symbol ids, count (weight)
 *   pairs    (a,b) -> count, validity (sentencepiece's piece rules) and a
 *            posting list of the words that contain it
 *   heap     max-heap of (count snapshot, pair), lazily corrected: an entry
 *            whose snapshot is above the true count is re-pushed when popped
 * A merge visits only the words in the chosen pair's postings and updates the
 * counts of the pairs around each occurrence.
 *
 * Selection order is total: count desc, then shorter piece (characters), then
 * bytewise smaller piece, then smaller symbol ids, so the result does not
 * depend on hash or word order, hence not on the thread count. Pieces get
 * score -rank so sentencepiece's encoder replays the merges in order. */
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../lib/heap.h"
#include "bpe_state.h"

/* the heap starts with about this many pairs (see bpe.T) */
#define HEAP_START 32768

static void debug_rss(const char *where)
{
    if (!getenv("TKM_DEBUG_BPE")) return;
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    struct mallinfo2 mi = mallinfo2();
    struct timespec ts, tc, tp;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &tc);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &tp);
    if (f && fscanf(f, "%ld %ld", &pages, &res) == 2)
        fprintf(stderr, "debug: %.3f s cpu %.3f s process cpu %.3f s %-14s rss %.1f MB, malloc in use %.1f MB, free in arenas %.1f MB\n", ts.tv_sec + ts.tv_nsec * 1e-9, tc.tv_sec + tc.tv_nsec * 1e-9,
                tp.tv_sec + tp.tv_nsec * 1e-9, where, res * 4096.0 / 1e6,
                (mi.uordblks + mi.hblkhd) / 1e6, mi.fordblks / 1e6);
    if (f) fclose(f);
}


static int sym_add(bpe *B, const char *s, size_t len, int nchars, int first, int last, int flags, int nws)
{
    if (B->n_sym == B->sym_cap) {
        size_t nc = B->sym_cap ? B->sym_cap * 2 : 1024;
#define GROW(f) do { void *q = tkmi_realloc(B->f, nc * sizeof *B->f); if (!q) return tkmi_error(TKM_ENOMEM, "out of memory"); B->f = q; } while (0)
        GROW(s_off); GROW(s_len); GROW(s_nchars); GROW(s_nws); GROW(s_first); GROW(s_last); GROW(s_flags);
#undef GROW
        B->sym_cap = nc;
    }
    TKM_RETURN_ERROR_IF(B->arena_n + len > B->arena_cap, TKM_ENOMEM, "symbol arena exhausted");
    size_t id = B->n_sym++;
    memcpy(B->arena + B->arena_n, s, len);
    B->s_off[id] = B->arena_n;
    B->s_len[id] = (uint32_t)len;
    B->s_nchars[id] = (uint16_t)nchars;
    B->s_nws[id] = (uint16_t)nws;
    B->s_first[id] = (int16_t)first;
    B->s_last[id] = (int16_t)last;
    B->s_flags[id] = (uint8_t)flags;
    int rc = tkmi_strmap_put(&B->by_str, B->arena + B->arena_n, len, (int32_t)id);
    B->arena_n += len;
    return rc < 0 ? rc : (int)id;
}

/* sentencepiece's IsValidSentencePiece for the concatenation a+b, from the
 * parts' summaries (each part is valid on its own). */
static int pair_valid(bpe *B, int32_t a, int32_t b)
{
    const tkm_train_options *o = B->o;
    if (B->s_nchars[a] + B->s_nchars[b] > o->max_piece_length) return 0;
    uint8_t fa = B->s_flags[a], fb = B->s_flags[b];
    if (o->split_digits && ((fa | fb) & F_HAS_DIGIT)) return 0;
    int all_ws = (fa & F_ALL_WS) && (fb & F_ALL_WS);
    if (!(o->allow_whitespace_only_pieces && all_ws)) {
        if (o->treat_whitespace_as_suffix) { /* only last; without split_by_whitespace, anywhere but first */
            if (!o->split_by_whitespace ? (fa & F_LEAD_WS)
                                        : B->s_nws[a] > 0 || B->s_nws[b] > 1 || (B->s_nws[b] == 1 && !(fb & F_TRAIL_WS)))
                return 0;
        } else if (!o->split_by_whitespace) { /* anywhere but last */
            if (fb & F_TRAIL_WS) return 0;
        } else { /* whitespace only as the first character */
            if (B->s_nws[b] > 0) return 0;
            if (B->s_nws[a] > 1 || (B->s_nws[a] == 1 && !(fa & F_LEAD_WS))) return 0;
        }
    }
    if (o->split_by_unicode_script) {
        int la = B->s_last[a], fb0 = B->s_first[b];
        if (la >= 0 && fb0 >= 0 && la != fb0) return 0;
    }
    if (B->has_meta_str) {
        char tmp[4096];
        size_t la = B->s_len[a], lb = B->s_len[b];
        if (la + lb <= B->meta_maxlen && B->meta_first[(uint8_t)B->arena[B->s_off[a]]] && la + lb <= sizeof tmp) {
            memcpy(tmp, B->arena + B->s_off[a], la);
            memcpy(tmp + la, B->arena + B->s_off[b], lb);
            if (tkmi_strmap_get(&B->meta, tmp, la + lb) >= 0) return 0;
        }
    }
    return 1;
}

/* ---- pair table ---- */
static int pairs_rehash(bpe *B)
{
    size_t nc = B->h_cap ? B->h_cap * 2 : (1u << 16);
    TKMI_RESIZE(struct hslot, s, s->key, tkmi_hash_u64(s->key), B->H, B->h_cap, nc,
                tkmi_calloc_touched(nc, sizeof *B->H), "pair table");
    return 0;
}

static inline uint64_t pkey(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)(a + 1) << 32) | (uint32_t)b; }

static pairid pair_find(const bpe *B, int32_t a, int32_t b)
{
    uint64_t k = pkey(a, b);
    size_t mask = B->h_cap - 1, i = tkmi_hash_u64(k) & mask;
    while (B->H[i].key) {
        if (B->H[i].key == k) return B->H[i].val;
        i = (i + 1) & mask;
    }
    return -1;
}

static int pair_get_or_add(bpe *B, int32_t a, int32_t b, pairid *out)
{
    if ((B->n_pairs + 1) * 4 > B->h_cap * 3) TKM_FORWARD_IF_ERROR(pairs_rehash(B));
    uint64_t k = pkey(a, b);
    size_t mask = B->h_cap - 1, i = tkmi_hash_u64(k) & mask;
    while (B->H[i].key) {
        if (B->H[i].key == k) { *out = B->H[i].val; return 0; }
        i = (i + 1) & mask;
    }
    if (B->n_pairs == B->p_cap) {
        size_t nc = B->p_cap ? B->p_cap + B->p_cap / 2 : (1u << 15);
        void *q = tkmi_realloc(B->P, nc * sizeof *B->P);
        if (!q) return tkmi_error(TKM_ENOMEM, "out of memory");
        B->P = q;
        B->p_cap = nc;
    }
    pairid p = (pairid)B->n_pairs++;
    B->H[i].key = k;
    B->H[i].val = p;
    B->P[p].a = a;
    B->P[p].b = b;
    B->P[p].cnt = 0;
    B->P[p].valid = (int8_t)pair_valid(B, a, b);
    B->P[p].dirty = 0;
    B->P[p].blocked = 0;
    B->P[p].post = NULL;
    B->P[p].post_n = 0;
    B->P[p].post_k = 0;
    *out = p;
    return 0;
}

/* entries a pair's posting list has room for: a slab list is always full */
static inline uint32_t post_cap(const struct prec *r) { return r->post_k ? 1u << r->post_k : r->post_n; }

static inline int pool_class(uint32_t cap)
{
    int k = 1;
    while ((1u << k) < cap) k++;
    return k;
}

/* Lists over 1 << POOL_MAX_K entries come from malloc and go back to it:
 * the few long lists would otherwise hold memory in free lists of their
 * own size that the many short ones cannot use. */
#define POOL_MAX_K 8

static whandle *pool_alloc(bpe *B, int k)
{
    if (k > POOL_MAX_K) return tkmi_malloc((size_t)4 << k);
    if (B->pool_free[k]) {
        void *p = B->pool_free[k];
        memcpy(&B->pool_free[k], p, sizeof(void *));
        return p;
    }
    size_t bytes = (size_t)4 << k;
    if (bytes > B->bump_left) {
        size_t csz = bytes > (1u << 20) ? bytes : (1u << 20);
        if (B->pool_n == B->pool_cap &&
            tkmi_grow((void **)&B->pool_chunks, &B->pool_cap, B->pool_n + 1, sizeof(char *)) < 0)
            return NULL;
        char *c = tkmi_malloc(csz);
        if (!c) return NULL;
        B->pool_chunks[B->pool_n++] = c;
        B->bump = c;
        B->bump_left = csz;
    }
    whandle *p = (whandle *)B->bump;
    B->bump += bytes;
    B->bump_left -= bytes;
    return p;
}

/* Returns a posting list of n entries and class k to the pool (a slab
 * list becomes dead space in the slab). */
static void post_release(bpe *B, whandle *q, int k, uint32_t n)
{
    if (!q) return;
    if (!k) {
        B->slab_live -= n;
        return;
    }
    if (k > POOL_MAX_K) {
        tkmi_free(q);
        return;
    }
    memcpy(q, &B->pool_free[k], sizeof(void *));
    B->pool_free[k] = q;
}

/* Squeezes the dead lists out of the slab (the live ones keep their
 * order, so each moves down) and gives the rest back. */
static void slab_compact(bpe *B)
{
    size_t off = 0;
    for (size_t p = 0; p < B->n_pairs; p++) {
        struct prec *r = &B->P[p];
        if (!r->post || r->post_k) continue;
        memmove(B->slab + off, r->post, r->post_n * sizeof *B->slab);
        off += r->post_n;
    }
    whandle *q = tkmi_realloc(B->slab, (off + 1) * sizeof *q);
    if (q) B->slab = q;
    off = 0;
    for (size_t p = 0; p < B->n_pairs; p++) {
        struct prec *r = &B->P[p];
        if (!r->post || r->post_k) continue;
        r->post = B->slab + off;
        off += r->post_n;
    }
    B->slab_n = B->slab_live = off;
}

/* Adds an occurrence of pair p in word w with the word's count. */
static int pair_inc(bpe *B, pairid p, int64_t cnt, whandle w)
{
    if (!B->P[p].valid) return 0;
    struct prec *r = &B->P[p];
    r->cnt += cnt;
    uint32_t n = r->post_n;
    if (n == 0 || r->post[n - 1] != w) {
        if (n == post_cap(r)) {
            int k = pool_class(n + 1);
            whandle *q;
            if (r->post_k > POOL_MAX_K) { /* from malloc: grows in place when it can */
                q = tkmi_realloc(r->post, (size_t)4 << k);
                TKM_RETURN_ERROR_IF(!q, TKM_ENOMEM, "out of memory (postings)");
            } else {
                q = pool_alloc(B, k);
                TKM_RETURN_ERROR_IF(!q, TKM_ENOMEM, "out of memory (postings)");
                if (n) memcpy(q, r->post, n * sizeof *q);
                post_release(B, r->post, r->post_k, n);
            }
            r->post = q;
            r->post_k = (uint8_t)k;
        }
        r->post[r->post_n++] = w;
    }
    if (!B->P[p].dirty) {
        B->P[p].dirty = 1;
        TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&B->dirty, &B->dirty_cap, B->n_dirty + 1, sizeof(pairid)));
        B->dirty[B->n_dirty++] = p;
    }
    return 0;
}

/* Removes an occurrence of pair p (-1: none) with the word's count. A pair
 * whose count falls to 0 is in no word: its postings go back. */
static void pair_dec(bpe *B, pairid p, int64_t cnt)
{
    if (p < 0 || !B->P[p].valid) return;
    struct prec *r = &B->P[p];
    if ((r->cnt -= cnt) == 0 && r->post) {
        post_release(B, r->post, r->post_k, r->post_n);
        r->post = NULL;
        r->post_n = r->post_k = 0;
    }
}

/* ---- heap ---- */
static int cmp_concat(const bpe *B, pairid p, pairid q)
{
    /* bytewise comparison of str(a_p)+str(b_p) vs str(a_q)+str(b_q) */
    const char *x1 = B->arena + B->s_off[B->P[p].a], *x2 = B->arena + B->s_off[B->P[p].b];
    const char *y1 = B->arena + B->s_off[B->P[q].a], *y2 = B->arena + B->s_off[B->P[q].b];
    size_t xl1 = B->s_len[B->P[p].a], xl2 = B->s_len[B->P[p].b];
    size_t yl1 = B->s_len[B->P[q].a], yl2 = B->s_len[B->P[q].b];
    size_t xn = xl1 + xl2, yn = yl1 + yl2, n = xn < yn ? xn : yn;
    for (size_t i = 0; i < n; i++) {
        uint8_t cx = (uint8_t)(i < xl1 ? x1[i] : x2[i - xl1]);
        uint8_t cy = (uint8_t)(i < yl1 ? y1[i] : y2[i - yl1]);
        if (cx != cy) return cx < cy ? -1 : 1;
    }
    return xn < yn ? -1 : xn > yn;
}

/* 1 if entry x should be popped before y */
static int hent_before(const bpe *B, const struct hent *x, const struct hent *y)
{
    if (x->cnt != y->cnt) return x->cnt > y->cnt;
    if (x->len != y->len) return x->len < y->len;
    /* padded prefixes that differ order the strings the same way: at the
     * first difference either both have a byte, or the one padded there
     * ended, a proper prefix of the other */
    if (x->pre != y->pre) return x->pre < y->pre;
    pairid p = (pairid)x->pair, q = (pairid)y->pair;
    if (p == q) return 0;
    int c = cmp_concat(B, p, q);
    if (c) return c < 0;
    if (B->P[p].a != B->P[q].a) return B->P[p].a < B->P[q].a;
    return B->P[p].b < B->P[q].b;
}

TKMI_HEAP_DEFINE(hq, struct hent, const bpe *, hent_before) /* lib/heap.h */

static struct hent hent_make(const bpe *B, int64_t cnt, pairid pair)
{
    int32_t a = B->P[pair].a, b = B->P[pair].b;
    uint8_t buf[8] = {0};
    size_t la = B->s_len[a] < 8 ? B->s_len[a] : 8, lb = B->s_len[b] < 8 - la ? B->s_len[b] : 8 - la;
    memcpy(buf, B->arena + B->s_off[a], la);
    memcpy(buf + la, B->arena + B->s_off[b], lb);
    uint64_t pre = 0;
    for (int i = 0; i < 8; i++) pre = pre << 8 | buf[i];
    return (struct hent){cnt, (uint64_t)pair, (unsigned)(B->s_nchars[a] + B->s_nchars[b]), pre};
}

static int heap_push(bpe *B, int64_t cnt, pairid pair)
{
    return hq_push(B, &B->heap, &B->heap_n, &B->heap_cap, hent_make(B, cnt, pair));
}

static struct hent heap_pop(bpe *B) { return hq_pop(B, B->heap, &B->heap_n); }

/* Drops stale entries: rebuilds the heap from the live pair counts. */
static void heap_rebuild(bpe *B)
{
    size_t n = 0;
    for (size_t p = 0; p < B->n_pairs; p++)
        if (B->P[p].valid && B->P[p].cnt >= B->T && B->P[p].cnt > 0 && !B->P[p].blocked) B->heap[n++] = hent_make(B, B->P[p].cnt, (pairid)p);
    B->heap_n = n;
    hq_heapify(B, B->heap, n);
}

static int flush_dirty(bpe *B)
{
    if (B->heap_n > (1u << 20) && B->heap_n > 3 * B->n_pairs) heap_rebuild(B);
    for (size_t i = 0; i < B->n_dirty; i++) {
        pairid p = B->dirty[i];
        B->P[p].dirty = 0;
        if (B->P[p].cnt >= B->T && B->P[p].cnt > 0 && !B->P[p].blocked) TKM_FORWARD_IF_ERROR(heap_push(B, B->P[p].cnt, p));
    }
    B->n_dirty = 0;
    return 0;
}

/* the memo (bpe_state.h): a neighbour symbol's role in a merge */
enum { M_DEC_L, M_DEC_R, M_INC_L, M_INC_R };

static inline pairid memo_find(bpe *B, int role, int32_t key, int32_t x, int32_t y)
{
    struct memo *m = B->memo ? &B->memo[key] : NULL;
    if (m && m->stamp[role] == B->stamp) return m->id[role];
    pairid p = pair_find(B, x, y);
    if (m && p >= 0) { m->stamp[role] = B->stamp; m->id[role] = p; }
    return p;
}

static inline int memo_get_or_add(bpe *B, int role, int32_t key, int32_t x, int32_t y, pairid *out)
{
    struct memo *m = B->memo ? &B->memo[key] : NULL;
    if (m && m->stamp[role] == B->stamp) { *out = m->id[role]; return 0; }
    TKM_FORWARD_IF_ERROR(pair_get_or_add(B, x, y, out));
    if (m) { m->stamp[role] = B->stamp; m->id[role] = *out; }
    return 0;
}

/* Applies merge (a,b)->c to word w in one left-to-right pass, rewriting the
 * word in place (the write index never passes the read index, so s[i-1]
 * and s[i+2] are still the original symbols when read). Pair counts:
 * the old pairs around each occurrence lose the word's count, once each
 * even when occurrences touch ("a b a b"), and the new pairs gain it. */
static inline __attribute__((always_inline)) int merge_word_w(bpe *B, whandle w, int32_t a, int32_t b, int32_t c,
                                                              const int nw)
{
    word_t *W = WORD(B, w);
    void *s = WSYMS(W);
#define S(k) sym_get(s, (k), nw)
    uint32_t n = W->len, i = 0, j = 0;
    int64_t cnt = W->cnt;
    int64_t prev_end = -1; /* index of the b of the last occurrence */
    while (i < n) {
        if (i + 1 < n && S(i) == a && S(i + 1) == b) {
            pairid p;
            if (i > 0 && prev_end != (int64_t)i - 1) {
                int32_t x = S(i - 1);
                pair_dec(B, memo_find(B, M_DEC_L, x, x, a), cnt);
            }
            /* (a,b) itself is not decremented: its count is zeroed after the merge */
            int next_occ = i + 3 < n && S(i + 2) == a && S(i + 3) == b;
            if (i + 2 < n) {
                int32_t y = S(i + 2);
                pair_dec(B, memo_find(B, M_DEC_R, y, b, y), cnt);
            }
            if (j > 0) {
                int32_t x = S(j - 1);
                TKM_FORWARD_IF_ERROR(memo_get_or_add(B, M_INC_L, x, x, c, &p));
                TKM_FORWARD_IF_ERROR(pair_inc(B, p, cnt, w));
            }
            if (i + 2 < n && !next_occ) {
                int32_t y = S(i + 2);
                TKM_FORWARD_IF_ERROR(memo_get_or_add(B, M_INC_R, y, c, y, &p));
                TKM_FORWARD_IF_ERROR(pair_inc(B, p, cnt, w));
            }
            sym_set(s, j++, c, nw);
            prev_end = i + 1;
            i += 2;
        } else {
            sym_set(s, j++, S(i), nw);
            i++;
        }
    }
#undef S
    W->len = j;
    return 0;
}

static int merge_word(bpe *B, whandle w, int32_t a, int32_t b, int32_t c)
{
    return B->narrow ? merge_word_w(B, w, a, b, c, 1) : merge_word_w(B, w, a, b, c, 0);
}

void tkmi_bpe_free(bpe *B)
{
    tkmi_free(B->s_off); tkmi_free(B->s_len); tkmi_free(B->s_nchars); tkmi_free(B->s_nws);
    tkmi_free(B->s_first); tkmi_free(B->s_last); tkmi_free(B->s_flags); tkmi_free(B->arena);
    tkmi_strmap_free(&B->by_str);
    tkmi_free(B->wa); /* (B->meta and B->vb are the caller's) */
    tkmi_free(B->H);
    for (size_t p = 0; p < B->n_pairs; p++)
        if (B->P[p].post && B->P[p].post_k > POOL_MAX_K) tkmi_free(B->P[p].post);
    for (size_t i = 0; i < B->pool_n; i++) tkmi_free(B->pool_chunks[i]);
    tkmi_free(B->pool_chunks);
    tkmi_free(B->slab);
    tkmi_free(B->P);
    tkmi_free(B->dirty); tkmi_free(B->heap);
    tkmi_free(B->blocked);
    tkmi_free(B->final);
    tkmi_free(B->memo);
}

/* Bytes the merge loop is expected to hold for a pre-token of n characters:
 * its word record (16-byte header + 2 or 4 bytes a symbol, in 8-byte units)
 * and its initial postings (4 bytes a pair), times MERGE_BYTES_FACTOR for
 * the pair table, the pair records, the heap and the postings the merges
 * add (measured: see bench/README.md, "Bounded merge loop"). */
#define MERGE_BYTES_FACTOR 3.0
static double merge_bytes(size_t n, int narrow)
{
    return n < 2 ? 0.0 : MERGE_BYTES_FACTOR * (double)(8 * word_units_hs(n, 0, narrow) + 4 * (n - 1));
}

/* When --max-memory is set and the merge loop's estimated memory for all
 * pre-tokens is over it, returns in *tau the threshold of the sample that
 * fits (vocab_common.c: a pre-token counted c < tau times is kept with
 * probability c / tau and then counted tau times; 0: all fit). The
 * estimate, tau and what it leaves out go to the stats, which the CLI
 * prints: nothing is left out silently. TKM_BPE_MERGE_BUDGET (bytes)
 * replaces the budget (tests). Also returns a bound of the characters of
 * the longest pre-token (*max_syms) and, when *exact is 0, of all of them
 * (*total_syms; when 1, bpe_words counts those it keeps, sample or not). */
/* The histogram reads every pre-token's bytes in table order (a cache
 * miss each, most of its time). It is needed only when something may be
 * left out: first a bound from the byte lengths (no pre-token has more
 * characters than bytes, and merge_bytes grows with n); when even that fits
 * the budget, *exact is 0, *total_syms and *max_syms are byte bounds and
 * bpe_words sets the estimate from the characters it decodes anyway. */
/* After a spill the same histogram is built while the sorted runs are
 * merged (count_spill.c) and, when something goes, only the sample is
 * loaded: t->mb_pre holds the decision taken there. */
int tkmi_mb_narrow(const tkm_train_options *o) { return o->vocab_size <= 65536 && !getenv("TKM_BPE_WIDE_SYMBOLS"); }

double tkmi_mb_bytes(size_t n, int narrow) { return merge_bytes(n, narrow); }

static int merge_budget(struct tkm_trainer *t, const tkmi_counts *counts, int narrow, int64_t *tau,
                        size_t *total_syms, size_t *max_syms, int *exact)
{
    *tau = 0;
    *total_syms = 0;
    if (t->mb_pre.set) { /* decided while the spilled runs were merged */
        *tau = t->mb_pre.drop_below;
        *max_syms = t->mb_pre.max_syms;
        *exact = 1;
        t->mb_pre.set = 0;
        return 0;
    }
    uint64_t budget = tkmi_mb_budget(t, TKM_MODEL_BPE);
    {
        double bound = 0;
        size_t bytes = 0, longest = 0;
        tkmi_citer it;
        tkmi_centry e;
        tkmi_counts_iter(counts, 0, 1, &it);
        while (tkmi_counts_next(&it, &e)) {
            size_t n = e.len;
            bound += merge_bytes(n, narrow);
            bytes += n;
            if (n > longest) longest = n;
        }
        if (!budget || bound <= (double)budget) {
            *total_syms = bytes;
            *max_syms = longest;
            *exact = 0;
            t->stats.merge_drop_below = 0;
            return 0;
        }
    }
    *exact = 1;
    /* bytes by count: exact for counts below 1024, then by bit length */
    tkmi_mb_hist *h = tkmi_calloc(1, sizeof *h);
    TKM_RETURN_ERROR_IF(!h, TKM_ENOMEM, "out of memory");
    h->model = TKM_MODEL_BPE;
    h->narrow = narrow;
    tkmi_citer it;
    tkmi_centry e;
    tkmi_counts_iter(counts, 0, 1, &it);
    while (tkmi_counts_next(&it, &e)) tkmi_mb_add(h, e.key, e.len, e.count);
    uint64_t kept;
    *tau = tkmi_mb_decide_sample(t, h, budget, &kept);
    *max_syms = h->longest; /* (of all: a bound is enough) */
    tkmi_free(h);
    return 0;
}

/* 1-2. special pieces at their ids (B->vb), then one symbol per kept
 * character; sets the number of merges to learn. */
static int bpe_symbols(bpe *B)
{
    const tkm_train_options *o = B->o;
    int V = o->vocab_size;
    tkmi_chcount *chars = B->vb->chars;
    B->meta = B->vb->meta; /* owned by vb */
    B->has_meta_str = 1;
    for (int id = 0; id < V; id++) {
        const tkmi_metap *mp = &B->vb->slots[id];
        if (!mp->s || !mp->len) continue;
        B->meta_first[(uint8_t)mp->s[0]] = 1;
        if (mp->len > B->meta_maxlen) B->meta_maxlen = mp->len;
    }
    /* a required character that is already a special piece is not repeated */
    B->arena_cap = ((size_t)V + B->vb->nreq + 16) * ((size_t)o->max_piece_length * 4 + 4);
    B->arena = tkmi_malloc(B->arena_cap);
    TKM_RETURN_ERROR_IF(!B->arena, TKM_ENOMEM, "out of memory");
    TKM_FORWARD_IF_ERROR(tkmi_strmap_init(&B->by_str, (size_t)V + B->vb->nreq));
    size_t n_char_syms = 0;
    for (size_t i = 0; i < B->vb->nreq; i++) {
        char buf[4];
        uint32_t cp = chars[i].cp;
        int l = tkmi_utf8_encode(cp, buf);
        int is_ws = cp == TKMI_WS_CP, dig = tkmi_is_decimal_digit(cp);
        int sc = is_ws ? -2 : (dig && !o->split_by_number) ? -1 : tkmi_script(cp);
        int flags = (is_ws ? F_LEAD_WS | F_ALL_WS | F_TRAIL_WS : 0) | (dig ? F_HAS_DIGIT : 0);
        if (tkmi_strmap_get(&B->meta, buf, (size_t)l) >= 0) continue;
        int id = sym_add(B, buf, (size_t)l, 1, sc, sc, flags, is_ws);
        if (id < 0) return id;
        B->vb->cm.sym[tkmi_cpmap_slot(&B->vb->cm, cp)] = id;
        chars[n_char_syms++] = chars[i];
    }
    B->n_char_syms = n_char_syms;
    B->t->stats.chars_required = n_char_syms;

    B->target = (long)V - B->vb->n_meta - (long)n_char_syms;
    if (B->target < 0)
        return tkmi_error(TKM_EVOCAB,
                          "vocab size %d is smaller than the required pieces: %d special + %zu characters "
                          "(lower --character-coverage or raise --vocab-size to at least %zu)",
                          V, B->vb->n_meta, n_char_syms, (size_t)B->vb->n_meta + n_char_syms);
    B->final = tkmi_malloc(((size_t)B->target + 1) * sizeof *B->final);
    TKM_RETURN_ERROR_IF(!B->final, TKM_ENOMEM, "out of memory");
    return 0;
}

/* 3. words: pre-tokens cut at characters outside the vocabulary; pieces
 * of one character carry no pairs and are skipped. Under --max-memory,
 * when the merge loop would not fit, the rare pre-tokens are a threshold
 * sample (merge_budget: tau, reported in the stats). Frees the pre-token
 * table. */
/* Step 3 for the pre-tokens ord[q0..q1): their words written from
 * wa[base] on (units, n_words), and when !exact the estimate's sum
 * (est_units). Reads the counts and the character map only. */
struct words_part {
    bpe *B;
    const tkmi_counts *counts;
    const uint64_t *ord;
    size_t q0, q1, base, max_syms, units, n_words;
    int64_t tau; /* the sample's: a word counted under it is counted tau times */
    uint64_t est_units;
    int exact, rc;
};

static void *words_part_run(void *arg)
{
    struct words_part *w = arg;
    bpe *B = w->B;
    const tkmi_counts *counts = w->counts;
    tkmi_cpmap *cm = &B->vb->cm;
    /* characters to symbols: the map, through a direct table for the BMP
     * (filled on first use: every character of the pre-tokens is in the map) */
    int32_t *tmp_sym = tkmi_malloc((w->max_syms + 1) * sizeof *tmp_sym), *bmp = tkmi_malloc(65536 * sizeof *bmp);
    if (!tmp_sym || !bmp) {
        tkmi_free(tmp_sym);
        tkmi_free(bmp);
        w->rc = TKM_ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < 65536; i++) bmp[i] = INT32_MIN;
    uint64_t *wa = B->wa + w->base;
    size_t wa_n = 0;
    for (size_t q = w->q0; q < w->q1; q++) {
        /* ord visits the entries at random: prefetch the one 8 ahead */
        if (q + 8 < w->q1) tkmi_counts_prefetch(counts, w->ord[q + 8]);
        tkmi_centry e;
        tkmi_counts_get(counts, w->ord[q], &e);
        const uint8_t *s = (const uint8_t *)e.key;
        size_t n = e.len, pos = 0;
        if (!w->exact) { /* merge_budget's count of characters, here while the bytes are in cache */
            size_t ns = tkmi_utf8_chars(s, n);
            if (ns >= 2) w->est_units += 8 * word_units_hs(ns, 0, B->narrow) + 4 * (ns - 1);
        }
        for (size_t i = 0; i <= n;) {
            int32_t sym = -1;
            int mb = 1;
            if (i < n) {
                uint32_t cp;
                if (s[i] < 0x80) cp = s[i];
                /* 2 and 3 bytes that are always valid (no overlong form, no
                 * surrogate) here; the rest by the library's decoder */
                else if (s[i] >= 0xC2 && s[i] <= 0xDF && i + 1 < n && (s[i + 1] & 0xC0) == 0x80) {
                    cp = (uint32_t)(s[i] & 0x1F) << 6 | (s[i + 1] & 0x3F);
                    mb = 2;
                } else if (s[i] >= 0xE1 && s[i] <= 0xEF && s[i] != 0xED && i + 2 < n && (s[i + 1] & 0xC0) == 0x80 &&
                           (s[i + 2] & 0xC0) == 0x80) {
                    cp = (uint32_t)(s[i] & 0x0F) << 12 | (uint32_t)(s[i + 1] & 0x3F) << 6 | (s[i + 2] & 0x3F);
                    mb = 3;
                } else cp = (uint32_t)tkmi_utf8_decode(s + i, n - i, &mb);
                if (cp >= 65536) sym = cm->sym[tkmi_cpmap_slot(cm, cp)];
                else if ((sym = bmp[cp]) == INT32_MIN) sym = bmp[cp] = cm->sym[tkmi_cpmap_slot(cm, cp)];
            }
            if (sym < 0) {
                if (pos >= 2) {
                    word_t *W = (word_t *)(wa + wa_n);
                    W->cnt = e.count < w->tau ? w->tau : e.count;
                    W->len = (uint32_t)pos;
                    W->stamp = 0;
                    for (size_t x = 0; x < pos; x++) sym_set(WSYMS(W), x, tmp_sym[x], B->narrow);
                    wa_n += word_units_hs(pos, B->hshift, B->narrow);
                    w->n_words++;
                }
                pos = 0;
            } else {
                tmp_sym[pos++] = sym;
            }
            i += (size_t)mb;
        }
    }
    w->units = wa_n;
    tkmi_free(tmp_sym);
    tkmi_free(bmp);
    return NULL;
}

static int bpe_words(bpe *B, tkmi_counts *counts)
{
    struct tkm_trainer *t = B->t;
    uint64_t *ord = NULL;
    int64_t tau = 0;
    size_t total_syms = 0, max_syms = 0;
    int exact = 1;
    uint64_t est_units = 0; /* !exact: the estimate's sum, merge_bytes / MERGE_BYTES_FACTOR (integers) */
    /* symbol ids stay below the vocab size (characters, then one per
     * merge); TKM_BPE_WIDE_SYMBOLS forces 4-byte symbols (tests: the result
     * must not change) */
    B->narrow = B->o->vocab_size <= 65536 && !getenv("TKM_BPE_WIDE_SYMBOLS");
    int rc = merge_budget(t, counts, B->narrow, &tau, &total_syms, &max_syms, &exact);
    if (rc < 0) return rc;
    debug_rss("budget");
    /* Words are laid out most frequent first (by the bit length of their
     * count): the words that most merges visit then share cache lines and
     * pages, which makes the merge loop, bound by cache misses, faster.
     * The order never changes the result, only the speed. With a sample
     * (tau), its pre-tokens are kept (tkmi_mb_keep: the same decision in
     * both passes) and those left out counted here; when merge_budget built
     * its histogram (exact), the characters kept are counted too. */
    size_t n_ord = 0;
    ord = tkmi_malloc((counts->n + 1) * sizeof *ord);
    if (!ord) return tkmi_error(TKM_ENOMEM, "out of memory (words)");
    {
        size_t start_of[66] = {0};
        tkmi_citer it;
        tkmi_centry e;
        tkmi_counts_iter(counts, 0, 1, &it);
        while (tkmi_counts_next(&it, &e)) {
            if (tau && e.count < tau) {
                if (!tkmi_mb_keep(tkmi_hash_bytes(e.key, e.len), e.count, tau)) {
                    t->stats.merge_dropped_unique++;
                    t->stats.merge_dropped_occurrences += (uint64_t)e.count;
                    continue;
                }
                t->stats.sampled_unique++;
            }
            if (exact) total_syms += tkmi_utf8_chars((const uint8_t *)e.key, e.len);
            start_of[64 - __builtin_clzll((uint64_t)e.count) + 1]++;
        }
        /* bucket 64 (largest counts) first */
        size_t acc = 0;
        for (int bl = 64; bl >= 0; bl--) { size_t c = start_of[bl + 1]; start_of[bl + 1] = acc; acc += c; }
        tkmi_counts_iter(counts, 0, 1, &it);
        while (tkmi_counts_next(&it, &e))
            if (!tau || e.count >= tau || tkmi_mb_keep(tkmi_hash_bytes(e.key, e.len), e.count, tau))
                ord[start_of[64 - __builtin_clzll((uint64_t)e.count) + 1]++] = e.id;
        n_ord = acc;
    }
    if (tau && n_ord == 0) {
        tkmi_free(ord);
        return tkmi_mb_none_kept(t, TKM_MODEL_BPE, tkmi_mb_budget(t, TKM_MODEL_BPE));
    }
    /* a word has at least 2 symbols, so at most total_syms / 2 words of
     * 2 + ceil(n / 2) units (under 2 units a symbol) plus alignment to the
     * handle unit; pages never touched cost no memory, and the array is cut
     * to size afterwards. The handle unit is the smallest that keeps every
     * handle (and handle + 1, see step 4) below 2^32. TKM_BPE_HANDLE_SHIFT
     * forces a larger one (tests: the result must not change). */
    {
        const char *hs_env = getenv("TKM_BPE_HANDLE_SHIFT");
        unsigned hs = hs_env ? (unsigned)atoi(hs_env) : 0;
        if (hs > 8) hs = 8;
        for (;; hs++) {
            size_t bound = 2 * total_syms + 4 + (total_syms / 2 + 1) * (((size_t)1 << hs) - 1);
            if ((bound >> hs) < UINT32_MAX) break;
        }
        B->hshift = hs;
    }
    size_t wa_cap = 2 * total_syms + 4 + (total_syms / 2 + 1) * (((size_t)1 << B->hshift) - 1);
    B->wa = tkmi_malloc(wa_cap * sizeof *B->wa);
    if (!B->wa) { rc = tkmi_error(TKM_ENOMEM, "out of memory (words)"); goto done; }
    /* the pre-tokens in order, in parts built by threads each into its own
     * region of wa, then moved together: the same array as one thread's */
    {
        int T = t->o.threads < 1 ? 1 : t->o.threads > 16 ? 16 : t->o.threads;
        /* !exact: wa_cap came from the bytes, so the parts' bounds below
         * sum to it at most; exact: it came from the characters, one part */
        if (exact || n_ord < 65536) T = 1;
        struct words_part P[16];
        size_t per = (n_ord + (size_t)T - 1) / (size_t)T, base = 0;
        for (int k = 0; k < T; k++) {
            struct words_part *w = &P[k];
            memset(w, 0, sizeof *w);
            w->B = B;
            w->counts = counts;
            w->ord = ord;
            w->q0 = per * (size_t)k < n_ord ? per * (size_t)k : n_ord;
            w->q1 = per * (size_t)(k + 1) < n_ord ? per * (size_t)(k + 1) : n_ord;
            w->exact = exact;
            w->max_syms = max_syms;
            w->tau = tau;
            w->base = base;
            if (T > 1) { /* its bytes bound its characters: the bound of wa_cap for this part */
                size_t bytes = 0;
                for (size_t q = w->q0; q < w->q1; q++) {
                    tkmi_centry e;
                    tkmi_counts_get(counts, ord[q], &e);
                    bytes += e.len;
                }
                base += 2 * bytes + 4 + (bytes / 2 + 1) * (((size_t)1 << B->hshift) - 1);
            }
        }
        if (base > wa_cap) { /* (cannot happen) one part */
            T = 1;
            P[0].q1 = n_ord;
        }
        pthread_t th[16];
        int started[16] = {0};
        for (int k = 1; k < T; k++) started[k] = pthread_create(&th[k], NULL, words_part_run, &P[k]) == 0;
        words_part_run(&P[0]);
        for (int k = 1; k < T; k++) {
            if (started[k]) pthread_join(th[k], NULL);
            else words_part_run(&P[k]);
        }
        for (int k = 0; k < T; k++) {
            if (P[k].rc < 0) { rc = tkmi_error(TKM_ENOMEM, "out of memory (words)"); goto done; }
            if (P[k].base != B->wa_n) memmove(B->wa + B->wa_n, B->wa + P[k].base, P[k].units * sizeof *B->wa);
            B->wa_n += P[k].units;
            B->n_words += P[k].n_words;
            est_units += P[k].est_units;
        }
    }
    if (!exact) {
        /* the same value as merge_budget's sum in any order: every term
         * and partial sum is an integer below 2^53 */
        t->stats.merge_bytes_estimate = (uint64_t)(MERGE_BYTES_FACTOR * (double)est_units);
        if (getenv("TKM_DEBUG_BPE"))
            fprintf(stderr, "debug: merge loop estimate %.3f MB for all pre-tokens (nothing sampled)\n",
                    t->stats.merge_bytes_estimate / 1e6);
    }
    debug_rss("words built");
    /* the pre-token table is no longer needed: give its memory back */
    tkmi_counts_free(counts);
    {
        void *q = tkmi_realloc(B->wa, (B->wa_n + 1) * sizeof *B->wa);
        if (q) B->wa = q;
    }
done:
    tkmi_free(ord);
    return rc;
}

/* 4. initial pairs. Two passes: count each pair's postings, then fill one
 * exactly sized slab (no per-pair allocations, no growth slack). */
/* One pass of step 4 over the adjacent pairs of all words, in order.
 * fill 0: adds the pairs, their counts and the number of words holding
 * each (P[].seen: the last word seen + 1), and the pair id of each position
 * to ids[] (NULL: not kept); 1: fills the slab, the ids read back from
 * ids[] (sequential reads instead of a hash probe each) or, without them,
 * looked up again. */
/* Pass 0 looks pairs of the DENSE most frequent characters (symbols
 * 0..DENSE-1, characters by count) up in a direct table of id + 1 (0:
 * not seen yet) before the pair table: most positions, in a 4 MB table. */
#define DENSE 1024
static inline __attribute__((always_inline)) int pairs_pass(bpe *B, const int fill, uint32_t **ids, uint32_t *dense)
{
    const uint32_t D = B->n_char_syms < DENSE ? (uint32_t)B->n_char_syms : DENSE;
    size_t k = 0;
    for (size_t u = 0; u < B->wa_n; u += word_units_hs(((const word_t *)(B->wa + u))->len, B->hshift, B->narrow)) {
        const word_t *W = (const word_t *)(B->wa + u);
        whandle h = (whandle)(u >> B->hshift);
        for (uint32_t i = 0; i + 1 < W->len; i++) {
            pairid p = -1;
            if (!fill) {
                int32_t a = sym_get(WSYMS(W), i, B->narrow), b = sym_get(WSYMS(W), i + 1, B->narrow);
                if (dense && (uint32_t)a < D && (uint32_t)b < D) {
                    uint32_t *d = &dense[(size_t)a * DENSE + (size_t)b];
                    if (*d) p = (pairid)*d - 1;
                    else {
                        TKM_FORWARD_IF_ERROR(pair_get_or_add(B, a, b, &p));
                        if ((uint64_t)p < UINT32_MAX - 1) *d = (uint32_t)p + 1;
                    }
                } else {
                    TKM_FORWARD_IF_ERROR(pair_get_or_add(B, a, b, &p));
                }
                if (*ids) {
                    if ((uint64_t)p < UINT32_MAX) (*ids)[k++] = (uint32_t)p;
                    else { tkmi_free(*ids); *ids = NULL; } /* (ids are 32-bit) */
                }
                if (!B->P[p].valid) continue;
                B->P[p].cnt += W->cnt;
                if (B->P[p].seen != (uint64_t)h + 1) { B->P[p].seen = (uint64_t)h + 1; B->P[p].post_n++; }
            } else {
                if (*ids) p = (pairid)(*ids)[k++];
                else p = pair_find(B, sym_get(WSYMS(W), i, B->narrow), sym_get(WSYMS(W), i + 1, B->narrow));
                if (p < 0 || !B->P[p].valid) continue;
                uint32_t n = B->P[p].post_n;
                if (n == 0 || B->P[p].post[n - 1] != h) B->P[p].post[B->P[p].post_n++] = h;
            }
        }
    }
    return 0;
}

static int bpe_pairs(bpe *B)
{
    /* positions: each word of n symbols has n - 1 */
    size_t n_pos = 0;
    for (size_t u = 0; u < B->wa_n;) {
        const word_t *W = (const word_t *)(B->wa + u);
        n_pos += W->len - 1;
        u += word_units_hs(W->len, B->hshift, B->narrow);
    }
    TKM_FORWARD_IF_ERROR(pairs_rehash(B));
    uint32_t *ids = tkmi_malloc((n_pos + 1) * sizeof *ids); /* NULL: look them up twice */
    uint32_t *dense = tkmi_calloc((size_t)DENSE * DENSE, sizeof *dense); /* NULL: the pair table alone */
    int rc = pairs_pass(B, 0, &ids, dense);
    tkmi_free(dense);
    if (rc < 0) {
        tkmi_free(ids);
        return rc;
    }
    B->slab_n = 0;
    for (size_t p = 0; p < B->n_pairs; p++) B->slab_n += B->P[p].post_n;
    B->slab_live = B->slab_n;
    B->slab = tkmi_malloc((B->slab_n + 1) * sizeof *B->slab);
    if (!B->slab) tkmi_free(ids);
    TKM_RETURN_ERROR_IF(!B->slab, TKM_ENOMEM, "out of memory (postings)");
    {
        size_t off = 0;
        for (size_t p = 0; p < B->n_pairs; p++) {
            B->P[p].post = B->P[p].post_n ? B->slab + off : NULL;
            off += B->P[p].post_n;
            B->P[p].post_n = 0;
        }
    }
    rc = pairs_pass(B, 1, &ids, NULL);
    tkmi_free(ids);
    TKM_FORWARD_IF_ERROR(rc);
    /* the heap starts with the pairs of the highest power-of-two count
     * classes, up to about HEAP_START of them (all the classes needed) */
    {
        size_t per_class[64] = {0};
        for (size_t p = 0; p < B->n_pairs; p++)
            if (B->P[p].valid && B->P[p].cnt > 0) per_class[63 - __builtin_clzll((uint64_t)B->P[p].cnt)]++;
        int k = 63;
        size_t in_heap = per_class[63];
        while (k > 0 && (in_heap == 0 || in_heap + per_class[k - 1] <= HEAP_START)) in_heap += per_class[--k];
        B->T = (int64_t)1 << k;
        TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&B->heap, &B->heap_cap, in_heap + 1, sizeof *B->heap));
        heap_rebuild(B);
    }
    return flush_dirty(B);
}

/* balancing: what the specials and characters already hold per class,
 * then each class's share of the merges (budget, closed: B's own or a
 * sweep point's; B is only read) */
int tkmi_bpe_budgets(const bpe *B, const tkm_train_options *o, tkm_train_stats *st, long budget[TKMI_N_CLASSES],
                     int closed[TKMI_N_CLASSES])
{
    int V = o->vocab_size;
    int fixed[TKMI_N_CLASSES] = {0, 0, B->vb->n_meta};
    for (size_t i = 0; i < B->n_char_syms; i++) {
        char buf[4];
        int l = tkmi_utf8_encode(B->vb->chars[i].cp, buf);
        fixed[tkmi_balance_class(buf, (size_t)l)]++;
    }
    for (int k = 0; k < TKMI_N_CLASSES; k++) {
        budget[k] = LONG_MAX;
        closed[k] = 0;
    }
    if (o->balance_latin < 0 && o->balance_japanese < 0) return 0;
    long tl = o->balance_latin >= 0 ? lround((double)o->balance_latin * V) : -1;
    long tj = o->balance_japanese >= 0 ? lround((double)o->balance_japanese * V) : -1;
    long to = (tl >= 0 && tj >= 0) ? (long)V - tl - tj : -1;
    long tg[TKMI_N_CLASSES] = {tl, tj, to};
    for (int k = 0; k < TKMI_N_CLASSES; k++) {
        st->class_target[k] = (int)tg[k];
        if (tg[k] < 0) continue;
        budget[k] = tg[k] - fixed[k] > 0 ? tg[k] - fixed[k] : 0;
        if (tg[k] < fixed[k]) closed[k] = st->balance_short[k] = 1; /* already over: characters alone exceed it */
    }
    return 1;
}

/* The heap ran empty and no count class is left: a class ran out of
 * candidates, so its target cannot be reached. The pieces it leaves go to
 * the classes that can still take them, in proportion to their targets
 * (largest remainders, ties to the lower class index: deterministic); when
 * none can, the budgets are lifted and the vocabulary fills by frequency.
 * The blocked pairs go back to the heap. */
static int bpe_reopen_blocked(bpe *B)
{
    struct tkm_trainer *t = B->t;
    long left = 0, wsum = 0;
    int recv[TKMI_N_CLASSES] = {0};
    for (int k = 0; k < TKMI_N_CLASSES; k++) {
        if (B->budget[k] == LONG_MAX) continue;
        if (B->used[k] < B->budget[k]) {
            /* short of its own target, or only of the surplus it was given */
            if (B->used[k] < B->budget[k] - t->stats.balance_gained[k]) t->stats.balance_short[k] = 1;
            B->closed[k] = 1;
            left += B->budget[k] - B->used[k];
            B->budget[k] = B->used[k];
        } else if (!B->closed[k] && t->stats.class_target[k] > 0) {
            recv[k] = 1;
            wsum += t->stats.class_target[k];
        }
    }
    if (left > 0 && wsum > 0) {
        long give[TKMI_N_CLASSES] = {0}, given = 0;
        for (int k = 0; k < TKMI_N_CLASSES; k++)
            if (recv[k]) given += give[k] = left * t->stats.class_target[k] / wsum;
        while (given < left) { /* the remainders, largest first */
            int best = -1;
            long br = -1;
            for (int k = 0; k < TKMI_N_CLASSES; k++) {
                long r = recv[k] ? left * t->stats.class_target[k] % wsum : -1;
                if (recv[k] && r > br) { br = r; best = k; }
            }
            give[best]++;
            given++;
            recv[best] = 0; /* one extra piece each at most */
        }
        for (int k = 0; k < TKMI_N_CLASSES; k++) {
            B->budget[k] += give[k];
            t->stats.balance_gained[k] += (int)give[k];
        }
    } else {
        for (int k = 0; k < TKMI_N_CLASSES; k++) B->budget[k] = LONG_MAX;
    }
    for (size_t k = 0; k < B->n_blocked; k++) {
        pairid q = B->blocked[k];
        B->P[q].blocked = 0;
        if (B->P[q].cnt > 0) TKM_FORWARD_IF_ERROR(heap_push(B, B->P[q].cnt, q));
    }
    B->n_blocked = 0;
    return 0;
}

/* 5. merges: the best pair by the heap's order until the target is reached
 * or no pair is left; one step per popped entry. */

int tkmi_bpe_pop(bpe *B, bpe_entry *e)
{
    for (;;) {
        if (!B->heap_n && B->T > 1) { /* let the next count class in */
            B->T /= 2;
            size_t need = 0;
            for (size_t q = 0; q < B->n_pairs; q++) need += B->P[q].valid && B->P[q].cnt >= B->T && !B->P[q].blocked;
            TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&B->heap, &B->heap_cap, need + 1, sizeof *B->heap));
            heap_rebuild(B);
            continue;
        }
        if (!B->heap_n) {
            if (!B->n_blocked) return 0;
            TKM_FORWARD_IF_ERROR(bpe_reopen_blocked(B));
            continue;
        }
        *e = heap_pop(B);
        pairid p = (pairid)e->pair;
        if (B->P[p].blocked) continue;
        if (e->cnt != B->P[p].cnt) {
            if (e->cnt > B->P[p].cnt && B->P[p].cnt >= B->T && B->P[p].cnt > 0)
                TKM_FORWARD_IF_ERROR(heap_push(B, B->P[p].cnt, p));
            continue;
        }
        if (e->cnt <= 0) continue;
        return 1;
    }
}

/* The piece of pair p in tmp (8192 bytes), its length in *len; returns its
 * symbol id if it exists already, else -1. */
static int32_t pair_piece(const bpe *B, pairid p, char *tmp, size_t *len)
{
    int32_t a = B->P[p].a, b = B->P[p].b;
    size_t la = B->s_len[a], lb = B->s_len[b];
    memcpy(tmp, B->arena + B->s_off[a], la);
    memcpy(tmp + la, B->arena + B->s_off[b], lb);
    *len = la + lb;
    return tkmi_strmap_get(&B->by_str, tmp, la + lb);
}

int tkmi_bpe_new_class(const bpe *B, const bpe_entry *e)
{
    char tmp[8192];
    size_t len;
    if (pair_piece(B, (pairid)e->pair, tmp, &len) >= 0) return -1;
    return tkmi_balance_class(tmp, len);
}

/* Merges the pair of e (its count is exact): finds or adds the merged
 * symbol (blocking the pair instead when its class is over budget),
 * records a new piece and rewrites the words in the pair's postings. */
int tkmi_bpe_step(bpe *B, const bpe_entry *e)
{
    pairid p = (pairid)e->pair;
    int32_t a = B->P[p].a, b = B->P[p].b;
    char tmp[8192];
    size_t len;
    int32_t c = pair_piece(B, p, tmp, &len);
    if (c < 0 && (B->balancing || B->track_used)) {
        int cls = tkmi_balance_class(tmp, len);
        if (B->balancing && B->used[cls] >= B->budget[cls]) {
            B->P[p].blocked = 1;
            TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&B->blocked, &B->blocked_cap, B->n_blocked + 1, sizeof(pairid)));
            B->blocked[B->n_blocked++] = p;
            return 0;
        }
        B->used[cls]++;
    }
    if (c < 0) {
        int first = B->s_first[a] != -2 ? B->s_first[a] : B->s_first[b];
        int last = B->s_last[b] != -2 ? B->s_last[b] : B->s_last[a];
        uint8_t fa = B->s_flags[a], fb = B->s_flags[b];
        int flags = (fa & F_LEAD_WS) | (fb & F_TRAIL_WS) | ((fa | fb) & F_HAS_DIGIT) | (fa & fb & F_ALL_WS);
        c = sym_add(B, tmp, len, B->s_nchars[a] + B->s_nchars[b], first, last, flags, B->s_nws[a] + B->s_nws[b]);
        if (c < 0) return c;
        B->final[B->merges++] = c;
    }
    uint32_t stamp = ++B->stamp;
    uint32_t np = B->P[p].post_n;
    int pk = B->P[p].post_k;
    whandle *post = B->P[p].post;
    B->P[p].post = NULL;
    B->P[p].post_n = B->P[p].post_k = 0;
    /* the loop is bound by cache misses on the words: prefetch 16 ahead,
     * the word's first line and the next one that a word from past the
     * line's first 16 bytes reaches when it has more than 16 symbols
     * (measured, 1 GB nerdstash: the merge loop 20% less CPU than with
     * the first line alone; 32 ahead or +40 bytes were slower) */
    for (uint32_t k = 0; k < np; k++) {
        if (k + 16 < np) {
            const char *ahead = (const char *)WORD(B, post[k + 16]);
            __builtin_prefetch(ahead);
            __builtin_prefetch(ahead + 48);
        }
        whandle w = post[k];
        if (WORD(B, w)->stamp == stamp) continue;
        WORD(B, w)->stamp = stamp;
        TKM_FORWARD_IF_ERROR(merge_word(B, w, a, b, c));
    }
    post_release(B, post, pk, np);
    if (B->slab_n >= (1u << 20) && B->slab_live < B->slab_n / 4 * 3) slab_compact(B);
#ifdef __GLIBC__
    /* the long lists freed by merges sit in malloc's free chunks: give
     * their pages back now and then */
    if (B->stamp % 4096 == 0) malloc_trim(0);
#endif
    B->P[p].cnt = 0;
    return flush_dirty(B);
}

/* 6. serialize: merges then characters, score -rank (t: the stats and
 * options of the model; B is only read) */
int tkmi_bpe_finish(bpe *B, struct tkm_trainer *t, tkmi_vbase *vb, tkm_model **out)
{
    const tkm_train_options *o = &t->o;
    t->stats.merges = (int)B->merges;
    debug_rss("merged");
    if (getenv("TKM_DEBUG_BPE")) {
        size_t post = 0, pcap = 0;
        for (size_t p = 0; p < B->n_pairs; p++) { post += B->P[p].post_n; pcap += post_cap(&B->P[p]); }
        fprintf(stderr, "debug: words %zu units %zu pairs %zu (cap %zu) hash cap %zu heap %zu/%zu postings %zu (cap %zu)\n",
                B->n_words, B->wa_n, B->n_pairs, B->p_cap, B->h_cap, B->heap_n,
                B->heap_cap, post, pcap);
        fprintf(stderr, "debug: slab %zu entries (%zu live), pool %zu MB\n", B->slab_n, B->slab_live, B->pool_n);
    }
    int V = o->vocab_size, vocab = V;
    long merges = B->merges, fixed = (long)vb->n_meta + (long)B->n_char_syms;
    if (merges < B->target) {
        if (o->hard_vocab_limit)
            return tkmi_error(TKM_EVOCAB,
                              "vocab size %d cannot be reached: the corpus yields only %ld pieces "
                              "(use --vocab-size %ld or --hard-vocab-limit=false)",
                              V, fixed + merges, fixed + merges);
        vocab = (int)(fixed + merges);
    }
    size_t n_char_syms = B->n_char_syms, nf = (size_t)merges + n_char_syms;
    const char **fs = tkmi_malloc((nf + 1) * sizeof *fs);
    uint32_t *fl = tkmi_malloc((nf + 1) * sizeof *fl);
    float *fsc = tkmi_malloc((nf + 1) * sizeof *fsc);
    char (*cbuf)[4] = tkmi_malloc((n_char_syms + 1) * sizeof *cbuf);
    int rc = 0;
    if (!fs || !fl || !fsc || !cbuf) { rc = tkmi_error(TKM_ENOMEM, "out of memory"); goto done; }
    for (size_t i = 0; i < nf; i++) {
        if (i < (size_t)merges) {
            fs[i] = B->arena + B->s_off[B->final[i]];
            fl[i] = B->s_len[B->final[i]];
        } else {
            size_t ci = i - (size_t)merges;
            fl[i] = (uint32_t)tkmi_utf8_encode(vb->chars[ci].cp, cbuf[ci]);
            fs[i] = cbuf[ci];
        }
        fsc[i] = -(float)i;
    }
    t->stats.pieces_char = (int)n_char_syms;
    rc = tkmi_vbase_write(t, vb, vocab, fs, fl, fsc, nf, out);
    t->stats.pieces_normal = (int)merges;
done:
    tkmi_free(fs);
    tkmi_free(fl);
    tkmi_free(fsc);
    tkmi_free(cbuf);
    return rc;
}

int tkmi_bpe_setup(struct tkm_trainer *t, tkmi_counts *counts, bpe *B, tkmi_vbase *vb)
{
    memset(B, 0, sizeof *B);
    memset(vb, 0, sizeof *vb);
    TKM_RETURN_ERROR_IF(counts->n == 0, TKM_EEMPTY, "no input: the corpus has no text to learn from");
    B->t = t;
    B->o = &t->o;
    B->vb = vb;
    for (int k = 0; k < TKMI_N_CLASSES; k++) B->budget[k] = LONG_MAX;
    debug_rss("counted");
    TKM_FORWARD_IF_ERROR(tkmi_vbase_init(t, counts, vb));
    debug_rss("characters");
    TKM_FORWARD_IF_ERROR(bpe_symbols(B));
    TKM_FORWARD_IF_ERROR(bpe_words(B, counts));
    TKM_FORWARD_IF_ERROR(bpe_pairs(B));
    debug_rss("initial pairs");
    if (B->o->vocab_size <= (1 << 18)) {
        B->memo_n = (size_t)B->o->vocab_size;
        B->memo = tkmi_calloc(B->memo_n, sizeof *B->memo);
        TKM_RETURN_ERROR_IF(!B->memo, TKM_ENOMEM, "out of memory");
    }
    return 0;
}

int tkmi_bpe_train(struct tkm_trainer *t, tkmi_counts *counts, tkm_model **out)
{
    bpe B;
    tkmi_vbase vb;
    bpe_entry e;
    int rc = tkmi_bpe_setup(t, counts, &B, &vb);
    if (rc >= 0) B.balancing = tkmi_bpe_budgets(&B, &t->o, &t->stats, B.budget, B.closed);
    long shown = 0;
    while (rc >= 0 && B.merges < B.target && (rc = tkmi_bpe_pop(&B, &e)) > 0) {
        rc = tkmi_bpe_step(&B, &e);
        if (rc >= 0 && t->progress && B.merges != shown && (B.merges % 1000 == 0 || B.merges == B.target))
            t->progress(t->progress_ctx, "merging", (uint64_t)(shown = B.merges), (uint64_t)B.target);
    }
    if (rc >= 0) rc = tkmi_bpe_finish(&B, t, &vb, out);
    tkmi_bpe_free(&B);
    tkmi_vbase_free(&vb);
    return rc < 0 ? rc : 0;
}
