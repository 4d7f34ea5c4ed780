/* hf_pipeline.c - the encoder of tokenizers read from HF tokenizer.json and
 * tiktoken files (tkmi_hf_kind): HF's pipeline (added tokens, normalizers,
 * pre-tokenizers, regexes through ICU) in front of a per-word model, rank BPE
 * (lib/rank_bpe.c) or sentencepiece's Unigram (lib/unigram_encode.c through
 * an encoder of its own), with a per-word cache. */
#include <stdio.h>
#include <stdlib.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utext.h>

#include "encoder.h"
#include "hf_pipeline.h"
#include "idcache.h"
#include "rank_bpe.h"

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
    tkmi_pairmap_free(&f->merges);
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

/* ---- per-encoder state ---- */

typedef struct {          /* a list of words: text in one buffer */
    char *buf; size_t n, cap;
    size_t *off, *len; uint8_t *first;
    size_t nw, wcap;
} wlist;

typedef struct {
    const tkm_model *m;
    const struct tkmi_front *f;
    URegularExpression **nre, **pre; /* per step, NULL for literal patterns */
    URegularExpression *digits;
    UText *ut;
    char *san; size_t san_cap;
    char *t1, *t2; size_t t1_cap, t2_cap;
    wlist wa, wb;
    int32_t *ids; size_t nids, idcap;
    tkmi_rank_scratch rank;  /* rank BPE words */
    tkm_encoder *unigram;    /* Unigram words: sentencepiece's encoder on the identity model */
    tkmi_idcache cache;      /* word -> ids */
    /* match spans of one split: (start, end, is_match) */
    struct span { size_t s, e; int match; } *sp; size_t spn, spcap;
} hf_state;

#define CACHE_ENTRIES (1u << 16)
#define CACHE_MAX_KEY 128

static const char *const gpt2_pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static void hf_destroy(void *state)
{
    hf_state *s = state;
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
    tkmi_rank_scratch_free(&s->rank);
    tkmi_encoder_close(s->unigram);
    tkmi_idcache_free(&s->cache);
    tkmi_free(s->sp);
    tkmi_free(s);
}

static int hf_create(const tkm_model *m, void **out)
{
    const struct tkmi_front *f = m->front;
    *out = NULL;
    hf_state *s = tkmi_calloc(1, sizeof *s);
    TKM_RETURN_ERROR_IF(!s, TKM_ENOMEM, "out of memory");
    s->m = m;
    s->f = f;
    s->nre = tkmi_calloc((size_t)f->n_norm + 1, sizeof *s->nre);
    s->pre = tkmi_calloc((size_t)f->n_pre + 1, sizeof *s->pre);
    UErrorCode err = U_ZERO_ERROR;
    s->ut = utext_openUTF8(NULL, "", 0, &err);
    if (!s->nre || !s->pre || U_FAILURE(err)) {
        hf_destroy(s);
        return tkmi_error(TKM_ENOMEM, "out of memory");
    }
    int rc = tkmi_idcache_init(&s->cache, CACHE_ENTRIES * 2, CACHE_ENTRIES, CACHE_MAX_KEY, sizeof(int32_t));
    if (rc == 0 && f->word == TKMI_WORD_UNIGRAM) rc = tkmi_encoder_open(m, &tkmi_unigram_kind, &s->unigram);
    if (rc < 0) {
        hf_destroy(s);
        return rc;
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
        hf_destroy(s);
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

static int push_ids(hf_state *s, const int32_t *v, size_t k)
{
    if (s->nids + k > s->idcap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&s->ids, &s->idcap, s->nids + k, sizeof *s->ids));
    memcpy(s->ids + s->nids, v, k * sizeof *v);
    s->nids += k;
    return 0;
}

/* Match spans of a regex (re) or a literal (lit) in t[0..n): HF's
 * find_matches, the whole string covered by (span, is_match) parts. */
static int find_matches(hf_state *s, URegularExpression *re, const char *lit, size_t litlen, const char *t,
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
static int split_word(hf_state *s, wlist *out, const char *t, int first, int behavior, int invert)
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

static int unicode_norm(hf_state *s, int kind, const char *in, size_t n, char **out, size_t *on, size_t *ocap)
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
static int normalize(hf_state *s, const char *t, size_t n, const char **res, size_t *rn)
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

static int pre_tokenize(hf_state *s)
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

static int word_ids(hf_state *s, const char *w, size_t n)
{
    if (s->unigram) {
        const int32_t *v;
        size_t k;
        TKM_FORWARD_IF_ERROR(tkmi_encoder_line(s->unigram, w, n, &v, &k));
        return push_ids(s, v, k);
    }
    if (n > CACHE_MAX_KEY) return tkmi_rank_word(&s->rank, s->f, w, n, &s->ids, &s->nids, &s->idcap);
    uint32_t vn;
    tkmi_idprobe pr;
    const int32_t *hit = tkmi_idcache_get(&s->cache, w, n, &vn, &pr);
    if (hit) return push_ids(s, hit, vn);
    size_t before = s->nids;
    TKM_FORWARD_IF_ERROR(tkmi_rank_word(&s->rank, s->f, w, n, &s->ids, &s->nids, &s->idcap));
    return tkmi_idcache_put(&s->cache, w, n, &pr, s->ids + before, s->nids - before);
}

/* Normalized segment -> normalized added tokens, pre-tokenizers, words. */
static int encode_normalized(hf_state *s, const char *t, size_t n, int first)
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
                    TKM_FORWARD_IF_ERROR(word_ids(s, s->wa.buf + s->wa.off[w], s->wa.len[w]));
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
    for (size_t w = 0; w < s->wa.nw; w++) TKM_FORWARD_IF_ERROR(word_ids(s, s->wa.buf + s->wa.off[w], s->wa.len[w]));
    return 0;
}

static int encode_segment(hf_state *s, const char *t, size_t n, int first)
{
    if (!n) return 0;
    const char *r;
    size_t rn;
    TKM_FORWARD_IF_ERROR(normalize(s, t, n, &r, &rn));
    if (!rn) return 0;
    /* the result lives in t1, which pre-tokenizers do not touch */
    return encode_normalized(s, r, rn, first);
}

static int hf_encode(void *state, const char *text, size_t len, const int32_t **ids, size_t *n)
{
    hf_state *s = state;
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
            TKM_FORWARD_IF_ERROR(encode_segment(s, t + start, i - start, start == 0));
            int32_t node = 0;
            for (size_t j = 0; j < k; j++) node = tkmi_ptrie_child(&f->added_raw, node, (uint8_t)t[i + j]);
            TKM_FORWARD_IF_ERROR(push_ids(s, &f->added_raw.id[node], 1));
            i += k;
            start = i;
        }
        TKM_FORWARD_IF_ERROR(encode_segment(s, t + start, sn - start, start == 0));
    } else {
        TKM_FORWARD_IF_ERROR(encode_segment(s, t, sn, 1));
    }
    *ids = s->ids;
    *n = s->nids;
    return 0;
}

const tkmi_encoder_kind tkmi_hf_kind = {"hf", hf_create, NULL, hf_encode, hf_destroy};
