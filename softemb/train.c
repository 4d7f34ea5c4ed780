/* train.c - training, saving, loading and running soft-embedding encoders:
 * length-bucketed deterministic batches, warmup + cosine AdamW, resumable
 * checkpoints, and the .tkse file format. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "se_model.h"
#include "../lib/fileio.h"
#include "../lib/model_internal.h"
#include "../lib/tkm_internal.h"
#include "tokenmill_softemb.h"

struct tkm_se_encoder {
    tkmi_se_config c;
    size_t nparams;
    float *params, *adam_m, *adam_v; /* moments may be NULL */
    long steps_done, steps_total;
    double test_frac;
    uint64_t split_seed, teacher_hash;
    uint32_t split_version;
    size_t teacher_rows, truncated;
    char backend[8];
    /* validation: the step whose weights are kept and its MRR; during training
     * (and in checkpoints) best holds those weights */
    double valid_frac; /* 0 when no row was held back */
    long best_step;
    double best_mrr;
    float *best;
};

void tkm_se_options_default(tkm_se_options *o, size_t dim)
{
    memset(o, 0, sizeof(*o));
    if (dim > 512) {
        o->layers = 4;
        o->heads = 8;
        o->width = 768;
    } else {
        o->layers = 2;
        o->heads = 4;
        o->width = 128;
    }
    o->max_bytes = 32;
    o->pool_mean = 0;
    o->head_mlp = 0;
    o->ngram_buckets = 131072;
    o->ngram_max = 5;
    o->w_mse = 1.0f;
    o->w_cos = 4.0f;
    o->w_ctr = 1.0f;
    o->temperature = 0.05f;
    o->batch = 256;
    o->steps = 1200;
    o->warmup = 100;
    o->lr = 3e-3f;
    o->min_lr_ratio = 0.1f;
    o->weight_decay = 0.01f;
    o->clip = 1.0f;
    o->beta1 = 0.9f;
    o->beta2 = 0.99f;
    o->seed = 1;
    o->test_frac = 0.1;
    o->split_seed = 1;
    o->valid_frac = 0.0;
    o->valid_every = 0;
    o->threads = 0;
    o->device = -2;
    o->log_every = 50;
}

uint64_t tkm_se_teacher_hash(const tkm_teacher *t)
{
    uint64_t h = tkmi_hash_u64(tkm_teacher_rows(t) * 1000003u + tkm_teacher_dim(t));
    for (size_t r = 0; r < tkm_teacher_rows(t); r++) {
        size_t n;
        const unsigned char *b = tkm_teacher_bytes(t, r, &n);
        h = tkmi_hash_u64(h ^ tkmi_hash_bytes(b, n) ^ ((uint64_t)tkm_teacher_row_kind(t, r) << 56));
    }
    return h;
}

static void config_from_options(const tkm_se_options *o, size_t dim, tkmi_se_config *c)
{
    c->layers = o->layers;
    c->heads = o->heads;
    c->width = o->width;
    c->max_bytes = o->max_bytes;
    c->pool = o->pool_mean ? TKMI_POOL_MEAN : TKMI_POOL_END;
    c->head_mlp = o->head_mlp;
    c->out_dim = (int)dim;
    c->ngram_buckets = o->ngram_buckets;
    c->ngram_max = o->ngram_buckets > 0 ? o->ngram_max : 0;
}

static int check_options(const tkm_se_options *o)
{
    TKM_RETURN_ERROR_IF(o->batch < 1 || o->batch > 65536, TKM_EINVAL, "batch must be 1..65536");
    TKM_RETURN_ERROR_IF(o->steps < 1, TKM_EINVAL, "steps must be >= 1");
    TKM_RETURN_ERROR_IF(o->warmup < 0, TKM_EINVAL, "warmup must be >= 0");
    TKM_RETURN_ERROR_IF(!(o->lr > 0.0f) || !(o->min_lr_ratio >= 0.0f) || o->min_lr_ratio > 1.0f,
                        TKM_EINVAL, "bad learning rate schedule");
    TKM_RETURN_ERROR_IF(o->w_mse < 0 || o->w_l1 < 0 || o->w_cos < 0 || o->w_ctr < 0, TKM_EINVAL,
                        "loss weights must be >= 0");
    TKM_RETURN_ERROR_IF(o->w_mse + o->w_l1 + o->w_cos + o->w_ctr <= 0.0f, TKM_EINVAL,
                        "at least one loss weight must be > 0");
    TKM_RETURN_ERROR_IF(o->w_ctr > 0 && !(o->temperature > 0.0f), TKM_EINVAL, "temperature must be > 0");
    TKM_RETURN_ERROR_IF(o->weight_decay < 0 || o->clip < 0, TKM_EINVAL, "weight decay and clip must be >= 0");
    TKM_RETURN_ERROR_IF(!(o->beta1 >= 0 && o->beta1 < 1 && o->beta2 >= 0 && o->beta2 < 1), TKM_EINVAL,
                        "AdamW betas must be in [0, 1)");
    TKM_RETURN_ERROR_IF(!(o->valid_frac >= 0 && o->valid_frac <= 0.5), TKM_EINVAL,
                        "validation share must be in [0, 0.5]");
    TKM_RETURN_ERROR_IF(o->valid_every < 0, TKM_EINVAL, "validation interval must be >= 0");
    return 0;
}

/* ---- deterministic batch order ----------------------------------------------
 * Epoch e: the training rows are permuted with a generator seeded by (seed, e);
 * windows of 32 batches are sorted by byte length (ties by position) and cut
 * into batches, so each batch pads little; the batches of the epoch are then
 * permuted again. Step s reads batch s mod nb of epoch s / nb: a resumed run
 * sees exactly the batches the uninterrupted run would have. */

