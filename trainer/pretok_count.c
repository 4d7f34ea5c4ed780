/* pretok_count.c - the trainer's counting primitives: the pre-token count
 * table (open addressing, arena-held keys) and the cutting of one normalized
 * line into pre-tokens with sentencepiece's word and piece rules (whitespace,
 * user-defined symbols, scripts, digits), with a small per-worker hot table of
 * frequent pre-tokens in front of the count table. The threads that call
 * these live in trainer.c. Memory grows with the number of unique
 * pre-tokens, not with corpus size. */
#include <stdio.h>
#include <math.h>
#include <stdlib.h>

#include "trainer_internal.h"

/* A zeroed slot array. No transparent huge pages (they were asked for
 * here once, against page walks on random probes): with the hot table few
 * occurrences reach this table, and on the VM the benchmarks run on a fresh
 * 2 MiB page costs ~10x more to fault in per byte than 4 KiB pages (8 ms per
 * MB, measured with a touch loop), so at 500 MB, 2 threads, the zeroing of
 * huge pages was 27% of the counting profile; without them the process CPU
 * went 13.8/14.2 -> 12.7/12.7 s. */
static uint64_t *slots_alloc(size_t cap) { return tkmi_calloc(cap, sizeof(uint64_t)); }

/* ---- count table (layout: trainer_internal.h) ---- */
#define TAG_BITS 24
#define TAG_MASK (((uint64_t)1 << TAG_BITS) - 1)
#define ID_LIMIT (((uint64_t)1 << (64 - TAG_BITS)) - 1) /* ids below it: 1 TiB of records */
#define FIRST_CHUNK ((size_t)4096)
static inline uint64_t slot_tag(uint64_t h) { return h >> (64 - TAG_BITS); }
static inline uint64_t slot_id(uint64_t v) { return (v >> TAG_BITS) - 1; }

int tkmi_counts_init(tkmi_counts *c, size_t expect)
{
    memset(c, 0, sizeof *c);
    size_t cap = 1024;
    while (cap < expect * 2) cap <<= 1;
    c->s = slots_alloc(cap);
    c->cap = cap;
    TKM_RETURN_ERROR_IF(!c->s, TKM_ENOMEM, "out of memory (count table)");
    return 0;
}

void tkmi_counts_free(tkmi_counts *c)
{
    tkmi_free(c->s);
    for (size_t i = 0; i < c->nch; i++) tkmi_free(c->ch[i].p);
    tkmi_free(c->ch);
    memset(c, 0, sizeof *c);
}

/* The slots at cap nc, from the records (walked in order, their hashes
 * computed again: the slots keep 24 bits of each). */
static int counts_rehash(tkmi_counts *c, size_t nc)
{
    uint64_t *ns = slots_alloc(nc);
    TKM_RETURN_ERROR_IF(!ns, TKM_ENOMEM, "out of memory (count table of %zu)", nc);
    size_t mask = nc - 1;
    for (size_t k = 0; k < c->nch; k++) {
        const char *p = c->ch[k].p;
        for (size_t off = 0; off < c->ch[k].used;) {
            tkmi_centry e;
            uint64_t id = (uint64_t)k << TKMI_CHUNK_SHIFT | off;
            off += tkmi_counts_dec(p + off, id, &e);
            uint64_t h = tkmi_hash_bytes(e.key, e.len);
            size_t i = h & mask;
            while (ns[i]) i = (i + 1) & mask;
            ns[i] = (id + 1) << TAG_BITS | slot_tag(h);
        }
    }
    tkmi_free(c->s);
    c->s = ns;
    c->cap = nc;
    return 0;
}

/* a == b for n <= TKMI_HOT_KEY bytes, without a call: whole words, the last
 * one overlapping */
static inline int key_eq(const char *a, const char *b, size_t n)
{
    uint64_t x, y;
    if (n >= 8) {
        size_t i = 0;
        for (; i + 8 < n; i += 8) {
            memcpy(&x, a + i, 8);
            memcpy(&y, b + i, 8);
            if (x != y) return 0;
        }
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        uint32_t p, q, r, u;
        memcpy(&p, a, 4), memcpy(&q, b, 4), memcpy(&r, a + n - 4, 4), memcpy(&u, b + n - 4, 4);
        return p == q && r == u;
    }
    return a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1];
}

/* Room for a record of `need` bytes: its id, the chunk grown or a new one
 * taken (a record longer than a chunk gets a block of its own). */
