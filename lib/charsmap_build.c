/* charsmap_build.c - builds sentencepiece's precompiled_charsmap (a
 * darts-clone double-array trie over UTF-8 keys + NUL-terminated
 * replacement strings) for the rules nmt_nfkc, nfkc, nmt_nfkc_cf, nfkc_cf
 * and for user rule TSVs, from ICU's normalizers. The map is built the way
 * sentencepiece's normalizer::Builder builds its own (single characters to
 * their NFKC form, every unnormalized spelling of each multi-character NFKD
 * decomposition to its composed form, rules implied by shorter ones
 * removed), so the greedy longest-match in lib/normalize.c and in
 * libsentencepiece gives the same text; only the Unicode version differs. */
#include <stdio.h>
#include <stdlib.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/utf.h>
#include <unicode/utf16.h>

#include "fileio.h"
#include "model_internal.h"

/* ---- a map from code point sequences to code point sequences ---- */
typedef struct { uint32_t koff, klen, voff, vlen; int dead; } cm_entry;
typedef struct {
    uint32_t *a;           /* arena of code points */
    size_t an, acap;
    cm_entry *e;
    size_t n, ecap;
    uint64_t *idx;         /* the key's hash (high 32 bits) << 32 | entry + 1; 0 empty */
    size_t icap;
} cmap;

static uint64_t seq_hash(const uint32_t *s, size_t n) { return tkmi_hash_bytes(s, n * sizeof *s); }

static void cmap_free(cmap *m)
{
    tkmi_free(m->a); tkmi_free(m->e); tkmi_free(m->idx);
    memset(m, 0, sizeof *m);
}

static int cmap_push(cmap *m, const uint32_t *s, size_t n, uint32_t *off)
{
    if (m->an + n > m->acap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&m->a, &m->acap, m->an + n + 1, sizeof *m->a));
    if (n) memcpy(m->a + m->an, s, n * sizeof *s);
    *off = (uint32_t)m->an;
    m->an += n;
    return 0;
}

