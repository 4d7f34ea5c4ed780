/* gguf.c - reads a whole GGUF file (the container of llama.cpp models): every
 * key/value pair and tensor description, each checked against the file, so
 * `softemb splice` can copy what it does not change byte for byte. */
#include <stdlib.h>
#include <string.h>

#include "../lib/tkm_internal.h"
#include "gguf_internal.h"

/* ggml types: elements per block and bytes per block (ggml.c's type traits;
 * gguf-py's GGML_QUANT_SIZES). A zero block: no such type. */
static const struct {
    const char *name;
    uint16_t blck, size;
} ggml_types[] = {
    [0] = { "F32", 1, 4 },        [1] = { "F16", 1, 2 },          [2] = { "Q4_0", 32, 18 },
    [3] = { "Q4_1", 32, 20 },     [6] = { "Q5_0", 32, 22 },       [7] = { "Q5_1", 32, 24 },
    [8] = { "Q8_0", 32, 34 },     [9] = { "Q8_1", 32, 40 },       [10] = { "Q2_K", 256, 84 },
    [11] = { "Q3_K", 256, 110 },  [12] = { "Q4_K", 256, 144 },    [13] = { "Q5_K", 256, 176 },
    [14] = { "Q6_K", 256, 210 },  [15] = { "Q8_K", 256, 292 },    [16] = { "IQ2_XXS", 256, 66 },
    [17] = { "IQ2_XS", 256, 74 }, [18] = { "IQ3_XXS", 256, 98 },  [19] = { "IQ1_S", 256, 50 },
    [20] = { "IQ4_NL", 32, 18 },  [21] = { "IQ3_S", 256, 110 },   [22] = { "IQ2_S", 256, 82 },
    [23] = { "IQ4_XS", 256, 136 }, [24] = { "I8", 1, 1 },         [25] = { "I16", 1, 2 },
    [26] = { "I32", 1, 4 },       [27] = { "I64", 1, 8 },         [28] = { "F64", 1, 8 },
    [29] = { "IQ1_M", 256, 56 },  [30] = { "BF16", 1, 2 },        [34] = { "TQ1_0", 256, 54 },
    [35] = { "TQ2_0", 256, 66 },  [39] = { "MXFP4", 32, 17 },     [40] = { "NVFP4", 64, 36 },
    [41] = { "Q1_0", 128, 18 },
};
enum { NTYPES = sizeof(ggml_types) / sizeof(ggml_types[0]) };

const char *tkmi_ggml_type_name(uint32_t t) { return t < NTYPES && ggml_types[t].blck ? ggml_types[t].name : "?"; }

size_t tkmi_ggml_nbytes(uint32_t t, uint64_t n)
{
    if (t >= NTYPES || !ggml_types[t].blck || n % ggml_types[t].blck)
        return 0;
    uint64_t blocks = n / ggml_types[t].blck;
    if (blocks > SIZE_MAX / ggml_types[t].size)
        return 0;
    return (size_t)(blocks * ggml_types[t].size);
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

typedef struct {
    const tkmi_gguf *g;
    size_t off;
} cur;

static int need(cur *c, uint64_t k, const char *what)
{
    TKM_RETURN_ERROR_IF(c->g->n - c->off < k, TKM_EFORMAT, "%s: truncated at offset %zu (reading %s)", c->g->path,
                        c->off, what);
    return 0;
}

static int rd_str(cur *c, const char **s, size_t *len, const char *what)
{
    TKM_FORWARD_IF_ERROR(need(c, 8, what));
    uint64_t n = rd64(c->g->p + c->off);
    c->off += 8;
    TKM_FORWARD_IF_ERROR(need(c, n, what));
    *s = (const char *)c->g->p + c->off;
    *len = (size_t)n;
    c->off += (size_t)n;
    return 0;
}

static size_t scalar_size(uint32_t t)
{
    static const unsigned char sz[] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };
    return t <= TKMI_GGUF_F64 ? sz[t] : 0;
}

