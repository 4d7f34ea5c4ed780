/* rank_bpe.c - the encoder of tokenizers read from HF tokenizer.json and
 * tiktoken files: HF's pipeline (added tokens, normalizers, pre-tokenizers,
 * regexes through ICU) and rank-based BPE as HF's BPE model and tiktoken run
 * it (lowest rank first, leftmost among equal ranks), with byte fallback,
 * unknown fusing and a per-word cache. Unigram words go to lib/bpe_encode.c. */
#include <stdio.h>
#include <stdlib.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utext.h>

#include "front.h"

/* ---- the front description ---- */

void tkmi_front_free(struct tkmi_front *f)
{
    if (!f) return;
    tkmi_step *lists[2] = {f->norm, f->pre};
    int ns[2] = {f->n_norm, f->n_pre};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < ns[k]; i++) {
            tkmi_free(lists[k][i].lit);
            tkmi_free(lists[k][i].re_src);
            tkmi_free(lists[k][i].content);
        }
        tkmi_free(lists[k]);
    }
    tkmi_ptrie_free(&f->added_raw);
    tkmi_ptrie_free(&f->added_norm);
    tkmi_free(f->merges);
    tkmi_strmap_free(&f->vocab);
    tkmi_free(f);
}

static URegularExpression *re_open(const char *src, UErrorCode *err)
{
    UParseError pe;
    return uregex_openC(src, 0, &pe, err);
}

int tkmi_front_check_regex(const char *src, const char *where)
{
    UErrorCode err = U_ZERO_ERROR;
    UParseError pe;
    URegularExpression *re = uregex_openC(src, 0, &pe, &err);
    uregex_close(re);
    TKM_RETURN_ERROR_IF(U_FAILURE(err), TKM_ENOTSUP, "%s: regular expression not supported by ICU (%s, at %d): %s",
                        where, u_errorName(err), pe.offset, src);
    return 0;
}

static inline uint64_t rkey(int32_t l, int32_t r) { return ((uint64_t)(uint32_t)l << 32 | (uint32_t)r) + 1; }

static int merges_grow(struct tkmi_front *f)
{
    size_t cap = f->m_cap ? f->m_cap * 2 : 1024;
    struct tkmi_rslot *t = tkmi_calloc(cap, sizeof *t);
    TKM_RETURN_ERROR_IF(!t, TKM_ENOMEM, "out of memory (merges)");
    for (size_t i = 0; i < f->m_cap; i++) {
        if (!f->merges[i].key) continue;
        size_t j = tkmi_hash_u64(f->merges[i].key) & (cap - 1);
        while (t[j].key) j = (j + 1) & (cap - 1);
        t[j] = f->merges[i];
    }
    tkmi_free(f->merges);
    f->merges = t;
    f->m_cap = cap;
    return 0;
}

int tkmi_front_add_merge(struct tkmi_front *f, int32_t l, int32_t r, uint32_t rank, int32_t id)
{
    if ((f->m_n + 1) * 2 > f->m_cap) TKM_FORWARD_IF_ERROR(merges_grow(f));
    uint64_t k = rkey(l, r);
    size_t i = tkmi_hash_u64(k) & (f->m_cap - 1);
    while (f->merges[i].key && f->merges[i].key != k) i = (i + 1) & (f->m_cap - 1);
    if (!f->merges[i].key) f->m_n++;
    f->merges[i] = (struct tkmi_rslot){k, rank, id};
    return 0;
}

static const struct tkmi_rslot *merge_find(const struct tkmi_front *f, int32_t l, int32_t r)
{
    if (!f->m_cap) return NULL;
    uint64_t k = rkey(l, r);
    size_t i = tkmi_hash_u64(k) & (f->m_cap - 1);
    for (;;) {
        const struct tkmi_rslot *s = &f->merges[i];
        if (s->key == k) return s;
        if (!s->key) return NULL;
        i = (i + 1) & (f->m_cap - 1);
    }
}

/* ---- model construction ---- */