static int seq_eq(const uint32_t *a, size_t an, const uint32_t *b, size_t bn)
{
    if (an != bn) return 0;
    for (size_t i = 0; i < an; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

/* The entry of key k (-1: none); *slot: where it is or would go. */
static long cmap_lookup(const cmap *m, const uint32_t *k, size_t n, uint64_t h, size_t *slot)
{
    size_t mask = m->icap - 1, i = h & mask;
    uint64_t tag = h >> 32;
    for (; m->idx[i]; i = (i + 1) & mask) {
        if (m->idx[i] >> 32 != tag) continue;
        const cm_entry *e = &m->e[(uint32_t)m->idx[i] - 1];
        if (seq_eq(m->a + e->koff, e->klen, k, n)) break;
    }
    *slot = i;
    return m->idx[i] ? (long)(uint32_t)m->idx[i] - 1 : -1;
}

static long cmap_find(const cmap *m, const uint32_t *k, size_t n)
{
    if (!m->icap) return -1;
    size_t slot;
    return cmap_lookup(m, k, n, seq_hash(k, n), &slot);
}

/* room for `want` entries at half load */
static int cmap_rehash(cmap *m, size_t want)
{
    size_t nc = m->icap ? m->icap : 1024;
    while (nc < 2 * want) nc *= 2;
    uint64_t *ni = tkmi_calloc(nc, sizeof *ni);
    TKM_RETURN_ERROR_IF(!ni, TKM_ENOMEM, "out of memory (normalization map)");
    for (size_t k = 0; k < m->n; k++) {
        uint64_t h = seq_hash(m->a + m->e[k].koff, m->e[k].klen);
        size_t i = h & (nc - 1);
        while (ni[i]) i = (i + 1) & (nc - 1);
        ni[i] = (h >> 32) << 32 | ((uint64_t)k + 1);
    }
    tkmi_free(m->idx);
    m->idx = ni;
    m->icap = nc;
    return 0;
}

/* map[k] = v (overwrites; revives an erased key). */
static int cmap_set(cmap *m, const uint32_t *k, size_t kn, const uint32_t *v, size_t vn)
{
    if ((m->n + 1) * 2 > m->icap) TKM_FORWARD_IF_ERROR(cmap_rehash(m, m->n + 1));
    uint64_t h = seq_hash(k, kn);
    size_t slot;
    long f = cmap_lookup(m, k, kn, h, &slot);
    uint32_t voff;
    if (f >= 0) {
        cm_entry *e = &m->e[f];
        if (!e->dead && seq_eq(m->a + e->voff, e->vlen, v, vn)) return 0;
        TKM_FORWARD_IF_ERROR(cmap_push(m, v, vn, &voff));
        e = &m->e[f];
        e->voff = voff;
        e->vlen = (uint32_t)vn;
        e->dead = 0;
        return 0;
    }
    if (m->n == m->ecap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&m->e, &m->ecap, m->n + 1, sizeof *m->e));
    uint32_t koff;
    TKM_FORWARD_IF_ERROR(cmap_push(m, k, kn, &koff));
    TKM_FORWARD_IF_ERROR(cmap_push(m, v, vn, &voff));
    m->e[m->n] = (cm_entry){koff, (uint32_t)kn, voff, (uint32_t)vn, 0};
    m->idx[slot] = (h >> 32) << 32 | ((uint64_t)m->n + 1);
    m->n++;
    return 0;
}

static long cmap_get(const cmap *m, const uint32_t *k, size_t n)
{
    long f = cmap_find(m, k, n);
    return f >= 0 && !m->e[f].dead ? f : -1;
}

/* ---- ICU ---- */
typedef struct { const UNormalizer2 *nfkc, *nfkd; UChar src[64], dst[256]; } icu_norm;

/* Normalizes a code point sequence (at most 16) into out (capacity 64);
 * returns the length or <0. */
static int icu_apply(icu_norm *u, const UNormalizer2 *nz, const uint32_t *s, size_t n, uint32_t *out)
{
    int32_t sl = 0;
    for (size_t i = 0; i < n && sl < 60; i++) U16_APPEND_UNSAFE(u->src, sl, (UChar32)s[i]);
    UErrorCode st = U_ZERO_ERROR;
    int32_t dl = unorm2_normalize(nz, u->src, sl, u->dst, 256, &st);
    TKM_RETURN_ERROR_IF(U_FAILURE(st), TKM_ENOMEM, "ICU normalization failed: %s", u_errorName(st));
    int no = 0;
    for (int32_t i = 0; i < dl && no < 64;) {
        UChar32 c;
        U16_NEXT(u->dst, i, dl, c);
        out[no++] = (uint32_t)c;
    }
    return no;
}

/* sentencepiece's Builder::Normalize: greedy longest match (keys of at most
 * max_len characters), unmatched characters copied. */
static int map_normalize(const cmap *m, const uint32_t *s, size_t n, size_t max_len, uint32_t **out, size_t *on,
                         size_t *ocap)
{
    *on = 0;
    for (size_t i = 0; i < n;) {
        size_t k = n - i < max_len ? n - i : max_len;
        long f = -1;
        while (k && (f = cmap_get(m, s + i, k)) < 0) k--;
        const uint32_t *v = s + i;
        size_t vn = 1;
        if (f >= 0) { v = m->a + m->e[f].voff; vn = m->e[f].vlen; } else k = 1;
        if (*on + vn > *ocap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)out, ocap, *on + vn + 8, sizeof **out));
        if (vn) memcpy(*out + *on, v, vn * sizeof *v);
        *on += vn;
        i += k;
    }
    return 0;
}

/* sentencepiece's RemoveRedundantMap: keep single characters, then a key of
 * length L only if the kept rules of length < L do not already give it.
 * In place: a rule found redundant is erased (dead), which hides it from
 * the lookups of the longer keys as leaving it out of a new map would;
 * a later cmap_set of its key revives it with the new value. */
static int remove_redundant(cmap *m)
{
    size_t max_len = 0, on = 0, ocap = 0;
    uint32_t *o = NULL;
    int rc = 0;
    for (size_t k = 0; k < m->n; k++)
        if (!m->e[k].dead && m->e[k].klen > max_len) max_len = m->e[k].klen;
    for (size_t len = 2; rc == 0 && len <= max_len; len++)
        for (size_t k = 0; rc == 0 && k < m->n; k++) {
            cm_entry *e = &m->e[k];
            if (e->dead || e->klen != len) continue;
            rc = map_normalize(m, m->a + e->koff, e->klen, len - 1, &o, &on, &ocap);
            if (rc == 0 && seq_eq(o, on, m->a + e->voff, e->vlen)) e->dead = 1;
        }
    tkmi_free(o);
    return rc;
}

typedef struct { uint32_t norm, orig; } n2o;
static int cmp_n2o(const void *x, const void *y)
{
    const n2o *a = x, *b = y;
    if (a->norm != b->norm) return a->norm < b->norm ? -1 : 1;
    return a->orig < b->orig ? -1 : a->orig > b->orig;
}