typedef struct {
    const uint32_t *rows; /* training rows */
    const size_t *lens;   /* their byte lengths (truncated) */
    size_t n;
    int batch;
    size_t nb;            /* batches per epoch */
    uint64_t seed;
    long epoch;           /* epoch held in order[] (-1: none) */
    uint32_t *order;      /* n row positions, batch-major */
    uint32_t *bperm;      /* nb: batch order */
    uint32_t *tmp;
} batcher;

static void shuffle(uint32_t *a, size_t n, uint64_t *s)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(tkmi_splitmix64(s) % i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

static int by_len(const void *x, const void *y, void *ctx)
{
    const size_t *lens = ctx;
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    size_t la = lens[a], lb = lens[b];
    if (la != lb)
        return la < lb ? -1 : 1;
    return a < b ? -1 : a > b;
}

static void batcher_epoch(batcher *bt, long e)
{
    if (bt->epoch == e)
        return;
    uint64_t s = bt->seed * 0x100000001B3ull + (uint64_t)e * 0x9E3779B97F4A7C15ull + 17;
    for (size_t i = 0; i < bt->n; i++)
        bt->order[i] = (uint32_t)i;
    shuffle(bt->order, bt->n, &s);
    size_t win = (size_t)bt->batch * 32;
    /* sort each window by length; positions as tie-breaks keep it deterministic */
    for (size_t w0 = 0; w0 < bt->n; w0 += win) {
        size_t w1 = w0 + win < bt->n ? w0 + win : bt->n;
        qsort_r(bt->order + w0, w1 - w0, sizeof(uint32_t), by_len, (void *)bt->lens);
    }
    for (size_t i = 0; i < bt->nb; i++)
        bt->bperm[i] = (uint32_t)i;
    shuffle(bt->bperm, bt->nb, &s);
    bt->epoch = e;
}

/* Positions (into rows[]) of batch `step` (0-based); returns its size. */
static int batcher_get(batcher *bt, long step, const uint32_t **pos)
{
    long e = step / (long)bt->nb;
    batcher_epoch(bt, e);
    size_t b = bt->bperm[step % (long)bt->nb];
    size_t i0 = b * (size_t)bt->batch;
    size_t i1 = i0 + (size_t)bt->batch < bt->n ? i0 + (size_t)bt->batch : bt->n;
    *pos = bt->order + i0;
    return (int)(i1 - i0);
}

/* ---- training ---------------------------------------------------------------- */

static float lr_at(const tkm_se_options *o, long step) /* step 1-based */
{
    if (o->warmup > 0 && step <= o->warmup)
        return o->lr * (float)step / (float)o->warmup;
    double span = (double)(o->steps - o->warmup);
    double prog = span > 0 ? (double)(step - o->warmup) / span : 1.0;
    if (prog > 1.0)
        prog = 1.0;
    double minlr = (double)o->lr * o->min_lr_ratio;
    return (float)(minlr + 0.5 * ((double)o->lr - minlr) * (1.0 + cos(3.141592653589793 * prog)));
}

static int open_backend(const tkm_se_options *o, tkmi_se_backend **be)
{
    if (o->device >= 0 || o->device == -2) {
        int rc = tkmi_se_backend_cuda(o->device >= 0 ? o->device : 0, be);
        if (rc == 0) {
            if (o->tf32)
                tkmi_se_backend_cuda_set_tf32(*be, 1);
            return 0;
        }
        if (o->device >= 0)
            return rc;
    }
    return tkmi_se_backend_cpu(o->threads, be);
}

static tkm_se_encoder *encoder_new(const tkmi_se_config *c, size_t nparams)
{
    tkm_se_encoder *e = tkmi_calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->c = *c;
    e->nparams = nparams;
    e->params = tkmi_malloc(nparams * sizeof(float));
    if (!e->params) {
        tkmi_free(e);
        return NULL;
    }
    return e;
}

static int alloc_moments(tkm_se_encoder *e)
{
    if (!e->adam_m)
        e->adam_m = tkmi_calloc(e->nparams, sizeof(float));
    if (!e->adam_v)
        e->adam_v = tkmi_calloc(e->nparams, sizeof(float));
    return e->adam_m && e->adam_v ? 0 : TKM_ENOMEM;
}

/* head.out.bias starts at the mean training row: the encoder then only has to
 * learn each row's offset from the centre of the teacher's cloud. */
static void init_head_bias(tkmi_se_model *m, float *params, const float *tr, size_t R, size_t E)
{
    int nt;
    const tkmi_se_tensor *ts = tkmi_se_model_tensors(m, &nt);
    for (int i = 0; i < nt; i++) {
        if (strcmp(ts[i].name, "head.out.bias") != 0)
            continue;
        float *b = params + ts[i].off;
        for (size_t c = 0; c < E; c++) {
            double s = 0.0;
            for (size_t r = 0; r < R; r++)
                s += tr[r * E + c];
            b[c] = (float)(s / (double)R);
        }
    }
}

typedef struct {
    tkmi_se_backend *be;
    tkmi_se_model *m;
    float *targets;
    uint32_t *rows;
    size_t *lens;
    const unsigned char **bp;
    size_t *bl;
    int32_t *tok, *len, *tgt;
    batcher bt;
    uint8_t *vs;     /* the split with the validation rows marked TKM_SE_VALID */
    size_t R;        /* training rows */
    size_t truncated; /* training rows longer than max_bytes */
    int batch;       /* rows per step: the option, at most R */
    uint32_t *vrows; /* validation rows (teacher row ids), their bytes */
    const unsigned char **vbp;
    size_t *vbl;
    size_t nv;
    float *vpred;
} train_state;

static void train_state_free(train_state *s)
{
    tkmi_se_model_free(s->m);
    if (s->be)
        s->be->destroy(s->be);
    tkmi_free(s->targets);
    tkmi_free(s->rows);
    tkmi_free(s->lens);
    tkmi_free(s->bp);
    tkmi_free(s->bl);
    tkmi_free(s->tok);
    tkmi_free(s->len);
    tkmi_free(s->tgt);
    tkmi_free(s->bt.order);
    tkmi_free(s->bt.bperm);
    tkmi_free(s->vs);
    tkmi_free(s->vrows);
    tkmi_free(s->vbp);
    tkmi_free(s->vbl);
    tkmi_free(s->vpred);
}

typedef struct {
    size_t len;
    uint32_t i;
} len_idx;

static int by_len_idx(const void *x, const void *y)
{
    const len_idx *a = x, *b = y;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

/* Predicts n rows with model m in batches of up to maxB, in order of length
 * so batches pad little; a row's prediction does not depend on the other rows
 * of its batch or on the padding (every sum over a row runs in a fixed order),
 * so the order changes speed, not bits. */
static int forward_rows(tkmi_se_model *m, const tkmi_se_config *c, int maxB, const unsigned char *const *bytes,
                        const size_t *lens, size_t n, float *out)
{
    TKM_RETURN_ERROR_IF(n > UINT32_MAX, TKM_ERANGE, "too many rows to predict (%zu)", n);
    const size_t E = (size_t)c->out_dim;
    int rc = 0;
    int32_t *tok = tkmi_malloc((size_t)maxB * (size_t)(c->max_bytes + 2) * sizeof(int32_t));
    int32_t *len = tkmi_malloc((size_t)maxB * sizeof(int32_t));
    float *y = tkmi_malloc((size_t)maxB * E * sizeof(float));
    const unsigned char **bp = tkmi_malloc((size_t)maxB * sizeof(*bp));
    size_t *bl = tkmi_malloc((size_t)maxB * sizeof(size_t));
    len_idx *ord = tkmi_malloc((n ? n : 1) * sizeof(*ord));
    if (!tok || !len || !y || !bp || !bl || !ord) {
        rc = TKM_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        ord[i].len = lens[i] < (size_t)c->max_bytes ? lens[i] : (size_t)c->max_bytes;
        ord[i].i = (uint32_t)i;
    }
    qsort(ord, n, sizeof(*ord), by_len_idx);
    for (size_t i = 0; i < n; i += (size_t)maxB) {
        int B = n - i < (size_t)maxB ? (int)(n - i) : maxB;
        for (int b = 0; b < B; b++) {
            bp[b] = bytes[ord[i + (size_t)b].i];
            bl[b] = lens[ord[i + (size_t)b].i];
        }
        int T = tkmi_se_pack(c, bp, bl, B, tok, len);
        rc = tkmi_se_forward(m, tok, len, B, T, y);
        if (rc < 0)
            goto done;
        for (int b = 0; b < B; b++)
            memcpy(out + (size_t)ord[i + (size_t)b].i * E, y + (size_t)b * E, E * sizeof(float));
    }
done:
    tkmi_free(tok);
    tkmi_free(len);
    tkmi_free(y);
    tkmi_free(bp);
    tkmi_free(bl);
    tkmi_free(ord);
    return rc;
}

/* Predicts the validation rows with the model being trained and scores them
 * against all teacher rows (a fixed-order computation: the same for any
 * thread count). */
static int validate(train_state *s, const tkm_teacher *t, const tkmi_se_config *c, int batch, int threads,
                    tkm_se_metrics *mt)
{
    TKM_FORWARD_IF_ERROR(forward_rows(s->m, c, batch, s->vbp, s->vbl, s->nv, s->vpred));
    return tkm_se_metrics_compute(t, s->vpred, s->vrows, s->nv, threads, mt);
}

static int save_checkpoint(train_state *s, tkm_se_encoder *e, const char *path, long step)
{
    TKM_FORWARD_IF_ERROR(alloc_moments(e));
    TKM_FORWARD_IF_ERROR(tkmi_se_model_get(s->m, e->params, e->adam_m, e->adam_v));
    e->steps_done = step;
    return tkm_se_save(e, path, 1);
}

/* Rows the training uses (split 0, normal rows), those a second split holds
 * back for validation (s->vs, s->nv) and the rest (s->R). */
static int split_rows(train_state *s, const tkm_teacher *t, const uint8_t *split, const tkm_se_options *o)
{
    const size_t rows = tkm_teacher_rows(t);
    s->vs = tkmi_malloc(rows ? rows : 1);
    TKM_RETURN_ERROR_IF(!s->vs, TKM_ENOMEM, "out of memory");
    memcpy(s->vs, split, rows);
    TKM_FORWARD_IF_ERROR(tkm_se_split_valid(t, o->valid_frac, o->split_seed, s->vs));
    for (size_t r = 0; r < rows; r++)
        if (split[r] == 0 && tkm_teacher_row_kind(t, r) == TKM_ROW_NORMAL)
            s->vs[r] == TKM_SE_VALID ? s->nv++ : s->R++;
    TKM_RETURN_ERROR_IF(s->R == 0, TKM_EEMPTY, "the teacher has no training rows");
    TKM_RETURN_ERROR_IF(s->R > (size_t)INT32_MAX, TKM_ERANGE, "too many teacher rows");
    return 0;
}

/* The training rows (ids, lengths cut at max_bytes, target rows) and the
 * validation rows (ids, bytes), in teacher order; the batch buffers. */
static int gather_rows(train_state *s, const tkm_teacher *t, const uint8_t *split, const tkmi_se_config *c,
                       int batch)
{
    const size_t E = tkm_teacher_dim(t), rows = tkm_teacher_rows(t), R = s->R, nv = s->nv;
    s->rows = tkmi_malloc(R * sizeof(uint32_t));
    s->lens = tkmi_malloc(R * sizeof(size_t));
    s->targets = tkmi_malloc(R * E * sizeof(float));
    s->bp = tkmi_malloc((size_t)batch * sizeof(*s->bp));
    s->bl = tkmi_malloc((size_t)batch * sizeof(size_t));
    s->tok = tkmi_malloc((size_t)batch * (size_t)(c->max_bytes + 2) * sizeof(int32_t));
    s->len = tkmi_malloc((size_t)batch * sizeof(int32_t));
    s->tgt = tkmi_malloc((size_t)batch * sizeof(int32_t));
    s->vrows = tkmi_malloc((nv ? nv : 1) * sizeof(uint32_t));
    s->vbp = tkmi_malloc((nv ? nv : 1) * sizeof(*s->vbp));
    s->vbl = tkmi_malloc((nv ? nv : 1) * sizeof(size_t));
    s->vpred = tkmi_malloc((nv ? nv : 1) * E * sizeof(float));
    if (!s->rows || !s->lens || !s->targets || !s->bp || !s->bl || !s->tok || !s->len || !s->tgt || !s->vrows ||
        !s->vbp || !s->vbl || !s->vpred)
        return TKM_ENOMEM;
    const float *mat = tkm_teacher_matrix(t);
    for (size_t r = 0, k = 0, kv = 0; r < rows; r++) {
        if (split[r] != 0 || tkm_teacher_row_kind(t, r) != TKM_ROW_NORMAL)
            continue;
        if (s->vs[r] == TKM_SE_VALID) {
            s->vbp[kv] = tkm_teacher_bytes(t, r, &s->vbl[kv]);
            s->vrows[kv++] = (uint32_t)r;
            continue;
        }
        size_t n;
        tkm_teacher_bytes(t, r, &n);
        if (n > (size_t)c->max_bytes)
            s->truncated++;
        s->rows[k] = (uint32_t)r;
        s->lens[k] = n < (size_t)c->max_bytes ? n : (size_t)c->max_bytes;
        memcpy(s->targets + k * E, mat + r * E, E * sizeof(float));
        k++;
    }
    return 0;
}

/* The backend and the model on it, and the encoder that will hold its
 * weights, with what the file records about the run. */
static int open_model(train_state *s, const tkm_teacher *t, const tkmi_se_config *c, const tkm_se_options *o,
                      tkm_se_encoder **out)
{
    TKM_FORWARD_IF_ERROR(open_backend(o, &s->be));
    TKM_FORWARD_IF_ERROR(tkmi_se_model_new(c, s->be, s->batch, o->seed, &s->m));
    TKM_FORWARD_IF_ERROR(tkmi_se_model_set_targets(s->m, s->targets, s->R));
    tkm_se_encoder *e = encoder_new(c, tkmi_se_model_nparams(s->m));
    if (!e)
        return TKM_ENOMEM;
    e->steps_total = o->steps;
    e->test_frac = o->test_frac;
    e->split_seed = o->split_seed;
    e->split_version = TKM_SE_SPLIT_VERSION;
    e->valid_frac = s->nv ? o->valid_frac : 0.0;
    e->teacher_hash = tkm_se_teacher_hash(t);
    e->teacher_rows = tkm_teacher_rows(t);
    e->truncated = s->truncated;
    snprintf(e->backend, sizeof(e->backend), "%s", s->be->name);
    *out = e;
    return 0;
}

/* Continues from checkpoint `path` when it was made with the same
 * architecture, teacher, split rule and validation share: its weights and
 * moments, its step (*start), the validation's best so far. */
static int resume_from(train_state *s, tkm_se_encoder *e, const tkmi_se_config *c, const char *path, long *start)
{
    tkm_se_encoder *res = NULL;
    int rc = tkm_se_load(path, &res);
    if (rc < 0)
        return rc;
    if (memcmp(&res->c, c, sizeof(*c)) != 0 || res->nparams != e->nparams)
        rc = tkmi_error(TKM_EINVAL, "%s: checkpoint architecture differs from the options", path);
    else if (res->teacher_hash != e->teacher_hash)
        rc = tkmi_error(TKM_EINVAL, "%s: checkpoint was trained on a different teacher", path);
    else if (res->split_version != TKM_SE_SPLIT_VERSION)
        rc = tkmi_error(TKM_EINVAL,
                        "%s: checkpoint was trained under split rule %u, this build splits by rule %u "
                        "(its training rows may include rows now held out): train it again",
                        path, res->split_version, TKM_SE_SPLIT_VERSION);
    else if (!res->adam_m)
        rc = tkmi_error(TKM_EINVAL, "%s: not a checkpoint (no optimizer state)", path);
    else if (res->valid_frac != e->valid_frac) /* other rows would be trained on */
        rc = tkmi_error(TKM_EINVAL, "%s: checkpoint was trained with validation share %g (--valid-frac), "
                        "these options give %g", path, res->valid_frac, e->valid_frac);
    else
        rc = tkmi_se_model_set(s->m, res->params, res->adam_m, res->adam_v);
    if (rc == 0) {
        *start = res->steps_done;
        if (res->best) { /* the validation's best so far travels with the checkpoint */
            e->best = res->best;
            res->best = NULL;
            e->best_step = res->best_step;
            e->best_mrr = res->best_mrr;
        }
    }
    tkm_se_free(res);
    return rc;
}

/* A new run: the model's initial weights, with head.out.bias at the mean
 * training row. */
static int init_weights(train_state *s, tkm_se_encoder *e, size_t E)
{
    TKM_FORWARD_IF_ERROR(tkmi_se_model_get(s->m, e->params, NULL, NULL));
    init_head_bias(s->m, e->params, s->targets, s->R, E);
    return tkmi_se_model_set(s->m, e->params, NULL, NULL);
}

static int batcher_init(batcher *bt, const train_state *s, uint64_t seed)
{
    bt->rows = s->rows;
    bt->lens = s->lens;
    bt->n = s->R;
    bt->batch = s->batch;
    bt->nb = (s->R + (size_t)s->batch - 1) / (size_t)s->batch;
    bt->seed = seed;
    bt->epoch = -1;
    bt->order = tkmi_malloc(s->R * sizeof(uint32_t));
    bt->bperm = tkmi_malloc(bt->nb * sizeof(uint32_t));
    return bt->order && bt->bperm ? 0 : TKM_ENOMEM;
}

/* The optimiser's settings and the loss weights. MSE and L1 are taken
 * relative to the rows' typical size (mean square / mean absolute value of
 * the training rows), so weight 1 puts them on the scale of the cosine term
 * whatever the teacher's magnitude. */
static tkmi_se_hparams loss_hparams(const tkm_se_options *o, const float *targets, size_t n)
{
    double ms = 0, ma = 0;
    for (size_t i = 0; i < n; i++) {
        ms += (double)targets[i] * targets[i];
        ma += fabs((double)targets[i]);
    }
    ms /= (double)n;
    ma /= (double)n;
    tkmi_se_hparams hp = { .beta1 = o->beta1, .beta2 = o->beta2, .eps = 1e-8f,
                           .weight_decay = o->weight_decay, .clip = o->clip,
                           .w = { o->w_mse / (float)(ms > 0 ? ms : 1), o->w_l1 / (float)(ma > 0 ? ma : 1),
                                  o->w_cos, o->w_ctr, o->temperature } };
    return hp;
}

/* What the progress line reports since the last one. */
typedef struct {
    double t0, tlast, loss_sum, seqs, toks, flops;
    long nloss;
    tkm_se_progress p;
} train_meter;

/* One optimiser step on batch `step` (0-based) of the deterministic order. */
static int train_step(train_state *s, const tkm_teacher *t, const tkmi_se_config *c, const tkm_se_options *o,
                      tkmi_se_hparams *hp, long step, train_meter *mt, float *gnorm)
{
    const uint32_t *pos;
    int B = batcher_get(&s->bt, step, &pos);
    for (int b = 0; b < B; b++) {
        uint32_t k = pos[b];
        s->bp[b] = tkm_teacher_bytes(t, s->rows[k], &s->bl[b]);
        s->tgt[b] = (int32_t)k;
        mt->toks += (double)s->lens[k] + 2;
    }
    int T = tkmi_se_pack(c, s->bp, s->bl, B, s->tok, s->len);
    mt->flops += 3.0 * tkmi_se_flops_per_seq(c, T) * B +
                 (o->w_ctr > 0 ? 4.0 * B * (double)s->R * (double)tkm_teacher_dim(t) : 0.0);
    hp->lr = lr_at(o, step + 1);
    float loss;
    TKM_FORWARD_IF_ERROR(tkmi_se_step(s->m, s->tok, s->len, s->tgt, B, T, hp, (int)(step + 1), &loss, gnorm));
    mt->loss_sum += loss;
    mt->nloss++;
    mt->seqs += B;
    return 0;
}

/* The progress line after `done` steps: the means since the last one. */
static void report_progress(train_meter *mt, const tkm_se_options *o, const train_state *s, long done, float lr,
                            float gnorm)
{
    double now = tkmi_now();
    mt->p = (tkm_se_progress){ done, o->steps, (int)((done - 1) / (long)s->bt.nb), mt->loss_sum / mt->nloss,
                               lr, gnorm, mt->seqs / (now - mt->tlast + 1e-9), mt->toks / (now - mt->tlast + 1e-9),
                               mt->flops / (now - mt->tlast + 1e-9) / 1e9, now - mt->t0, 0, 0, 0, 0 };
    o->progress(o->progress_ud, &mt->p);
    mt->tlast = now;
    mt->loss_sum = 0;
    mt->nloss = 0;
    mt->seqs = mt->toks = mt->flops = 0;
}

/* Validation after `done` steps: the best weights so far are kept in e->best. */
static int valid_step(train_state *s, const tkm_teacher *t, const tkmi_se_config *c, const tkm_se_options *o,
                      tkm_se_encoder *e, long done, train_meter *mt)
{
    tkm_se_metrics m;
    TKM_FORWARD_IF_ERROR(validate(s, t, c, s->batch, o->threads, &m));
    int better = m.mrr_cos > e->best_mrr;
    if (better) {
        TKM_FORWARD_IF_ERROR(tkmi_se_model_get(s->m, e->best, NULL, NULL));
        e->best_mrr = m.mrr_cos;
        e->best_step = done;
    }
    if (o->progress) {
        tkm_se_progress *p = &mt->p;
        p->step = done;
        p->steps = o->steps;
        p->elapsed_s = tkmi_now() - mt->t0;
        p->valid = 1;
        p->valid_best = better;
        p->valid_top1 = m.top1_cos;
        p->valid_mrr = m.mrr_cos;
        o->progress(o->progress_ud, p);
        p->valid = 0;
    }
    return 0;
}

/* Steps start..steps-1, with progress lines, validations and checkpoints. */
static int train_loop(train_state *s, const tkm_teacher *t, const tkmi_se_config *c, const tkm_se_options *o,
                      tkm_se_encoder *e, long start)
{
    tkmi_se_hparams hp = loss_hparams(o, s->targets, s->R * tkm_teacher_dim(t));
    const long vevery = s->nv == 0 ? 0 : o->valid_every > 0 ? o->valid_every : (o->steps + 11) / 12;
    if (s->nv && !e->best) {
        e->best = tkmi_malloc(e->nparams * sizeof(float));
        e->best_step = 0;
        e->best_mrr = -1.0;
        if (!e->best)
            return TKM_ENOMEM;
    }
    train_meter mt = {0};
    mt.t0 = mt.tlast = tkmi_now();
    for (long step = start; step < o->steps; step++) {
        float gnorm;
        TKM_FORWARD_IF_ERROR(train_step(s, t, c, o, &hp, step, &mt, &gnorm));
        long done = step + 1;
        if (o->progress && o->log_every > 0 && (done % o->log_every == 0 || done == o->steps))
            report_progress(&mt, o, s, done, hp.lr, gnorm);
        if (vevery && (done % vevery == 0 || done == o->steps))
            TKM_FORWARD_IF_ERROR(valid_step(s, t, c, o, e, done, &mt));
        if (o->checkpoint && o->checkpoint_every > 0 && done % o->checkpoint_every == 0 && done < o->steps)
            TKM_FORWARD_IF_ERROR(save_checkpoint(s, e, o->checkpoint, done));
    }
    return 0;
}

/* The trained weights and moments into e; with validation, the best step's
 * weights replace the last ones. */
static int finish_weights(train_state *s, tkm_se_encoder *e, const tkm_se_options *o, long start)
{
    int rc = alloc_moments(e);
    if (rc == 0)
        rc = tkmi_se_model_get(s->m, e->params, e->adam_m, e->adam_v);
    e->steps_done = o->steps > start ? o->steps : start;
    if (rc == 0 && e->best) { /* keep the validation's best weights */
        if (e->best_step > 0 && e->best_step < e->steps_done)
            memcpy(e->params, e->best, e->nparams * sizeof(float));
        else
            e->best_step = e->steps_done;
        tkmi_free(e->best);
        e->best = NULL;
    }
    return rc;
}

int tkm_se_train(const tkm_teacher *t, const uint8_t *split, const tkm_se_options *o, const char *resume,
                 tkm_se_encoder **out)
{
    *out = NULL;
    TKM_FORWARD_IF_ERROR(check_options(o));
    tkmi_se_config c;
    config_from_options(o, tkm_teacher_dim(t), &c);
    TKM_FORWARD_IF_ERROR(tkmi_se_config_check(&c));

    train_state s;
    memset(&s, 0, sizeof(s));
    tkm_se_encoder *e = NULL;
    long start = 0;
    int rc = split_rows(&s, t, split, o);
    if (rc == 0)
        rc = gather_rows(&s, t, split, &c, o->batch);
    s.batch = o->batch < (int)s.R ? o->batch : (int)s.R;
    if (rc == 0)
        rc = open_model(&s, t, &c, o, &e);
    if (rc == 0)
        rc = resume ? resume_from(&s, e, &c, resume, &start) : init_weights(&s, e, tkm_teacher_dim(t));
    if (rc == 0)
        rc = batcher_init(&s.bt, &s, o->seed);
    if (rc == 0)
        rc = train_loop(&s, t, &c, o, e, start);
    if (rc == 0)
        rc = finish_weights(&s, e, o, start);
    train_state_free(&s);
    if (rc < 0) {
        tkm_se_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

/* ---- files ---------------------------------------------------------------------- */

#define TKSE_MAGIC "TKSE\r\n\032\n"
#define TKSE_VERSION 3u /* 2: the split rule's version follows the file version;
                         * 3: n-gram bag size and length follow the architecture */

typedef struct {
    unsigned char *p;
    size_t n, cap;
    int err;
} wbuf;

static void wput(wbuf *w, const void *src, size_t k)
{
    if (w->err)
        return;
    if (tkmi_grow((void **)&w->p, &w->cap, w->n + k, 1) < 0) {
        w->err = 1;
        return;
    }
    memcpy(w->p + w->n, src, k);
    w->n += k;
}

static void wu32(wbuf *w, uint32_t v)
{
    unsigned char b[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 24) };
    wput(w, b, 4);
}

static void wu64(wbuf *w, uint64_t v)
{
    wu32(w, (uint32_t)v);
    wu32(w, (uint32_t)(v >> 32));
}

static void wf32s(wbuf *w, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        wu32(w, u);
    }
}

int tkm_se_save(const tkm_se_encoder *e, const char *path, int with_optimizer)
{
    wbuf w = {0};
    int opt = with_optimizer && e->adam_m && e->adam_v;
    wput(&w, TKSE_MAGIC, 8);
    wu32(&w, TKSE_VERSION);
    wu32(&w, e->split_version);
    const int32_t cfg[7] = { e->c.layers, e->c.heads, e->c.width, e->c.max_bytes, e->c.pool,
                             e->c.head_mlp, e->c.out_dim };
    for (int i = 0; i < 7; i++)
        wu32(&w, (uint32_t)cfg[i]);
    wu32(&w, (uint32_t)e->c.ngram_buckets);
    wu32(&w, (uint32_t)e->c.ngram_max);
    wu64(&w, e->nparams);
    uint64_t tf;
    memcpy(&tf, &e->test_frac, 8);
    wu64(&w, tf);
    wu64(&w, e->split_seed);
    wu64(&w, e->teacher_rows);
    wu64(&w, e->teacher_hash);
    wu64(&w, (uint64_t)e->steps_done);
    wu64(&w, (uint64_t)e->steps_total);
    wu64(&w, e->truncated);
    wput(&w, e->backend, sizeof(e->backend));
    wu32(&w, (uint32_t)opt);
    wf32s(&w, e->params, e->nparams);
    if (opt) {
        wf32s(&w, e->adam_m, e->nparams);
        wf32s(&w, e->adam_v, e->nparams);
    }
    /* version 3: the validation share, its choice, and in checkpoints its weights */
    uint64_t vf;
    memcpy(&vf, &e->valid_frac, 8);
    wu64(&w, vf);
    wu64(&w, (uint64_t)e->best_step);
    uint64_t bm;
    memcpy(&bm, &e->best_mrr, 8);
    wu64(&w, bm);
    int has_best = opt && e->best;
    wu32(&w, (uint32_t)has_best);
    if (has_best)
        wf32s(&w, e->best, e->nparams);
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < w.n; off += 1u << 30) {
        size_t k = w.n - off < (1u << 30) ? w.n - off : (1u << 30);
        crc = crc32(crc, w.p + off, (uInt)k);
    }
    wu32(&w, (uint32_t)crc);
    if (w.err) {
        tkmi_free(w.p);
        return TKM_ENOMEM;
    }
    int rc = tkmi_write_file_atomic(path, w.p, w.n);
    tkmi_free(w.p);
    return rc;
}

typedef struct {
    const unsigned char *p;
    size_t n, off;
    const char *path;
} rbuf;

static int rneed(rbuf *r, size_t k, const char *what)
{
    TKM_RETURN_ERROR_IF(r->n - r->off < k, TKM_EFORMAT, "%s: truncated at offset %zu (reading %s)",
                        r->path, r->off, what);
    return 0;
}

static uint32_t ru32(rbuf *r)
{
    const unsigned char *b = r->p + r->off;
    r->off += 4;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t ru64(rbuf *r)
{
    uint64_t lo = ru32(r);
    return lo | (uint64_t)ru32(r) << 32;
}

static void rf32s(rbuf *r, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = ru32(r);
        memcpy(&x[i], &u, 4);
    }
}

int tkm_se_load(const char *path, tkm_se_encoder **out)
{
    *out = NULL;
    unsigned char *buf;
    size_t n;
    TKM_FORWARD_IF_ERROR(tkmi_read_file(path, &buf, &n));
    rbuf r = { buf, n, 0, path };
    int rc = 0;
    tkm_se_encoder *e = NULL;
#define NEED(k, what) do { rc = rneed(&r, (k), (what)); if (rc < 0) goto fail; } while (0)
    NEED(8 + 4, "the header");
    if (memcmp(buf, TKSE_MAGIC, 8) != 0) {
        rc = tkmi_error(TKM_EFORMAT, "%s: not a tokenmill soft-embedding encoder (bad magic at offset 0)", path);
        goto fail;
    }
    r.off = 8;
    uint32_t ver = ru32(&r);
    if (ver < 1 || ver > TKSE_VERSION) {
        rc = tkmi_error(TKM_ENOTSUP, "%s: encoder file version %u is not supported (this build reads 1 to %u)",
                        path, ver, TKSE_VERSION);
        goto fail;
    }
    uint32_t split_version = 1; /* not recorded in version 1 files: taken as rule 1, which may refuse a few
                                 * encoders that were in fact trained under rule 2, never the reverse */
    if (ver >= 2) {
        NEED(4, "the split version");
        split_version = ru32(&r);
    }
    NEED(7 * 4, "the header");
    tkmi_se_config c;
    c.layers = (int)ru32(&r);
    c.heads = (int)ru32(&r);
    c.width = (int)ru32(&r);
    c.max_bytes = (int)ru32(&r);
    c.pool = (int)ru32(&r);
    c.head_mlp = (int)ru32(&r);
    c.out_dim = (int)ru32(&r);
    c.ngram_buckets = c.ngram_max = 0; /* versions 1 and 2 had no bag */
    if (ver >= 3) {
        NEED(8, "the n-gram bag size");
        c.ngram_buckets = (int)ru32(&r);
        c.ngram_max = (int)ru32(&r);
    }
    NEED(8 + 8 * 8 + 8 + 4, "the header");
    uint64_t np = ru64(&r);
    rc = tkmi_se_config_check(&c);
    if (rc < 0 || (c.head_mlp != 0 && c.head_mlp != 1) || (c.ngram_buckets == 0 && c.ngram_max != 0)) {
        rc = tkmi_error(TKM_EFORMAT, "%s: invalid architecture in the header (%s)", path,
                        rc < 0 ? tkm_last_error() : "head");
        goto fail;
    }
    {
        /* the parameter count follows from the architecture */
        size_t D = (size_t)c.width, T = (size_t)c.max_bytes + 2, E = (size_t)c.out_dim;
        size_t want = (size_t)TKMI_SE_VOCAB * D + T * D + 2 * D + E * D + E +
                      (c.head_mlp ? D * D + D : 0) + (size_t)c.layers * (12 * D * D + 13 * D) +
                      (size_t)c.ngram_buckets * D;
        if (np != want) {
            rc = tkmi_error(TKM_EFORMAT, "%s: parameter count %llu does not match the architecture (%zu)",
                            path, (unsigned long long)np, want);
            goto fail;
        }
    }
    e = encoder_new(&c, (size_t)np);
    if (!e) {
        rc = TKM_ENOMEM;
        goto fail;
    }
    uint64_t tf = ru64(&r);
    memcpy(&e->test_frac, &tf, 8);
    e->split_seed = ru64(&r);
    e->split_version = split_version;
    e->teacher_rows = ru64(&r);
    e->teacher_hash = ru64(&r);
    e->steps_done = (long)ru64(&r);
    e->steps_total = (long)ru64(&r);
    e->truncated = ru64(&r);
    memcpy(e->backend, r.p + r.off, sizeof(e->backend));
    e->backend[sizeof(e->backend) - 1] = 0;
    r.off += sizeof(e->backend);
    uint32_t opt = ru32(&r);
    if (opt > 1) {
        rc = tkmi_error(TKM_EFORMAT, "%s: bad optimizer flag at offset %zu", path, r.off - 4);
        goto fail;
    }
    NEED(np * 4 * (opt ? 3 : 1), "the weights");
    rf32s(&r, e->params, np);
    if (opt) {
        rc = alloc_moments(e);
        if (rc < 0)
            goto fail;
        rf32s(&r, e->adam_m, np);
        rf32s(&r, e->adam_v, np);
    }
    if (ver >= 3) {
        NEED(8 + 8 + 8 + 4, "the validation record");
        uint64_t vf = ru64(&r);
        memcpy(&e->valid_frac, &vf, 8);
        if (!(e->valid_frac >= 0 && e->valid_frac < 1)) {
            rc = tkmi_error(TKM_EFORMAT, "%s: bad validation share at offset %zu", path, r.off - 8);
            goto fail;
        }
        e->best_step = (long)ru64(&r);
        uint64_t bm = ru64(&r);
        memcpy(&e->best_mrr, &bm, 8);
        uint32_t hb = ru32(&r);
        if (hb > 1 || (hb && !opt)) {
            rc = tkmi_error(TKM_EFORMAT, "%s: bad validation record at offset %zu", path, r.off - 4);
            goto fail;
        }
        if (hb) {
            NEED(np * 4, "the validation's weights");
            e->best = tkmi_malloc(np * sizeof(float));
            if (!e->best) {
                rc = TKM_ENOMEM;
                goto fail;
            }
            rf32s(&r, e->best, np);
        }
    }
    NEED(4, "the checksum");
    {
        uLong crc = crc32(0L, Z_NULL, 0);
        for (size_t off = 0; off < r.off; off += 1u << 30) {
            size_t k = r.off - off < (1u << 30) ? r.off - off : (1u << 30);
            crc = crc32(crc, buf + off, (uInt)k);
        }
        uint32_t want = ru32(&r);
        if ((uint32_t)crc != want) {
            rc = tkmi_error(TKM_EFORMAT, "%s: checksum mismatch (file corrupt)", path);
            goto fail;
        }
    }
    if (r.off != n) {
        rc = tkmi_error(TKM_EFORMAT, "%s: %zu trailing bytes after offset %zu", path, n - r.off, r.off);
        goto fail;
    }
#undef NEED
    tkmi_free(buf);
    *out = e;
    return 0;
fail:
    tkmi_free(buf);
    tkm_se_free(e);
    return rc;
}

void tkm_se_free(tkm_se_encoder *e)
{
    if (!e)
        return;
    tkmi_free(e->params);
    tkmi_free(e->adam_m);
    tkmi_free(e->adam_v);
    tkmi_free(e->best);
    tkmi_free(e);
}

void tkm_se_get_info(const tkm_se_encoder *e, tkm_se_info *info)
{
    memset(info, 0, sizeof(*info));
    info->layers = e->c.layers;
    info->heads = e->c.heads;
    info->width = e->c.width;
    info->max_bytes = e->c.max_bytes;
    info->pool_mean = e->c.pool == TKMI_POOL_MEAN;
    info->head_mlp = e->c.head_mlp;
    info->ngram_buckets = e->c.ngram_buckets;
    info->ngram_max = e->c.ngram_max;
    info->valid_frac = e->valid_frac;
    info->best_step = e->best_step;
    info->best_mrr = e->best_mrr;
    info->out_dim = e->c.out_dim;
    info->nparams = e->nparams;
    info->steps_done = e->steps_done;
    info->steps_total = e->steps_total;
    info->test_frac = e->test_frac;
    info->split_seed = e->split_seed;
    info->split_version = e->split_version;
    info->teacher_rows = e->teacher_rows;
    info->teacher_hash = e->teacher_hash;
    info->backend = e->backend;
    info->truncated = e->truncated;
}

/* ---- prediction ----------------------------------------------------------------- */

int tkm_se_predict(const tkm_se_encoder *e, const unsigned char *const *bytes, const size_t *lens, size_t n,
                   int threads, float *out)
{
    if (n == 0)
        return 0;
    tkmi_se_backend *be = NULL;
    tkmi_se_model *m = NULL;
    int rc = tkmi_se_backend_cpu(threads, &be);
    if (rc < 0)
        return rc;
    rc = tkmi_se_model_new_ex(&e->c, be, 256, 0, 0, &m);
    if (rc == 0)
        rc = tkmi_se_model_set(m, e->params, NULL, NULL);
    if (rc == 0)
        rc = forward_rows(m, &e->c, 256, bytes, lens, n, out);
    tkmi_se_model_free(m);
    be->destroy(be);
    return rc;
}