int tkmi_front_model(struct tkmi_front *f, const char *name, const char *const *pieces, const uint32_t *lens,
                     const float *scores, const uint8_t *types, int n, int model_type, int byte_fallback,
                     tkm_model **out)
{
    *out = NULL;
    tkmi_pb b = {0}, sub = {0};
    char fill[48];
    for (int id = 0; id < n; id++) {
        tkmi_pb p = {0};
        if (pieces[id]) {
            tkmi_pb_bytes(&p, 1, pieces[id], lens[id]);
            tkmi_pb_float(&p, 2, scores ? scores[id] : 0.0f);
            tkmi_pb_int(&p, 3, types[id]);
        } else { /* an id no entry of the file uses */
            int k = snprintf(fill, sizeof fill, "<tokenmill:unused:%d>", id);
            tkmi_pb_bytes(&p, 1, fill, (size_t)k);
            tkmi_pb_int(&p, 3, TKM_PIECE_UNUSED);
        }
        tkmi_pb_bytes(&b, 1, p.p, p.n);
        if (p.err) b.err = p.err;
        tkmi_free(p.p);
    }
    tkmi_pb_int(&sub, 3, model_type);
    tkmi_pb_int(&sub, 35, byte_fallback);
    tkmi_pb_int(&sub, 41, -1);
    tkmi_pb_int(&sub, 42, -1);
    tkmi_pb_int(&sub, 43, -1);
    tkmi_pb_bytes(&b, 2, sub.p, sub.n);
    if (sub.err) b.err = sub.err;
    tkmi_free(sub.p);
    sub = (tkmi_pb){0};
    tkmi_pb_str(&sub, 1, "identity");
    tkmi_pb_int(&sub, 3, 0);
    tkmi_pb_int(&sub, 4, 0);
    tkmi_pb_int(&sub, 5, 0);
    tkmi_pb_bytes(&b, 3, sub.p, sub.n);
    if (sub.err) b.err = sub.err;
    tkmi_free(sub.p);
    int rc = b.err ? tkmi_error(TKM_ENOMEM, "out of memory") : 0;
    tkm_model *m = NULL;
    if (rc == 0) rc = tkmi_model_load_pb(b.p, b.n, name, model_type == TKM_MODEL_UNIGRAM, &m);
    tkmi_free(b.p);
    if (rc < 0) {
        tkmi_front_free(f);
        return rc;
    }
    m->front = f;
    *out = m;
    return 0;
}

/* ---- per-encoder state ---- */

typedef struct {          /* a list of words: text in one buffer */
    char *buf; size_t n, cap;
    size_t *off, *len; uint8_t *first;
    size_t nw, wcap;
} wlist;

struct tkmi_fstate {
    const tkm_model *m;
    const struct tkmi_front *f;
    URegularExpression **nre, **pre; /* per step, NULL for literal patterns */
    URegularExpression *digits;
    UText *ut;
    char *san; size_t san_cap;
    char *t1, *t2; size_t t1_cap, t2_cap;
    wlist wa, wb;
    int32_t *ids; size_t nids, idcap;
    struct rsym { int32_t prev, next; uint32_t len; int32_t id; } *sy; size_t sycap;
    struct rheap { uint32_t rank; int32_t pos, id; } *hp; size_t hn, hcap;
    /* word cache: open addressing, keys and values in arenas, cleared when full */
    struct wslot { uint64_t hash; uint32_t koff, klen, voff, vlen; } *cache;
    size_t c_cap, c_n;
    char *ckeys; size_t ckn, ckcap;
    int32_t *cvals; size_t cvn, cvcap;
    /* match spans of one split: (start, end, is_match) */
    struct span { size_t s, e; int match; } *sp; size_t spn, spcap;
};

#define CACHE_ENTRIES (1u << 16)
#define CACHE_MAX_KEY 128

static const char *const gpt2_pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

void tkmi_fstate_free(tkmi_fstate *s)
{
    if (!s) return;
    for (int i = 0; s->nre && i < s->f->n_norm; i++) uregex_close(s->nre[i]);
    for (int i = 0; s->pre && i < s->f->n_pre; i++) uregex_close(s->pre[i]);
    tkmi_free(s->nre);
    tkmi_free(s->pre);
    uregex_close(s->digits);
    utext_close(s->ut);
    tkmi_free(s->san);
    tkmi_free(s->t1);
    tkmi_free(s->t2);
    wlist *ls[2] = {&s->wa, &s->wb};
    for (int k = 0; k < 2; k++) {
        tkmi_free(ls[k]->buf);
        tkmi_free(ls[k]->off);
        tkmi_free(ls[k]->len);
        tkmi_free(ls[k]->first);
    }
    tkmi_free(s->ids);
    tkmi_free(s->sy);
    tkmi_free(s->hp);
    tkmi_free(s->cache);
    tkmi_free(s->ckeys);
    tkmi_free(s->cvals);
    tkmi_free(s->sp);
    tkmi_free(s);
}

