/* eval.c - honest evaluation of soft embeddings: a grouped train/test split of
 * the teacher vocabulary, retrieval metrics against the whole teacher matrix,
 * and four baselines that see only the training rows. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>
#include <unicode/ustring.h>

#include "../kernels/se_ops.h"
#include "../lib/tkm_internal.h"
#include "tokenmill_softemb.h"

/* ---- split ------------------------------------------------------------------------ */

/* Normalized key of a row: leading spaces dropped, case folded (ASCII fast
 * path, ICU full folding otherwise). Returns its hash. */
static uint64_t group_hash(const unsigned char *b, size_t n, uint64_t seed)
{
    while (n && *b == ' ') {
        b++;
        n--;
    }
    int ascii = 1;
    for (size_t i = 0; i < n; i++)
        ascii &= b[i] < 0x80;
    uint64_t h = tkmi_hash_u64(seed ^ 0xA5A5A5A5DEADBEEFull);
    if (ascii) {
        char buf[256];
        while (n) {
            size_t k = n < sizeof(buf) ? n : sizeof(buf);
            for (size_t i = 0; i < k; i++)
                buf[i] = (char)(b[i] >= 'A' && b[i] <= 'Z' ? b[i] + 32 : b[i]);
            h = tkmi_hash_u64(h ^ tkmi_hash_bytes(buf, k));
            b += k;
            n -= k;
        }
        return h;
    }
    UChar src[512], dst[1024];
    int32_t sl = 0, dl;
    UErrorCode st = U_ZERO_ERROR;
    if (n < 256)
        u_strFromUTF8Lenient(src, 512, &sl, (const char *)b, (int32_t)n, &st);
    if (n >= 256 || U_FAILURE(st)) /* very long or undecodable: hash the bytes */
        return tkmi_hash_u64(h ^ tkmi_hash_bytes(b, n));
    st = U_ZERO_ERROR;
    dl = u_strFoldCase(dst, 1024, src, sl, U_FOLD_CASE_DEFAULT, &st);
    if (U_FAILURE(st))
        return tkmi_hash_u64(h ^ tkmi_hash_bytes(b, n));
    return tkmi_hash_u64(h ^ tkmi_hash_bytes(dst, (size_t)dl * sizeof(UChar)));
}

int tkm_se_split(const tkm_teacher *t, double test_frac, uint64_t seed, uint8_t *split)
{
    TKM_RETURN_ERROR_IF(!(test_frac >= 0.0 && test_frac < 1.0), TKM_EINVAL, "test fraction must be in [0, 1)");
    uint64_t cut = (uint64_t)(test_frac * 18446744073709551616.0);
    int ntest = 0;
    for (size_t r = 0; r < tkm_teacher_rows(t); r++) {
        if (tkm_teacher_row_kind(t, r) != TKM_ROW_NORMAL) {
            split[r] = 2;
            continue;
        }
        size_t n;
        const unsigned char *b = tkm_teacher_bytes(t, r, &n);
        split[r] = group_hash(b, n, seed) < cut;
        ntest += split[r];
    }
    return ntest;
}

/* ---- metrics ------------------------------------------------------------------------- */

#define CHUNK 4096

