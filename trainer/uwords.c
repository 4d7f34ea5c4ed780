/* uwords.c - the Unigram trainer's words (layout: uwords.h), built from the
 * pre-token count table.
 *
 * Memory: the table is drained chunk by chunk (tkmi_counts_drain: its slots
 * go first, then each 64 MiB chunk of records once cut into words), so the
 * peak is about the larger of the table and the words while they are
 * sorted (their bytes, once, plus 24 bytes a word: the sort works in place,
 * unlike the C library's merge sort, which takes as much again), not both.
 * A word then takes 12 bytes (offset and length in 64 bits, 32-bit count)
 * instead of the 24 of a pointer, length and 64-bit count. The bytes stay
 * where they were cut (copying them in word order would take a second
 * arena, the peak at scale, for no measurable gain: a word's lattice costs
 * far more than a cache miss on its bytes).
 *
 * The order (memcmp, a prefix first: tkmi_key_pfx_cmp) is a total order on
 * distinct words and equal words are merged, so the words do not depend on
 * the table's record order or on the sort's. */
#include <stdlib.h>
#include <string.h>

#include "../lib/heap.h"
#include "uwords.h"

/* a word while sorting, 24 bytes: its first 8 bytes big-endian (zero
 * padded), its offset << 24 | its length (LONG_LEN: in the long list), its
 * count */
typedef struct {
    uint64_t pfx, ol;
    int64_t cnt;
} wkey;
#define LEN_BITS TKMI_UW_LEN_BITS
#define LONG_LEN TKMI_UW_LONG
#define OFF_MAX ((uint64_t)1 << (64 - LEN_BITS))

typedef struct { uint64_t off, len; } wlong;

typedef struct {
    tkmi_cpmap *req;
    tkmi_uw_sample *smp; /* NULL: every entry at its count */
    char *arena;
    size_t pos, arena_cap;
    wkey *wk;
    size_t n, cap;
    wlong *lg; /* words of LONG_LEN bytes or more, by offset */
    size_t nlg, lgcap;
} build;

static uint64_t wk_len(const build *b, const wkey *k)
{
    uint64_t l = k->ol & LONG_LEN;
    if (l != LONG_LEN) return l;
    uint64_t off = k->ol >> LEN_BITS;
    size_t lo = 0, hi = b->nlg;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->lg[mid].off <= off) lo = mid;
        else hi = mid;
    }
    return b->lg[lo].len;
}

static int add_word(build *b, size_t start, int64_t cnt)
{
    size_t len = b->pos - start;
    if (b->n == b->cap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&b->wk, &b->cap, b->n + 1, sizeof *b->wk));
    TKM_RETURN_ERROR_IF((uint64_t)start >= OFF_MAX, TKM_ENOMEM, "Unigram: over %llu bytes of words",
                        (unsigned long long)OFF_MAX);
    if (len >= LONG_LEN) {
        TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&b->lg, &b->lgcap, b->nlg + 1, sizeof *b->lg));
        b->lg[b->nlg++] = (wlong){start, len};
    }
    b->wk[b->n++] = (wkey){tkmi_key_pfx8(b->arena + start, len),
                           (uint64_t)start << LEN_BITS | (len < LONG_LEN ? len : LONG_LEN), cnt};
    return 0;
}

/* an entry's count as a word's (-1: left out by the sample; tally: count
 * it in the sample's stats) */
static int64_t entry_weight(tkmi_uw_sample *smp, const tkmi_centry *e, int tally)
{
    if (!smp || !smp->tau || e->count >= smp->tau) return e->count;
    if (tkmi_mb_keep(tkmi_hash_bytes(e->key, e->len), e->count, smp->tau)) {
        smp->sampled += (uint64_t)tally;
        return smp->tau;
    }
    if (tally) {
        smp->left_unique++;
        smp->left_occ += (uint64_t)e->count;
    }
    return -1;
}

/* one count-table entry cut at characters outside the vocabulary */
static int cut_entry(void *ctx, const tkmi_centry *e)
{
    build *b = ctx;
    int64_t cnt = entry_weight(b->smp, e, 1);
    if (cnt < 0) return 0;
    const char *s = e->key;
    size_t n = e->len, start = b->pos;
    for (size_t i = 0; i <= n;) {
        int mb = 1, keep = 0;
        if (i < n) {
            int32_t cp = tkmi_utf8_decode((const uint8_t *)s + i, n - i, &mb);
            keep = b->req->sym[tkmi_cpmap_slot(b->req, (uint32_t)cp)] >= 0;
        }
        if (keep) {
            memcpy(b->arena + b->pos, s + i, (size_t)mb);
            b->pos += (size_t)mb;
        } else if (b->pos > start) {
            TKM_FORWARD_IF_ERROR(add_word(b, start, cnt));
            start = b->pos;
        }
        i += (size_t)mb;
    }
    return 0;
}