static int arena_room(tkmi_counts *c, size_t need, uint64_t *id)
{
    tkmi_chunk *last = c->nch ? &c->ch[c->nch - 1] : NULL;
    if (last && last->size - last->used >= need) {
        *id = (uint64_t)(c->nch - 1) << TKMI_CHUNK_SHIFT | last->used;
        return 0;
    }
    /* the first chunk grows by doubling (small tables stay small) */
    if (c->nch == 1 && last->size < TKMI_CHUNK && last->used + need <= TKMI_CHUNK) {
        size_t ns = last->size;
        while (ns < last->used + need) ns *= 2;
        if (ns > TKMI_CHUNK) ns = TKMI_CHUNK; /* (a copy's chunk: any size) */
        char *p = tkmi_realloc(last->p, ns);
        TKM_RETURN_ERROR_IF(!p, TKM_ENOMEM, "out of memory (count table keys: %zu bytes)", ns);
        c->arena_bytes += ns - last->size;
        last->p = p;
        last->size = ns;
        *id = last->used;
        return 0;
    }
    size_t take = need <= TKMI_CHUNK ? 1 : (need + TKMI_CHUNK - 1) >> TKMI_CHUNK_SHIFT;
    TKM_RETURN_ERROR_IF(((uint64_t)(c->nch + take) << TKMI_CHUNK_SHIFT) >= ID_LIMIT, TKM_ENOMEM,
                        "count table: over %llu bytes of pre-tokens", (unsigned long long)ID_LIMIT);
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&c->ch, &c->ch_cap, c->nch + take, sizeof *c->ch));
    size_t size = c->nch == 0 && need <= FIRST_CHUNK ? FIRST_CHUNK : need <= TKMI_CHUNK ? TKMI_CHUNK : need;
    char *p = tkmi_malloc(size);
    TKM_RETURN_ERROR_IF(!p, TKM_ENOMEM, "out of memory (count table keys: %zu bytes)", size);
    for (size_t i = 1; i < take; i++) c->ch[c->nch + i] = (tkmi_chunk){NULL, 0, 0};
    c->ch[c->nch] = (tkmi_chunk){p, 0, size};
    *id = (uint64_t)c->nch << TKMI_CHUNK_SHIFT;
    c->nch += take;
    c->arena_bytes += size;
    return 0;
}