int tkmi_fstate_new(const tkm_model *m, tkmi_fstate **out)
{
    const struct tkmi_front *f = m->front;
    *out = NULL;
    tkmi_fstate *s = tkmi_calloc(1, sizeof *s);
    TKM_RETURN_ERROR_IF(!s, TKM_ENOMEM, "out of memory");
    s->m = m;
    s->f = f;
    s->nre = tkmi_calloc((size_t)f->n_norm + 1, sizeof *s->nre);
    s->pre = tkmi_calloc((size_t)f->n_pre + 1, sizeof *s->pre);
    s->c_cap = CACHE_ENTRIES * 2;
    s->cache = tkmi_calloc(s->c_cap, sizeof *s->cache);
    UErrorCode err = U_ZERO_ERROR;
    s->ut = utext_openUTF8(NULL, "", 0, &err);
    if (!s->nre || !s->pre || !s->cache || U_FAILURE(err)) {
        tkmi_fstate_free(s);
        return tkmi_error(TKM_ENOMEM, "out of memory");
    }
    for (int i = 0; i < f->n_norm && U_SUCCESS(err); i++)
        if (f->norm[i].re_src) s->nre[i] = re_open(f->norm[i].re_src, &err);
    for (int i = 0; i < f->n_pre && U_SUCCESS(err); i++) {
        const tkmi_step *st = &f->pre[i];
        if (st->kind == TKMI_PRE_SPLIT && st->re_src) s->pre[i] = re_open(st->re_src, &err);
        else if (st->kind == TKMI_PRE_BYTELEVEL && st->use_regex) s->pre[i] = re_open(gpt2_pattern, &err);
    }
    if (U_SUCCESS(err)) s->digits = re_open("\\p{N}", &err);
    if (U_FAILURE(err)) {
        tkmi_fstate_free(s);
        return tkmi_error(TKM_ENOTSUP, "%s: cannot compile a regular expression: %s", m->name, u_errorName(err));
    }
    *out = s;
    return 0;
}

/* ---- small helpers ---- */

static int put(char **b, size_t *n, size_t *cap, const char *s, size_t k)
{
    if (*n + k + 1 > *cap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)b, cap, *n + k + 1, 1));
    if (k) memcpy(*b + *n, s, k);
    *n += k;
    return 0;
}

static int wl_add(wlist *w, const char *s, size_t k, int first)
{
    if (!k) return 0; /* HF drops empty splits */
    if (w->nw == w->wcap) {
        size_t c1 = w->wcap, c2 = w->wcap, c3 = w->wcap;
        TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&w->off, &c1, w->nw + 1, sizeof *w->off));
        TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&w->len, &c2, w->nw + 1, sizeof *w->len));
        TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&w->first, &c3, w->nw + 1, 1));
        w->wcap = c1 < c2 ? (c1 < c3 ? c1 : c3) : (c2 < c3 ? c2 : c3);
    }
    w->off[w->nw] = w->n;
    w->len[w->nw] = k;
    w->first[w->nw++] = (uint8_t)first;
    return put(&w->buf, &w->n, &w->cap, s, k);
}

static int push_ids(tkmi_fstate *s, const int32_t *v, size_t k)
{
    if (s->nids + k > s->idcap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&s->ids, &s->idcap, s->nids + k, sizeof *s->ids));
    memcpy(s->ids + s->nids, v, k * sizeof *v);
    s->nids += k;
    return 0;
}

/* Match spans of a regex (re) or a literal (lit) in t[0..n): HF's
 * find_matches, the whole string covered by (span, is_match) parts. */
static int find_matches(tkmi_fstate *s, URegularExpression *re, const char *lit, size_t litlen, const char *t,
                        size_t n)
{
    s->spn = 0;
#define SPAN(a, b, mt)                                                                                  \
    do {                                                                                                \
        if (s->spn == s->spcap)                                                                         \
            TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&s->sp, &s->spcap, s->spn + 1, sizeof *s->sp));     \
        s->sp[s->spn++] = (struct span){(a), (b), (mt)};                                                \
    } while (0)
    size_t prev = 0;
    if (re) {
        UErrorCode err = U_ZERO_ERROR;
        s->ut = utext_openUTF8(s->ut, t, (int64_t)n, &err);
        uregex_setUText(re, s->ut, &err);
        while (U_SUCCESS(err) && uregex_findNext(re, &err)) {
            size_t a = (size_t)uregex_start64(re, 0, &err), b = (size_t)uregex_end64(re, 0, &err);
            if (U_FAILURE(err)) break;
            if (b == a) continue; /* empty matches split nothing */
            if (prev != a) SPAN(prev, a, 0);
            SPAN(a, b, 1);
            prev = b;
        }
        TKM_RETURN_ERROR_IF(U_FAILURE(err), TKM_EINVAL, "%s: regular expression failed: %s", s->m->name,
                            u_errorName(err));
    } else {
        size_t i = 0;
        while (litlen && i + litlen <= n) {
            if (memcmp(t + i, lit, litlen) == 0) {
                if (prev != i) SPAN(prev, i, 0);
                SPAN(i, i + litlen, 1);
                i += litlen;
                prev = i;
            } else {
                i++;
            }
        }
    }
    if (prev != n) SPAN(prev, n, 0);
