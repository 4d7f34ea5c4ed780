/* pretok_count.c - the trainer's counting primitives: the pre-token count
 * table (open addressing, arena-held keys) and the cutting of one normalized
 * line into pre-tokens with sentencepiece's word and piece rules (whitespace,
 * user-defined symbols, scripts, digits). The threads that call these live in
 * trainer.c. Memory grows with the number of unique pre-tokens, not with
 * corpus size. */
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "trainer_internal.h"

/* Large tables are probed at random: with 4 KiB pages nearly every probe of
 * a table past a few hundred MB also misses the TLB (the profile at 500 MB
 * showed the slot prefetch stalling on page walks). Ask for transparent huge
 * pages on the 2 MiB-aligned inside of a big block (a hint: where the kernel
 * says no, nothing changes). Done before the pages are first touched. */
static void advise_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (bytes < 2 * huge) return;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), e = ((uintptr_t)p + bytes) & ~(huge - 1);
    if (e > a) (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
    (void)p, (void)bytes;
#endif
}

/* a zeroed slot array, huge pages asked for before it is touched */
static tkmi_cslot *slots_alloc(size_t cap)
{
    tkmi_cslot *s = tkmi_calloc(cap, sizeof *s);
    if (!s) return NULL;
    advise_huge(s, cap * sizeof *s);
    for (size_t i = 0; i < cap * sizeof *s; i += 4096) ((volatile char *)s)[i] = 0;
    return s;
}


/* ---- count table ---- */
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
    tkmi_free(c->arena);
    memset(c, 0, sizeof *c);
}

static int counts_rehash(tkmi_counts *c)
{
    size_t nc = c->cap * 2;
    TKMI_RESIZE(tkmi_cslot, s, s->count, s->hash, c->s, c->cap, nc, slots_alloc(nc), "count table");
    return 0;
}

int tkmi_counts_add(tkmi_counts *c, const char *k, size_t len, uint64_t h, int64_t n)
{
    size_t mask = c->cap - 1, i = h & mask;
    while (c->s[i].count) {
        tkmi_cslot *e = &c->s[i];
        if (e->hash == h && e->klen == len && memcmp(c->arena + e->koff, k, len) == 0) {
            e->count += n;
            return 0;
        }
        i = (i + 1) & mask;
    }
    if (c->arena_n + len > c->arena_cap) {
        TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&c->arena, &c->arena_cap, c->arena_n + len, 1));
        advise_huge(c->arena, c->arena_cap);
    }
    memcpy(c->arena + c->arena_n, k, len);
    c->s[i] = (tkmi_cslot){h, c->arena_n, n, (uint32_t)len};
    c->arena_n += len;
    c->n++;
    if (c->n * 2 > c->cap) TKM_FORWARD_IF_ERROR(counts_rehash(c));
    return 0;
}

/* ---- pre-tokenization ---- */
/* Counts the pending pre-tokens: the slots were prefetched by emit; a first
 * pass prefetches the keys of the slots that match, the second counts. The
 * order of the additions is that of the cuts, so the table is the same as
 * with one addition per cut. */
static int flush_pending(tkmi_worker *w)
{
    tkmi_counts *c = &w->counts;
    size_t mask = c->cap - 1;
    for (int i = 0; i < w->n_pend; i++) {
        const tkmi_cslot *e = &c->s[w->pend[i].h & mask];
        if (e->count && e->hash == w->pend[i].h) __builtin_prefetch(c->arena + e->koff);
    }
    int n = w->n_pend;
    w->n_pend = 0;
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
    __builtin_prefetch(&w->counts.s[h & (w->counts.cap - 1)]);
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

static inline int cut_char(tkmi_worker *w, cutter *c, const char *s, size_t at, size_t mb, int32_t cp)
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
    return !m->has_user && !m->darts_units && !m->remove_extra_ws && !m->treat_ws_suffix && m->escape_ws;
}

static int pretok_fast(struct tkm_trainer *t, tkmi_worker *w, const char *line, size_t len)
{
    const uint8_t *in = (const uint8_t *)line;
    if (len == 0) return 0;
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&w->norm, &w->norm_cap, len * 3 + 8, 1));
    char *s = w->norm;
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

/* 0 if no user-defined symbol can start at s (most positions: the trie is
 * not walked there); 1 if one may */
static inline int user_may_start(const struct tkm_trainer *t, const char *s, size_t len)
{
    uint8_t b0 = (uint8_t)s[0], f = t->user_first[b0];
    if (f & 1) return 1;
    if (!(f & 2) || len < 2) return 0;
    unsigned k = (unsigned)b0 << 8 | (uint8_t)s[1];
    return (int)(t->user_first2[k >> 6] >> (k & 63)) & 1;
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
    const char *s = w->norm;
    cutter c = cutter_start(&t->o);
    size_t i = 0;
    while (i < nl) {
        if (t->norm_model.has_user && user_may_start(t, s + i, nl - i)) {
            size_t k = tkmi_ptrie_longest(&t->norm_model.user, s + i, nl - i);
            if (k) { /* user-defined symbols are never split nor merged */
                TKM_FORWARD_IF_ERROR(emit(w, s + c.tok, i - c.tok));
                i += k;
                c.tok = i;
                c.tok_all_ws = 0;
                c.last_script = -2;
                continue;
            }
        }
        int mb;
        int32_t cp = tkmi_utf8_decode((const uint8_t *)s + i, nl - i, &mb);
        TKM_FORWARD_IF_ERROR(cut_char(w, &c, s, i, (size_t)mb, cp));
        i += (size_t)mb;
    }
    TKM_FORWARD_IF_ERROR(emit(w, s + c.tok, nl - c.tok));
    return flush_pending(w);
}

/* ---- the table in key order (count files, spill runs) ---- */
static _Thread_local const tkmi_counts *sort_ctx;
static int cmp_slot(const void *x, const void *y)
{
    const tkmi_cslot *a = &sort_ctx->s[*(const size_t *)x], *b = &sort_ctx->s[*(const size_t *)y];
    return tkmi_key_cmp(sort_ctx->arena + a->koff, a->klen, sort_ctx->arena + b->koff, b->klen);
}

int tkmi_counts_sorted(const tkmi_counts *c, size_t **out)
{
    *out = NULL;
    size_t *idx = tkmi_malloc((c->n ? c->n : 1) * sizeof *idx);
    TKM_RETURN_ERROR_IF(!idx, TKM_ENOMEM, "out of memory (sorting counts)");
    size_t n = 0;
    for (size_t k = 0; k < c->cap; k++)
        if (c->s[k].count) idx[n++] = k;
    sort_ctx = c;
    if (n > 1) qsort(idx, n, sizeof *idx, cmp_slot);
    *out = idx;
    return 0;
}