/* Steps over a value of type t; arrays may hold arrays, a few levels deep. */
static int skip_value(cur *c, uint32_t t, int depth)
{
    const tkmi_gguf *g = c->g;
    TKM_RETURN_ERROR_IF(depth > 4, TKM_EFORMAT, "%s: offset %zu: arrays nested too deep", g->path, c->off);
    if (t == TKMI_GGUF_STR) {
        const char *s;
        size_t n;
        return rd_str(c, &s, &n, "a string");
    }
    if (t == TKMI_GGUF_ARR) {
        TKM_FORWARD_IF_ERROR(need(c, 12, "an array header"));
        uint32_t et = rd32(g->p + c->off);
        uint64_t n = rd64(g->p + c->off + 4);
        c->off += 12;
        size_t es = scalar_size(et);
        if (es) {
            TKM_RETURN_ERROR_IF(n > (g->n - c->off) / es, TKM_EFORMAT,
                                "%s: truncated at offset %zu (an array of %llu values)", g->path, c->off,
                                (unsigned long long)n);
            c->off += (size_t)n * es;
            return 0;
        }
        TKM_RETURN_ERROR_IF(et != TKMI_GGUF_STR && et != TKMI_GGUF_ARR, TKM_EFORMAT,
                            "%s: offset %zu: unknown GGUF array element type %u", g->path, c->off - 12, et);
        /* every element takes at least 8 bytes (a length) */
        TKM_RETURN_ERROR_IF(n > (g->n - c->off) / 8, TKM_EFORMAT,
                            "%s: truncated at offset %zu (an array of %llu values)", g->path, c->off,
                            (unsigned long long)n);
        for (uint64_t i = 0; i < n; i++)
            TKM_FORWARD_IF_ERROR(skip_value(c, et, depth + 1));
        return 0;
    }
    size_t es = scalar_size(t);
    TKM_RETURN_ERROR_IF(!es, TKM_EFORMAT, "%s: offset %zu: unknown GGUF value type %u", g->path, c->off - 4, t);
    TKM_FORWARD_IF_ERROR(need(c, es, "a value"));
    c->off += es;
    return 0;
}

void tkmi_gguf_free(tkmi_gguf *g)
{
    if (!g)
        return;
    tkmi_free(g->kv);
    tkmi_free(g->t);
    g->kv = NULL;
    g->t = NULL;
}

/* Duplicate names: sorted copies of (pointer, length) compared neighbour to neighbour. */
typedef struct {
    const char *s;
    size_t n;
} name_ref;

static int cmp_name(const void *a, const void *b)
{
    const name_ref *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
    return c ? c : x->n < y->n ? -1 : x->n > y->n;
}

static int check_unique(const tkmi_gguf *g, name_ref *r, size_t n, const char *what)
{
    if (n < 2)
        return 0;
    qsort(r, n, sizeof(*r), cmp_name);
    for (size_t i = 1; i < n; i++)
        if (!cmp_name(&r[i - 1], &r[i])) {
            int k = r[i].n > 200 ? 200 : (int)r[i].n;
            return tkmi_error(TKM_EFORMAT, "%s: %s '%.*s' appears twice (offsets %zu and %zu)", g->path, what, k,
                              r[i].s, (size_t)((const unsigned char *)r[i - 1].s - g->p),
                              (size_t)((const unsigned char *)r[i].s - g->p));
        }
    return 0;
}

