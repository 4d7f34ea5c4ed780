/* hf_read.c - reads HF tokenizer.json (BPE with Metaspace, Replace/Prepend or
 * byte-level pre-tokenization, byte fallback, added tokens; Unigram) and
 * tiktoken rank files into a tkm_model whose encoder runs HF's pipeline
 * (lib/rank_bpe.c), so analyze can count tokens of any tokenizer a user has. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "fileio.h"
#include "hf_pipeline.h"
#include "json.h"

/* ---- GPT-2's byte <-> character map (HF ByteLevel, tiktoken's r50k) ---- */
static void byte_chars(uint32_t cp_of[256])
{
    int k = 0;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
        cp_of[b] = keep ? (uint32_t)b : (uint32_t)(256 + k++);
    }
}

/* Decodes a byte-level vocab string into raw bytes (out has room for n
 * bytes); returns the length, or 0 if a character is outside the map. */
static size_t byte_decode(const int16_t *byte_of, const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        int mb;
        int32_t cp = tkmi_utf8_decode((const uint8_t *)s + i, n - i, &mb);
        if (cp < 0 || cp >= 324 || byte_of[cp] < 0) return 0;
        out[o++] = (char)byte_of[cp];
        i += (size_t)mb;
    }
    return o;
}

/* ---- reading context ---- */
typedef struct {
    const char *path;
    struct tkmi_front *f;
    int n;                       /* ids 0..n-1 */
    char **piece; uint32_t *plen; float *score; uint8_t *type;
    int byte_level;
    int16_t byte_of[324];
    uint8_t *in_vocab;           /* ids indexed in f->vocab */
    int n_in_vocab;              /* ids in_vocab covers (added tokens may come after) */
} rd;

static int bad(const rd *r, const tkmi_json *v, const char *what)
{
    return tkmi_error(TKM_EFORMAT, "%s: offset %zu: %s", r->path, v ? v->offset : (size_t)0, what);
}

static int str_eq(const tkmi_json *v, const char *s) { return v && v->type == TKMI_JSON_STRING && !strcmp(v->u.str, s); }

static int get_bool(const tkmi_json *o, const char *key, int dflt)
{
    const tkmi_json *v = tkmi_json_get(o, key);
    if (!v || v->type == TKMI_JSON_NULL) return dflt;
    return v->type == TKMI_JSON_TRUE;
}

/* Oniguruma / Rust regex -> ICU: \s and \S mean Unicode White_Space in both
 * HF (Onig) and tiktoken (Rust) but not in ICU (no \v, U+0085). */
static char *icu_regex(const char *src)
{
    size_t n = strlen(src), o = 0;
    char *d = tkmi_malloc(n * 8 + 1);
    if (!d) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '\\' && i + 1 < n) {
            if (src[i + 1] == 's' || src[i + 1] == 'S') {
                o += (size_t)sprintf(d + o, "%s", src[i + 1] == 's' ? "\\p{White_Space}" : "\\P{White_Space}");
            } else {
                d[o++] = src[i];
                d[o++] = src[i + 1];
            }
            i++;
        } else {
            d[o++] = src[i];
        }
    }
    d[o] = 0;
    return d;
}

static int add_step(rd *r, int pre, tkmi_step st)
{
    tkmi_step **v = pre ? &r->f->pre : &r->f->norm;
    int *n = pre ? &r->f->n_pre : &r->f->n_norm;
    size_t cap = (size_t)*n;
    if (tkmi_grow((void **)v, &cap, (size_t)*n + 1, sizeof **v) < 0) {
        tkmi_free(st.lit);
        tkmi_free(st.re_src);
        tkmi_free(st.content);
        return tkmi_error(TKM_ENOMEM, "out of memory");
    }
    (*v)[(*n)++] = st;
    return 0;
}

/* pattern: {"String": s} or {"Regex": r} (or a plain string) */
static int read_pattern(rd *r, const tkmi_json *p, tkmi_step *st)
{
    const tkmi_json *s = p && p->type == TKMI_JSON_STRING ? p : tkmi_json_get(p, "String");
    const tkmi_json *re = tkmi_json_get(p, "Regex");
    if (s && s->type == TKMI_JSON_STRING) {
        st->lit = tkmi_malloc(s->len + 1);
        TKM_RETURN_ERROR_IF(!st->lit, TKM_ENOMEM, "out of memory");
        memcpy(st->lit, s->u.str, s->len + 1);
        st->litlen = s->len;
        return 0;
    }
    if (re && re->type == TKMI_JSON_STRING) {
        st->re_src = icu_regex(re->u.str);
        TKM_RETURN_ERROR_IF(!st->re_src, TKM_ENOMEM, "out of memory");
        char where[600];
        snprintf(where, sizeof where, "%s: offset %zu", r->path, re->offset);
        return tkmi_front_check_regex(st->re_src, where);
    }
    return bad(r, p, "pattern must be {\"String\": ...} or {\"Regex\": ...}");
}