static inline size_t varint_len(size_t v)
{
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

int tkmi_counts_add(tkmi_counts *c, const char *k, size_t len, uint64_t h, int64_t n)
{
    size_t mask = c->cap - 1, i = h & mask;
    const uint64_t tag = slot_tag(h);
    for (uint64_t v; (v = c->s[i]); i = (i + 1) & mask) {
        if ((v & TAG_MASK) != tag) continue;
        char *r = (char *)tkmi_counts_rec(c, slot_id(v));
        tkmi_centry e;
        tkmi_counts_dec(r, 0, &e);
        if (e.len == len && (len <= TKMI_HOT_KEY ? !len || key_eq(e.key, k, len) : memcmp(e.key, k, len) == 0)) {
            int64_t x = e.count + n;
            memcpy(r, &x, 8);
            return 0;
        }
    }
    size_t vl = varint_len(len), need = 8 + vl + len;
    uint64_t id = 0;
    TKM_FORWARD_IF_ERROR(arena_room(c, need, &id));
    tkmi_chunk *ch = &c->ch[id >> TKMI_CHUNK_SHIFT];
    uint8_t *r = (uint8_t *)ch->p + ch->used;
    memcpy(r, &n, 8);
    size_t v = len, o = 8;
    for (; v >= 0x80; v >>= 7) r[o++] = (uint8_t)(v | 0x80);
    r[o++] = (uint8_t)v;
    if (len) memcpy(r + o, k, len);
    ch->used += need;
    c->s[i] = (id + 1) << TAG_BITS | tag;
    c->n++;
    c->nrec++;
    if (c->nrec * 4 > c->cap * 3) {
        /* under a limit, a rehash that would pass it waits for the spill */
        if (c->limit && tkmi_counts_bytes(c) + 2 * c->cap * sizeof *c->s > c->limit && c->nrec * 8 < c->cap * 7) c->full = 1;
        else TKM_FORWARD_IF_ERROR(counts_rehash(c, c->cap * 2));
    }
    return 0;
}

/* The first record at or after byte pos of the records (chunks in order). */
static void counts_locate(const tkmi_counts *c, size_t pos, size_t *ch, size_t *off)
{
    size_t k = 0;
    while (k < c->nch && pos >= c->ch[k].used) pos -= c->ch[k++].used;
    *ch = k;
    *off = 0;
    if (k == c->nch || !pos) return;
    tkmi_centry e;
    size_t o = 0;
    while (o < pos) o += tkmi_counts_dec(c->ch[k].p + o, 0, &e);
    if (o >= c->ch[k].used) *ch = k + 1, o = 0;
    *off = o;
}

void tkmi_counts_iter(const tkmi_counts *c, int part, int parts, tkmi_citer *it)
{
    memset(it, 0, sizeof *it);
    it->c = c;
    it->end_ch = c->nch;
    if (parts <= 1) return;
    size_t total = 0;
    for (size_t k = 0; k < c->nch; k++) total += c->ch[k].used;
    size_t lo = (size_t)((unsigned __int128)total * (unsigned)part / (unsigned)parts);
    size_t hi = (size_t)((unsigned __int128)total * (unsigned)(part + 1) / (unsigned)parts);
    counts_locate(c, lo, &it->ch, &it->off);
    if (part + 1 < parts) counts_locate(c, hi, &it->end_ch, &it->end_off);
}

int tkmi_counts_copy(const tkmi_counts *src, tkmi_counts *dst)
{
    memset(dst, 0, sizeof *dst);
    dst->s = tkmi_malloc(src->cap * sizeof *dst->s);
    dst->ch = tkmi_calloc(src->nch ? src->nch : 1, sizeof *dst->ch);
    int ok = dst->s && dst->ch;
    if (ok) {
        memcpy(dst->s, src->s, src->cap * sizeof *dst->s);
        dst->cap = src->cap;
        dst->ch_cap = src->nch ? src->nch : 1;
    }
    for (size_t k = 0; ok && k < src->nch; k++) {
        const tkmi_chunk *f = &src->ch[k];
        dst->nch = k + 1;
        if (!f->p) continue;
        size_t size = f->used ? f->used : 1; /* (records go to a new chunk) */
        dst->ch[k] = (tkmi_chunk){tkmi_malloc(size), f->used, size};
        if (!(ok = dst->ch[k].p != NULL)) break;
        memcpy(dst->ch[k].p, f->p, f->used);
        dst->arena_bytes += size;
    }
    if (!ok) {
        tkmi_counts_free(dst);
        return tkmi_error(TKM_ENOMEM, "out of memory (copy of the pre-token counts)");
    }
    dst->n = src->n;
    dst->nrec = src->nrec;
    return 0;
}

int tkmi_counts_absorb(tkmi_counts *c, tkmi_counts *src)
{
    /* the records are walked in order: src's slots are not needed */
    tkmi_free(src->s);
    src->s = NULL;
    src->cap = 0;
    int rc = 0;
    enum { AHEAD = 16 };
    tkmi_centry e[AHEAD];
    uint64_t h[AHEAD];
    for (size_t k = 0; k < src->nch; k++) {
        const char *p = src->ch[k].p;
        for (size_t off = 0; rc == 0 && off < src->ch[k].used;) {
            /* a batch: the slots each will probe prefetched first */
            int m = 0;
            while (m < AHEAD && off < src->ch[k].used) {
                off += tkmi_counts_dec(p + off, 0, &e[m]);
                if (!e[m].count) continue;
                h[m] = tkmi_hash_bytes(e[m].key, e[m].len);
                __builtin_prefetch(&c->s[h[m] & (c->cap - 1)]);
                m++;
            }
            for (int i = 0; i < m && rc == 0; i++) rc = tkmi_counts_add(c, e[i].key, e[i].len, h[i], e[i].count);
        }
        tkmi_free(src->ch[k].p);
        src->ch[k].p = NULL;
    }
    tkmi_counts_free(src);
    return rc;
}

int tkmi_counts_drain(tkmi_counts *c, int (*fn)(void *ctx, const tkmi_centry *e), void *ctx)
{
    /* the records are walked in order: the slots are not needed */
    tkmi_free(c->s);
    c->s = NULL;
    c->cap = 0;
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < c->nch; k++) {
        const char *p = c->ch[k].p;
        tkmi_centry e;
        for (size_t off = 0; rc == 0 && off < c->ch[k].used;) {
            off += tkmi_counts_dec(p + off, (uint64_t)k << TKMI_CHUNK_SHIFT | off, &e);
            if (e.count) rc = fn(ctx, &e);
        }
        tkmi_free(c->ch[k].p);
        c->ch[k].p = NULL;
    }
    tkmi_counts_free(c);
    return rc;
}

