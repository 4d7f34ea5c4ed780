/* se_model.c - the soft-embedding encoder: parameter layout, initialisation,
 * forward, backward and AdamW, written once against the op table so the CPU
 * reference and the CUDA backend run the very same sequence of ops. */
#include "se_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/tkm_internal.h"
#include "tokenmill.h"

#define MAX_T 1024

enum {
    L_LN1W, L_LN1B, L_QKVW, L_QKVB, L_PROJW, L_PROJB, L_LN2W, L_LN2B,
    L_FCW, L_FCB, L_FC2W, L_FC2B, L_COUNT
};
enum { G_WTE, G_WPE, G_LNFW, G_LNFB, G_H1W, G_H1B, G_H2W, G_H2B, G_BAG, G_COUNT };

typedef struct {
    float *ln1, *ln1m, *ln1r, *qkv, *att, *atty, *res2, *ln2, *ln2m, *ln2r, *fch, *fchg, *out;
} layer_act;

struct tkmi_se_model {
    tkmi_se_config c;
    tkmi_se_backend *be;
    int maxB, maxT;
    tkmi_se_tensor *tensors;
    int ntensors;
    size_t nparams, ndecay; /* decayed tensors come first in the buffer */
    size_t *loff;           /* [layers][L_COUNT] offsets */
    size_t goff[G_COUNT];
    float *p, *g, *m, *v;   /* backend buffers, nparams each */
    /* activations */
    int32_t *tok, *len;
    float *x0;
    layer_act *la;
    float *lnf, *lnfm, *lnfr, *pooled, *h1, *h1g, *y;
    /* backward scratch */
    float *dres, *dN, *dN3, *dN4, *dN4b, *dpooled, *dh1, *dh1g, *dy;
    /* loss */
    float *trows, *tnorm, *tnormv;
    size_t R;
    int32_t *tidx;
    float *tbatch, *lossb, *yn, *ynorm, *logits, *dlogits, *dyn;
    float *host_loss;
    /* n-gram bag: features per row (stride F), and the backward's entries
     * grouped by bucket (U buckets, CSR), on the host and on the backend */
    int F, U;
    int32_t *feat_h, *cnt_h, *ubkt_h, *uoff_h, *erow_h;
    uint64_t *sort_h;
    int32_t *feat, *cnt, *ubkt, *uoff, *erow;
};

int tkmi_se_config_check(const tkmi_se_config *c)
{
    TKM_RETURN_ERROR_IF(c->layers < 1 || c->layers > 64, TKM_EINVAL, "layers must be 1..64 (got %d)", c->layers);
    TKM_RETURN_ERROR_IF(c->width < 8 || c->width > 8192, TKM_EINVAL, "width must be 8..8192 (got %d)", c->width);
    TKM_RETURN_ERROR_IF(c->heads < 1 || c->width % c->heads != 0, TKM_EINVAL,
                        "heads (%d) must divide width (%d)", c->heads, c->width);
    TKM_RETURN_ERROR_IF(c->max_bytes < 1 || c->max_bytes + 2 > MAX_T, TKM_EINVAL,
                        "max bytes must be 1..%d (got %d)", MAX_T - 2, c->max_bytes);
    TKM_RETURN_ERROR_IF(c->pool != TKMI_POOL_END && c->pool != TKMI_POOL_MEAN, TKM_EINVAL, "bad pooling mode");
    TKM_RETURN_ERROR_IF(c->out_dim < 1 || c->out_dim > 65536, TKM_EINVAL, "output width must be 1..65536");
    TKM_RETURN_ERROR_IF(c->ngram_buckets < 0 || c->ngram_buckets > 1 << 24, TKM_EINVAL,
                        "n-gram buckets must be 0..%d (got %d)", 1 << 24, c->ngram_buckets);
    TKM_RETURN_ERROR_IF(c->ngram_buckets > 0 && (c->ngram_max < 1 || c->ngram_max > 8), TKM_EINVAL,
                        "n-gram length must be 1..8 (got %d)", c->ngram_max);
    TKM_RETURN_ERROR_IF((double)c->ngram_buckets * c->width > 1u << 31, TKM_ERANGE,
                        "n-gram table of %d x %d is too large", c->ngram_buckets, c->width);
    return 0;
}