#undef SPAN
    return 0;
}

/* HF's NormalizedString::split: spans -> words appended to out. */
static int split_word(tkmi_fstate *s, wlist *out, const char *t, int first, int behavior, int invert)
{
    size_t k = 0;
    struct span *v = s->sp;
    if (invert)
        for (size_t i = 0; i < s->spn; i++) v[i].match = !v[i].match;
    int prevm = 0;
    switch (behavior) {
    case TKMI_SPLIT_ISOLATED:
        for (size_t i = 0; i < s->spn; i++) v[i].match = 0;
        k = s->spn;
        break;
    case TKMI_SPLIT_REMOVED: k = s->spn; break;
    case TKMI_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < s->spn; i++) {
            int mt = v[i].match;
            if (mt == prevm && k) v[k - 1].e = v[i].e;
            else v[k++] = (struct span){v[i].s, v[i].e, 0};
            prevm = mt;
        }
        break;
    case TKMI_SPLIT_MERGED_PREV:
        for (size_t i = 0; i < s->spn; i++) {
            int mt = v[i].match;
            if (mt && !prevm && k) v[k - 1].e = v[i].e;
            else v[k++] = (struct span){v[i].s, v[i].e, 0};
            prevm = mt;
        }
        break;
    case TKMI_SPLIT_MERGED_NEXT: {
        /* fold from the right, merging a match into the part after it */
        size_t w = s->spn;
        for (size_t i = s->spn; i-- > 0;) {
            int mt = v[i].match;
            if (mt && !prevm && w < s->spn) v[w].s = v[i].s;
            else v[--w] = (struct span){v[i].s, v[i].e, 0};
            prevm = mt;
        }
        memmove(v, v + w, (s->spn - w) * sizeof *v);
        k = s->spn - w;
        break;
    }
    }
    int firstout = first;
    for (size_t i = 0; i < k; i++) {
        if (v[i].match) continue;
        TKM_FORWARD_IF_ERROR(wl_add(out, t + v[i].s, v[i].e - v[i].s, firstout && v[i].s == 0));
    }
    return 0;
}

/* ---- normalizers ---- */

static int unicode_norm(tkmi_fstate *s, int kind, const char *in, size_t n, char **out, size_t *on, size_t *ocap)
{
    UErrorCode err = U_ZERO_ERROR;
    int32_t ulen = 0;
    u_strFromUTF8(NULL, 0, &ulen, in, (int32_t)n, &err);
    err = U_ZERO_ERROR;
    UChar *u = tkmi_malloc(((size_t)ulen + 1) * sizeof *u);
    size_t cap2 = (size_t)ulen * 4 + 16;
    UChar *v = tkmi_malloc(cap2 * sizeof *v);
    int rc = (!u || !v) ? tkmi_error(TKM_ENOMEM, "out of memory") : 0;
    int32_t vlen = 0;
    if (rc == 0) {
        u_strFromUTF8(u, ulen + 1, NULL, in, (int32_t)n, &err);
        if (kind == TKMI_NORM_LOWER) {
            vlen = u_strToLower(v, (int32_t)cap2, u, ulen, "", &err);
        } else {
            const UNormalizer2 *nz = kind == TKMI_NORM_NFC    ? unorm2_getNFCInstance(&err)
                                     : kind == TKMI_NORM_NFD  ? unorm2_getNFDInstance(&err)
                                     : kind == TKMI_NORM_NFKC ? unorm2_getNFKCInstance(&err)
                                                              : unorm2_getNFKDInstance(&err);
            if (U_SUCCESS(err)) vlen = unorm2_normalize(nz, u, ulen, v, (int32_t)cap2, &err);
        }
        int32_t blen = 0;
        if (U_SUCCESS(err)) u_strToUTF8(NULL, 0, &blen, v, vlen, &err);
        if (err == U_BUFFER_OVERFLOW_ERROR) err = U_ZERO_ERROR;
        if (U_SUCCESS(err)) {
            *on = 0;
            rc = tkmi_grow((void **)out, ocap, (size_t)blen + 1, 1);
            if (rc == 0) u_strToUTF8(*out, (int32_t)*ocap, NULL, v, vlen, &err);
            *on = (size_t)blen;
        }
        if (rc == 0 && U_FAILURE(err))
            rc = tkmi_error(TKM_EINVAL, "%s: Unicode normalization failed: %s", s->m->name, u_errorName(err));
    }
    tkmi_free(u);
    tkmi_free(v);
    return rc;
}