static int flush_pending(tkmi_worker *w);

/* ---- hot table ---- */
/* Zipf: a few 10k pre-tokens make most occurrences. Each worker keeps a
 * direct-mapped table of 2^TKMI_HOT_BITS entries (2 MiB, L2-resident) in
 * front of its big table: a hit adds to the entry; a miss on an entry with
 * hits left takes one away and goes to the big table; a miss on an entry
 * with none left evicts it (its count to the big table) and takes its place.
 * Counts stay exact (each occurrence is counted once, in the hot or the big
 * table) whatever is evicted when. */
int tkmi_pretok_hot(tkmi_worker *w)
{
    if (w->hot) return 0;
    w->hot = tkmi_calloc((size_t)1 << TKMI_HOT_BITS, sizeof *w->hot);
    TKM_RETURN_ERROR_IF(!w->hot, TKM_ENOMEM, "out of memory (hot table)");
    return 0;
}

int tkmi_pretok_drain(tkmi_worker *w)
{
    TKM_FORWARD_IF_ERROR(flush_pending(w));
    if (!w->hot) return 0;
    for (size_t i = 0; i < (size_t)1 << TKMI_HOT_BITS; i++) {
        tkmi_hot *e = &w->hot[i];
        if (e->count) TKM_FORWARD_IF_ERROR(tkmi_counts_add(&w->counts, e->key, e->len, e->h, e->count));
        e->count = 0;
        e->hits = 0;
    }
    return 0;
}

/* 1 if the hot table took the occurrence */
static inline int hot_add(tkmi_worker *w, const char *s, size_t len, uint64_t h, int *rc)
{
    tkmi_hot *e = &w->hot[h >> (64 - TKMI_HOT_BITS)];
    if (e->h == h && e->len == len && e->count && key_eq(e->key, s, len)) {
        e->count += w->inc;
        e->hits += e->hits < (1u << 30);
        return 1;
    }
    if (e->count && e->hits) {
        e->hits--;
        return 0;
    }
    if (e->count && (*rc = tkmi_counts_add(&w->counts, e->key, e->len, e->h, e->count)) < 0) return 1;
    e->h = h;
    e->len = (uint32_t)len;
    e->count = w->inc;
    e->hits = 0;
    memcpy(e->key, s, len);
    return 1;
}

/* ---- pre-tokenization ---- */
/* Counts the pending pre-tokens, in the order of the cuts: the hot table
 * first (its entries were prefetched by emit), then the big table for those
 * it did not take, prefetching their slots, then the keys of the slots that
 * match. */
static int flush_pending(tkmi_worker *w)
{
    tkmi_counts *c = &w->counts;
    int n = w->n_pend, rc = 0;
    w->n_pend = 0;
    if (w->hot) {
        int m = 0;
        for (int i = 0; i < n; i++) {
            tkmi_pend p = w->pend[i];
            if (p.len <= TKMI_HOT_KEY && hot_add(w, p.s, p.len, p.h, &rc)) {
                if (rc < 0) return rc;
                continue;
            }
            __builtin_prefetch(&c->s[p.h & (c->cap - 1)]);
            w->pend[m++] = p;
        }
        n = m;
    }
    size_t mask = c->cap - 1;
    for (int i = 0; i < n; i++) {
        uint64_t v = c->s[w->pend[i].h & mask];
        if (v && (v & TAG_MASK) == slot_tag(w->pend[i].h)) tkmi_counts_prefetch(c, slot_id(v));
    }
    for (int i = 0; i < n; i++)
        TKM_FORWARD_IF_ERROR(tkmi_counts_add(c, w->pend[i].s, w->pend[i].len, w->pend[i].h, w->inc));
    return 0;
}

static int emit(tkmi_worker *w, const char *s, size_t len)
{
    if (!len) return 0;
    /* the table stores key lengths in 32 bits: a longer pre-token (a line of
     * over 4 GiB without a space) is refused, never truncated */
    TKM_RETURN_ERROR_IF(len > UINT32_MAX, TKM_EINVAL, "a pre-token of %zu bytes (a line without spaces): over 4 GiB", len);
    w->st.tokens++;
    uint64_t h = tkmi_hash_bytes(s, len);
    if (w->hot) __builtin_prefetch(&w->hot[h >> (64 - TKMI_HOT_BITS)]);
    else __builtin_prefetch(&w->counts.s[h & (w->counts.cap - 1)]);
    w->pend[w->n_pend++] = (tkmi_pend){s, h, (uint32_t)len};
    return w->n_pend == TKMI_PEND ? flush_pending(w) : 0;
}