/* The originals of character c (those whose NFKD is c alone), ascending,
 * appended to *o: c itself if it is its own NFKD (bit c of same), and the
 * others from v (the pairs of characters whose NFKD is another single
 * character, sorted). Returns how many. */
static int originals(const n2o *v, size_t n, const uint8_t *same, uint32_t c, uint32_t **o, size_t *on, size_t *ocap)
{
    size_t a = 0, b = n;
    while (a < b) { size_t mid = (a + b) / 2; if (v[mid].norm < c) a = mid + 1; else b = mid; }
    size_t start = *on;
    int self = c < 0x110000 && (same[c >> 3] >> (c & 7) & 1);
    for (;; a++) {
        int more = a < n && v[a].norm == c;
        if (self && (!more || v[a].orig > c)) {
            if (*on == *ocap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)o, ocap, *on + 1, sizeof **o));
            (*o)[(*on)++] = c;
            self = 0;
        }
        if (!more) break;
        if (*on == *ocap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)o, ocap, *on + 1, sizeof **o));
        (*o)[(*on)++] = v[a].orig;
    }
    return (int)(*on - start);
}

/* sentencepiece's BuildMapInternal with NFKC / NFKD. A character whose
 * NFKD quick check says yes has no decomposition: it is its own NFKD and
 * NFKC (a single character composes to itself), so ICU normalizes only the
 * others (some 20 thousand of the 1.1 million). */
static int build_nfkc(cmap *m, icu_norm *u)
{
    cmap decomposed = {0}; /* NFKD forms of two or more characters (keys only) */
    n2o *rev = NULL;       /* characters whose NFKD is another single one */
    size_t nrev = 0, revcap = 0;
    uint8_t *same = tkmi_calloc(0x110000 / 8, 1); /* characters that are their own NFKD */
    uint32_t nf[64], nd[64];
    int rc = same ? 0 : tkmi_error(TKM_ENOMEM, "out of memory (normalization map)");
    for (UChar32 cp = 1; rc == 0 && cp <= 0x10FFFF; cp++) {
        if (!U_IS_UNICODE_CHAR(cp)) continue;
        uint32_t c = (uint32_t)cp;
        if (u_getIntPropertyValue(cp, UCHAR_NFKD_QUICK_CHECK) == UNORM_YES) {
            same[c >> 3] |= (uint8_t)(1u << (c & 7));
            continue;
        }
        int a = icu_apply(u, u->nfkc, &c, 1, nf);
        if (a < 0) { rc = a; break; }
        if (a >= 2 || (a == 1 && nf[0] != c)) rc = cmap_set(m, &c, 1, nf, (size_t)a);
        int d = icu_apply(u, u->nfkd, &c, 1, nd);
        if (rc == 0 && d < 0) rc = d;
        if (rc < 0) break;
        if (d == 1 && nd[0] == c) {
            same[c >> 3] |= (uint8_t)(1u << (c & 7));
        } else if (d == 1) {
            if (nrev == revcap && (rc = tkmi_grow((void **)&rev, &revcap, nrev + 1, sizeof *rev)) < 0) break;
            rev[nrev++] = (n2o){nd[0], c};
        } else if (d > 1) {
            rc = cmap_set(&decomposed, nd, (size_t)d, NULL, 0);
        }
    }
    if (rc == 0 && nrev) qsort(rev, nrev, sizeof *rev, cmp_n2o);
    /* every spelling of each decomposition: the cartesian product of the
     * originals of its characters (position i's in org[lo[i] .. hi[i])) */
    uint32_t seq[64], *org = NULL;
    size_t lo[64], hi[64], at[64], norg = 0, orgcap = 0;
    for (size_t k = 0; rc == 0 && k < decomposed.n; k++) {
        const uint32_t *d = decomposed.a + decomposed.e[k].koff;
        size_t dn = decomposed.e[k].klen;
        int a = icu_apply(u, u->nfkc, d, dn, nf);
        if (a < 0) { rc = a; break; }
        if (seq_eq(nf, (size_t)a, d, dn)) continue;
        norg = 0;
        for (size_t i = 0; rc == 0 && i < dn; i++) {
            lo[i] = at[i] = norg;
            int no = originals(rev, nrev, same, d[i], &org, &norg, &orgcap);
            if (no < 0) rc = no;
            else if (no == 0) rc = tkmi_error(TKM_EINVAL, "normalization map: U+%04X has no original", d[0]);
            hi[i] = norg;
        }
        for (; rc == 0;) {
            for (size_t i = 0; i < dn; i++) seq[i] = org[at[i]];
            if (!seq_eq(seq, dn, nf, (size_t)a) && (rc = cmap_set(m, seq, dn, nf, (size_t)a)) < 0) break;
            size_t i = dn;
            while (i > 0 && ++at[i - 1] == hi[i - 1]) { at[i - 1] = lo[i - 1]; i--; }
            if (i == 0) break;
        }
    }
    tkmi_free(org);
    tkmi_free(rev);
    tkmi_free(same);
    cmap_free(&decomposed);
    if (rc == 0) rc = remove_redundant(m);
    return rc;
}