int tkm_se_metrics_compute(const tkm_teacher *t, const float *pred, const uint32_t *rows, size_t n, int threads,
                           tkm_se_metrics *out)
{
    memset(out, 0, sizeof(*out));
    out->n = n;
    if (n == 0)
        return 0;
    const size_t R = tkm_teacher_rows(t), E = tkm_teacher_dim(t);
    const float *M = tkm_teacher_matrix(t);
    tkmi_se_backend *be = NULL;
    TKM_FORWARD_IF_ERROR(tkmi_se_backend_cpu(threads, &be));
    float *mn = tkmi_malloc(R * sizeof(float)), *qn = tkmi_malloc(n * sizeof(float));
    float *tdot = tkmi_malloc(n * sizeof(float)), *tcos = tkmi_malloc(n * sizeof(float));
    float *sc = tkmi_malloc(n * CHUNK * sizeof(float));
    uint32_t *above_dot = tkmi_calloc(n, sizeof(uint32_t)), *above_cos = tkmi_calloc(n, sizeof(uint32_t));
    int rc = 0;
    if (!mn || !qn || !tdot || !tcos || !sc || !above_dot || !above_cos) {
        rc = tkmi_error(TKM_ENOMEM, "out of memory for metrics");
        goto done;
    }
    for (size_t r = 0; r < R; r++) {
        double s = 0;
        for (size_t c = 0; c < E; c++)
            s += (double)M[r * E + c] * M[r * E + c];
        mn[r] = (float)sqrt(s);
    }
    double sum_cos = 0, sum_rel = 0;
    for (size_t i = 0; i < n; i++) {
        double s = 0, d = 0, e2 = 0;
        const float *p = pred + i * E, *g = M + (size_t)rows[i] * E;
        for (size_t c = 0; c < E; c++) {
            s += (double)p[c] * p[c];
            d += (double)p[c] * g[c];
            e2 += ((double)p[c] - g[c]) * ((double)p[c] - g[c]);
        }
        qn[i] = (float)sqrt(s);
        double gn = mn[rows[i]];
        sum_cos += qn[i] > 0 && gn > 0 ? d / (qn[i] * gn) : 0.0;
        sum_rel += gn > 0 ? sqrt(e2) / gn : 0.0;
    }
    /* the target's own score, computed by the same kernel as the others */
    for (size_t r0 = 0; r0 < R; r0 += CHUNK) {
        size_t nr = R - r0 < CHUNK ? R - r0 : CHUNK;
        be->gemm(be, 0, 1, (int)n, (int)nr, (int)E, 1.0f, pred, (int)E, M + r0 * E, (int)E, 0.0f, sc, (int)nr);
        for (size_t i = 0; i < n; i++)
            if (rows[i] >= r0 && rows[i] < r0 + nr) {
                float dv = sc[i * nr + (rows[i] - r0)];
                tdot[i] = dv;
                tcos[i] = dv / (qn[i] * mn[rows[i]] + 1e-30f);
            }
    }
    for (size_t r0 = 0; r0 < R; r0 += CHUNK) {
        size_t nr = R - r0 < CHUNK ? R - r0 : CHUNK;
        be->gemm(be, 0, 1, (int)n, (int)nr, (int)E, 1.0f, pred, (int)E, M + r0 * E, (int)E, 0.0f, sc, (int)nr);
        for (size_t i = 0; i < n; i++) {
            const float *s = sc + i * nr;
            uint32_t ad = 0, ac = 0;
            for (size_t j = 0; j < nr; j++) {
                size_t r = r0 + j;
                float cv = s[j] / (qn[i] * mn[r] + 1e-30f);
                ad += s[j] > tdot[i] || (s[j] == tdot[i] && r < rows[i]);
                ac += cv > tcos[i] || (cv == tcos[i] && r < rows[i]);
            }
            above_dot[i] += ad;
            above_cos[i] += ac;
        }
    }
    double mrr = 0;
    size_t t1c = 0, t10c = 0, t1d = 0, t10d = 0;
    for (size_t i = 0; i < n; i++) {
        t1c += above_cos[i] == 0;
        t10c += above_cos[i] < 10;
        t1d += above_dot[i] == 0;
        t10d += above_dot[i] < 10;
        mrr += 1.0 / (1.0 + above_cos[i]);
    }
    out->top1_cos = (double)t1c / n;
    out->top10_cos = (double)t10c / n;
    out->top1_dot = (double)t1d / n;
    out->top10_dot = (double)t10d / n;
    out->mrr_cos = mrr / n;
    out->mean_cos = sum_cos / n;
    out->rel_l2 = sum_rel / n;
done:
    tkmi_free(mn);
    tkmi_free(qn);
    tkmi_free(tdot);
    tkmi_free(tcos);
    tkmi_free(sc);
    tkmi_free(above_dot);
    tkmi_free(above_cos);
    be->destroy(be);
    return rc;
}

/* ---- baselines ------------------------------------------------------------------------ */