/* ---- deterministic random numbers (splitmix64 + Box-Muller) --------------- */
static double rng_unit(uint64_t *s) /* (0, 1) */
{
    return ((double)(tkmi_splitmix64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static void fill_normal(float *x, size_t n, float std, uint64_t *s)
{
    for (size_t i = 0; i < n; i += 2) {
        double u1 = rng_unit(s), u2 = rng_unit(s);
        double r = sqrt(-2.0 * log(u1));
        x[i] = (float)(r * cos(6.283185307179586 * u2)) * std;
        if (i + 1 < n)
            x[i + 1] = (float)(r * sin(6.283185307179586 * u2)) * std;
    }
}

/* ---- layout ------------------------------------------------------------------ */

static int add_tensor(tkmi_se_model *m, const char *name, size_t n, int decay)
{
    tkmi_se_tensor *t = &m->tensors[m->ntensors++];
    t->name = name;
    t->n = n;
    t->decay = decay;
    t->off = 0;
    return m->ntensors - 1;
}

static const char *const layer_names[L_COUNT] = {
    "ln1.weight", "ln1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
    "ln2.weight", "ln2.bias", "mlp.fc.weight", "mlp.fc.bias", "mlp.proj.weight", "mlp.proj.bias"
};

static int layout(tkmi_se_model *m)
{
    const int D = m->c.width, L = m->c.layers, E = m->c.out_dim, T = m->c.max_bytes + 2;
    int cap = L * L_COUNT + G_COUNT;
    m->tensors = tkmi_calloc((size_t)cap, sizeof(*m->tensors));
    m->loff = tkmi_calloc((size_t)L * L_COUNT, sizeof(size_t));
    if (!m->tensors || !m->loff)
        return TKM_ENOMEM;
    int *lidx = tkmi_calloc((size_t)L * L_COUNT, sizeof(int));
    if (!lidx)
        return TKM_ENOMEM;
    int gidx[G_COUNT];
    const size_t lsz[L_COUNT] = { (size_t)D, (size_t)D, 3u * D * D, 3u * D, (size_t)D * D, (size_t)D,
                                  (size_t)D, (size_t)D, 4u * D * D, 4u * D, 4u * D * D, (size_t)D };
    const int ldecay[L_COUNT] = { 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0 };
    gidx[G_WTE] = add_tensor(m, "wte", (size_t)TKMI_SE_VOCAB * D, 1);
    gidx[G_WPE] = add_tensor(m, "wpe", (size_t)T * D, 1);
    for (int l = 0; l < L; l++)
        for (int k = 0; k < L_COUNT; k++)
            lidx[l * L_COUNT + k] = add_tensor(m, layer_names[k], lsz[k], ldecay[k]);
    gidx[G_LNFW] = add_tensor(m, "lnf.weight", (size_t)D, 0);
    gidx[G_LNFB] = add_tensor(m, "lnf.bias", (size_t)D, 0);
    if (m->c.head_mlp) {
        gidx[G_H1W] = add_tensor(m, "head.fc.weight", (size_t)D * D, 1);
        gidx[G_H1B] = add_tensor(m, "head.fc.bias", (size_t)D, 0);
    } else {
        gidx[G_H1W] = gidx[G_H1B] = -1;
    }
    gidx[G_H2W] = add_tensor(m, "head.out.weight", (size_t)E * D, 1);
    gidx[G_H2B] = add_tensor(m, "head.out.bias", (size_t)E, 0);
    /* zero at start (not decayed), so buckets no training row reaches add nothing */
    gidx[G_BAG] = m->c.ngram_buckets > 0 ? add_tensor(m, "ngram.embed", (size_t)m->c.ngram_buckets * D, 0) : -1;
    /* decayed tensors first, then the rest, each group in declaration order */
    size_t off = 0;
    for (int pass = 1; pass >= 0; pass--) {
        for (int i = 0; i < m->ntensors; i++) {
            if (m->tensors[i].decay != pass)
                continue;
            m->tensors[i].off = off;
            off += m->tensors[i].n;
        }
        if (pass == 1)
            m->ndecay = off;
    }
    m->nparams = off;
    for (int l = 0; l < L * L_COUNT; l++)
        m->loff[l] = m->tensors[lidx[l]].off;
    for (int k = 0; k < G_COUNT; k++)
        m->goff[k] = gidx[k] >= 0 ? m->tensors[gidx[k]].off : (size_t)-1;
    tkmi_free(lidx);
    return 0;
}

static void init_params(tkmi_se_model *m, float *h, uint64_t seed)
{
    const int L = m->c.layers;
    uint64_t s = seed ^ 0x5EED5EEDull;
    for (int i = 0; i < m->ntensors; i++) {
        const tkmi_se_tensor *t = &m->tensors[i];
        float *x = h + t->off;
        const char *nm = t->name;
        size_t k = strlen(nm);
        if (k >= 6 && strcmp(nm + k - 6, "weight") == 0 && (strncmp(nm, "ln", 2) == 0))
            for (size_t j = 0; j < t->n; j++)
                x[j] = 1.0f;
        else if (t->decay == 0)
            memset(x, 0, t->n * sizeof(float));
        else if (strcmp(nm, "attn.proj.weight") == 0 || strcmp(nm, "mlp.proj.weight") == 0)
            fill_normal(x, t->n, 0.02f / sqrtf(2.0f * (float)L), &s);
        else
            fill_normal(x, t->n, 0.02f, &s);
    }
}

/* ---- creation ------------------------------------------------------------- */

#define BALLOC(ptr, count)                                                   \
    do {                                                                     \
        (ptr) = m->be->alloc(m->be, (size_t)(count) * sizeof(*(ptr)));      \
        if (!(ptr))                                                          \
            goto nomem;                                                      \
    } while (0)

int tkmi_se_model_new(const tkmi_se_config *c, tkmi_se_backend *be, int max_batch, uint64_t seed,
                      tkmi_se_model **out)
{
    return tkmi_se_model_new_ex(c, be, max_batch, seed, 1, out);
}

int tkmi_se_model_new_ex(const tkmi_se_config *c, tkmi_se_backend *be, int max_batch, uint64_t seed, int training,
                         tkmi_se_model **out)
{
    *out = NULL;
    TKM_FORWARD_IF_ERROR(tkmi_se_config_check(c));
    TKM_RETURN_ERROR_IF(max_batch < 1 || max_batch > 1 << 20, TKM_EINVAL, "bad batch size %d", max_batch);
    tkmi_se_model *m = tkmi_calloc(1, sizeof(*m));
    if (!m)
        return TKM_ENOMEM;
    m->c = *c;
    m->be = be;
    m->maxB = max_batch;
    m->maxT = c->max_bytes + 2;
    int rc = layout(m);
    if (rc < 0) {
        tkmi_se_model_free(m);
        return rc;
    }
    const size_t D = (size_t)c->width, B = (size_t)max_batch, N = B * (size_t)m->maxT;
    const size_t H = (size_t)c->heads, T = (size_t)m->maxT, E = (size_t)c->out_dim;
    float *h = tkmi_malloc(m->nparams * sizeof(float));
    if (!h)
        goto nomem;
    init_params(m, h, seed);
    BALLOC(m->p, m->nparams);
    if (training) {
        BALLOC(m->g, m->nparams);
        BALLOC(m->m, m->nparams);
        BALLOC(m->v, m->nparams);
    }
    be->upload(be, m->p, h, m->nparams * sizeof(float));
    tkmi_free(h);
    h = NULL;
    BALLOC(m->tok, N);
    BALLOC(m->len, B);
    BALLOC(m->x0, N * D);
    m->la = tkmi_calloc((size_t)c->layers, sizeof(layer_act));
    if (!m->la)
        goto nomem;
    for (int l = 0; l < c->layers; l++) {
        layer_act *a = &m->la[l];
        BALLOC(a->ln1, N * D);
        BALLOC(a->ln1m, N);
        BALLOC(a->ln1r, N);
        BALLOC(a->qkv, N * 3 * D);
        BALLOC(a->att, B * H * T * T);
        BALLOC(a->atty, N * D);
        BALLOC(a->res2, N * D);
        BALLOC(a->ln2, N * D);
        BALLOC(a->ln2m, N);
        BALLOC(a->ln2r, N);
        BALLOC(a->fch, N * 4 * D);
        BALLOC(a->fchg, N * 4 * D);
        BALLOC(a->out, N * D);
    }
    BALLOC(m->lnf, N * D);
    BALLOC(m->lnfm, N);
    BALLOC(m->lnfr, N);
    BALLOC(m->pooled, B * D);
    BALLOC(m->h1, B * D);
    BALLOC(m->h1g, B * D);
    BALLOC(m->y, B * E);
    if (training) {
        BALLOC(m->dres, N * D);
        BALLOC(m->dN, N * D);
        BALLOC(m->dN3, N * 3 * D);
        BALLOC(m->dN4, N * 4 * D);
        BALLOC(m->dN4b, N * 4 * D);
        BALLOC(m->dpooled, B * D);
        BALLOC(m->dh1, B * D);
        BALLOC(m->dh1g, B * D);
        BALLOC(m->dy, B * E);
    }
    BALLOC(m->tidx, B);
    BALLOC(m->tbatch, B * E);
    BALLOC(m->lossb, B);
    BALLOC(m->yn, B * E);
    BALLOC(m->ynorm, B);
    BALLOC(m->dyn, B * E);
    m->host_loss = tkmi_malloc(B * sizeof(float));
    if (!m->host_loss)
        goto nomem;
    if (c->ngram_buckets > 0) {
        m->F = tkmi_se_bag_max_features(c);
        const size_t NF = B * (size_t)m->F;
        m->feat_h = tkmi_malloc(NF * sizeof(int32_t));
        m->cnt_h = tkmi_malloc(B * sizeof(int32_t));
        if (!m->feat_h || !m->cnt_h)
            goto nomem;
        BALLOC(m->feat, NF);
        BALLOC(m->cnt, B);
        if (training) { /* the backward's entries grouped by bucket */
            m->ubkt_h = tkmi_malloc(NF * sizeof(int32_t));
            m->uoff_h = tkmi_malloc((NF + 1) * sizeof(int32_t));
            m->erow_h = tkmi_malloc(NF * sizeof(int32_t));
            m->sort_h = tkmi_malloc(2 * NF * sizeof(uint64_t)); /* keys + radix scratch */
            if (!m->ubkt_h || !m->uoff_h || !m->erow_h || !m->sort_h)
                goto nomem;
            BALLOC(m->ubkt, NF);
            BALLOC(m->uoff, NF + 1);
            BALLOC(m->erow, NF);
        }
    }
    rc = be->sync(be);
    if (rc < 0) {
        tkmi_se_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
nomem:
    tkmi_free(h);
    tkmi_se_model_free(m);
    return tkmi_error(TKM_ENOMEM, "out of %s memory for the encoder (batch %d, width %d)", be->name,
                      max_batch, c->width);
}

void tkmi_se_model_free(tkmi_se_model *m)
{
    if (!m)
        return;
    tkmi_se_backend *be = m->be;
#define BF(x) do { if (x) be->free(be, (x)); } while (0)
    BF(m->p); BF(m->g); BF(m->m); BF(m->v); BF(m->tok); BF(m->len); BF(m->x0);
    if (m->la)
        for (int l = 0; l < m->c.layers; l++) {
            layer_act *a = &m->la[l];
            BF(a->ln1); BF(a->ln1m); BF(a->ln1r); BF(a->qkv); BF(a->att); BF(a->atty); BF(a->res2);
            BF(a->ln2); BF(a->ln2m); BF(a->ln2r); BF(a->fch); BF(a->fchg); BF(a->out);
        }
    BF(m->lnf); BF(m->lnfm); BF(m->lnfr); BF(m->pooled); BF(m->h1); BF(m->h1g); BF(m->y);
    BF(m->dres); BF(m->dN); BF(m->dN3); BF(m->dN4); BF(m->dN4b); BF(m->dpooled); BF(m->dh1);
    BF(m->dh1g); BF(m->dy); BF(m->trows); BF(m->tnorm); BF(m->tnormv); BF(m->tidx); BF(m->tbatch);
    BF(m->lossb); BF(m->yn); BF(m->ynorm); BF(m->logits); BF(m->dlogits); BF(m->dyn);
    BF(m->feat); BF(m->cnt); BF(m->ubkt); BF(m->uoff); BF(m->erow);
#undef BF
    tkmi_free(m->feat_h);
    tkmi_free(m->cnt_h);
    tkmi_free(m->ubkt_h);
    tkmi_free(m->uoff_h);
    tkmi_free(m->erow_h);
    tkmi_free(m->sort_h);
    tkmi_free(m->la);
    tkmi_free(m->tensors);
    tkmi_free(m->loff);
    tkmi_free(m->host_loss);
    tkmi_free(m);
}

const tkmi_se_config *tkmi_se_model_config(const tkmi_se_model *m) { return &m->c; }
size_t tkmi_se_model_nparams(const tkmi_se_model *m) { return m->nparams; }

const tkmi_se_tensor *tkmi_se_model_tensors(const tkmi_se_model *m, int *n)
{
    *n = m->ntensors;
    return m->tensors;
}

int tkmi_se_model_get(tkmi_se_model *m, float *params, float *adam_m, float *adam_v)
{
    TKM_RETURN_ERROR_IF((adam_m || adam_v) && !m->m, TKM_EINVAL, "an inference model has no optimizer state");
    size_t bytes = m->nparams * sizeof(float);
    if (params)
        m->be->download(m->be, params, m->p, bytes);
    if (adam_m)
        m->be->download(m->be, adam_m, m->m, bytes);
    if (adam_v)
        m->be->download(m->be, adam_v, m->v, bytes);
    return m->be->sync(m->be);
}

int tkmi_se_model_set(tkmi_se_model *m, const float *params, const float *adam_m, const float *adam_v)
{
    TKM_RETURN_ERROR_IF((adam_m || adam_v) && !m->m, TKM_EINVAL, "an inference model has no optimizer state");
    size_t bytes = m->nparams * sizeof(float);
    if (params)
        m->be->upload(m->be, m->p, params, bytes);
    if (adam_m)
        m->be->upload(m->be, m->m, adam_m, bytes);
    if (adam_v)
        m->be->upload(m->be, m->v, adam_v, bytes);
    return m->be->sync(m->be);
}

int tkmi_se_model_get_grads(tkmi_se_model *m, float *grads)
{
    TKM_RETURN_ERROR_IF(!m->g, TKM_EINVAL, "an inference model has no gradients");
    m->be->download(m->be, grads, m->g, m->nparams * sizeof(float));
    return m->be->sync(m->be);
}

int tkmi_se_pack(const tkmi_se_config *c, const unsigned char *const *bytes, const size_t *lens, int B,
                 int32_t *tok, int32_t *len)
{
    int T = 2;
    for (int b = 0; b < B; b++) {
        size_t n = lens[b] < (size_t)c->max_bytes ? lens[b] : (size_t)c->max_bytes;
        if ((int)n + 2 > T)
            T = (int)n + 2;
    }
    for (int b = 0; b < B; b++) {
        size_t n = lens[b] < (size_t)c->max_bytes ? lens[b] : (size_t)c->max_bytes;
        int32_t *t = tok + (size_t)b * T;
        t[0] = TKMI_SE_START;
        for (size_t i = 0; i < n; i++)
            t[1 + i] = bytes[b][i];
        t[n + 1] = TKMI_SE_END;
        for (int i = (int)n + 2; i < T; i++)
            t[i] = TKMI_SE_PAD;
        len[b] = (int32_t)n + 2;
    }
    return T;
}

int tkmi_se_model_set_targets(tkmi_se_model *m, const float *rows, size_t R)
{
    tkmi_se_backend *be = m->be;
    const size_t E = (size_t)m->c.out_dim, B = (size_t)m->maxB;
    TKM_RETURN_ERROR_IF(R == 0 || R > INT32_MAX, TKM_EINVAL, "bad number of target rows %zu", R);
#define BF(x) do { if (x) be->free(be, (x)); (x) = NULL; } while (0)
    BF(m->trows); BF(m->tnorm); BF(m->tnormv); BF(m->logits); BF(m->dlogits);
#undef BF
    BALLOC(m->trows, R * E);
    BALLOC(m->tnorm, R * E);
    BALLOC(m->tnormv, R);
    BALLOC(m->logits, B * R);
    BALLOC(m->dlogits, B * R);
    m->R = R;
    be->upload(be, m->trows, rows, R * E * sizeof(float));
    be->row_normalize(be, m->tnorm, m->tnormv, m->trows, (int)R, (int)E);
    return be->sync(be);
nomem:
    return tkmi_error(TKM_ENOMEM, "out of %s memory for %zu target rows", be->name, R);
}

/* ---- the n-gram bag's features -------------------------------------------- */

int tkmi_se_bag_max_features(const tkmi_se_config *c)
{
    const int T = c->max_bytes + 2;
    int n = 1; /* the whole input */
    for (int g = 1; g <= c->ngram_max; g++)
        n += T - g + 1 > 0 ? T - g + 1 : 0;
    return n;
}

/* FNV-1a over 16-bit symbols (bytes, START, END), then a 64-bit finalizer:
 * fixed forever, since trained tables are indexed by it */
static uint32_t bag_bucket(const int32_t *sym, int n, uint64_t salt, uint32_t buckets)
{
    uint64_t h = 0xcbf29ce484222325ull ^ salt;
    for (int i = 0; i < n; i++) {
        h = (h ^ (uint64_t)(sym[i] & 0xff)) * 0x100000001b3ull;
        h = (h ^ (uint64_t)(sym[i] >> 8)) * 0x100000001b3ull;
    }
    return (uint32_t)(tkmi_hash_u64(h) % buckets);
}

int tkmi_se_bag_features(const tkmi_se_config *c, const int32_t *tok, int len, int32_t *feat)
{
    const uint32_t nb = (uint32_t)c->ngram_buckets;
    int k = 0;
    for (int g = 1; g <= c->ngram_max; g++)
        for (int i = 0; i + g <= len; i++)
            feat[k++] = (int32_t)bag_bucket(tok + i, g, (uint64_t)g, nb);
    feat[k++] = (int32_t)bag_bucket(tok, len, 0x77686f6c65ull /* "whole" */, nb);
    return k;
}

/* Stable LSD radix sort of n keys (bucket << 32 | row) by bucket (< 2^24),
 * in two 12-bit passes; tmp has room for n keys. Returns the sorted array. */
static uint64_t *radix_by_bucket(uint64_t *a, uint64_t *tmp, size_t n)
{
    for (int shift = 32; shift < 56; shift += 12) {
        size_t cnt[4097] = { 0 };
        for (size_t i = 0; i < n; i++)
            cnt[((a[i] >> shift) & 4095) + 1]++;
        for (int k = 0; k < 4096; k++)
            cnt[k + 1] += cnt[k];
        for (size_t i = 0; i < n; i++)
            tmp[cnt[(a[i] >> shift) & 4095]++] = a[i];
        uint64_t *x = a;
        a = tmp;
        tmp = x;
    }
    return a;
}

/* Uploads a batch and, with a bag, its features (what the forward reads). */
static void upload_batch(tkmi_se_model *m, const int32_t *tok, const int32_t *len, int B, int T)
{
    tkmi_se_backend *be = m->be;
    be->upload(be, m->tok, tok, (size_t)B * T * sizeof(int32_t));
    be->upload(be, m->len, len, (size_t)B * sizeof(int32_t));
    if (m->c.ngram_buckets <= 0)
        return;
    for (int b = 0; b < B; b++)
        m->cnt_h[b] = tkmi_se_bag_features(&m->c, tok + (size_t)b * T, len[b], m->feat_h + (size_t)b * m->F);
    be->upload(be, m->feat, m->feat_h, (size_t)B * m->F * sizeof(int32_t));
    be->upload(be, m->cnt, m->cnt_h, (size_t)B * sizeof(int32_t));
}

/* The backward's bag entries of the uploaded batch, sorted by (bucket, row,
 * position) so that every bucket sums in one order; only training needs them. */
static void upload_bag_entries(tkmi_se_model *m, int B)
{
    tkmi_se_backend *be = m->be;
    size_t ne = 0;
    for (int b = 0; b < B; b++) { /* generated in (row, position) order; the sort is stable */
        const int32_t *f = m->feat_h + (size_t)b * m->F;
        for (int j = 0; j < m->cnt_h[b]; j++)
            m->sort_h[ne++] = (uint64_t)f[j] << 32 | (uint64_t)b;
    }
    const uint64_t *key = radix_by_bucket(m->sort_h, m->sort_h + (size_t)m->maxB * m->F, ne);
    int U = 0;
    for (size_t e = 0; e < ne; e++) {
        int32_t bk = (int32_t)(key[e] >> 32);
        if (U == 0 || m->ubkt_h[U - 1] != bk) {
            m->ubkt_h[U] = bk;
            m->uoff_h[U++] = (int32_t)e;
        }
        m->erow_h[e] = (int32_t)(uint32_t)key[e];
    }
    m->uoff_h[U] = (int32_t)ne;
    m->U = U;
    be->upload(be, m->ubkt, m->ubkt_h, (size_t)U * sizeof(int32_t));
    be->upload(be, m->uoff, m->uoff_h, (size_t)(U + 1) * sizeof(int32_t));
    be->upload(be, m->erow, m->erow_h, ne * sizeof(int32_t));
}

/* ---- forward ---------------------------------------------------------------- */

#define P(off) (m->p + (off))
#define G(off) (m->g + (off))
#define LO(l, k) (m->loff[(size_t)(l) * L_COUNT + (k)])

/* out[N, OC] = inp[N, C] . W[OC, C]^T + bias */
static void linear_fwd(tkmi_se_model *m, float *out, const float *inp, const float *w, const float *b,
                       int N, int C, int OC)
{
    m->be->gemm(m->be, 0, 1, N, OC, C, 1.0f, inp, C, w, C, 0.0f, out, OC);
    m->be->add_bias(m->be, out, b, N, OC);
}

/* dinp[N, C] (= or +=, per beta) ; dW += dout^T inp ; db += colsum dout */
static void linear_bwd(tkmi_se_model *m, float *dinp, float beta, float *dw, float *db, const float *dout,
                       const float *inp, const float *w, int N, int C, int OC)
{
    tkmi_se_backend *be = m->be;
    if (dinp)
        be->gemm(be, 0, 0, N, C, OC, 1.0f, dout, OC, w, C, beta, dinp, C);
    be->gemm(be, 1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    be->bias_grad(be, db, dout, N, OC);
}

static int check_batch(const tkmi_se_model *m, int B, int T)
{
    TKM_RETURN_ERROR_IF(B < 1 || B > m->maxB || T < 2 || T > m->maxT, TKM_EINVAL,
                        "batch %d x %d outside the model's %d x %d", B, T, m->maxB, m->maxT);
    return 0;
}

static void forward(tkmi_se_model *m, int B, int T)
{
    tkmi_se_backend *be = m->be;
    const int D = m->c.width, H = m->c.heads, N = B * T, E = m->c.out_dim;
    be->embed_fwd(be, m->x0, m->tok, P(m->goff[G_WTE]), P(m->goff[G_WPE]), B, T, D);
    const float *res = m->x0;
    for (int l = 0; l < m->c.layers; l++) {
        layer_act *a = &m->la[l];
        be->layernorm_fwd(be, a->ln1, a->ln1m, a->ln1r, res, P(LO(l, L_LN1W)), P(LO(l, L_LN1B)), N, D);
        linear_fwd(m, a->qkv, a->ln1, P(LO(l, L_QKVW)), P(LO(l, L_QKVB)), N, D, 3 * D);
        be->attention_fwd(be, a->atty, a->att, a->qkv, m->len, B, T, D, H);
        linear_fwd(m, a->res2, a->atty, P(LO(l, L_PROJW)), P(LO(l, L_PROJB)), N, D, D);
        be->add(be, a->res2, a->res2, res, (size_t)N * D);
        be->layernorm_fwd(be, a->ln2, a->ln2m, a->ln2r, a->res2, P(LO(l, L_LN2W)), P(LO(l, L_LN2B)), N, D);
        linear_fwd(m, a->fch, a->ln2, P(LO(l, L_FCW)), P(LO(l, L_FCB)), N, D, 4 * D);
        be->gelu_fwd(be, a->fchg, a->fch, (size_t)N * 4 * D);
        linear_fwd(m, a->out, a->fchg, P(LO(l, L_FC2W)), P(LO(l, L_FC2B)), N, 4 * D, D);
        be->add(be, a->out, a->out, a->res2, (size_t)N * D);
        res = a->out;
    }
    be->layernorm_fwd(be, m->lnf, m->lnfm, m->lnfr, res, P(m->goff[G_LNFW]), P(m->goff[G_LNFB]), N, D);
    be->pool_fwd(be, m->pooled, m->lnf, m->len, B, T, D, m->c.pool);
    if (m->c.ngram_buckets > 0)
        be->bag_fwd(be, m->pooled, P(m->goff[G_BAG]), m->feat, m->cnt, B, m->F, D);
    if (m->c.head_mlp) {
        linear_fwd(m, m->h1, m->pooled, P(m->goff[G_H1W]), P(m->goff[G_H1B]), B, D, D);
        be->gelu_fwd(be, m->h1g, m->h1, (size_t)B * D);
        linear_fwd(m, m->y, m->h1g, P(m->goff[G_H2W]), P(m->goff[G_H2B]), B, D, E);
    } else {
        linear_fwd(m, m->y, m->pooled, P(m->goff[G_H2W]), P(m->goff[G_H2B]), B, D, E);
    }
}

int tkmi_se_forward(tkmi_se_model *m, const int32_t *tok, const int32_t *len, int B, int T, float *out)
{
    TKM_FORWARD_IF_ERROR(check_batch(m, B, T));
    upload_batch(m, tok, len, B, T);
    forward(m, B, T);
    if (out)
        m->be->download(m->be, out, m->y, (size_t)B * m->c.out_dim * sizeof(float));
    return m->be->sync(m->be);
}

/* ---- loss + backward ------------------------------------------------------- */

static void backward(tkmi_se_model *m, int B, int T)
{
    tkmi_se_backend *be = m->be;
    const int D = m->c.width, H = m->c.heads, N = B * T, E = m->c.out_dim;
    /* head */
    if (m->c.head_mlp) {
        linear_bwd(m, m->dh1g, 0.0f, G(m->goff[G_H2W]), G(m->goff[G_H2B]), m->dy, m->h1g,
                   P(m->goff[G_H2W]), B, D, E);
        be->gelu_bwd(be, m->dh1, m->h1, m->dh1g, (size_t)B * D);
        linear_bwd(m, m->dpooled, 0.0f, G(m->goff[G_H1W]), G(m->goff[G_H1B]), m->dh1, m->pooled,
                   P(m->goff[G_H1W]), B, D, D);
    } else {
        linear_bwd(m, m->dpooled, 0.0f, G(m->goff[G_H2W]), G(m->goff[G_H2B]), m->dy, m->pooled,
                   P(m->goff[G_H2W]), B, D, E);
    }
    if (m->c.ngram_buckets > 0)
        be->bag_bwd(be, G(m->goff[G_BAG]), m->dpooled, m->ubkt, m->uoff, m->erow, m->cnt, m->U, D);
    be->pool_bwd(be, m->dN, m->dpooled, m->len, B, T, D, m->c.pool);
    const float *resL = m->c.layers ? m->la[m->c.layers - 1].out : m->x0;
    be->zero(be, m->dres, (size_t)N * D * sizeof(float));
    be->layernorm_bwd(be, m->dres, G(m->goff[G_LNFW]), G(m->goff[G_LNFB]), m->dN, resL,
                      P(m->goff[G_LNFW]), m->lnfm, m->lnfr, N, D);
    for (int l = m->c.layers - 1; l >= 0; l--) {
        layer_act *a = &m->la[l];
        const float *res = l ? m->la[l - 1].out : m->x0;
        /* out = res2 + fc2(gelu(fc(ln2(res2)))) ; dres holds d out */
        linear_bwd(m, m->dN4, 0.0f, G(LO(l, L_FC2W)), G(LO(l, L_FC2B)), m->dres, a->fchg,
                   P(LO(l, L_FC2W)), N, 4 * D, D);
        be->gelu_bwd(be, m->dN4b, a->fch, m->dN4, (size_t)N * 4 * D);
        linear_bwd(m, m->dN, 0.0f, G(LO(l, L_FCW)), G(LO(l, L_FCB)), m->dN4b, a->ln2, P(LO(l, L_FCW)),
                   N, D, 4 * D);
        be->layernorm_bwd(be, m->dres, G(LO(l, L_LN2W)), G(LO(l, L_LN2B)), m->dN, a->res2,
                          P(LO(l, L_LN2W)), a->ln2m, a->ln2r, N, D);
        /* res2 = res + proj(attn(qkv(ln1(res)))) ; dres holds d res2 */
        linear_bwd(m, m->dN, 0.0f, G(LO(l, L_PROJW)), G(LO(l, L_PROJB)), m->dres, a->atty,
                   P(LO(l, L_PROJW)), N, D, D);
        be->attention_bwd(be, m->dN3, m->dN, a->qkv, a->att, m->len, B, T, D, H);
        linear_bwd(m, m->dN, 0.0f, G(LO(l, L_QKVW)), G(LO(l, L_QKVB)), m->dN3, a->ln1, P(LO(l, L_QKVW)),
                   N, D, 3 * D);
        be->layernorm_bwd(be, m->dres, G(LO(l, L_LN1W)), G(LO(l, L_LN1B)), m->dN, res, P(LO(l, L_LN1W)),
                          a->ln1m, a->ln1r, N, D);
    }
    be->embed_bwd(be, G(m->goff[G_WTE]), G(m->goff[G_WPE]), m->dres, m->tok, B, T, D);
}

static int loss_grad(tkmi_se_model *m, const int32_t *tok, const int32_t *len, const int32_t *target,
                     int B, int T, const tkmi_se_loss_weights *w, float *loss)
{
    tkmi_se_backend *be = m->be;
    const int E = m->c.out_dim;
    TKM_FORWARD_IF_ERROR(check_batch(m, B, T));
    TKM_RETURN_ERROR_IF(!m->g, TKM_EINVAL, "an inference model cannot be trained");
    TKM_RETURN_ERROR_IF(!m->trows, TKM_EINVAL, "no target rows set");
    for (int b = 0; b < B; b++)
        TKM_RETURN_ERROR_IF(target[b] < 0 || (size_t)target[b] >= m->R, TKM_ERANGE,
                            "target row %d out of range", (int)target[b]);
    upload_batch(m, tok, len, B, T);
    if (m->c.ngram_buckets > 0)
        upload_bag_entries(m, B);
    be->upload(be, m->tidx, target, (size_t)B * sizeof(int32_t));
    forward(m, B, T);
    be->gather_rows(be, m->tbatch, m->trows, m->tidx, B, E);
    be->pointwise_loss(be, m->lossb, m->dy, m->y, m->tbatch, B, E, w->mse, w->l1, w->cos);
    if (w->ctr > 0.0f) {
        const float invt = 1.0f / w->temperature;
        const int R = (int)m->R;
        be->row_normalize(be, m->yn, m->ynorm, m->y, B, E);
        be->gemm(be, 0, 1, B, R, E, invt, m->yn, E, m->tnorm, E, 0.0f, m->logits, R);
        be->softmax_xent(be, m->lossb, m->dlogits, m->logits, m->tidx, B, R, w->ctr);
        be->gemm(be, 0, 0, B, E, R, invt, m->dlogits, R, m->tnorm, E, 0.0f, m->dyn, E);
        be->row_normalize_bwd(be, m->dy, m->dyn, m->yn, m->ynorm, B, E);
    }
    be->zero(be, m->g, m->nparams * sizeof(float));
    backward(m, B, T);
    be->download(be, m->host_loss, m->lossb, (size_t)B * sizeof(float));
    TKM_FORWARD_IF_ERROR(be->sync(be));
    double s = 0.0;
    for (int b = 0; b < B; b++)
        s += m->host_loss[b];
    *loss = (float)(s / B);
    return 0;
}

int tkmi_se_loss_grad(tkmi_se_model *m, const int32_t *tok, const int32_t *len, const int32_t *target,
                      int B, int T, const tkmi_se_loss_weights *w, float *loss)
{
    return loss_grad(m, tok, len, target, B, T, w, loss);
}

int tkmi_se_step(tkmi_se_model *m, const int32_t *tok, const int32_t *len, const int32_t *target,
                 int B, int T, const tkmi_se_hparams *hp, int step, float *loss, float *gnorm)
{
    tkmi_se_backend *be = m->be;
    TKM_FORWARD_IF_ERROR(loss_grad(m, tok, len, target, B, T, &hp->w, loss));
    double ss = be->sumsq(be, m->g, m->nparams);
    TKM_FORWARD_IF_ERROR(be->sync(be));
    float norm = (float)sqrt(ss);
    if (gnorm)
        *gnorm = norm;
    TKM_RETURN_ERROR_IF(!isfinite(norm) || !isfinite(*loss), TKM_ERANGE,
                        "training diverged at step %d (loss %g, gradient norm %g): lower the learning rate",
                        step, (double)*loss, (double)norm);
    float gs = hp->clip > 0.0f && norm > hp->clip ? hp->clip / norm : 1.0f;
    be->adamw(be, m->p, m->g, m->m, m->v, m->ndecay, hp->lr, hp->beta1, hp->beta2, hp->eps,
              hp->weight_decay, step, gs);
    be->adamw(be, m->p + m->ndecay, m->g + m->ndecay, m->m + m->ndecay, m->v + m->ndecay,
              m->nparams - m->ndecay, hp->lr, hp->beta1, hp->beta2, hp->eps, 0.0f, step, gs);
    return be->sync(be);
}

double tkmi_se_flops_per_seq(const tkmi_se_config *c, int T)
{
    double D = c->width, E = c->out_dim;
    double per_layer = 2.0 * T * (3 * D * D + D * D + 8 * D * D) + 4.0 * T * T * D;
    double head = 2.0 * (c->head_mlp ? D * D : 0) + 2.0 * D * E;
    return c->layers * per_layer + head;
}