/* sentencepiece's MergeNmtMap: more whitespace, ASCII controls removed,
 * FULLWIDTH TILDE kept. */
static int merge_nmt(cmap *m)
{
    static const uint32_t ws[] = {0x0009, 0x000A, 0x000C, 0x000D, 0x1680, 0x200B, 0x200E, 0x200F,
                                  0x2028, 0x2029, 0x2581, 0xFEFF, 0xFFFD, 0x200C};
    static const uint32_t space = 0x20;
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) TKM_FORWARD_IF_ERROR(cmap_set(m, &ws[i], 1, &space, 1));
    for (uint32_t c = 1; c < 0x20; c++)
        if (c != 0x09 && c != 0x0A && c != 0x0C && c != 0x0D) TKM_FORWARD_IF_ERROR(cmap_set(m, &c, 1, NULL, 0));
    static const uint32_t del[] = {0x007F, 0x008F, 0x009F};
    for (size_t i = 0; i < 3; i++) TKM_FORWARD_IF_ERROR(cmap_set(m, &del[i], 1, NULL, 0));
    static const uint32_t tilde = 0xFF5E;
    long f = cmap_find(m, &tilde, 1);
    if (f >= 0) m->e[f].dead = 1;
    return remove_redundant(m);
}

/* sentencepiece's MergeUnicodeCaseFoldMap: fold the targets, add the
 * folding of every other character. */
static int merge_casefold(cmap *m)
{
    for (size_t k = 0; k < m->n; k++)
        for (uint32_t i = 0; i < m->e[k].vlen; i++)
            m->a[m->e[k].voff + i] = (uint32_t)u_foldCase((UChar32)m->a[m->e[k].voff + i], U_FOLD_CASE_DEFAULT);
    for (UChar32 cp = 1; cp <= 0x10FFFF; cp++) {
        if (!U_IS_UNICODE_CHAR(cp)) continue;
        uint32_t c = (uint32_t)cp;
        if (cmap_get(m, &c, 1) >= 0) continue;
        uint32_t f = (uint32_t)u_foldCase(cp, U_FOLD_CASE_DEFAULT);
        if (f != c) TKM_FORWARD_IF_ERROR(cmap_set(m, &c, 1, &f, 1));
    }
    return remove_redundant(m);
}

/* ---- rule TSV (sentencepiece's Builder::LoadCharsMap) ---- */
static int parse_cps(const char *path, size_t lineno, const char *s, const char *end, uint32_t *out, size_t *n)
{
    *n = 0;
    while (s < end) {
        while (s < end && *s == ' ') s++;
        if (s >= end) break;
        if (end - s >= 2 && s[0] == 'U' && s[1] == '+') s += 2;
        uint32_t v = 0;
        int digits = 0;
        while (s < end && *s != ' ') {
            char c = *s++;
            int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            TKM_RETURN_ERROR_IF(h < 0 || digits >= 6, TKM_EFORMAT, "%s:%zu: '%c' in a code point (hex, e.g. U+00C0 or 41)",
                                path, lineno, c);
            v = v * 16 + (uint32_t)h;
            digits++;
        }
        TKM_RETURN_ERROR_IF(v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF), TKM_EFORMAT,
                            "%s:%zu: U+%04X is not a usable code point", path, lineno, v);
        TKM_RETURN_ERROR_IF(*n == 64, TKM_EFORMAT, "%s:%zu: more than 64 code points", path, lineno);
        out[(*n)++] = v;
    }
    return 0;
}