/* ---- in-place sort (introsort: no scratch, unlike the C library's merge
 * sort, which takes as much again) ---- */
static inline int wk_less(const build *b, const wkey *x, const wkey *y)
{
    if (x->pfx != y->pfx) return x->pfx < y->pfx;
    uint64_t lx = x->ol & LONG_LEN, ly = y->ol & LONG_LEN;
    if (lx > 8 && ly > 8) {
        if (lx == LONG_LEN) lx = wk_len(b, x);
        if (ly == LONG_LEN) ly = wk_len(b, y);
        uint64_t n = lx < ly ? lx : ly;
        int c = memcmp(b->arena + (x->ol >> LEN_BITS) + 8, b->arena + (y->ol >> LEN_BITS) + 8, (size_t)n - 8);
        if (c) return c < 0;
    }
    return lx < ly;
}

static inline void wk_swap(wkey *a, wkey *c)
{
    wkey t = *a;
    *a = *c;
    *c = t;
}

/* introsort's fallback: the project's one heap (lib/heap.h), largest first */
static inline int wk_greater(const build *b, const wkey *x, const wkey *y) { return wk_less(b, y, x); }
TKMI_HEAP_DEFINE(wkheap, wkey, const build *, wk_greater)

static void heap_sort(const build *b, wkey *a, size_t n)
{
    wkheap_heapify(b, a, n);
    for (size_t m = n; m > 1;) {
        wkey top = wkheap_pop(b, a, &m);
        a[m] = top;
    }
}

static void intro_sort(const build *b, wkey *a, size_t n, int depth)
{
    while (n > 16) {
        if (depth-- == 0) {
            heap_sort(b, a, n);
            return;
        }
        /* median of three to a[0], then Hoare partition around it */
        size_t m = n / 2;
        if (wk_less(b, &a[m], &a[0])) wk_swap(&a[m], &a[0]);
        if (wk_less(b, &a[n - 1], &a[m])) {
            wk_swap(&a[n - 1], &a[m]);
            if (wk_less(b, &a[m], &a[0])) wk_swap(&a[m], &a[0]);
        }
        wk_swap(&a[0], &a[m]);
        size_t i = 0, j = n;
        for (;;) {
            while (wk_less(b, &a[++i], &a[0]))
                if (i == n - 1) break;
            while (wk_less(b, &a[0], &a[--j])) {}
            if (i >= j) break;
            wk_swap(&a[i], &a[j]);
        }
        wk_swap(&a[0], &a[j]);
        /* recurse into the smaller side, loop on the larger */
        if (j < n - j - 1) {
            intro_sort(b, a, j, depth);
            a += j + 1;
            n -= j + 1;
        } else {
            intro_sort(b, a + j + 1, n - j - 1, depth);
            n = j;
        }
    }
    for (size_t i = 1; i < n; i++) {
        wkey v = a[i];
        size_t j = i;
        for (; j > 0 && wk_less(b, &v, &a[j - 1]); j--) a[j] = a[j - 1];
        a[j] = v;
    }
}

void tkmi_uwords_free(tkmi_uwords *w)
{
    tkmi_free(w->arena);
    tkmi_free(w->ol);
    tkmi_free(w->cnt);
    tkmi_free(w->big);
    tkmi_free(w->lg);
    memset(w, 0, sizeof *w);
}

int64_t tkmi_uwords_esc(const tkmi_uwesc *e, size_t n, size_t i)
{
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (e[mid].i <= i) lo = mid;
        else hi = mid;
    }
    return e[lo].v;
}

uint64_t tkmi_uwords_bytes(const tkmi_uwords *w)
{
    return w->arena_bytes + (uint64_t)w->n * (sizeof *w->ol + sizeof *w->cnt) +
           (uint64_t)(w->nbig + w->nlg) * sizeof(tkmi_uwesc);
}

static int esc_add(tkmi_uwesc **e, size_t *n, size_t *cap, size_t i, int64_t v)
{
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)e, cap, *n + 1, sizeof **e));
    (*e)[(*n)++] = (tkmi_uwesc){i, v};
    return 0;
}

/* the sorted keys, equal ones merged, into w; ol is written over b->wk as
 * it is read (8 bytes a word behind 24), so it takes no memory of its own */