static char *dup_json_str(const tkmi_json *v, size_t *len)
{
    char *d = tkmi_malloc(v->len + 1);
    if (d) memcpy(d, v->u.str, v->len + 1);
    *len = v->len;
    return d;
}

static int read_normalizer(rd *r, const tkmi_json *v)
{
    if (!v || v->type == TKMI_JSON_NULL) return 0;
    const tkmi_json *t = tkmi_json_get(v, "type");
    if (!t || t->type != TKMI_JSON_STRING) return bad(r, v, "normalizer without a type");
    const char *ty = t->u.str;
    tkmi_step st;
    memset(&st, 0, sizeof st);
    if (!strcmp(ty, "Sequence")) {
        const tkmi_json *a = tkmi_json_get(v, "normalizers");
        if (!a || a->type != TKMI_JSON_ARRAY) return bad(r, v, "Sequence without normalizers");
        for (size_t i = 0; i < a->len; i++) TKM_FORWARD_IF_ERROR(read_normalizer(r, tkmi_json_at(a, i)));
        return 0;
    }
    if (!strcmp(ty, "Replace")) {
        const tkmi_json *c = tkmi_json_get(v, "content");
        if (!c || c->type != TKMI_JSON_STRING) return bad(r, v, "Replace without content");
        st.kind = TKMI_NORM_REPLACE;
        int rc = read_pattern(r, tkmi_json_get(v, "pattern"), &st);
        if (rc == 0 && !(st.content = dup_json_str(c, &st.clen))) rc = tkmi_error(TKM_ENOMEM, "out of memory");
        if (rc < 0) {
            tkmi_free(st.lit);
            tkmi_free(st.re_src);
            return rc;
        }
        return add_step(r, 0, st);
    }
    if (!strcmp(ty, "Prepend")) {
        const tkmi_json *p = tkmi_json_get(v, "prepend");
        if (!p || p->type != TKMI_JSON_STRING) return bad(r, v, "Prepend without prepend");
        st.kind = TKMI_NORM_PREPEND;
        TKM_RETURN_ERROR_IF(!(st.lit = dup_json_str(p, &st.litlen)), TKM_ENOMEM, "out of memory");
        return add_step(r, 0, st);
    }
    if (!strcmp(ty, "Strip")) {
        st.kind = TKMI_NORM_STRIP;
        st.left = get_bool(v, "strip_left", 1);
        st.right = get_bool(v, "strip_right", 1);
        return add_step(r, 0, st);
    }
    static const struct { const char *name; int kind; } uni[] = {
        {"NFC", TKMI_NORM_NFC}, {"NFD", TKMI_NORM_NFD}, {"NFKC", TKMI_NORM_NFKC},
        {"NFKD", TKMI_NORM_NFKD}, {"Lowercase", TKMI_NORM_LOWER}};
    for (size_t i = 0; i < sizeof uni / sizeof *uni; i++)
        if (!strcmp(ty, uni[i].name)) {
            st.kind = uni[i].kind;
            return add_step(r, 0, st);
        }
    return tkmi_error(TKM_ENOTSUP, "%s: offset %zu: normalizer %s is not supported (supported: Sequence, Replace, "
                      "Prepend, Strip, NFC, NFD, NFKC, NFKD, Lowercase)", r->path, v->offset, ty);
}