static int parse(const unsigned char *p, size_t n, const char *path, int any_type, tkmi_gguf *g)
{
    memset(g, 0, sizeof(*g));
    g->p = p;
    g->n = n;
    g->path = path;
    g->align = 32;
    cur c = { g, 0 };
    TKM_FORWARD_IF_ERROR(need(&c, 24, "the header"));
    TKM_RETURN_ERROR_IF(memcmp(p, "GGUF", 4) != 0, TKM_EFORMAT, "%s: offset 0: not a GGUF file (no GGUF magic)",
                        path);
    g->version = rd32(p + 4);
    TKM_RETURN_ERROR_IF(g->version != 2 && g->version != 3, TKM_ENOTSUP,
                        "%s: offset 4: GGUF version %u is not supported (2 or 3, little-endian)", path, g->version);
    uint64_t nt = rd64(p + 8), nkv = rd64(p + 16);
    c.off = 24;
    /* a pair takes at least 13 bytes, a tensor description at least 28 */
    TKM_RETURN_ERROR_IF(nkv > (n - 24) / 13, TKM_EFORMAT, "%s: offset 16: %llu key/value pairs cannot fit in %zu bytes",
                        path, (unsigned long long)nkv, n);
    TKM_RETURN_ERROR_IF(nt > (n - 24) / 28, TKM_EFORMAT, "%s: offset 8: %llu tensors cannot fit in %zu bytes", path,
                        (unsigned long long)nt, n);
    g->kv = tkmi_calloc(nkv ? (size_t)nkv : 1, sizeof(*g->kv));
    g->t = tkmi_calloc(nt ? (size_t)nt : 1, sizeof(*g->t));
    name_ref *names = tkmi_malloc(((nkv > nt ? nkv : nt) + 1) * sizeof(*names));
    int rc = 0;
    if (!g->kv || !g->t || !names) {
        rc = tkmi_error(TKM_ENOMEM, "%s: out of memory for %llu pairs and %llu tensors", path,
                        (unsigned long long)nkv, (unsigned long long)nt);
        goto done;
    }
    for (uint64_t i = 0; i < nkv; i++) {
        tkmi_gguf_kv *kv = &g->kv[i];
        kv->start = c.off;
        if ((rc = rd_str(&c, &kv->key, &kv->klen, "a key")) < 0 || (rc = need(&c, 4, "a value type")) < 0)
            goto done;
        kv->type = rd32(p + c.off);
        c.off += 4;
        kv->val = c.off;
        if ((rc = skip_value(&c, kv->type, 0)) < 0)
            goto done;
        kv->end = c.off;
        g->nkv++;
        names[i] = (name_ref){ kv->key, kv->klen };
        if (kv->klen == 17 && !memcmp(kv->key, "general.alignment", 17)) {
            uint64_t a = kv->type == TKMI_GGUF_U32 ? rd32(p + kv->val) : 0;
            if (a == 0 || (a & (a - 1)) || a > 1u << 20) {
                rc = tkmi_error(TKM_EFORMAT, "%s: offset %zu: general.alignment must be a power of two (a u32 up "
                                             "to 1 MiB)", path, kv->val);
                goto done;
            }
            g->align = (size_t)a;
        }
    }
    if ((rc = check_unique(g, names, g->nkv, "key")) < 0)
        goto done;
    for (uint64_t i = 0; i < nt; i++) {
        tkmi_gguf_tensor *t = &g->t[i];
        size_t at = c.off;
        if ((rc = rd_str(&c, &t->name, &t->nlen, "a tensor name")) < 0 || (rc = need(&c, 4, "tensor dimensions")) < 0)
            goto done;
        t->ndim = rd32(p + c.off);
        if (t->ndim == 0 || t->ndim > 4) {
            rc = tkmi_error(TKM_EFORMAT, "%s: offset %zu: tensor with %u dimensions (1 to 4)", path, c.off, t->ndim);
            goto done;
        }
        c.off += 4;
        if ((rc = need(&c, 8 * (uint64_t)t->ndim + 12, "a tensor description")) < 0)
            goto done;
        uint64_t total = 1;
        for (uint32_t d = 0; d < 4; d++) {
            t->ne[d] = d < t->ndim ? rd64(p + c.off + 8 * d) : 1;
            /* ggml keeps dimensions in int64_t */
            if (t->ne[d] > INT64_MAX || (t->ne[d] && total > (uint64_t)INT64_MAX / t->ne[d])) {
                rc = tkmi_error(TKM_EFORMAT, "%s: offset %zu: tensor dimensions overflow", path, c.off);
                goto done;
            }
            total *= t->ne[d];
        }
        c.off += 8 * (size_t)t->ndim;
        t->type = rd32(p + c.off);
        t->off = rd64(p + c.off + 4);
        c.off += 12;
        int known = t->type < NTYPES && ggml_types[t->type].blck && t->ne[0] % ggml_types[t->type].blck == 0;
        if (any_type && !known) { /* nbytes stays 0: its data is the caller's to check */
            g->nt++;
            names[i] = (name_ref){ t->name, t->nlen };
            continue;
        }
        if (t->type >= NTYPES || !ggml_types[t->type].blck) {
            rc = tkmi_error(TKM_EFORMAT, "%s: offset %zu: tensor '%.*s' has unknown ggml type %u", path, c.off - 12,
                            (int)(t->nlen > 200 ? 200 : t->nlen), t->name, t->type);
            goto done;
        }
        if (t->ne[0] % ggml_types[t->type].blck) {
            rc = tkmi_error(TKM_EFORMAT, "%s: offset %zu: tensor '%.*s': row of %llu is not a whole number of %s "
                                         "blocks (%u)", path, at, (int)(t->nlen > 200 ? 200 : t->nlen), t->name,
                            (unsigned long long)t->ne[0], ggml_types[t->type].name, ggml_types[t->type].blck);
            goto done;
        }
        t->nbytes = tkmi_ggml_nbytes(t->type, total);
        if (total && !t->nbytes) {
            rc = tkmi_error(TKM_EFORMAT, "%s: offset %zu: tensor '%.*s' is too large", path, at,
                            (int)(t->nlen > 200 ? 200 : t->nlen), t->name);
            goto done;
        }
        g->nt++;
        names[i] = (name_ref){ t->name, t->nlen };
    }
    if ((rc = check_unique(g, names, g->nt, "tensor name")) < 0)
        goto done;
    g->data = c.off % g->align ? c.off + (g->align - c.off % g->align) : c.off;
    if (g->nt && g->data > n) {
        rc = tkmi_error(TKM_EFORMAT, "%s: truncated at offset %zu (the data section starts at %zu)", path, n, g->data);
        goto done;
    }
    for (size_t i = 0; i < g->nt; i++) {
        const tkmi_gguf_tensor *t = &g->t[i];
        if (t->off % g->align || t->off > n - g->data || (!any_type && t->nbytes > n - g->data - t->off)) {
            rc = tkmi_error(TKM_EFORMAT, "%s: tensor '%.*s': data at offset %llu + %zu (%zu bytes, alignment %zu) "
                                         "is misaligned or beyond the end of the file (%zu bytes)", path,
                            (int)(t->nlen > 200 ? 200 : t->nlen), t->name, (unsigned long long)t->off, g->data,
                            t->nbytes, g->align, n);
            goto done;
        }
    }
done:
    tkmi_free(names);
    if (rc < 0)
        tkmi_gguf_free(g);
    return rc;
}