static int load_tsv(cmap *m, const char *path)
{
    uint8_t *data;
    size_t len;
    TKM_FORWARD_IF_ERROR(tkmi_read_file(path, &data, &len));
    const char *p = (const char *)data, *end = p + len;
    size_t lineno = 0;
    int rc = 0;
    uint32_t src[64], dst[64];
    while (rc == 0 && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        lineno++;
        const char *t1 = memchr(p, '\t', (size_t)(le - p));
        const char *se = t1 ? t1 : le;
        const char *ds = t1 ? t1 + 1 : le;
        const char *t2 = memchr(ds, '\t', (size_t)(le - ds));
        const char *de = t2 ? t2 : le;
        if (de > ds && de[-1] == '\r') de--;
        size_t sn, dn;
        rc = parse_cps(path, lineno, p, se, src, &sn);
        if (rc == 0) rc = parse_cps(path, lineno, ds, de, dst, &dn);
        if (rc == 0 && sn == 0) rc = tkmi_error(TKM_EFORMAT, "%s:%zu: no source code points (want SRC<TAB>DST)", path, lineno);
        if (rc == 0) rc = cmap_set(m, src, sn, dst, dn);
        p = nl ? nl + 1 : end;
    }
    tkmi_free(data);
    if (rc == 0 && m->n == 0) rc = tkmi_error(TKM_EFORMAT, "%s: no rules", path);
    return rc;
}

/* ---- compilation: darts-clone's double array ---- */
/* a UTF-8 key (no NUL inside) and its first 8 bytes, big-endian, padded
 * with zeros: most comparisons end there */
typedef struct { uint64_t pfx; const char *k; uint32_t klen, val; } kv;
static int cmp_kv(const void *x, const void *y)
{
    const kv *a = x, *b = y;
    return tkmi_key_pfx_cmp(a->pfx, a->k, a->klen, b->pfx, b->k, b->klen);
}

typedef struct {
    uint32_t *u;      /* units */
    uint8_t *used;    /* slot taken */
    uint8_t *base;    /* base value taken */
    int32_t *nxt, *prv; /* free-slot list */
    int32_t head;
    size_t cap, hwm;  /* slots; one past the highest taken slot */
} dab;

/* Free slots this far below the highest taken one are given up (as
 * darts-clone does with old blocks): the search stays short. */
#define DAB_WINDOW 8192

static int dab_grow(dab *d)
{
    size_t nc = d->cap + (d->cap / 4 > 65536 ? d->cap / 4 : 65536);
    if (nc > (1u << 21)) nc = 1u << 21;
    TKM_RETURN_ERROR_IF(nc <= d->cap, TKM_ERANGE, "normalization map too large for a double array");
    uint32_t *u = tkmi_realloc(d->u, nc * sizeof *u);
    if (u) d->u = u;
    uint8_t *us = tkmi_realloc(d->used, nc);
    if (us) d->used = us;
    uint8_t *bs = tkmi_realloc(d->base, nc);
    if (bs) d->base = bs;
    int32_t *nx = tkmi_realloc(d->nxt, nc * sizeof *nx);
    if (nx) d->nxt = nx;
    int32_t *pv = tkmi_realloc(d->prv, nc * sizeof *pv);
    if (pv) d->prv = pv;
    TKM_RETURN_ERROR_IF(!u || !us || !bs || !nx || !pv, TKM_ENOMEM, "out of memory (double array)");
    /* append the new slots to the free list, in order */
    int32_t tail = d->head < 0 ? -1 : d->prv[d->head];
    for (size_t i = d->cap; i < nc; i++) {
        d->u[i] = 0x80000000u; /* free: a label that matches no byte */
        d->used[i] = 0;
        d->base[i] = 0;
        if (tail < 0) { d->head = (int32_t)i; d->prv[i] = (int32_t)i; d->nxt[i] = (int32_t)i; }
        else {
            d->nxt[tail] = (int32_t)i; d->prv[i] = tail;
            d->nxt[i] = d->head; d->prv[d->head] = (int32_t)i;
        }
        tail = (int32_t)i;
    }
    d->cap = nc;
    return 0;
}

static void dab_take(dab *d, uint32_t p)
{
    d->used[p] = 1;
    if (p + 1 > d->hwm) d->hwm = p + 1;
    int32_t n = d->nxt[p], v = d->prv[p];
    if (n == (int32_t)p) { d->head = -1; return; }
    d->nxt[v] = n;
    d->prv[n] = v;
    if (d->head == (int32_t)p) d->head = n;
}

/* A base whose slots base^label are free for every label, never used before. */
static int dab_find_base(dab *d, const uint8_t *labels, int nl, uint32_t *out)
{
    for (;;) {
        while (d->head >= 0 && (size_t)d->head + DAB_WINDOW < d->hwm) dab_take(d, (uint32_t)d->head);
        if (d->head >= 0) {
            int32_t f = d->head;
            do {
                uint32_t b = (uint32_t)f ^ labels[0];
                if (b < d->cap && !d->base[b]) {
                    int ok = 1;
                    for (int i = 1; i < nl && ok; i++) {
                        uint32_t q = b ^ labels[i];
                        ok = q < d->cap && !d->used[q];
                    }
                    if (ok) { *out = b; return 0; }
                }
                f = d->nxt[f];
            } while (f != d->head);
        }
        TKM_FORWARD_IF_ERROR(dab_grow(d));
    }
}