const char *tkm_se_baseline_name(tkm_se_baseline b)
{
    static const char *const names[] = { "subtoken-mean", "ngram-ridge", "nearest-string", "global-mean" };
    return (unsigned)b < TKM_BASE_COUNT ? names[b] : "?";
}

static void global_mean(const tkm_teacher *t, const uint8_t *split, double *mean)
{
    const size_t R = tkm_teacher_rows(t), E = tkm_teacher_dim(t);
    const float *M = tkm_teacher_matrix(t);
    size_t k = 0;
    memset(mean, 0, E * sizeof(double));
    for (size_t r = 0; r < R; r++) {
        if (split[r] != 0)
            continue;
        for (size_t c = 0; c < E; c++)
            mean[c] += M[r * E + c];
        k++;
    }
    for (size_t c = 0; c < E; c++)
        mean[c] /= k ? (double)k : 1.0;
}

/* (a) greedy longest match over the train rows' bytes */
static int base_subtoken(const tkm_teacher *t, const uint8_t *split, const uint32_t *rows, size_t n,
                         const double *mean, float *pred)
{
    const size_t R = tkm_teacher_rows(t), E = tkm_teacher_dim(t);
    const float *M = tkm_teacher_matrix(t);
    tkmi_strmap map;
    TKM_FORWARD_IF_ERROR(tkmi_strmap_init(&map, R));
    size_t maxlen = 0;
    int rc = 0;
    for (size_t r = 0; r < R && rc == 0; r++) { /* lowest row wins for equal bytes */
        if (split[r] != 0)
            continue;
        size_t l;
        const unsigned char *b = tkm_teacher_bytes(t, r, &l);
        if (l == 0 || tkmi_strmap_get(&map, (const char *)b, l) >= 0)
            continue;
        rc = tkmi_strmap_put(&map, (const char *)b, l, (int32_t)r);
        if (rc > 0)
            rc = 0;
        if (l > maxlen)
            maxlen = l;
    }
    double *acc = tkmi_malloc(E * sizeof(double));
    if (!acc)
        rc = TKM_ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t l;
        const unsigned char *b = tkm_teacher_bytes(t, rows[i], &l);
        memset(acc, 0, E * sizeof(double));
        size_t parts = 0;
        for (size_t pos = 0; pos < l;) {
            size_t k = l - pos < maxlen ? l - pos : maxlen;
            int32_t hit = -1;
            for (; k > 0 && hit < 0; k--)
                hit = tkmi_strmap_get(&map, (const char *)b + pos, k);
            if (hit < 0) {
                pos++; /* no train piece starts here: skip a byte */
                continue;
            }
            k++; /* the loop decremented once past the hit */
            for (size_t c = 0; c < E; c++)
                acc[c] += M[(size_t)hit * E + c];
            parts++;
            pos += k;
        }
        for (size_t c = 0; c < E; c++)
            pred[i * E + c] = (float)(parts ? acc[c] / (double)parts : mean[c]);
    }
    tkmi_free(acc);
    tkmi_strmap_free(&map);
    return rc;
}

/* (b) ridge regression on hashed byte n-grams */
#define NG_DIM 2048

/* Sparse features of " " + bytes + " ": 1..4-grams hashed into NG_DIM
 * buckets with a sign, L2-normalised; returns the number of entries. */
static size_t ngram_features(const unsigned char *b, size_t n, uint32_t *idx, float *val, size_t cap)
{
    unsigned char buf[1030];
    if (n > 1024)
        n = 1024;
    buf[0] = ' ';
    memcpy(buf + 1, b, n);
    buf[n + 1] = ' ';
    size_t L = n + 2, k = 0;
    for (size_t g = 1; g <= 4; g++)
        for (size_t i = 0; i + g <= L && k < cap; i++) {
            uint64_t h = tkmi_hash_bytes(buf + i, g) ^ (g * 0x9E3779B97F4A7C15ull);
            h = tkmi_hash_u64(h);
            idx[k] = (uint32_t)(h % NG_DIM);
            val[k] = (h >> 63) ? -1.0f : 1.0f;
            k++;
        }
    double s = 0;
    for (size_t i = 0; i < k; i++)
        s += (double)val[i] * val[i];
    float inv = (float)(1.0 / sqrt(s > 0 ? s : 1));
    for (size_t i = 0; i < k; i++)
        val[i] *= inv;
    return k;
}