static int read_pre(rd *r, const tkmi_json *v)
{
    if (!v || v->type == TKMI_JSON_NULL) return 0;
    const tkmi_json *t = tkmi_json_get(v, "type");
    if (!t || t->type != TKMI_JSON_STRING) return bad(r, v, "pre_tokenizer without a type");
    const char *ty = t->u.str;
    tkmi_step st;
    memset(&st, 0, sizeof st);
    if (!strcmp(ty, "Sequence")) {
        const tkmi_json *a = tkmi_json_get(v, "pretokenizers");
        if (!a || a->type != TKMI_JSON_ARRAY) return bad(r, v, "Sequence without pretokenizers");
        for (size_t i = 0; i < a->len; i++) TKM_FORWARD_IF_ERROR(read_pre(r, tkmi_json_at(a, i)));
        return 0;
    }
    if (!strcmp(ty, "Metaspace")) {
        const tkmi_json *rep = tkmi_json_get(v, "replacement"), *sch = tkmi_json_get(v, "prepend_scheme");
        st.kind = TKMI_PRE_METASPACE;
        if (rep && rep->type == TKMI_JSON_STRING && rep->len) st.lit = dup_json_str(rep, &st.litlen);
        else {
            st.lit = tkmi_strdup(TKMI_WS);
            st.litlen = 3;
        }
        TKM_RETURN_ERROR_IF(!st.lit, TKM_ENOMEM, "out of memory");
        if (str_eq(sch, "first")) st.scheme = TKMI_PREPEND_FIRST;
        else if (str_eq(sch, "never")) st.scheme = TKMI_PREPEND_NEVER;
        else if (sch) st.scheme = TKMI_PREPEND_ALWAYS;
        else st.scheme = get_bool(v, "add_prefix_space", 1) ? TKMI_PREPEND_ALWAYS : TKMI_PREPEND_NEVER;
        st.split = get_bool(v, "split", 1);
        return add_step(r, 1, st);
    }
    if (!strcmp(ty, "ByteLevel")) {
        st.kind = TKMI_PRE_BYTELEVEL;
        st.add_prefix_space = get_bool(v, "add_prefix_space", 1);
        st.use_regex = get_bool(v, "use_regex", 1);
        r->byte_level = 1;
        return add_step(r, 1, st);
    }
    if (!strcmp(ty, "Split")) {
        const tkmi_json *b = tkmi_json_get(v, "behavior");
        static const char *const names[] = {"Isolated", "Removed", "MergedWithPrevious", "MergedWithNext",
                                            "Contiguous"};
        st.kind = TKMI_PRE_SPLIT;
        st.behavior = -1;
        for (int i = 0; i < 5; i++)
            if (str_eq(b, names[i])) st.behavior = i;
        if (st.behavior < 0) return bad(r, v, "Split with an unknown behavior");
        st.invert = get_bool(v, "invert", 0);
        int rc = read_pattern(r, tkmi_json_get(v, "pattern"), &st);
        if (rc < 0) {
            tkmi_free(st.lit);
            tkmi_free(st.re_src);
            return rc;
        }
        return add_step(r, 1, st);
    }
    if (!strcmp(ty, "Digits")) {
        st.kind = TKMI_PRE_DIGITS;
        st.individual = get_bool(v, "individual_digits", 0);
        return add_step(r, 1, st);
    }
    if (!strcmp(ty, "WhitespaceSplit") || !strcmp(ty, "Whitespace")) {
        /* HF: split on whitespace (removed); Whitespace keeps \w+|[^\w\s]+ */
        st.kind = TKMI_PRE_SPLIT;
        st.behavior = TKMI_SPLIT_REMOVED;
        st.invert = ty[10] == 0 ? 1 : 0;
        st.re_src = icu_regex(st.invert ? "\\w+|[^\\w\\s]+" : "\\s+");
        TKM_RETURN_ERROR_IF(!st.re_src, TKM_ENOMEM, "out of memory");
        return add_step(r, 1, st);
    }
    return tkmi_error(TKM_ENOTSUP, "%s: offset %zu: pre-tokenizer %s is not supported (supported: Sequence, "
                      "Metaspace, ByteLevel, Split, Digits, Whitespace, WhitespaceSplit)", r->path, v->offset, ty);
}

/* Sets piece id (a copy of s[0..n)) with a type; ids grow as needed. */
static int set_piece(rd *r, int64_t id, const char *s, size_t n, uint8_t type, float score, const tkmi_json *at)
{
    if (id < 0 || id >= (1 << 22)) return bad(r, at, "id out of range");
    if (id >= r->n) {
        size_t need = (size_t)id + 1, c1 = (size_t)r->n, c2 = c1, c3 = c1, c4 = c1;
        if (tkmi_grow((void **)&r->piece, &c1, need, sizeof *r->piece) < 0 ||
            tkmi_grow((void **)&r->plen, &c2, need, sizeof *r->plen) < 0 ||
            tkmi_grow((void **)&r->score, &c3, need, sizeof *r->score) < 0 ||
            tkmi_grow((void **)&r->type, &c4, need, 1) < 0)
            return tkmi_error(TKM_ENOMEM, "out of memory");
        for (int64_t i = r->n; i <= id; i++) {
            r->piece[i] = NULL;
            r->plen[i] = 0;
            r->score[i] = 0;
            r->type[i] = TKM_PIECE_UNUSED;
        }
        r->n = (int)id + 1;
    }
    if (r->piece[id]) { /* an added token that the vocabulary has too: keep the piece, take the type */
        r->type[id] = type;
        return 0;
    }
    if (n == 0) return bad(r, at, "empty token");
    r->piece[id] = tkmi_malloc(n);
    TKM_RETURN_ERROR_IF(!r->piece[id], TKM_ENOMEM, "out of memory");
    memcpy(r->piece[id], s, n);
    r->plen[id] = (uint32_t)n;
    r->score[id] = score;
    r->type[id] = type;
    return 0;
}