/* The cutting rules, one character at a time: the character at s[at, at+mb)
 * of the normalized line has code point cp; c->tok is where the current
 * pre-token starts. Both pre-tokenizer paths below call this. */
typedef struct {
    size_t tok;      /* start of the current pre-token */
    int tok_all_ws;  /* current pre-token is a run of U+2581 */
    int last_script; /* script of the last non-ws char in the token; -2 none */
    const uint8_t *scr; /* tkmi_script_bmp() */
    /* the options, copied: kept in registers across emit() calls */
    int ws_only, split_digits, by_number, by_script;
} cutter;

static cutter cutter_start(const tkm_train_options *o)
{
    if (o->model_type == TKM_MODEL_WORD) /* words: cut before each U+2581 only (SplitIntoWords) */
        return (cutter){0, 0, -2, tkmi_script_bmp(), 0, 0, 1, 0};
    return (cutter){0, 0, -2, tkmi_script_bmp(), o->allow_whitespace_only_pieces, o->split_digits, o->split_by_number,
                    o->split_by_unicode_script};
}

static inline __attribute__((always_inline)) int cut_char(tkmi_worker *w, cutter *c, const char *s, size_t at, size_t mb, int32_t cp)
{
    if (cp == (int32_t)TKMI_WS_CP) {
        if (!(c->ws_only && c->tok_all_ws && at > c->tok)) {
            TKM_FORWARD_IF_ERROR(emit(w, s + c->tok, at - c->tok));
            c->tok = at;
        }
        c->tok_all_ws = (at == c->tok) ? 1 : c->tok_all_ws;
        c->last_script = -2;
        return 0;
    }
    if (cp == 0) { /* NUL never enters a piece */
        TKM_FORWARD_IF_ERROR(emit(w, s + c->tok, at - c->tok));
        c->tok = at + mb;
        c->tok_all_ws = 0;
        c->last_script = -2;
        return 0;
    }
    int digit = tkmi_is_decimal_digit((uint32_t)cp);
    if (c->split_digits && digit) {
        TKM_FORWARD_IF_ERROR(emit(w, s + c->tok, at - c->tok));
        TKM_FORWARD_IF_ERROR(emit(w, s + at, mb));
        c->tok = at + mb;
        c->tok_all_ws = 0;
        c->last_script = -2;
        return 0;
    }
    int sc = (digit && !c->by_number) ? TKMI_SCRIPT_ANY : cp < 65536 ? c->scr[cp] : tkmi_script((uint32_t)cp);
    /* With whitespace-only pieces, "▁▁▁foo" stays one word as in
     * sentencepiece: the pair rules decide between "▁▁▁" and "▁foo". */
    c->tok_all_ws = 0;
    if (c->by_script && c->last_script >= 0 && sc >= 0 && sc != c->last_script) {
        TKM_FORWARD_IF_ERROR(emit(w, s + c->tok, at - c->tok));
        c->tok = at;
    }
    c->last_script = sc == TKMI_SCRIPT_ANY ? -1 : sc;
    return 0;
}

/* The common case in one pass: a normalizer without a charsmap, extra-space
 * removal or user-defined symbols only maps ' ' to U+2581 and each invalid
 * byte to U+FFFD (and may add a dummy prefix), so the line is normalized,
 * checked and cut while each character is decoded once. It writes the same
 * normalized text and emits the same pre-tokens as tkmi_pretok_line_generic
 * (check_trainer compares them on random bytes). */
int tkmi_pretok_fast_ok(const struct tkm_trainer *t)
{
    const tkm_model *m = &t->norm_model;
    return (!m->has_user || t->user_utf8) && !m->darts_units && !m->remove_extra_ws && !m->treat_ws_suffix && m->escape_ws;
}

/* 0 if no user-defined symbol can start at s (most positions: the trie is
 * not walked there); 1 if one may */
static inline int user_may_start(const struct tkm_trainer *t, const char *s, size_t len)
{
    uint8_t b0 = (uint8_t)s[0], f = t->user_first[b0];
    if (f & 1) return 1;
    if (!(f & 2) || len < 2) return 0;
    unsigned k = (unsigned)b0 << 8 | (uint8_t)s[1];
    if (!((t->user_first2[k >> 6] >> (k & 63)) & 1)) return 0;
    if (len < 4 || ((t->user_short2[k >> 6] >> (k & 63)) & 1)) return 1;
    uint32_t v, h;
    memcpy(&v, s, 4);
    h = TKMI_PRE4(v);
    return (int)(t->user_pre4[h >> 6] >> (h & 63)) & 1;
}