static int dab_set_offset(dab *d, uint32_t p, uint32_t off)
{
    uint32_t u = d->u[p] & (0x80000000u | (1u << 8) | 0xFFu);
    if (off < (1u << 21)) u |= off << 10;
    else {
        TKM_RETURN_ERROR_IF(off >= (1u << 29) || (off & 0xFF), TKM_ERANGE, "double array offset %u not encodable", off);
        u |= (off << 2) | (1u << 9);
    }
    d->u[p] = u;
    return 0;
}

/* The trie as a DAG: identical subtrees (same labels, values and children)
 * are one node, as in darts-clone's DAWG; a shared node is placed once and
 * every parent's unit points at its base. ~225 k keys of nmt_nfkc need
 * ~7x fewer units so. */
typedef struct { uint32_t label, child; } dedge; /* no padding: hashed and compared as bytes */
typedef struct { int64_t val; uint32_t eoff, en; uint64_t hash; } dnode; /* val -1: none */
typedef struct {
    dnode *n; size_t nn, ncap;
    dedge *e; size_t ne, ecap;
    uint32_t *idx; size_t icap; /* node + 1 */
    int32_t *base;              /* per node, -1: not placed */
} dag;

static int dag_same(const dag *g, const dnode *a, int64_t val, const dedge *e, uint32_t en)
{
    return a->val == val && a->en == en && (!en || !memcmp(g->e + a->eoff, e, en * sizeof *e));
}

/* Interns the node (val, edges e[0..en)) whose edges sit at the end of g->e. */
static int dag_intern(dag *g, int64_t val, uint32_t eoff, uint32_t en, uint32_t *out)
{
    uint64_t h = tkmi_hash_bytes(g->e + eoff, en * sizeof(dedge)) ^ tkmi_hash_u64((uint64_t)(val + 2));
    if ((g->nn + 1) * 2 > g->icap) {
        size_t nc = g->icap ? g->icap * 2 : 4096;
        uint32_t *ni = tkmi_calloc(nc, sizeof *ni);
        TKM_RETURN_ERROR_IF(!ni, TKM_ENOMEM, "out of memory (trie)");
        for (size_t k = 0; k < g->nn; k++) {
            size_t i = g->n[k].hash & (nc - 1);
            while (ni[i]) i = (i + 1) & (nc - 1);
            ni[i] = (uint32_t)k + 1;
        }
        tkmi_free(g->idx);
        g->idx = ni;
        g->icap = nc;
    }
    size_t mask = g->icap - 1, i = h & mask;
    while (g->idx[i]) {
        const dnode *a = &g->n[g->idx[i] - 1];
        if (a->hash == h && dag_same(g, a, val, g->e + eoff, en)) {
            g->ne = eoff; /* the edges are the existing node's */
            *out = g->idx[i] - 1;
            return 0;
        }
        i = (i + 1) & mask;
    }
    if (g->nn == g->ncap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&g->n, &g->ncap, g->nn + 1, sizeof *g->n));
    g->n[g->nn] = (dnode){val, eoff, en, h};
    g->idx[i] = (uint32_t)g->nn + 1;
    *out = (uint32_t)g->nn++;
    return 0;
}

/* Builds the node of keys [lo, hi), which share their first depth bytes. */
static int dag_build(dag *g, const kv *keys, size_t lo, size_t hi, size_t depth, uint32_t *out)
{
    int64_t val = -1;
    if (keys[lo].klen == depth) val = keys[lo++].val; /* sorted: the shortest first */
    dedge tmp[256];
    uint32_t en = 0;
    size_t i = lo;
    while (i < hi) {
        uint8_t c = (uint8_t)keys[i].k[depth]; /* >= 1: keys hold no NUL */
        size_t j = i;
        while (j < hi && (uint8_t)keys[j].k[depth] == c) j++;
        uint32_t child;
        TKM_FORWARD_IF_ERROR(dag_build(g, keys, i, j, depth + 1, &child));
        tmp[en++] = (dedge){c, child};
        i = j;
    }
    /* children are interned first, so this node's edges go at the end */
    uint32_t eoff = (uint32_t)g->ne;
    if (g->ne + en > g->ecap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&g->e, &g->ecap, g->ne + en + 1, sizeof *g->e));
    if (en) memcpy(g->e + eoff, tmp, en * sizeof *tmp);
    g->ne += en;
    return dag_intern(g, val, eoff, en, out);
}