/* A vocabulary string as the model sees it: raw bytes for byte-level. */
static int vocab_piece(rd *r, const tkmi_json *k, int64_t id, float score, const tkmi_json *at)
{
    if (r->byte_level && k->len) {
        char *d = tkmi_malloc(k->len);
        TKM_RETURN_ERROR_IF(!d, TKM_ENOMEM, "out of memory");
        size_t n = byte_decode(r->byte_of, k->u.str, k->len, d);
        int rc = n ? set_piece(r, id, d, n, TKM_PIECE_NORMAL, score, at)
                   : set_piece(r, id, k->u.str, k->len, TKM_PIECE_NORMAL, score, at);
        tkmi_free(d);
        return rc;
    }
    return set_piece(r, id, k->u.str, k->len, TKM_PIECE_NORMAL, score, at);
}

static int vocab_index(rd *r)
{
    TKM_FORWARD_IF_ERROR(tkmi_strmap_init(&r->f->vocab, (size_t)r->n));
    r->in_vocab = tkmi_calloc((size_t)r->n + 1, 1);
    TKM_RETURN_ERROR_IF(!r->in_vocab, TKM_ENOMEM, "out of memory");
    r->n_in_vocab = r->n;
    for (int id = 0; id < r->n; id++)
        if (r->piece[id] && r->type[id] != TKM_PIECE_UNUSED) {
            TKM_FORWARD_IF_ERROR(tkmi_strmap_put(&r->f->vocab, r->piece[id], r->plen[id], id));
            r->in_vocab[id] = 1;
        }
    return 0;
}

static int32_t lookup(const rd *r, const char *s, size_t n, char *tmp)
{
    if (r->byte_level) {
        size_t k = byte_decode(r->byte_of, s, n, tmp);
        if (k) return tkmi_strmap_get(&r->f->vocab, tmp, k);
    }
    return tkmi_strmap_get(&r->f->vocab, s, n);
}

static int read_merges(rd *r, const tkmi_json *mv)
{
    if (!mv || mv->type != TKMI_JSON_ARRAY) return bad(r, mv, "BPE model without merges");
    char *ab = NULL, *tmp = NULL;
    size_t cap = 0;
    int rc = 0;
    for (size_t i = 0; i < mv->len && rc == 0; i++) {
        const tkmi_json *it = tkmi_json_at(mv, i);
        const char *sa, *sb;
        size_t la, lb;
        if (it->type == TKMI_JSON_STRING) {
            const char *sp = memchr(it->u.str, ' ', it->len);
            if (!sp) { rc = bad(r, it, "merge without a space"); break; }
            sa = it->u.str;
            la = (size_t)(sp - sa);
            sb = sp + 1;
            lb = it->len - la - 1;
        } else if (it->type == TKMI_JSON_ARRAY && it->len == 2 && tkmi_json_at(it, 0)->type == TKMI_JSON_STRING &&
                   tkmi_json_at(it, 1)->type == TKMI_JSON_STRING) {
            sa = tkmi_json_at(it, 0)->u.str;
            la = tkmi_json_at(it, 0)->len;
            sb = tkmi_json_at(it, 1)->u.str;
            lb = tkmi_json_at(it, 1)->len;
        } else {
            rc = bad(r, it, "merge must be \"a b\" or [\"a\", \"b\"]");
            break;
        }
        if (la + lb + 1 > cap) {
            cap = (la + lb + 1) * 2;
            tkmi_free(ab);
            tkmi_free(tmp);
            ab = tkmi_malloc(cap);
            tmp = tkmi_malloc(cap);
            if (!ab || !tmp) { rc = tkmi_error(TKM_ENOMEM, "out of memory"); break; }
        }
        memcpy(ab, sa, la);
        memcpy(ab + la, sb, lb);
        int32_t ia = lookup(r, sa, la, tmp), ib = lookup(r, sb, lb, tmp), iab = lookup(r, ab, la + lb, tmp);
        if (ia < 0 || ib < 0 || iab < 0) {
            rc = tkmi_error(TKM_EFORMAT, "%s: offset %zu: merge %zu ('%.*s' '%.*s') uses a token that is not in the "
                            "vocabulary", r->path, it->offset, i, (int)la, sa, (int)lb, sb);
            break;
        }
        rc = tkmi_pairmap_put(&r->f->merges, ia, ib, (uint32_t)i, iab, 1);
    }
    tkmi_free(ab);
    tkmi_free(tmp);
    return rc;
}

/* byte fallback pieces <0x00>..<0xFF>: ids, and whether all are there */
static int fallback_ids(rd *r)
{
    int all = 1;
    for (int b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        r->f->fb_byte[b] = tkmi_strmap_get(&r->f->vocab, s, 6);
        all &= r->f->fb_byte[b] >= 0;
    }
    return all;
}