/* The number of bytes before the first (lowest-addressed) byte of a loaded
 * word whose high bit is set in m (m != 0); on a big-endian machine 0: the
 * callers then go on a byte at a time. */
static inline size_t first_flagged(uint64_t m)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (size_t)__builtin_ctzll(m) >> 3;
#else
    (void)m;
    return 0;
#endif
}

/* The end of the run of ASCII letters at u[i, nl), or of its first part
 * past the last whole 8 bytes: each byte is lowered (| 0x20) and tested for
 * 'a'..'z' in its own byte, no carry across (high bits cleared first). */
static inline size_t letter_run(const uint8_t *u, size_t i, size_t nl)
{
    const uint64_t lows = 0x7F7F7F7F7F7F7F7Full, highs = 0x8080808080808080ull;
    for (; i + 8 <= nl; i += 8) {
        uint64_t x, z, m;
        memcpy(&x, u + i, 8);
        z = (x | 0x2020202020202020ull) & lows;
        /* high bit of a byte that is not a letter: z < 'a', z > 'z' or x >= 0x80 */
        m = (~(z + 0x1F1F1F1F1F1F1F1Full) | (z + 0x0505050505050505ull) | x) & highs;
        if (m) return i + first_flagged(m);
    }
    return i;
}

/* The cut of normalized text s[0, nl) where user-defined symbols may
 * occur: they are never split nor merged (nor counted). valid: s is valid
 * UTF-8, decoded without checks. */
static inline int cut_user(struct tkm_trainer *t, tkmi_worker *w, const char *s, size_t nl, int valid)
{
    const uint8_t *u = (const uint8_t *)s;
    cutter c = cutter_start(&t->o);
    int has_user = t->norm_model.has_user;
    size_t i = 0;
    while (i < nl) {
        if (has_user && user_may_start(t, s + i, nl - i)) {
            size_t k = tkmi_ptrie_longest(&t->norm_model.user, s + i, nl - i);
            if (k) {
                TKM_FORWARD_IF_ERROR(emit(w, s + c.tok, i - c.tok));
                i += k;
                c.tok = i;
                c.tok_all_ws = 0;
                c.last_script = -2;
                continue;
            }
        }
        int32_t cp;
        int mb;
        uint8_t b = u[i];
        if (b < 0x80 && t->plain[b]) { /* the rest of an ASCII run of one script cuts nothing */
            TKM_FORWARD_IF_ERROR(cut_char(w, &c, s, i, 1, b));
            uint8_t sc = c.scr[b];
            i++;
            if (t->letters_plain && sc == c.scr['a']) i = letter_run(u, i, nl);
            for (; i < nl && u[i] < 0x80 && t->plain[u[i]] && c.scr[u[i]] == sc; i++) {}
            continue;
        }
        if (b < 0x80) cp = b, mb = 1;
        else if (!valid) cp = tkmi_utf8_decode(u + i, nl - i, &mb);
        else if (b < 0xE0) cp = (b & 0x1F) << 6 | (u[i + 1] & 0x3F), mb = 2;
        else if (b < 0xF0) cp = (b & 0x0F) << 12 | (u[i + 1] & 0x3F) << 6 | (u[i + 2] & 0x3F), mb = 3;
        else cp = (b & 0x07) << 18 | (u[i + 1] & 0x3F) << 12 | (u[i + 2] & 0x3F) << 6 | (u[i + 3] & 0x3F), mb = 4;
        TKM_FORWARD_IF_ERROR(cut_char(w, &c, s, i, (size_t)mb, cp));
        i += (size_t)mb;
    }
    return emit(w, s + c.tok, nl - c.tok);
}

/* tkmi_normalize for the one-pass settings with user-defined symbols: it
 * copies a symbol matched in the raw line with its spaces escaped, which is
 * what the character rules give for a symbol of valid UTF-8 (the one-pass
 * condition), so no symbol is looked for here: ' ' becomes U+2581, an
 * invalid byte U+FFFD (counted, as NUL bytes are), the rest is copied,
 * 8 ASCII bytes at a time where none of them is ' ' or NUL. Writes s
 * (len * 3 + 3 bytes at most), returns its length. */