/* Places node v (once) and returns its base; the unit at p, whose node is
 * v, gets the offset to it. */
static int dab_place(dab *d, dag *g, uint32_t v, uint32_t *base_out)
{
    if (g->base[v] >= 0) { *base_out = (uint32_t)g->base[v]; return 0; }
    const dnode *nd = &g->n[v];
    uint8_t labels[257];
    int nl = 0;
    if (nd->val >= 0) labels[nl++] = 0;
    for (uint32_t k = 0; k < nd->en; k++) labels[nl++] = g->e[nd->eoff + k].label;
    uint32_t b;
    TKM_FORWARD_IF_ERROR(dab_find_base(d, labels, nl, &b));
    d->base[b] = 1;
    g->base[v] = (int32_t)b;
    for (int i = 0; i < nl; i++) dab_take(d, b ^ labels[i]);
    if (nd->val >= 0) d->u[b] = 0x80000000u | (uint32_t)nd->val;
    for (uint32_t k = 0; k < g->n[v].en; k++) {
        dedge ed = g->e[g->n[v].eoff + k];
        uint32_t q = b ^ ed.label, cb;
        d->u[q] = ed.label;
        if (g->n[ed.child].val >= 0) d->u[q] |= 1u << 8;
        TKM_FORWARD_IF_ERROR(dab_place(d, g, ed.child, &cb));
        TKM_FORWARD_IF_ERROR(dab_set_offset(d, q, q ^ cb));
    }
    *base_out = b;
    return 0;
}

/* s[0..n) in UTF-8 at *at (NUL-terminated), which moves past it */
static void utf8_of(const uint32_t *s, size_t n, char **at, kv *out)
{
    char *o = *at;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += (size_t)tkmi_utf8_encode(s[i], o + k);
    o[k] = 0;
    out->pfx = tkmi_key_pfx8(o, k);
    out->k = o;
    out->klen = (uint32_t)k;
    *at = o + k + 1;
}