static int read_added(rd *r, const tkmi_json *at)
{
    if (!at || at->type == TKMI_JSON_NULL) return 0;
    if (at->type != TKMI_JSON_ARRAY) return bad(r, at, "added_tokens must be an array");
    size_t n = at->len, kr = 0, kn = 0;
    const char **sr = tkmi_calloc(n + 1, sizeof *sr), **sn = tkmi_calloc(n + 1, sizeof *sn);
    uint32_t *lr = tkmi_calloc(n + 1, sizeof *lr), *ln = tkmi_calloc(n + 1, sizeof *ln);
    int32_t *ir = tkmi_calloc(n + 1, sizeof *ir), *in = tkmi_calloc(n + 1, sizeof *in);
    int rc = (!sr || !sn || !lr || !ln || !ir || !in) ? tkmi_error(TKM_ENOMEM, "out of memory") : 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const tkmi_json *t = tkmi_json_at(at, i), *c = tkmi_json_get(t, "content");
        int64_t id;
        if (!tkmi_json_int(tkmi_json_get(t, "id"), 0, (1 << 22) - 1, &id) || !c || c->type != TKMI_JSON_STRING ||
            !c->len) {
            rc = bad(r, t, "added token needs an id and a non-empty content");
            break;
        }
        int special = get_bool(t, "special", 0), normalized = get_bool(t, "normalized", !special);
        rc = set_piece(r, id, c->u.str, c->len, special ? TKM_PIECE_CONTROL : TKM_PIECE_USER_DEFINED, 0, t);
        if (normalized) { sn[kn] = c->u.str; ln[kn] = (uint32_t)c->len; in[kn++] = (int32_t)id; }
        else { sr[kr] = c->u.str; lr[kr] = (uint32_t)c->len; ir[kr++] = (int32_t)id; }
    }
    if (rc == 0 && kr) rc = tkmi_ptrie_build(&r->f->added_raw, sr, lr, ir, kr);
    if (rc == 0 && kn) rc = tkmi_ptrie_build(&r->f->added_norm, sn, ln, in, kn);
    r->f->n_added_raw = (int)kr;
    r->f->n_added_norm = (int)kn;
    tkmi_free(sr);
    tkmi_free(sn);
    tkmi_free(lr);
    tkmi_free(ln);
    tkmi_free(ir);
    tkmi_free(in);
    return rc;
}

/* Builds a tkm_model around f from pieces (types/scores per id; ids without
 * a piece are filled with unused pieces) and, for Unigram, serialized
 * protobuf: see tkmi_model_load_pb. Takes ownership of f in every case. */