static int is_ws_at(const char *t, size_t n, size_t i, int *mb)
{
    int32_t cp = tkmi_utf8_decode((const uint8_t *)t + i, n - i, mb);
    return cp >= 0 && u_hasBinaryProperty(cp, UCHAR_WHITE_SPACE);
}

/* Runs the normalizers on t[0..n); the result is in *res and *rn (one of the
 * two scratch buffers). */
static int normalize(tkmi_fstate *s, const char *t, size_t n, const char **res, size_t *rn)
{
    const struct tkmi_front *f = s->f;
    size_t n1 = 0, n2 = 0;
    TKM_FORWARD_IF_ERROR(put(&s->t1, &n1, &s->t1_cap, t, n));
    for (int i = 0; i < f->n_norm; i++) {
        const tkmi_step *st = &f->norm[i];
        n2 = 0;
        switch (st->kind) {
        case TKMI_NORM_REPLACE:
            TKM_FORWARD_IF_ERROR(find_matches(s, s->nre[i], st->lit, st->litlen, s->t1, n1));
            for (size_t k = 0; k < s->spn; k++) {
                if (s->sp[k].match) TKM_FORWARD_IF_ERROR(put(&s->t2, &n2, &s->t2_cap, st->content, st->clen));
                else TKM_FORWARD_IF_ERROR(put(&s->t2, &n2, &s->t2_cap, s->t1 + s->sp[k].s, s->sp[k].e - s->sp[k].s));
            }
            break;
        case TKMI_NORM_PREPEND:
            if (n1) TKM_FORWARD_IF_ERROR(put(&s->t2, &n2, &s->t2_cap, st->lit, st->litlen));
            TKM_FORWARD_IF_ERROR(put(&s->t2, &n2, &s->t2_cap, s->t1, n1));
            break;
        case TKMI_NORM_STRIP: {
            size_t a = 0, b = n1;
            int mb;
            while (st->left && a < b && is_ws_at(s->t1, n1, a, &mb)) a += (size_t)mb;
            while (st->right && b > a) {
                size_t q = b - 1;
                while (q > a && ((uint8_t)s->t1[q] & 0xC0) == 0x80) q--;
                if (!is_ws_at(s->t1, b, q, &mb)) break;
                b = q;
            }
            TKM_FORWARD_IF_ERROR(put(&s->t2, &n2, &s->t2_cap, s->t1 + a, b - a));
            break;
        }
        default:
            TKM_FORWARD_IF_ERROR(unicode_norm(s, st->kind, s->t1, n1, &s->t2, &n2, &s->t2_cap));
            break;
        }
        char *tb = s->t1;
        size_t tc = s->t1_cap;
        s->t1 = s->t2;
        s->t1_cap = s->t2_cap;
        s->t2 = tb;
        s->t2_cap = tc;
        n1 = n2;
    }
    *res = s->t1;
    *rn = n1;
    return 0;
}

/* ---- pre-tokenizers: words of wa -> wb, then swapped ---- */