/* Solves (A + lambda I) W = B for W (D x E) by Cholesky; A is D x D. */
static int ridge_solve(const double *A, const double *B, size_t D, size_t E, double lambda, float *W)
{
    double *L = tkmi_malloc(D * D * sizeof(double)), *y = tkmi_malloc(D * sizeof(double));
    if (!L || !y) {
        tkmi_free(L);
        tkmi_free(y);
        return TKM_ENOMEM;
    }
    memcpy(L, A, D * D * sizeof(double));
    for (size_t i = 0; i < D; i++)
        L[i * D + i] += lambda;
    for (size_t j = 0; j < D; j++) { /* lower-triangular Cholesky, row-major */
        double d = L[j * D + j];
        for (size_t k = 0; k < j; k++)
            d -= L[j * D + k] * L[j * D + k];
        d = sqrt(d > 1e-300 ? d : 1e-300);
        L[j * D + j] = d;
        for (size_t i = j + 1; i < D; i++) {
            double s = L[i * D + j];
            const double *li = L + i * D, *lj = L + j * D;
            for (size_t k = 0; k < j; k++)
                s -= li[k] * lj[k];
            L[i * D + j] = s / d;
        }
    }
    /* L Y = B, then L^T W = Y, one row of E right-hand sides at a time (axpy
     * over contiguous rows: vectorizes without reordering any sum) */
    double *Y = tkmi_malloc(D * E * sizeof(double));
    if (!Y) {
        tkmi_free(L);
        tkmi_free(y);
        return TKM_ENOMEM;
    }
    for (size_t i = 0; i < D; i++) {
        double *yi = Y + i * E;
        memcpy(yi, B + i * E, E * sizeof(double));
        for (size_t k = 0; k < i; k++) {
            double l = L[i * D + k];
            if (l == 0.0)
                continue;
            const double *yk = Y + k * E;
            for (size_t e = 0; e < E; e++)
                yi[e] -= l * yk[e];
        }
        for (size_t e = 0; e < E; e++)
            yi[e] /= L[i * D + i];
    }
    for (size_t i = D; i-- > 0;) {
        double *yi = Y + i * E;
        for (size_t k = i + 1; k < D; k++) {
            double l = L[k * D + i];
            if (l == 0.0)
                continue;
            const double *wk = Y + k * E;
            for (size_t e = 0; e < E; e++)
                yi[e] -= l * wk[e];
        }
        for (size_t e = 0; e < E; e++)
            yi[e] /= L[i * D + i];
    }
    for (size_t i = 0; i < D * E; i++)
        W[i] = (float)Y[i];
    tkmi_free(Y);
    tkmi_free(L);
    tkmi_free(y);
    return 0;
}

static void ridge_predict(const tkm_teacher *t, const uint32_t *rows, size_t n, const float *W, const double *mean,
                          float *pred)
{
    const size_t E = tkm_teacher_dim(t);
    uint32_t idx[4200];
    float val[4200];
    for (size_t i = 0; i < n; i++) {
        size_t l;
        const unsigned char *b = tkm_teacher_bytes(t, rows[i], &l);
        size_t k = ngram_features(b, l, idx, val, 4200);
        float *p = pred + i * E;
        for (size_t c = 0; c < E; c++)
            p[c] = (float)mean[c];
        for (size_t j = 0; j < k; j++)
            for (size_t c = 0; c < E; c++)
                p[c] += val[j] * W[(size_t)idx[j] * E + c];
    }
}