/* sentencepiece's CompileCharsMap: <trie size><trie units><strings>. */
static int compile(const cmap *m, uint8_t **blob, size_t *blen)
{
    size_t n = 0, kbytes = 0;
    for (size_t k = 0; k < m->n; k++)
        if (!m->e[k].dead) n++, kbytes += (size_t)m->e[k].klen * 4 + 1;
    TKM_RETURN_ERROR_IF(n == 0, TKM_EINVAL, "empty normalization map");
    kv *keys = tkmi_calloc(n, sizeof *keys), *vals = NULL;
    char *kbuf = tkmi_malloc(kbytes), *vbuf = NULL, *at = kbuf;
    uint32_t *uid = tkmi_malloc(n * sizeof *uid);
    char *strs = NULL;
    size_t slen = 0, scap = 0;
    dab d = {.head = -1};
    cmap uv = {0}; /* the distinct replacements */
    int rc = (!keys || !kbuf || !uid) ? tkmi_error(TKM_ENOMEM, "out of memory") : 0;
    size_t j = 0;
    for (size_t k = 0; rc == 0 && k < m->n; k++) {
        const cm_entry *e = &m->e[k];
        if (e->dead) continue;
        utf8_of(m->a + e->koff, e->klen, &at, &keys[j]);
        long f = cmap_find(&uv, m->a + e->voff, e->vlen);
        if (f < 0) {
            f = (long)uv.n;
            rc = cmap_set(&uv, m->a + e->voff, e->vlen, NULL, 0);
        }
        uid[j++] = (uint32_t)f;
    }
    if (rc == 0) {
        /* the replacement strings, sorted and unique, each NUL-terminated */
        size_t vbytes = 0;
        for (size_t u = 0; u < uv.n; u++) vbytes += (size_t)uv.e[u].klen * 4 + 1;
        vals = tkmi_calloc(uv.n + 1, sizeof *vals);
        vbuf = tkmi_malloc(vbytes + 1);
        uint32_t *pos = tkmi_malloc((uv.n + 1) * sizeof *pos);
        if (!vals || !vbuf || !pos) rc = tkmi_error(TKM_ENOMEM, "out of memory");
        at = vbuf;
        for (size_t u = 0; rc == 0 && u < uv.n; u++) {
            utf8_of(uv.a + uv.e[u].koff, uv.e[u].klen, &at, &vals[u]);
            vals[u].val = (uint32_t)u;
        }
        if (rc == 0) qsort(vals, uv.n, sizeof *vals, cmp_kv);
        for (size_t i = 0; rc == 0 && i < uv.n; i++) {
            if ((rc = tkmi_grow((void **)&strs, &scap, slen + vals[i].klen + 1, 1)) < 0) break;
            memcpy(strs + slen, vals[i].k, (size_t)vals[i].klen + 1);
            pos[vals[i].val] = (uint32_t)slen;
            slen += vals[i].klen + 1;
        }
        for (size_t i = 0; rc == 0 && i < n; i++) keys[i].val = pos[uid[i]];
        tkmi_free(pos);
    }
    if (rc == 0) {
        qsort(keys, n, sizeof *keys, cmp_kv);
        for (size_t i = 1; rc == 0 && i < n; i++)
            if (!cmp_kv(&keys[i - 1], &keys[i])) rc = tkmi_error(TKM_EINVAL, "duplicate normalization rule");
    }
    dag g = {0};
    uint32_t root = 0, rb;
    if (rc == 0) rc = dag_build(&g, keys, 0, n, 0, &root);
    if (rc == 0 && !(g.base = tkmi_malloc(g.nn * sizeof *g.base))) rc = tkmi_error(TKM_ENOMEM, "out of memory");
    for (size_t k = 0; rc == 0 && k < g.nn; k++) g.base[k] = -1;
    if (rc == 0) rc = dab_grow(&d);
    if (rc == 0) {
        dab_take(&d, 0);
        d.u[0] = 0;
        d.base[0] = 1; /* base 0 would address the root's slot */
        rc = dab_place(&d, &g, root, &rb);
        if (rc == 0) rc = dab_set_offset(&d, 0, rb);
    }
    tkmi_free(g.n); tkmi_free(g.e); tkmi_free(g.idx); tkmi_free(g.base);
    if (rc == 0) {
        /* trim to the last used block of 256 units (darts-clone's unit) */
        size_t units = 0;
        for (size_t i = 0; i < d.cap; i++)
            if (d.used[i]) units = i + 1;
        units = (units + 255) & ~(size_t)255;
        size_t total = 4 + units * 4 + slen;
        uint8_t *b = tkmi_malloc(total);
        if (!b) rc = tkmi_error(TKM_ENOMEM, "out of memory");
        else {
            uint32_t ts = (uint32_t)(units * 4);
            for (int i = 0; i < 4; i++) b[i] = (uint8_t)(ts >> (8 * i));
            for (size_t i = 0; i < units; i++)
                for (int k = 0; k < 4; k++) b[4 + i * 4 + (size_t)k] = (uint8_t)(d.u[i] >> (8 * k));
            if (slen) memcpy(b + 4 + units * 4, strs, slen);
            *blob = b;
            *blen = total;
        }
    }
    tkmi_free(keys); tkmi_free(vals); tkmi_free(strs);
    tkmi_free(kbuf); tkmi_free(vbuf); tkmi_free(uid);
    cmap_free(&uv);
    tkmi_free(d.u); tkmi_free(d.used); tkmi_free(d.base); tkmi_free(d.nxt); tkmi_free(d.prv);
    return rc;
}

int tkmi_charsmap_build(const char *rule, const char *tsv, uint8_t **blob, size_t *len)
{
    *blob = NULL;
    *len = 0;
    cmap m = {0};
    int rc = 0;
    if (tsv) {
        rc = load_tsv(&m, tsv);
    } else {
        if (!rule || !strcmp(rule, "identity")) return 0;
        int nmt = !strcmp(rule, "nmt_nfkc") || !strcmp(rule, "nmt_nfkc_cf");
        int cf = !strcmp(rule, "nfkc_cf") || !strcmp(rule, "nmt_nfkc_cf");
        TKM_RETURN_ERROR_IF(!nmt && !cf && strcmp(rule, "nfkc"), TKM_EINVAL,
                            "unknown normalization rule '%s' (nmt_nfkc, nfkc, nmt_nfkc_cf, nfkc_cf, identity)", rule);
        icu_norm u;
        UErrorCode st = U_ZERO_ERROR;
        u.nfkc = unorm2_getNFKCInstance(&st);
        u.nfkd = unorm2_getNFKDInstance(&st);
        TKM_RETURN_ERROR_IF(U_FAILURE(st), TKM_ENOTSUP, "ICU normalizer unavailable: %s", u_errorName(st));
        rc = build_nfkc(&m, &u);
        if (rc == 0 && nmt) rc = merge_nmt(&m);
        if (rc == 0 && cf) rc = merge_casefold(&m);
    }
    if (rc == 0) rc = compile(&m, blob, len);
    cmap_free(&m);
    return rc;
}