static int pre_tokenize(tkmi_fstate *s)
{
    const struct tkmi_front *f = s->f;
    for (int i = 0; i < f->n_pre; i++) {
        const tkmi_step *st = &f->pre[i];
        wlist *in = &s->wa, *out = &s->wb;
        out->n = out->nw = 0;
        for (size_t w = 0; w < in->nw; w++) {
            const char *t = in->buf + in->off[w];
            size_t n = in->len[w];
            int first = in->first[w];
            switch (st->kind) {
            case TKMI_PRE_METASPACE: {
                size_t n2 = 0;
                /* HF replaces spaces first, then prepends unless the result
                 * already starts with the replacement */
                int starts = n && (t[0] == ' ' || (n >= st->litlen && memcmp(t, st->lit, st->litlen) == 0));
                if (!starts && (st->scheme == TKMI_PREPEND_ALWAYS || (st->scheme == TKMI_PREPEND_FIRST && first)))
                    TKM_FORWARD_IF_ERROR(put(&s->t2, &n2, &s->t2_cap, st->lit, st->litlen));
                for (size_t k = 0; k < n; k++) {
                    if (t[k] == ' ') TKM_FORWARD_IF_ERROR(put(&s->t2, &n2, &s->t2_cap, st->lit, st->litlen));
                    else TKM_FORWARD_IF_ERROR(put(&s->t2, &n2, &s->t2_cap, t + k, 1));
                }
                if (st->split) {
                    TKM_FORWARD_IF_ERROR(find_matches(s, NULL, st->lit, st->litlen, s->t2, n2));
                    TKM_FORWARD_IF_ERROR(split_word(s, out, s->t2, first, TKMI_SPLIT_MERGED_NEXT, 0));
                } else {
                    TKM_FORWARD_IF_ERROR(wl_add(out, s->t2, n2, first));
                }
                break;
            }
            case TKMI_PRE_BYTELEVEL: {
                size_t n2 = 0;
                if (st->add_prefix_space && !(n && t[0] == ' ')) TKM_FORWARD_IF_ERROR(put(&s->t2, &n2, &s->t2_cap, " ", 1));
                TKM_FORWARD_IF_ERROR(put(&s->t2, &n2, &s->t2_cap, t, n));
                if (s->pre[i]) {
                    TKM_FORWARD_IF_ERROR(find_matches(s, s->pre[i], NULL, 0, s->t2, n2));
                    TKM_FORWARD_IF_ERROR(split_word(s, out, s->t2, first, TKMI_SPLIT_ISOLATED, 0));
                } else {
                    TKM_FORWARD_IF_ERROR(wl_add(out, s->t2, n2, first));
                }
                break;
            }
            case TKMI_PRE_SPLIT:
                TKM_FORWARD_IF_ERROR(find_matches(s, s->pre[i], st->lit, st->litlen, t, n));
                TKM_FORWARD_IF_ERROR(split_word(s, out, t, first, st->behavior, st->invert));
                break;
            case TKMI_PRE_DIGITS:
                TKM_FORWARD_IF_ERROR(find_matches(s, s->digits, NULL, 0, t, n));
                TKM_FORWARD_IF_ERROR(
                    split_word(s, out, t, first, st->individual ? TKMI_SPLIT_ISOLATED : TKMI_SPLIT_CONTIGUOUS, 0));
                break;
            }
        }
        wlist tmp = s->wa;
        s->wa = s->wb;
        s->wb = tmp;
    }
    return 0;
}

/* ---- rank BPE on one word ---- */

static int hp_before(const struct rheap *a, const struct rheap *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static int hp_push(tkmi_fstate *s, struct rheap x)
{
    if (s->hn == s->hcap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&s->hp, &s->hcap, s->hn + 1, sizeof *s->hp));
    size_t i = s->hn++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hp_before(&x, &s->hp[p])) break;
        s->hp[i] = s->hp[p];
        i = p;
    }
    s->hp[i] = x;
    return 0;
}

static struct rheap hp_pop(tkmi_fstate *s)
{
    struct rheap top = s->hp[0], last = s->hp[--s->hn];
    size_t i = 0, n = s->hn;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && hp_before(&s->hp[c + 1], &s->hp[c])) c++;
        if (!hp_before(&s->hp[c], &last)) break;
        s->hp[i] = s->hp[c];
        i = c;
    }
    if (n) s->hp[i] = last;
    return top;
}

static int sym_add(tkmi_fstate *s, size_t *n, int32_t id, uint32_t len)
{
    if (*n == s->sycap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&s->sy, &s->sycap, *n + 1, sizeof *s->sy));
    s->sy[*n] = (struct rsym){(int32_t)*n - 1, -1, len, id};
    if (*n) s->sy[*n - 1].next = (int32_t)*n;
    ++*n;
    return 0;
}

static int pair_push(tkmi_fstate *s, int32_t pos)
{
    const struct rsym *a = &s->sy[pos];
    if (a->next < 0) return 0;
    const struct tkmi_rslot *r = merge_find(s->f, a->id, s->sy[a->next].id);
    return r ? hp_push(s, (struct rheap){r->rank, pos, r->id}) : 0;
}

/* HF's BPE::merge_word + Word::merge_all (tiktoken's byte_pair_merge is
 * the same with rank = rank of the merged token). Appends ids. */