static size_t normalize_plain(struct tkm_trainer *t, tkmi_worker *w, const uint8_t *in, size_t len, char *s)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull, spaces = 0x2020202020202020ull;
    size_t i = 0, op = 0;
    if (t->norm_model.add_dummy_prefix) memcpy(s, TKMI_WS, 3), op = 3;
    while (i < len) {
        if (i + 8 <= len) {
            uint64_t x, y;
            memcpy(&x, in + i, 8);
            y = x ^ spaces;
            /* a high bit at each byte >= 0x80, NUL or ' ': exact up to the
             * first (a borrow only runs above a zero byte) */
            uint64_t m = (x | ((x - ones) & ~x) | ((y - ones) & ~y)) & highs;
            memcpy(s + op, &x, 8); /* s has room: op + 8 <= 3 * i + 11 <= 3 * len + 3 */
            if (!m) {
                i += 8, op += 8;
                continue;
            }
            size_t k = first_flagged(m); /* the bytes before it are plain ASCII */
            i += k, op += k;
        }
        uint8_t b = in[i];
        if (b < 0x80) {
            if (b == ' ') memcpy(s + op, TKMI_WS, 3), op += 3;
            else s[op++] = (char)b, w->st.nul += b == 0;
            i++;
            continue;
        }
        /* a valid 3-byte character (kana, kanji: E0 needs A0.., ED ..9F),
         * copied without the general decoder */
        if ((b & 0xF0) == 0xE0 && i + 3 <= len && (in[i + 1] & 0xC0) == 0x80 && (in[i + 2] & 0xC0) == 0x80 &&
            (b != 0xE0 || in[i + 1] >= 0xA0) && (b != 0xED || in[i + 1] < 0xA0)) {
            memcpy(s + op, in + i, 3);
            i += 3, op += 3;
            continue;
        }
        int mb;
        if (tkmi_utf8_decode(in + i, len - i, &mb) < 0) {
            w->st.invalid++;
            memcpy(s + op, "\xEF\xBF\xBD", 3), op += 3;
        } else {
            memcpy(s + op, in + i, (size_t)mb), op += (size_t)mb;
        }
        i += (size_t)mb;
    }
    return op;
}

static int pretok_fast(struct tkm_trainer *t, tkmi_worker *w, const char *line, size_t len)
{
    const uint8_t *in = (const uint8_t *)line;
    if (len == 0) return 0;
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&w->norm, &w->norm_cap, len * 3 + 8, 1));
    char *s = w->norm;
    if (t->norm_model.has_user) return cut_user(t, w, s, normalize_plain(t, w, in, len, s), 1);
    cutter c = cutter_start(&t->o);
    size_t i = 0, op = 0; /* input position, output position */
    int dummy = t->norm_model.add_dummy_prefix;
    while (i < len || dummy) {
        int32_t cp;
        size_t mb_out;
        if (dummy) {
            cp = (int32_t)TKMI_WS_CP;
            memcpy(s + op, TKMI_WS, 3);
            mb_out = 3;
            dummy = 0;
        } else if (in[i] < 0x80) {
            cp = in[i];
            if (cp == ' ') {
                cp = (int32_t)TKMI_WS_CP;
                memcpy(s + op, TKMI_WS, 3);
                mb_out = 3;
            } else {
                s[op] = (char)cp;
                mb_out = 1;
                w->st.nul += cp == 0;
            }
            i++;
        } else {
            int mb;
            cp = tkmi_utf8_decode(in + i, len - i, &mb);
            if (cp < 0) {
                w->st.invalid++;
                cp = 0xFFFD;
                memcpy(s + op, "\xEF\xBF\xBD", 3);
                mb_out = 3;
            } else {
                memcpy(s + op, in + i, (size_t)mb);
                mb_out = (size_t)mb;
            }
            i += (size_t)mb;
        }
        TKM_FORWARD_IF_ERROR(cut_char(w, &c, s, op, mb_out, cp));
        op += mb_out;
    }
    return emit(w, s + c.tok, op - c.tok);
}

int tkmi_pretok_emit(tkmi_worker *w, const char *s, size_t len) { return emit(w, s, len); }
int tkmi_pretok_flush(tkmi_worker *w) { return flush_pending(w); }

int tkmi_pretok_line(struct tkm_trainer *t, tkmi_worker *w, const char *line, size_t len)
{
    if (t->pretok_ws) return tkmi_pretok_line_ws(t, w, line, len); /* pretok_ws.c */
    if (!tkmi_pretok_fast_ok(t)) return tkmi_pretok_line_generic(t, w, line, len);
    w->st.lines++;
    w->st.bytes += len + 1;
    TKM_FORWARD_IF_ERROR(pretok_fast(t, w, line, len));
    return flush_pending(w); /* the keys point into w->norm, rewritten by the next line */
}