static int front_model(struct tkmi_front *f, const char *name, const char *const *pieces, const uint32_t *lens,
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

static void rd_free(rd *r)
{
    for (int i = 0; i < r->n; i++) tkmi_free(r->piece[i]);
    tkmi_free(r->piece);
    tkmi_free(r->plen);
    tkmi_free(r->score);
    tkmi_free(r->type);
    tkmi_free(r->in_vocab);
}

/* Byte-level tokenizers: single non-ASCII byte pieces are what byte fallback
 * is elsewhere; they are typed BYTE for analyze (shares, categories). */
static void type_bytes(tkm_model *m)
{
    for (int id = 0; id < m->n; id++)
        if (m->plen[id] == 1 && (uint8_t)tkmi_piece(m, id)[0] >= 0x80 && m->type[id] == TKM_PIECE_NORMAL)
            m->type[id] = TKM_PIECE_BYTE;
}

static int finish(rd *r, int model_type, int byte_fallback, tkm_model **out)
{
    struct tkmi_front *f = r->f;
    int rc = front_model(f, r->path, (const char *const *)r->piece, r->plen, r->score, r->type, r->n,
                              model_type, byte_fallback, out);
    r->f = NULL; /* owned by the model (or freed) now */
    if (rc < 0) return rc;
    /* the vocabulary map pointed into our copies: point it into the model */
    tkm_model *m = *out;
    tkmi_strmap_free(&f->vocab);
    rc = tkmi_strmap_init(&f->vocab, (size_t)m->n);
    for (int id = 0; rc >= 0 && id < m->n && id < r->n_in_vocab; id++)
        if (r->in_vocab[id]) rc = tkmi_strmap_put(&f->vocab, tkmi_piece(m, id), m->plen[id], id);
    if (rc < 0) {
        tkm_model_free(m);
        *out = NULL;
        return rc;
    }
    if (r->byte_level) type_bytes(m);
    return 0;
}

static int read_json(rd *r, const tkmi_json *root, tkm_model **out)
{
    const tkmi_json *model = tkmi_json_get(root, "model");
    if (!model || model->type != TKMI_JSON_OBJECT) return bad(r, root, "no \"model\" object (not a tokenizer.json?)");
    const tkmi_json *t = tkmi_json_get(model, "type"), *vocab = tkmi_json_get(model, "vocab");
    const char *ty = t && t->type == TKMI_JSON_STRING ? t->u.str
                     : vocab && vocab->type == TKMI_JSON_ARRAY ? "Unigram"
                     : tkmi_json_get(model, "merges") ? "BPE"
                     : tkmi_json_get(model, "max_input_chars_per_word") ? "WordPiece" : "?";
    TKM_RETURN_ERROR_IF(!strcmp(ty, "WordPiece"), TKM_ENOTSUP, "%s: WordPiece tokenizers are not supported", r->path);
    TKM_RETURN_ERROR_IF(strcmp(ty, "BPE") && strcmp(ty, "Unigram"), TKM_ENOTSUP,
                        "%s: model type %s is not supported (BPE and Unigram are)", r->path, ty);
    TKM_FORWARD_IF_ERROR(read_normalizer(r, tkmi_json_get(root, "normalizer")));
    TKM_FORWARD_IF_ERROR(read_pre(r, tkmi_json_get(root, "pre_tokenizer")));
    if (r->byte_level) {
        uint32_t cp_of[256];
        byte_chars(cp_of);
        for (int i = 0; i < 324; i++) r->byte_of[i] = -1;
        for (int b = 0; b < 256; b++) r->byte_of[cp_of[b]] = (int16_t)b;
    }
    struct tkmi_front *f = r->f;
    int byte_fallback = get_bool(model, "byte_fallback", 0);
    f->unk_id = -1;
    if (!strcmp(ty, "Unigram")) {
        TKM_RETURN_ERROR_IF(r->byte_level, TKM_ENOTSUP, "%s: byte-level Unigram tokenizers are not supported", r->path);
        if (!vocab || vocab->type != TKMI_JSON_ARRAY) return bad(r, model, "Unigram model without a vocab array");
        for (size_t i = 0; i < vocab->len; i++) {
            const tkmi_json *e = tkmi_json_at(vocab, i), *p = tkmi_json_at(e, 0), *s = tkmi_json_at(e, 1);
            if (!p || p->type != TKMI_JSON_STRING || !s || s->type != TKMI_JSON_NUMBER)
                return bad(r, e, "Unigram vocab entries are [piece, score]");
            TKM_FORWARD_IF_ERROR(set_piece(r, (int64_t)i, p->u.str, p->len, TKM_PIECE_NORMAL, (float)s->u.num, e));
        }
        int64_t unk;
        TKM_RETURN_ERROR_IF(!tkmi_json_int(tkmi_json_get(model, "unk_id"), 0, (int64_t)vocab->len - 1, &unk),
                            TKM_ENOTSUP, "%s: Unigram model without unk_id is not supported", r->path);
        r->type[unk] = TKM_PIECE_UNKNOWN;
        TKM_FORWARD_IF_ERROR(read_added(r, tkmi_json_get(root, "added_tokens")));
        r->type[unk] = TKM_PIECE_UNKNOWN;
        TKM_FORWARD_IF_ERROR(vocab_index(r));
        int all = fallback_ids(r);
        if (byte_fallback && all)
            for (int b = 0; b < 256; b++) r->type[f->fb_byte[b]] = TKM_PIECE_BYTE;
        /* sentencepiece's lattice holds NORMAL pieces only: non-special added
         * tokens are cut out before the model runs, so they can be normal */
        for (int id = 0; id < r->n; id++)
            if (r->type[id] == TKM_PIECE_USER_DEFINED) r->type[id] = TKM_PIECE_NORMAL;
        f->word = TKMI_WORD_UNIGRAM;
        return finish(r, TKM_MODEL_UNIGRAM, byte_fallback && all, out);
    }
    /* BPE */
    if (!vocab || vocab->type != TKMI_JSON_OBJECT) return bad(r, model, "BPE model without a vocab object");
    const tkmi_json *csp = tkmi_json_get(model, "continuing_subword_prefix"), *eow = tkmi_json_get(model, "end_of_word_suffix"),
                    *dr = tkmi_json_get(model, "dropout");
    TKM_RETURN_ERROR_IF((csp && csp->type == TKMI_JSON_STRING && csp->len) || (eow && eow->type == TKMI_JSON_STRING && eow->len),
                        TKM_ENOTSUP, "%s: BPE with continuing_subword_prefix or end_of_word_suffix is not supported",
                        r->path);
    TKM_RETURN_ERROR_IF(dr && dr->type == TKMI_JSON_NUMBER && dr->u.num > 0, TKM_ENOTSUP,
                        "%s: BPE with dropout (random segmentation) is not supported", r->path);
    for (size_t i = 0; i < vocab->len; i++) {
        int64_t id;
        if (!tkmi_json_int(tkmi_json_val(vocab, i), 0, (1 << 22) - 1, &id)) return bad(r, tkmi_json_val(vocab, i), "vocab ids must be integers");
        TKM_FORWARD_IF_ERROR(vocab_piece(r, tkmi_json_key(vocab, i), id, 0, tkmi_json_val(vocab, i)));
    }
    TKM_FORWARD_IF_ERROR(vocab_index(r));
    const tkmi_json *unk = tkmi_json_get(model, "unk_token");
    if (unk && unk->type == TKMI_JSON_STRING) {
        char *tmp = tkmi_malloc(unk->len + 1);
        TKM_RETURN_ERROR_IF(!tmp, TKM_ENOMEM, "out of memory");
        f->unk_id = lookup(r, unk->u.str, unk->len, tmp);
        tkmi_free(tmp);
    }
    TKM_FORWARD_IF_ERROR(read_merges(r, tkmi_json_get(model, "merges")));
    TKM_FORWARD_IF_ERROR(read_added(r, tkmi_json_get(root, "added_tokens")));
    if (f->unk_id >= 0) r->type[f->unk_id] = TKM_PIECE_UNKNOWN;
    int all = fallback_ids(r);
    f->byte_fallback = byte_fallback;
    if (byte_fallback && all)
        for (int b = 0; b < 256; b++) r->type[f->fb_byte[b]] = TKM_PIECE_BYTE;
    f->fuse_unk = get_bool(model, "fuse_unk", 0);
    f->ignore_merges = get_bool(model, "ignore_merges", 0);
    f->byte_level = r->byte_level;
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        f->byte_sym[b] = r->byte_level ? tkmi_strmap_get(&f->vocab, &c, 1) : -1;
    }
    f->word = TKMI_WORD_RANK;
    return finish(r, TKM_MODEL_BPE, byte_fallback && all, out);
}