static int rank_word(tkmi_fstate *s, const char *w, size_t n)
{
    const struct tkmi_front *f = s->f;
    if (f->ignore_merges) {
        int32_t id = tkmi_strmap_get(&f->vocab, w, n);
        if (id >= 0) return push_ids(s, &id, 1);
    }
    size_t ns = 0;
    int32_t unk = -1;
    uint32_t unk_len = 0;
    for (size_t i = 0; i < n;) {
        size_t k = f->byte_level ? 1 : (size_t)tkmi_utf8_lead_len((uint8_t)w[i]);
        if (k > n - i) k = n - i;
        int32_t id = f->byte_level ? f->byte_sym[(uint8_t)w[i]] : tkmi_strmap_get(&f->vocab, w + i, k);
        if (id >= 0) {
            if (unk >= 0) {
                TKM_FORWARD_IF_ERROR(sym_add(s, &ns, unk, unk_len));
                unk = -1;
            }
            TKM_FORWARD_IF_ERROR(sym_add(s, &ns, id, (uint32_t)k));
        } else {
            int all = f->byte_fallback;
            for (size_t j = 0; all && j < k; j++) all = f->fb_byte[(uint8_t)w[i + j]] >= 0;
            if (all) {
                for (size_t j = 0; j < k; j++) TKM_FORWARD_IF_ERROR(sym_add(s, &ns, f->fb_byte[(uint8_t)w[i + j]], 1));
            } else if (f->unk_id >= 0) {
                if (unk >= 0 && f->fuse_unk) unk_len += (uint32_t)k;
                else {
                    if (unk >= 0) TKM_FORWARD_IF_ERROR(sym_add(s, &ns, unk, unk_len));
                    unk = f->unk_id;
                    unk_len = (uint32_t)k;
                }
            } /* else HF drops the character */
        }
        i += k;
    }
    if (unk >= 0) TKM_FORWARD_IF_ERROR(sym_add(s, &ns, unk, unk_len));
    s->hn = 0;
    for (size_t i = 0; i + 1 < ns; i++) TKM_FORWARD_IF_ERROR(pair_push(s, (int32_t)i));
    while (s->hn) {
        struct rheap top = hp_pop(s);
        struct rsym *a = &s->sy[top.pos];
        if (a->len == 0 || a->next < 0) continue;
        struct rsym *b = &s->sy[a->next];
        const struct tkmi_rslot *r = merge_find(f, a->id, b->id);
        if (!r || r->id != top.id) continue; /* expired entry */
        a->id = top.id;
        a->len += b->len;
        b->len = 0;
        a->next = b->next;
        if (a->next >= 0) s->sy[a->next].prev = top.pos;
        if (a->prev >= 0) TKM_FORWARD_IF_ERROR(pair_push(s, a->prev));
        TKM_FORWARD_IF_ERROR(pair_push(s, top.pos));
    }
    for (int32_t i = ns ? 0 : -1; i >= 0; i = s->sy[i].next) TKM_FORWARD_IF_ERROR(push_ids(s, &s->sy[i].id, 1));
    return 0;
}

static int word_ids(tkm_encoder *e, tkmi_fstate *s, const char *w, size_t n)
{
    if (s->f->word == TKMI_WORD_UNIGRAM) {
        const int32_t *v;
        size_t k;
        TKM_FORWARD_IF_ERROR(tkmi_encode_word(e, w, n, &v, &k));
        return push_ids(s, v, k);
    }
    if (n > CACHE_MAX_KEY) return rank_word(s, w, n);
    uint64_t h = tkmi_hash_bytes(w, n);
    size_t mask = s->c_cap - 1, i = h & mask;
    while (s->cache[i].klen) {
        const struct wslot *c = &s->cache[i];
        if (c->hash == h && c->klen == n && memcmp(s->ckeys + c->koff, w, n) == 0)
            return push_ids(s, s->cvals + c->voff, c->vlen);
        i = (i + 1) & mask;
    }
    size_t before = s->nids;
    TKM_FORWARD_IF_ERROR(rank_word(s, w, n));
    size_t vn = s->nids - before;
    if (s->c_n + 1 > CACHE_ENTRIES) {
        memset(s->cache, 0, s->c_cap * sizeof *s->cache);
        s->c_n = s->ckn = s->cvn = 0;
        i = h & mask;
    }
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&s->ckeys, &s->ckcap, s->ckn + n, 1));
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&s->cvals, &s->cvcap, s->cvn + vn, sizeof *s->cvals));
    memcpy(s->ckeys + s->ckn, w, n);
    memcpy(s->cvals + s->cvn, s->ids + before, vn * sizeof *s->cvals);
    s->cache[i] = (struct wslot){h, (uint32_t)s->ckn, (uint32_t)n, (uint32_t)s->cvn, (uint32_t)vn};
    s->ckn += n;
    s->cvn += vn;
    s->c_n++;
    return 0;
}