int tkmi_pretok_line_generic(struct tkm_trainer *t, tkmi_worker *w, const char *line, size_t len)
{
    w->st.lines++;
    w->st.bytes += len + 1;
    /* Count invalid UTF-8 and NUL bytes for the report. */
    for (size_t i = 0; i < len;) {
        uint8_t c = (uint8_t)line[i];
        if (c < 0x80) { w->st.nul += c == 0; i++; continue; }
        int mb;
        if (tkmi_utf8_decode((const uint8_t *)line + i, len - i, &mb) < 0) w->st.invalid++;
        i += (size_t)mb;
    }
    size_t nl = 0;
    TKM_FORWARD_IF_ERROR(tkmi_normalize(&t->norm_model, line, len, &w->norm, &nl, &w->norm_cap));
    if (nl == 0) return flush_pending(w); /* nothing to cut (and w->norm may still be NULL) */
    TKM_FORWARD_IF_ERROR(cut_user(t, w, w->norm, nl, 0));
    return flush_pending(w);
}

/* ---- the table in key order (count files, spill runs) ---- */
static _Thread_local const tkmi_counts *sort_ctx;
static int cmp_rec(const void *x, const void *y)
{
    tkmi_centry a, b;
    tkmi_counts_get(sort_ctx, *(const uint64_t *)x, &a);
    tkmi_counts_get(sort_ctx, *(const uint64_t *)y, &b);
    return tkmi_key_cmp(a.key, a.len, b.key, b.len);
}

int tkmi_counts_sorted(const tkmi_counts *c, uint64_t **out)
{
    *out = NULL;
    uint64_t *idx = tkmi_malloc((c->n ? c->n : 1) * sizeof *idx);
    TKM_RETURN_ERROR_IF(!idx, TKM_ENOMEM, "out of memory (sorting counts)");
    size_t n = 0;
    tkmi_citer it;
    tkmi_centry e;
    tkmi_counts_iter(c, 0, 1, &it);
    while (n < c->n && tkmi_counts_next(&it, &e)) idx[n++] = e.id;
    sort_ctx = c;
    if (n > 1) qsort(idx, n, sizeof *idx, cmp_rec);
    *out = idx;
    return 0;
}

size_t tkmi_counts_take_ids(tkmi_counts *c, unsigned part_bits, size_t *start)
{
    if (part_bits > 8) part_bits = 8;
    uint64_t *s = c->s;
    size_t n = 0, parts = (size_t)1 << part_bits;
    for (size_t i = 0; i < c->cap; i++)
        if (s[i]) s[n++] = s[i];
    /* a pass of counts, then the values moved to their partitions in place
     * (each swap puts one where it belongs); the tag is the top of the hash */
    const unsigned sh = TAG_BITS - part_bits;
    memset(start, 0, (parts + 1) * sizeof *start);
    for (size_t i = 0; i < n; i++) start[((s[i] & TAG_MASK) >> sh) + 1]++;
    for (size_t p = 0; p < parts; p++) start[p + 1] += start[p];
    size_t next[256]; /* (part_bits <= 8) */
    memcpy(next, start, parts * sizeof *next);
    for (size_t p = 0; p < parts; p++)
        while (next[p] < start[p + 1]) {
            uint64_t v = s[next[p]];
            size_t q = (v & TAG_MASK) >> sh;
            if (q == p) { next[p]++; continue; }
            s[next[p]] = s[next[q]];
            s[next[q]++] = v;
        }
    for (size_t i = 0; i < n; i++) s[i] = slot_id(s[i]);
    return n;
}

/* ---- sizes (count_spill.c's limit, trainer.c's merge) ---- */
/* bytes held: the slots, the chunks (the last one as far as it is
 * written: the rest of a full-size chunk is mapped but never touched) and
 * the chunk list */
size_t tkmi_counts_bytes(const tkmi_counts *c)
{
    size_t b = c->cap * sizeof *c->s + c->arena_bytes + c->ch_cap * sizeof *c->ch;
    if (c->nch && c->ch[c->nch - 1].size == TKMI_CHUNK) b -= (TKMI_CHUNK - c->ch[c->nch - 1].used) & ~(size_t)4095;
    return b;
}

size_t tkmi_counts_slot_peak(size_t n)
{
    size_t cap = 1024;
    while (cap * 3 < n * 4) cap <<= 1;
    return cap / 2 * 3 * sizeof(uint64_t);
}