int tkm_model_load_hf_json(const char *path, tkm_model **out)
{
    *out = NULL;
    tkmi_json_doc *doc = NULL;
    TKM_FORWARD_IF_ERROR(tkmi_json_parse_file(path, &doc));
    rd r;
    memset(&r, 0, sizeof r);
    r.path = path;
    r.f = tkmi_calloc(1, sizeof *r.f);
    int rc = r.f ? read_json(&r, tkmi_json_root(doc), out) : tkmi_error(TKM_ENOMEM, "out of memory");
    tkmi_front_free(r.f);
    rd_free(&r);
    tkmi_json_free(doc);
    return rc;
}

/* ---- tiktoken ---- */

/* The pre-tokenization patterns of tiktoken's encodings, in ICU syntax
 * (\s as White_Space, $ as \z: Rust's meaning). */
static const char *const tt_patterns[] = {
    NULL,
    /* r50k_base / p50k_base (GPT-2) */
    "'(?:[sdmt]|ll|ve|re)| ?\\p{L}++| ?\\p{N}++| ?[^\\p{White_Space}\\p{L}\\p{N}]++|\\p{White_Space}++\\z|"
    "\\p{White_Space}+(?!\\P{White_Space})|\\p{White_Space}",
    /* cl100k_base */
    "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}++|\\p{N}{1,3}+| ?[^\\p{White_Space}\\p{L}\\p{N}]++"
    "[\\r\\n]*+|\\p{White_Space}++\\z|\\p{White_Space}*[\\r\\n]|\\p{White_Space}+(?!\\P{White_Space})|"
    "\\p{White_Space}",
    /* o200k_base */
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"
    "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\p{White_Space}\\p{L}\\p{N}]+"
    "[\\r\\n/]*|\\p{White_Space}*[\\r\\n]+|\\p{White_Space}+(?!\\P{White_Space})|\\p{White_Space}+",
};

int tkm_tiktoken_pattern_from_name(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    if (strstr(b, "o200k")) return TKM_TIKTOKEN_O200K;
    if (strstr(b, "cl100k")) return TKM_TIKTOKEN_CL100K;
    if (strstr(b, "r50k") || strstr(b, "p50k") || strstr(b, "gpt2")) return TKM_TIKTOKEN_R50K;
    return TKM_TIKTOKEN_AUTO;
}