/* Normalized segment -> normalized added tokens, pre-tokenizers, words. */
static int encode_normalized(tkm_encoder *e, tkmi_fstate *s, const char *t, size_t n, int first)
{
    const struct tkmi_front *f = s->f;
    s->wa.n = s->wa.nw = 0;
    if (f->n_added_norm) {
        size_t i = 0, start = 0;
        /* added tokens are whole words; the text between them is pre-tokenized */
        while (i < n) {
            size_t k = tkmi_ptrie_longest(&f->added_norm, t + i, n - i);
            if (!k) { i++; continue; }
            if (i > start) {
                TKM_FORWARD_IF_ERROR(wl_add(&s->wa, t + start, i - start, first && start == 0));
                TKM_FORWARD_IF_ERROR(pre_tokenize(s));
                for (size_t w = 0; w < s->wa.nw; w++)
                    TKM_FORWARD_IF_ERROR(word_ids(e, s, s->wa.buf + s->wa.off[w], s->wa.len[w]));
                s->wa.n = s->wa.nw = 0;
            }
            int32_t node = 0;
            for (size_t j = 0; j < k; j++) node = tkmi_ptrie_child(&f->added_norm, node, (uint8_t)t[i + j]);
            TKM_FORWARD_IF_ERROR(push_ids(s, &f->added_norm.id[node], 1));
            i += k;
            start = i;
        }
        if (start == n) return 0;
        TKM_FORWARD_IF_ERROR(wl_add(&s->wa, t + start, n - start, first && start == 0));
    } else {
        TKM_FORWARD_IF_ERROR(wl_add(&s->wa, t, n, first));
    }
    TKM_FORWARD_IF_ERROR(pre_tokenize(s));
    for (size_t w = 0; w < s->wa.nw; w++) TKM_FORWARD_IF_ERROR(word_ids(e, s, s->wa.buf + s->wa.off[w], s->wa.len[w]));
    return 0;
}

static int encode_segment(tkm_encoder *e, tkmi_fstate *s, const char *t, size_t n, int first)
{
    if (!n) return 0;
    const char *r;
    size_t rn;
    TKM_FORWARD_IF_ERROR(normalize(s, t, n, &r, &rn));
    if (!rn) return 0;
    /* the result lives in t1, which pre-tokenizers do not touch */
    return encode_normalized(e, s, r, rn, first);
}

int tkmi_front_encode(tkm_encoder *e, tkmi_fstate *s, const char *text, size_t len, const int32_t **ids, size_t *n)
{
    const struct tkmi_front *f = s->f;
    s->nids = 0;
    *ids = NULL;
    *n = 0;
    /* HF takes text: each invalid byte becomes U+FFFD, as hf_encode.py does */
    size_t sn = 0;
    for (size_t i = 0; i < len;) {
        int mb;
        if (tkmi_utf8_decode((const uint8_t *)text + i, len - i, &mb) < 0) {
            TKM_FORWARD_IF_ERROR(put(&s->san, &sn, &s->san_cap, "\xEF\xBF\xBD", 3));
            i += 1;
        } else {
            TKM_FORWARD_IF_ERROR(put(&s->san, &sn, &s->san_cap, text + i, (size_t)mb));
            i += (size_t)mb;
        }
    }
    const char *t = s->san;
    if (f->n_added_raw) {
        size_t i = 0, start = 0;
        while (i < sn) {
            size_t k = tkmi_ptrie_longest(&f->added_raw, t + i, sn - i);
            if (!k) { i++; continue; }
            TKM_FORWARD_IF_ERROR(encode_segment(e, s, t + start, i - start, start == 0));
            int32_t node = 0;
            for (size_t j = 0; j < k; j++) node = tkmi_ptrie_child(&f->added_raw, node, (uint8_t)t[i + j]);
            TKM_FORWARD_IF_ERROR(push_ids(s, &f->added_raw.id[node], 1));
            i += k;
            start = i;
        }
        TKM_FORWARD_IF_ERROR(encode_segment(e, s, t + start, sn - start, start == 0));
    } else {
        TKM_FORWARD_IF_ERROR(encode_segment(e, s, t, sn, 1));
    }
    *ids = s->ids;
    *n = s->nids;
    return 0;
}