int tkmi_gguf_parse(const unsigned char *p, size_t n, const char *path, tkmi_gguf *g)
{
    return parse(p, n, path, 0, g);
}

int tkmi_gguf_parse_any_type(const unsigned char *p, size_t n, const char *path, tkmi_gguf *g)
{
    return parse(p, n, path, 1, g);
}

const tkmi_gguf_kv *tkmi_gguf_find(const tkmi_gguf *g, const char *key)
{
    size_t k = strlen(key);
    for (size_t i = 0; i < g->nkv; i++)
        if (g->kv[i].klen == k && !memcmp(g->kv[i].key, key, k))
            return &g->kv[i];
    return NULL;
}

const tkmi_gguf_tensor *tkmi_gguf_tensor_find(const tkmi_gguf *g, const char *name)
{
    size_t k = strlen(name);
    for (size_t i = 0; i < g->nt; i++)
        if (g->t[i].nlen == k && !memcmp(g->t[i].name, name, k))
            return &g->t[i];
    return NULL;
}

int64_t tkmi_gguf_int(const tkmi_gguf *g, const tkmi_gguf_kv *kv)
{
    const unsigned char *v = g->p + kv->val;
    switch (kv->type) {
    case TKMI_GGUF_U8: return v[0];
    case TKMI_GGUF_I8: return (int8_t)v[0];
    case TKMI_GGUF_U16: return (uint16_t)(v[0] | v[1] << 8);
    case TKMI_GGUF_I16: return (int16_t)(uint16_t)(v[0] | v[1] << 8);
    case TKMI_GGUF_U32: return rd32(v);
    case TKMI_GGUF_I32: return (int32_t)rd32(v);
    case TKMI_GGUF_U64: return rd64(v) > INT64_MAX ? -1 : (int64_t)rd64(v);
    case TKMI_GGUF_I64: return (int64_t)rd64(v);
    default: return -1;
    }
}