static int b64_val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Standard base64 (padding optional); returns the length or -1. */
static long b64_decode(const char *s, size_t n, char *out)
{
    while (n && s[n - 1] == '=') n--;
    long o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((uint8_t)s[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    return o;
}

/* A rank: decimal digits filling [p, end) exactly, below 2^22; else -1.
 * The file buffer is not NUL-terminated, so no strtol (which also skips
 * whitespace, newlines included, and takes a sign). */
static long parse_rank(const char *p, const char *end)
{
    if (p == end) return -1;
    long v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
        if (v >= (1 << 22)) return -1;
    }
    return v;
}

static int read_tiktoken(rd *r, const char *text, size_t len, int pattern, tkm_model **out)
{
    struct tkmi_front *f = r->f;
    size_t line = 0;
    char *buf = tkmi_malloc(len + 1);
    TKM_RETURN_ERROR_IF(!buf, TKM_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0;) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        line++;
        size_t le = e;
        if (le > i && text[le - 1] == '\r') le--;
        if (le > i) {
            const char *sp = memchr(text + i, ' ', le - i);
            long rank = sp ? parse_rank(sp + 1, text + le) : -1;
            long n = sp ? b64_decode(text + i, (size_t)(sp - (text + i)), buf) : -1;
            if (!sp || n <= 0 || rank < 0)
                rc = tkmi_error(TKM_EFORMAT, "%s: line %zu (offset %zu): expected \"base64-token rank\"", r->path,
                                line, i);
            else if (rank < r->n && r->piece[rank])
                rc = tkmi_error(TKM_EFORMAT, "%s: line %zu: rank %ld appears twice", r->path, line, rank);
            else {
                tkmi_json at = {0};
                at.offset = i;
                rc = set_piece(r, rank, buf, (size_t)n, TKM_PIECE_NORMAL, 0, &at);
            }
        }
        i = e + 1;
    }
    tkmi_free(buf);
    TKM_FORWARD_IF_ERROR(rc);
    TKM_RETURN_ERROR_IF(r->n == 0, TKM_EFORMAT, "%s: no tokens", r->path);
    TKM_FORWARD_IF_ERROR(vocab_index(r));
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        f->byte_sym[b] = tkmi_strmap_get(&f->vocab, &c, 1);
        TKM_RETURN_ERROR_IF(f->byte_sym[b] < 0, TKM_EFORMAT, "%s: byte 0x%02X has no token (tiktoken needs all 256)",
                            r->path, b);
        f->fb_byte[b] = -1;
    }
    /* tiktoken merges the adjacent pair whose concatenation has the lowest
     * rank: every split of every token into two tokens is a merge */
    for (int id = 0; id < r->n; id++) {
        if (!r->piece[id] || r->plen[id] < 2) continue;
        for (uint32_t k = 1; k < r->plen[id]; k++) {
            int32_t a = tkmi_strmap_get(&f->vocab, r->piece[id], k);
            int32_t b = a < 0 ? -1 : tkmi_strmap_get(&f->vocab, r->piece[id] + k, r->plen[id] - k);
            if (b >= 0) TKM_FORWARD_IF_ERROR(tkmi_pairmap_put(&f->merges, a, b, (uint32_t)id, id, 1));
        }
    }
    tkmi_step st;
    memset(&st, 0, sizeof st);
    st.kind = TKMI_PRE_SPLIT;
    st.behavior = TKMI_SPLIT_ISOLATED;
    st.re_src = tkmi_strdup(tt_patterns[pattern]);
    TKM_RETURN_ERROR_IF(!st.re_src, TKM_ENOMEM, "out of memory");
    TKM_FORWARD_IF_ERROR(add_step(r, 1, st));
    f->unk_id = -1;
    f->byte_level = 1;
    f->ignore_merges = 1; /* tiktoken takes a whole piece that is a token */
    f->word = TKMI_WORD_RANK;
    r->byte_level = 1;
    return finish(r, TKM_MODEL_BPE, 0, out);
}

int tkm_model_load_tiktoken(const char *path, int pattern, tkm_model **out)
{
    *out = NULL;
    if (pattern == TKM_TIKTOKEN_AUTO) pattern = tkm_tiktoken_pattern_from_name(path);
    TKM_RETURN_ERROR_IF(pattern < TKM_TIKTOKEN_R50K || pattern > TKM_TIKTOKEN_O200K, TKM_EINVAL,
                        "%s: cannot tell the tiktoken encoding from the file name (r50k, p50k, cl100k, o200k): "
                        "name the pre-tokenization pattern", path);
    uint8_t *data;
    size_t len;
    TKM_FORWARD_IF_ERROR(tkmi_read_file(path, &data, &len));
    rd r;
    memset(&r, 0, sizeof r);
    r.path = path;
    r.f = tkmi_calloc(1, sizeof *r.f);
    int rc = r.f ? read_tiktoken(&r, (const char *)data, len, pattern, out) : tkmi_error(TKM_ENOMEM, "out of memory");
    tkmi_front_free(r.f);
    rd_free(&r);
    tkmi_free(data);
    return rc;
}

int tkm_model_load_any(const char *path, int tiktoken_pattern, tkm_model **out)
{
    *out = NULL;
    size_t pl = strlen(path);
    if (tiktoken_pattern != TKM_TIKTOKEN_AUTO || (pl > 9 && !strcmp(path + pl - 9, ".tiktoken")))
        return tkm_model_load_tiktoken(path, tiktoken_pattern, out);
    FILE *fp = fopen(path, "rb");
    TKM_RETURN_ERROR_IF(!fp, TKM_EIO, "%s: cannot open: %s", path, strerror(errno));
    int c;
    do c = fgetc(fp);
    while (c == ' ' || c == '\t' || c == '\n' || c == '\r');
    fclose(fp);
    if (c == '{') return tkm_model_load_hf_json(path, out);
    return tkm_model_load(path, out);
}