static int pack_words(build *b, tkmi_uwords *w)
{
    size_t n = b->n, bigcap = 0, lgcap = 0;
    w->cnt = tkmi_malloc((n ? n : 1) * sizeof *w->cnt);
    TKM_RETURN_ERROR_IF(!w->cnt, TKM_ENOMEM, "out of memory (words)");
    uint64_t *ol = (uint64_t *)b->wk;
    _Static_assert(sizeof(wkey) >= sizeof(uint64_t), "an offset fits in a key");
    size_t k = 0;
    int64_t acc = 0;
    uint64_t lastpfx = 0, lastlen = 0, bytes = 0;
    const char *last = NULL;
    for (size_t i = 0; i <= n; i++) {
        wkey x = i < n ? b->wk[i] : (wkey){0, 0, 0};
        uint64_t len = i < n ? wk_len(b, &x) : 0;
        const char *s = b->arena + (x.ol >> LEN_BITS);
        if (i < n && k && x.pfx == lastpfx && len == lastlen && memcmp(last, s, (size_t)len) == 0) {
            acc += x.cnt;
            continue;
        }
        if (k) { /* word k - 1 is complete */
            if (acc < 0 || acc >= (int64_t)TKMI_UW_BIG) {
                TKM_FORWARD_IF_ERROR(esc_add(&w->big, &w->nbig, &bigcap, k - 1, acc));
                w->cnt[k - 1] = TKMI_UW_BIG;
            } else {
                w->cnt[k - 1] = (uint32_t)acc;
            }
        }
        if (i == n) break;
        if ((x.ol & LONG_LEN) == LONG_LEN) TKM_FORWARD_IF_ERROR(esc_add(&w->lg, &w->nlg, &lgcap, k, (int64_t)len));
        ol[k++] = x.ol; /* k - 1 <= i: key i is read already */
        bytes += len;
        acc = x.cnt;
        lastpfx = x.pfx;
        lastlen = len;
        last = s;
    }
    b->wk = NULL;
    uint64_t *o2 = tkmi_realloc(ol, (k ? k : 1) * sizeof *o2); /* shrunk in place */
    w->ol = o2 ? o2 : ol;
    uint32_t *c2 = tkmi_realloc(w->cnt, (k ? k : 1) * sizeof *c2);
    if (c2) w->cnt = c2;
    w->arena = b->arena;
    b->arena = NULL;
    w->arena_bytes = b->pos + 8;
    memset(w->arena + b->pos, 0, 8);
    char *a2 = tkmi_realloc(w->arena, b->pos + 8);
    if (a2) w->arena = a2;
    w->n = k;
    w->bytes = bytes;
    return 0;
}

/* At the peak a pre-token of len bytes holds its table record (8-byte
 * count, varint length, bytes) and slot (2 to 4 of 8 bytes at the size a
 * spill's merge gives the table, fewer after growth), or, once drained,
 * its key while sorting (24 bytes) and its bytes in the arena: not both,
 * since the table goes chunk by chunk as the words fill (measured at 4 GB
 * of generated text, 10.1M pre-tokens of 61 bytes on average: 940 MB with
 * the table, the same peak through the drain, 713 MB of words after).
 * Afterwards a word is 12 + len bytes, and 8 more for the lattice cache's
 * offsets. */
double tkmi_uwords_peak(size_t len) { return (double)len + 40.0; }

int tkmi_uwords_build(tkmi_uwords *w, tkmi_counts *counts, tkmi_cpmap *req, tkmi_uw_sample *smp)
{
    memset(w, 0, sizeof *w);
    build b;
    memset(&b, 0, sizeof b);
    b.req = req;
    b.smp = smp;
    size_t total = 0, kept = 0;
    tkmi_citer it;
    tkmi_centry e;
    tkmi_counts_iter(counts, 0, 1, &it);
    while (tkmi_counts_next(&it, &e))
        if (entry_weight(smp, &e, 0) >= 0) {
            total += e.len;
            kept++;
        }
    /* both taken whole now but touched only as they fill (pages of a large
     * block are mapped on first write), while the table's chunks go */
    b.arena = tkmi_malloc(total + 8);
    b.cap = kept + 16;
    b.wk = tkmi_malloc(b.cap * sizeof *b.wk);
    int rc = !b.arena || !b.wk ? tkmi_error(TKM_ENOMEM, "out of memory (words)") : 0;
    if (rc == 0) rc = tkmi_counts_drain(counts, cut_entry, &b);
    else tkmi_counts_free(counts);
    if (rc == 0) {
        int depth = 2;
        for (size_t m = b.n; m > 1; m >>= 1) depth += 2;
        intro_sort(&b, b.wk, b.n, depth);
        rc = pack_words(&b, w);
    }
    tkmi_free(b.arena);
    tkmi_free(b.wk);
    tkmi_free(b.lg);
    if (rc) tkmi_uwords_free(w);
    return rc;
}