/* Accumulates X^T X and X^T (Y - mean) over train rows with (r % 10 == hold) excluded (hold < 0: none). */
static void ridge_accumulate(const tkm_teacher *t, const uint8_t *split, const double *mean, int hold, double *A,
                             double *B)
{
    const size_t R = tkm_teacher_rows(t), E = tkm_teacher_dim(t), D = NG_DIM;
    const float *M = tkm_teacher_matrix(t);
    uint32_t idx[4200];
    float val[4200];
    memset(A, 0, D * D * sizeof(double));
    memset(B, 0, D * E * sizeof(double));
    for (size_t r = 0; r < R; r++) {
        if (split[r] != 0 || (hold >= 0 && (int)(tkmi_hash_u64(r) % 10) == hold))
            continue;
        size_t l;
        const unsigned char *b = tkm_teacher_bytes(t, r, &l);
        size_t k = ngram_features(b, l, idx, val, 4200);
        for (size_t a = 0; a < k; a++) {
            double *Ar = A + (size_t)idx[a] * D;
            for (size_t c = 0; c < k; c++)
                Ar[idx[c]] += (double)val[a] * val[c];
            double *Br = B + (size_t)idx[a] * E;
            for (size_t e = 0; e < E; e++)
                Br[e] += (double)val[a] * ((double)M[r * E + e] - mean[e]);
        }
    }
}

static int base_ridge(const tkm_teacher *t, const uint8_t *split, const uint32_t *rows, size_t n,
                      const double *mean, float *pred)
{
    const size_t R = tkm_teacher_rows(t), E = tkm_teacher_dim(t), D = NG_DIM;
    const float *M = tkm_teacher_matrix(t);
    double *A = tkmi_malloc(D * D * sizeof(double)), *B = tkmi_malloc(D * E * sizeof(double));
    float *W = tkmi_malloc(D * E * sizeof(float));
    uint32_t *vr = tkmi_malloc(R * sizeof(uint32_t));
    float *vp = NULL;
    int rc = 0;
    if (!A || !B || !W || !vr) {
        rc = TKM_ENOMEM;
        goto done;
    }
    /* choose lambda on a tenth of the train rows, then refit on all of them */
    size_t nv = 0;
    for (size_t r = 0; r < R; r++)
        if (split[r] == 0 && tkmi_hash_u64(r) % 10 == 0)
            vr[nv++] = (uint32_t)r;
    static const double grid[] = { 0.03, 0.3, 3.0 };
    double best_l = grid[1], best = -2;
    if (nv) {
        vp = tkmi_malloc(nv * E * sizeof(float));
        if (!vp) {
            rc = TKM_ENOMEM;
            goto done;
        }
        ridge_accumulate(t, split, mean, 0, A, B);
        for (size_t g = 0; g < sizeof(grid) / sizeof(grid[0]); g++) {
            if ((rc = ridge_solve(A, B, D, E, grid[g], W)) < 0)
                goto done;
            ridge_predict(t, vr, nv, W, mean, vp);
            double cs = 0;
            for (size_t i = 0; i < nv; i++) {
                double d = 0, a = 0, b = 0;
                for (size_t c = 0; c < E; c++) {
                    d += (double)vp[i * E + c] * M[(size_t)vr[i] * E + c];
                    a += (double)vp[i * E + c] * vp[i * E + c];
                    b += (double)M[(size_t)vr[i] * E + c] * M[(size_t)vr[i] * E + c];
                }
                cs += a > 0 && b > 0 ? d / sqrt(a * b) : 0;
            }
            if (cs > best) {
                best = cs;
                best_l = grid[g];
            }
        }
    }
    ridge_accumulate(t, split, mean, -1, A, B);
    if ((rc = ridge_solve(A, B, D, E, best_l, W)) < 0)
        goto done;
    ridge_predict(t, rows, n, W, mean, pred);
done:
    tkmi_free(A);
    tkmi_free(B);
    tkmi_free(W);
    tkmi_free(vr);
    tkmi_free(vp);
    return rc;
}

/* (c) nearest training string by byte edit distance */
typedef struct {
    const tkm_teacher *t;
    const uint32_t *train, *rows;
    size_t ntrain, n;
    float *pred;
} nn_ctx;

static size_t levenshtein(const unsigned char *a, size_t la, const unsigned char *b, size_t lb, size_t bound,
                          size_t *row)
{
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0], lo = i;
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t v = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < v)
                v = row[j] + 1;
            if (row[j - 1] + 1 < v)
                v = row[j - 1] + 1;
            row[j] = v;
            prev = cur;
            if (v < lo)
                lo = v;
        }
        if (lo >= bound)
            return bound; /* cannot beat the best so far */
    }
    return row[lb];
}

static void *nn_worker(void *arg)
{
    nn_ctx *c = arg;
    const size_t E = tkm_teacher_dim(c->t);
    const float *M = tkm_teacher_matrix(c->t);
    size_t *row = malloc(1100 * sizeof(size_t));
    for (size_t i = 0; i < c->n && row; i++) {
        size_t la;
        const unsigned char *a = tkm_teacher_bytes(c->t, c->rows[i], &la);
        if (la > 1024)
            la = 1024;
        size_t best = SIZE_MAX;
        uint32_t bestr = c->train[0];
        for (size_t k = 0; k < c->ntrain; k++) {
            size_t lb;
            const unsigned char *b = tkm_teacher_bytes(c->t, c->train[k], &lb);
            if (lb > 1024)
                lb = 1024;
            size_t diff = la > lb ? la - lb : lb - la;
            if (diff >= best)
                continue;
            size_t d = levenshtein(a, la, b, lb, best, row);
            if (d < best) {
                best = d;
                bestr = c->train[k];
            }
        }
        memcpy(c->pred + i * E, M + (size_t)bestr * E, E * sizeof(float));
    }
    free(row);
    return NULL;
}

static int base_nearest(const tkm_teacher *t, const uint8_t *split, const uint32_t *rows, size_t n, int threads,
                        float *pred)
{
    const size_t R = tkm_teacher_rows(t), E = tkm_teacher_dim(t);
    uint32_t *train = tkmi_malloc(R * sizeof(uint32_t));
    if (!train)
        return TKM_ENOMEM;
    size_t nt = 0;
    for (size_t r = 0; r < R; r++)
        if (split[r] == 0)
            train[nt++] = (uint32_t)r;
    if (nt == 0) {
        tkmi_free(train);
        return tkmi_error(TKM_EEMPTY, "no training rows");
    }
    if (threads <= 0)
        threads = 2;
    if (threads > 64)
        threads = 64;
    pthread_t th[64];
    nn_ctx ctx[64];
    size_t per = (n + (size_t)threads - 1) / (size_t)threads;
    int started = 0;
    for (int k = 0; k < threads; k++) {
        size_t b = (size_t)k * per, e = b + per < n ? b + per : n;
        ctx[k] = (nn_ctx){ t, train, rows + (b < n ? b : n), nt, b < e ? e - b : 0, pred + (b < n ? b : n) * E };
        if (pthread_create(&th[k], NULL, nn_worker, &ctx[k]) != 0)
            nn_worker(&ctx[k]);
        else
            started |= 1 << (k % 31);
    }
    for (int k = 0; k < threads; k++)
        if (started & (1 << (k % 31)))
            pthread_join(th[k], NULL);
    tkmi_free(train);
    return 0;
}

int tkm_se_baseline_predict(const tkm_teacher *t, const uint8_t *split, tkm_se_baseline which, const uint32_t *rows,
                            size_t n, int threads, float *pred)
{
    const size_t E = tkm_teacher_dim(t);
    double *mean = tkmi_malloc(E * sizeof(double));
    TKM_RETURN_ERROR_IF(!mean, TKM_ENOMEM, "out of memory");
    global_mean(t, split, mean);
    int rc = 0;
    switch (which) {
    case TKM_BASE_SUBTOKEN_MEAN: rc = base_subtoken(t, split, rows, n, mean, pred); break;
    case TKM_BASE_NGRAM_RIDGE: rc = base_ridge(t, split, rows, n, mean, pred); break;
    case TKM_BASE_NEAREST: rc = base_nearest(t, split, rows, n, threads, pred); break;
    case TKM_BASE_GLOBAL_MEAN:
        for (size_t i = 0; i < n; i++)
            for (size_t c = 0; c < E; c++)
                pred[i * E + c] = (float)mean[c];
        break;
    default: rc = tkmi_error(TKM_EINVAL, "unknown baseline %d", (int)which);
    }
    tkmi_free(mean);
    return rc;
}
