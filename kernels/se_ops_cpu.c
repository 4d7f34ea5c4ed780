/* se_ops_cpu.c - the CPU reference of every soft-embedding op (se_ops.h): plain
 * C loops that define what each op computes, threaded with a small pthread
 * pool. Work is split over independent outputs and every sum runs in an order
 * fixed by the shapes, so results are bit-identical for any thread count. */
#include "se_ops.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/parallel.h"
#include "../lib/tkm_internal.h"
#include "tokenmill.h"

/* ---- denormals ----------------------------------------------------------------
 * Sharp softmaxes and decaying moments produce subnormal floats, which cost
 * x86 cores a hundred cycles per operation: a training run slowed down 2x as
 * its attention sharpened. Every op runs with flush-to-zero and
 * denormals-are-zero set (MXCSR bits 15 and 6) and the caller's mode restored. */
#if defined(__GNUC__) && (defined(__x86_64__) || (defined(__i386__) && defined(__SSE2__)))
static unsigned ftz_enter(void)
{
    unsigned old = __builtin_ia32_stmxcsr();
    __builtin_ia32_ldmxcsr(old | 0x8040u);
    return old;
}
static void ftz_leave(unsigned old) { __builtin_ia32_ldmxcsr(old); }
#else
static unsigned ftz_enter(void) { return 0; }
static void ftz_leave(unsigned old) { (void)old; }
#endif

/* ---- a persistent thread pool: run fn over [0, n) in contiguous ranges ---- */

typedef void (*range_fn)(void *ctx, size_t begin, size_t end);

typedef struct {
    pthread_t *th;
    int nthreads;            /* workers + the calling thread */
    pthread_mutex_t mu;
    pthread_cond_t cv_go, cv_done;
    uint64_t gen;
    int pending, stop;
    range_fn fn;
    void *ctx;
    size_t n;
} pool;

typedef struct {
    pool *p;
    int idx;
} worker_arg;

static void pool_slice(pool *p, int idx)
{
    size_t b = p->n * (size_t)idx / (size_t)p->nthreads;
    size_t e = p->n * (size_t)(idx + 1) / (size_t)p->nthreads;
    if (b < e) {
        unsigned m = ftz_enter();
        p->fn(p->ctx, b, e);
        ftz_leave(m);
    }
}

static void *pool_main(void *arg)
{
    worker_arg *wa = arg;
    pool *p = wa->p;
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->gen == seen && !p->stop)
            pthread_cond_wait(&p->cv_go, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        pool_slice(p, wa->idx);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0)
            pthread_cond_signal(&p->cv_done);
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

/* Runs fn over [0, n); `grain` is the smallest range worth a thread. */
static void pool_run(pool *p, size_t n, size_t grain, range_fn fn, void *ctx)
{
    if (n == 0)
        return;
    if (p->nthreads == 1 || n < 2 * grain) {
        unsigned m = ftz_enter();
        fn(ctx, 0, n);
        ftz_leave(m);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->pending = p->nthreads - 1;
    p->gen++;
    pthread_cond_broadcast(&p->cv_go);
    pthread_mutex_unlock(&p->mu);
    pool_slice(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0)
        pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static int pool_init(pool *p, int threads)
{
    memset(p, 0, sizeof(*p));
    threads = tkmi_thread_count(threads, 256);
    p->nthreads = threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_go, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    if (threads == 1)
        return 0;
    p->th = tkmi_calloc((size_t)threads, sizeof(pthread_t) + sizeof(worker_arg));
    if (!p->th)
        return TKM_ENOMEM;
    worker_arg *args = (worker_arg *)(p->th + threads);
    for (int i = 1; i < threads; i++) {
        args[i].p = p;
        args[i].idx = i;
        if (pthread_create(&p->th[i], NULL, pool_main, &args[i]) != 0) {
            p->nthreads = i; /* join the ones started */
            return tkmi_error(TKM_ENOMEM, "cannot start worker thread %d", i);
        }
    }
    return 0;
}

static void pool_destroy(pool *p)
{
    if (p->th) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_broadcast(&p->cv_go);
        pthread_mutex_unlock(&p->mu);
        for (int i = 1; i < p->nthreads; i++)
            pthread_join(p->th[i], NULL);
        tkmi_free(p->th);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_go);
    pthread_cond_destroy(&p->cv_done);
}

#define POOL(be) ((pool *)(be)->impl)

/* ---- gemm ---------------------------------------------------------------- */
/* One packed-panel kernel covers every transpose case. C is cut into tasks of
 * MC x NC; a task walks k in blocks of KC and, per block, 16-column panels of
 * op(B) (read in place when op(B) = B and the panel is whole, otherwise copied
 * into a zero-padded [KC][16] buffer) against 6-row tiles of op(A). Each C
 * element is owned by one task and sums k = 0..K-1 block by block, each block
 * in order, so the result does not depend on the thread count. The micro-kernel
 * keeps its 6 x 16 accumulators in twelve 8-lane registers (32-byte vectors:
 * 64-byte ones spill on AVX2 machines and ran at a tenth of the speed). */

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define GEMM_CLONES __attribute__((target_clones("avx512f", "fma", "default"), \
                                   optimize("O3", "fp-contract=fast")))
#else
#define GEMM_CLONES
#endif
/* the other hot loops: vectorized per CPU feature; float sums keep their order
 * (no -ffast-math), so results stay independent of the thread count */
#define HOT GEMM_CLONES

typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));

#define MR 6   /* rows of a micro-tile */
#define NR 16  /* columns of a micro-tile (two 8-lane vectors) */
#define KC 256 /* k block */
#define MC 72  /* rows of a task */
#define NC 256 /* columns of a task */

typedef struct {
    int M, N, K, transB;
    float alpha, beta;
    const float *A;
    size_t ars, aks; /* op(A)(i, k) = A[i * ars + k * aks] */
    const float *B;
    int ldb;
    float *C;
    int ldc;
    int ntn; /* tasks across N */
} gemm_args;

/* tile[r][q] = sum_{k < kc} a(r, k) * b[k * bks + q] for r < mr, all 16 q */
static inline __attribute__((always_inline)) void micro(int mr, int ta, int kc, const float *a,
                                                        size_t ars, size_t aks, const float *b,
                                                        size_t bks, float *tile)
{
    v8 c[MR][2];
    for (int r = 0; r < MR; r++)
        c[r][0] = c[r][1] = (v8){ 0 };
    for (int k = 0; k < kc; k++) {
        const float *bk = b + (size_t)k * bks;
        v8 b0 = *(const v8u *)bk, b1 = *(const v8u *)(bk + 8);
        for (int r = 0; r < mr; r++) {
            float av = ta ? a[(size_t)k * aks + r] : a[(size_t)r * ars + k];
            c[r][0] += av * b0;
            c[r][1] += av * b1;
        }
    }
    for (int r = 0; r < mr; r++) {
        *(v8u *)(tile + r * NR) = c[r][0];
        *(v8u *)(tile + r * NR + 8) = c[r][1];
    }
}

#define MICRO_CASE(n)                                                     \
    case n:                                                               \
        if (ta)                                                           \
            micro(n, 1, kc, a, ars, aks, b, bks, tile);                   \
        else                                                              \
            micro(n, 0, kc, a, ars, aks, b, bks, tile);                   \
        break;

GEMM_CLONES static void gemm_task(const gemm_args *g, size_t task)
{
    int i0 = (int)(task / (size_t)g->ntn) * MC, j0 = (int)(task % (size_t)g->ntn) * NC;
    int i1 = i0 + MC < g->M ? i0 + MC : g->M, j1 = j0 + NC < g->N ? j0 + NC : g->N;
    int ta = g->aks != 1;
    size_t ars = g->ars, aks = g->aks;
    float pack[KC * NR] __attribute__((aligned(32)));
    float tile[MR * NR] __attribute__((aligned(32)));
    for (int k0 = 0; k0 < g->K; k0 += KC) {
        int kc = g->K - k0 < KC ? g->K - k0 : KC;
        int overwrite = k0 == 0 && g->beta == 0.0f;
        for (int j = j0; j < j1; j += NR) {
            int nr = j1 - j < NR ? j1 - j : NR;
            const float *b;
            size_t bks;
            if (!g->transB && nr == NR) {
                b = g->B + (size_t)k0 * g->ldb + j;
                bks = (size_t)g->ldb;
            } else {
                for (int k = 0; k < kc; k++)
                    for (int q = 0; q < NR; q++) {
                        float x = 0.0f;
                        if (q < nr)
                            x = g->transB ? g->B[(size_t)(j + q) * g->ldb + k0 + k]
                                          : g->B[(size_t)(k0 + k) * g->ldb + j + q];
                        pack[k * NR + q] = x;
                    }
                b = pack;
                bks = NR;
            }
            for (int i = i0; i < i1; i += MR) {
                int mr = i1 - i < MR ? i1 - i : MR;
                const float *a = g->A + (size_t)i * ars + (size_t)k0 * aks;
                switch (mr) {
                    MICRO_CASE(6)
                    MICRO_CASE(5)
                    MICRO_CASE(4)
                    MICRO_CASE(3)
                    MICRO_CASE(2)
                    MICRO_CASE(1)
                }
                for (int r = 0; r < mr; r++) {
                    float *c = g->C + (size_t)(i + r) * g->ldc + j;
                    const float *t = tile + r * NR;
                    if (overwrite)
                        for (int q = 0; q < nr; q++)
                            c[q] = g->alpha * t[q];
                    else
                        for (int q = 0; q < nr; q++)
                            c[q] += g->alpha * t[q];
                }
            }
        }
    }
}

static void gemm_range(void *ctx, size_t b, size_t e)
{
    for (size_t t = b; t < e; t++)
        gemm_task(ctx, t);
}

static void cpu_gemm(tkmi_se_backend *be, int transA, int transB, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) { /* an empty sum: C = beta * C */
        for (int i = 0; i < M && beta != 1.0f; i++)
            for (int j = 0; j < N; j++)
                C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
    gemm_args g = { M, N, K, transB, alpha, beta, A,
                    transA ? 1 : (size_t)lda, transA ? (size_t)lda : 1,
                    B, ldb, C, ldc, (N + NC - 1) / NC };
    size_t tasks = (size_t)((M + MC - 1) / MC) * (size_t)g.ntn;
    /* small products run on the calling thread: waking the pool costs more */
    size_t grain = (double)M * N * K < 1e5 ? tasks : 1;
    pool_run(POOL(be), tasks, grain, gemm_range, &g);
}

static void cpu_add_bias(tkmi_se_backend *be, float *out, const float *bias, int N, int C)
{
    (void)be;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            out[(size_t)n * C + c] += bias[c];
}

typedef struct {
    float *d;
    const float *x;
    int N, C;
} colsum_args;

HOT static void colsum_range(void *ctx, size_t b, size_t e)
{
    const colsum_args *a = ctx;
    for (size_t c0 = b * 16; c0 < e * 16 && c0 < (size_t)a->C; c0 += 16) {
        size_t c1 = c0 + 16 < (size_t)a->C ? c0 + 16 : (size_t)a->C;
        float s[16] = {0};
        for (int n = 0; n < a->N; n++)
            for (size_t c = c0; c < c1; c++)
                s[c - c0] += a->x[(size_t)n * a->C + c];
        for (size_t c = c0; c < c1; c++)
            a->d[c] += s[c - c0];
    }
}

static void cpu_bias_grad(tkmi_se_backend *be, float *dbias, const float *dout, int N, int C)
{
    colsum_args a = { dbias, dout, N, C };
    pool_run(POOL(be), (size_t)(C + 15) / 16, 4, colsum_range, &a);
}

/* ---- encoder ops ----------------------------------------------------------- */

typedef struct {
    float *out;
    const int32_t *tok;
    const float *wte, *wpe;
    int B, T, C;
} embed_args;

static void embed_fwd_range(void *ctx, size_t b, size_t e)
{
    const embed_args *a = ctx;
    for (size_t n = b; n < e; n++) {
        const float *w = a->wte + (size_t)a->tok[n] * a->C;
        const float *p = a->wpe + (n % (size_t)a->T) * a->C;
        float *o = a->out + n * a->C;
        for (int c = 0; c < a->C; c++)
            o[c] = w[c] + p[c];
    }
}

static void cpu_embed_fwd(tkmi_se_backend *be, float *out, const int32_t *tok, const float *wte,
                          const float *wpe, int B, int T, int C)
{
    embed_args a = { out, tok, wte, wpe, B, T, C };
    pool_run(POOL(be), (size_t)B * T, 64, embed_fwd_range, &a);
}

typedef struct {
    float *dwte, *dwpe;
    const float *dout;
    const int32_t *tok;
    int B, T, C;
} embed_bwd_args;

/* channels [b, e): every position in order, so sums are order-fixed */
HOT static void embed_bwd_range(void *ctx, size_t b, size_t e)
{
    const embed_bwd_args *a = ctx;
    size_t N = (size_t)a->B * a->T;
    for (size_t n = 0; n < N; n++) {
        const float *d = a->dout + n * a->C;
        float *w = a->dwte + (size_t)a->tok[n] * a->C;
        float *p = a->dwpe + (n % (size_t)a->T) * a->C;
        for (size_t c = b; c < e; c++) {
            w[c] += d[c];
            p[c] += d[c];
        }
    }
}

static void cpu_embed_bwd(tkmi_se_backend *be, float *dwte, float *dwpe, const float *dout,
                          const int32_t *tok, int B, int T, int C)
{
    embed_bwd_args a = { dwte, dwpe, dout, tok, B, T, C };
    pool_run(POOL(be), (size_t)C, 16, embed_bwd_range, &a);
}

typedef struct {
    float *out, *mean, *rstd, *dinp, *dw, *db;
    const float *inp, *w, *b, *dout, *cmean, *crstd;
    int N, C;
} ln_args;

HOT static void ln_fwd_range(void *ctx, size_t b, size_t e)
{
    const ln_args *a = ctx;
    const int C = a->C;
    for (size_t n = b; n < e; n++) {
        const float *x = a->inp + n * C;
        float m = 0.0f;
        for (int c = 0; c < C; c++)
            m += x[c];
        m /= (float)C;
        float v = 0.0f;
        for (int c = 0; c < C; c++) {
            float d = x[c] - m;
            v += d * d;
        }
        v /= (float)C;
        float s = 1.0f / sqrtf(v + 1e-5f);
        float *o = a->out + n * C;
        for (int c = 0; c < C; c++)
            o[c] = (x[c] - m) * s * a->w[c] + a->b[c];
        a->mean[n] = m;
        a->rstd[n] = s;
    }
}

static void cpu_layernorm_fwd(tkmi_se_backend *be, float *out, float *mean, float *rstd,
                              const float *inp, const float *w, const float *b, int N, int C)
{
    ln_args a = { .out = out, .mean = mean, .rstd = rstd, .inp = inp, .w = w, .b = b, .N = N, .C = C };
    pool_run(POOL(be), (size_t)N, 16, ln_fwd_range, &a);
}

/* dinp, per row */
HOT static void ln_bwd_rows(void *ctx, size_t b, size_t e)
{
    const ln_args *a = ctx;
    const int C = a->C;
    for (size_t n = b; n < e; n++) {
        const float *x = a->inp + n * C, *d = a->dout + n * C;
        float m = a->cmean[n], s = a->crstd[n];
        float dn_mean = 0.0f, dn_norm_mean = 0.0f;
        for (int c = 0; c < C; c++) {
            float xh = (x[c] - m) * s;
            float dn = a->w[c] * d[c];
            dn_mean += dn;
            dn_norm_mean += dn * xh;
        }
        dn_mean /= (float)C;
        dn_norm_mean /= (float)C;
        float *di = a->dinp + n * C;
        for (int c = 0; c < C; c++) {
            float xh = (x[c] - m) * s;
            float dn = a->w[c] * d[c];
            di[c] += (dn - dn_mean - xh * dn_norm_mean) * s;
        }
    }
}

/* dw, db: channel blocks, rows in order */
HOT static void ln_bwd_cols(void *ctx, size_t b, size_t e)
{
    const ln_args *a = ctx;
    const int C = a->C;
    for (size_t c0 = b * 16; c0 < e * 16 && c0 < (size_t)C; c0 += 16) {
        size_t c1 = c0 + 16 < (size_t)C ? c0 + 16 : (size_t)C;
        float sw[16] = {0}, sb[16] = {0};
        for (int n = 0; n < a->N; n++) {
            const float *x = a->inp + (size_t)n * C, *d = a->dout + (size_t)n * C;
            float m = a->cmean[n], s = a->crstd[n];
            for (size_t c = c0; c < c1; c++) {
                sw[c - c0] += (x[c] - m) * s * d[c];
                sb[c - c0] += d[c];
            }
        }
        for (size_t c = c0; c < c1; c++) {
            a->dw[c] += sw[c - c0];
            a->db[c] += sb[c - c0];
        }
    }
}

static void cpu_layernorm_bwd(tkmi_se_backend *be, float *dinp, float *dw, float *db,
                              const float *dout, const float *inp, const float *w,
                              const float *mean, const float *rstd, int N, int C)
{
    ln_args a = { .dinp = dinp, .dw = dw, .db = db, .dout = dout, .inp = inp, .w = w,
                  .cmean = mean, .crstd = rstd, .N = N, .C = C };
    pool_run(POOL(be), (size_t)N, 16, ln_bwd_rows, &a);
    pool_run(POOL(be), (size_t)(C + 15) / 16, 2, ln_bwd_cols, &a);
}

typedef struct {
    float *out, *att, *dqkv;
    const float *qkv, *dout, *catt;
    const int32_t *len;
    int B, T, C, H;
} attn_args;

HOT static void attn_fwd_range(void *ctx, size_t b0, size_t e0)
{
    const attn_args *a = ctx;
    const int T = a->T, C = a->C, H = a->H, hs = C / H;
    const float scale = 1.0f / sqrtf((float)hs);
    for (size_t bh = b0; bh < e0; bh++) {
        int b = (int)(bh / (size_t)H), h = (int)(bh % (size_t)H), L = a->len[b];
        const float *base = a->qkv + (size_t)b * T * 3 * C;
        for (int t = 0; t < T; t++) {
            const float *q = base + (size_t)t * 3 * C + h * hs;
            float *row = a->att + (((size_t)b * H + h) * T + t) * T;
            float mx = -INFINITY;
            for (int u = 0; u < L; u++) {
                const float *k = base + (size_t)u * 3 * C + C + h * hs;
                float s = 0.0f;
                for (int i = 0; i < hs; i++)
                    s += q[i] * k[i];
                s *= scale;
                row[u] = s;
                if (s > mx)
                    mx = s;
            }
            float sum = 0.0f;
            for (int u = 0; u < L; u++) {
                row[u] = expf(row[u] - mx);
                sum += row[u];
            }
            float inv = 1.0f / sum;
            for (int u = 0; u < L; u++)
                row[u] *= inv;
            for (int u = L; u < T; u++)
                row[u] = 0.0f;
            float *o = a->out + ((size_t)b * T + t) * C + h * hs;
            for (int i = 0; i < hs; i++)
                o[i] = 0.0f;
            for (int u = 0; u < L; u++) {
                const float *v = base + (size_t)u * 3 * C + 2 * C + h * hs;
                for (int i = 0; i < hs; i++)
                    o[i] += row[u] * v[i];
            }
        }
    }
}

static void cpu_attention_fwd(tkmi_se_backend *be, float *out, float *att, const float *qkv,
                              const int32_t *len, int B, int T, int C, int H)
{
    attn_args a = { .out = out, .att = att, .qkv = qkv, .len = len, .B = B, .T = T, .C = C, .H = H };
    pool_run(POOL(be), (size_t)B * H, 1, attn_fwd_range, &a);
}

HOT static void attn_bwd_range(void *ctx, size_t b0, size_t e0)
{
    const attn_args *a = ctx;
    const int T = a->T, C = a->C, H = a->H, hs = C / H;
    const float scale = 1.0f / sqrtf((float)hs);
    float datt[1024]; /* T <= 1024 (checked by the model) */
    for (size_t bh = b0; bh < e0; bh++) {
        int b = (int)(bh / (size_t)H), h = (int)(bh % (size_t)H), L = a->len[b];
        const float *base = a->qkv + (size_t)b * T * 3 * C;
        float *dbase = a->dqkv + (size_t)b * T * 3 * C;
        for (int t = 0; t < T; t++)
            for (int part = 0; part < 3; part++)
                memset(dbase + (size_t)t * 3 * C + part * C + h * hs, 0, (size_t)hs * sizeof(float));
        for (int t = 0; t < T; t++) {
            const float *row = a->catt + (((size_t)b * H + h) * T + t) * T;
            const float *d = a->dout + ((size_t)b * T + t) * C + h * hs;
            const float *q = base + (size_t)t * 3 * C + h * hs;
            float *dq = dbase + (size_t)t * 3 * C + h * hs;
            float dot = 0.0f;
            for (int u = 0; u < L; u++) {
                const float *v = base + (size_t)u * 3 * C + 2 * C + h * hs;
                float *dv = dbase + (size_t)u * 3 * C + 2 * C + h * hs;
                float s = 0.0f;
                for (int i = 0; i < hs; i++) {
                    s += d[i] * v[i];
                    dv[i] += row[u] * d[i];
                }
                datt[u] = s;
                dot += row[u] * s;
            }
            for (int u = 0; u < L; u++) {
                float dpre = row[u] * (datt[u] - dot) * scale;
                const float *k = base + (size_t)u * 3 * C + C + h * hs;
                float *dk = dbase + (size_t)u * 3 * C + C + h * hs;
                for (int i = 0; i < hs; i++) {
                    dq[i] += dpre * k[i];
                    dk[i] += dpre * q[i];
                }
            }
        }
    }
}

static void cpu_attention_bwd(tkmi_se_backend *be, float *dqkv, const float *dout, const float *qkv,
                              const float *att, const int32_t *len, int B, int T, int C, int H)
{
    attn_args a = { .dqkv = dqkv, .dout = dout, .qkv = qkv, .catt = att, .len = len,
                    .B = B, .T = T, .C = C, .H = H };
    pool_run(POOL(be), (size_t)B * H, 1, attn_bwd_range, &a);
}

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

/* e^x in float, written so loops over it vectorize (libm's expf does not):
 * x = k ln2 + r, |r| <= ln2/2, e^r by its degree-6 Taylor polynomial (error
 * < 2e-7 relative), 2^k built in the exponent bits. Inputs are clamped to
 * [-87, 88], where the result is a normal float. */
static inline float vexpf(float x)
{
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    float k = floorf(x * 1.4426950408889634f + 0.5f);
    float r = x - k * 0.693145751953125f - k * 1.428606765330187e-06f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
    int32_t bits = ((int32_t)k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

/* tanh via e^{2u}: 1 - 2 / (e^{2u} + 1); absolute error ~1e-7 */
static inline float vtanhf(float u)
{
    return 1.0f - 2.0f / (vexpf(2.0f * u) + 1.0f);
}

typedef struct {
    float *out;
    const float *a, *b, *c;
} ew_args;

HOT static void gelu_fwd_range(void *ctx, size_t b, size_t e)
{
    const ew_args *a = ctx;
    for (size_t i = b; i < e; i++) {
        float x = a->a[i];
        a->out[i] = 0.5f * x * (1.0f + vtanhf(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

static void cpu_gelu_fwd(tkmi_se_backend *be, float *out, const float *inp, size_t n)
{
    ew_args a = { out, inp, NULL, NULL };
    pool_run(POOL(be), n, 4096, gelu_fwd_range, &a);
}

HOT static void gelu_bwd_range(void *ctx, size_t b, size_t e)
{
    const ew_args *a = ctx;
    for (size_t i = b; i < e; i++) {
        float x = a->a[i];
        float u = GELU_K * (x + 0.044715f * x * x * x);
        float th = vtanhf(u);
        float sech2 = 1.0f - th * th;
        float g = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        a->out[i] = g * a->b[i];
    }
}

static void cpu_gelu_bwd(tkmi_se_backend *be, float *dinp, const float *inp, const float *dout, size_t n)
{
    ew_args a = { dinp, inp, dout, NULL };
    pool_run(POOL(be), n, 4096, gelu_bwd_range, &a);
}

static void add_range(void *ctx, size_t b, size_t e)
{
    const ew_args *a = ctx;
    for (size_t i = b; i < e; i++)
        a->out[i] = a->a[i] + a->b[i];
}

static void cpu_add(tkmi_se_backend *be, float *out, const float *x, const float *y, size_t n)
{
    ew_args a = { out, x, y, NULL };
    pool_run(POOL(be), n, 8192, add_range, &a);
}

static void cpu_pool_fwd(tkmi_se_backend *be, float *out, const float *x, const int32_t *len, int B,
                         int T, int C, int mode)
{
    (void)be;
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * C;
        int L = len[b];
        if (mode == TKMI_POOL_END) {
            memcpy(o, x + ((size_t)b * T + L - 1) * C, (size_t)C * sizeof(float));
            continue;
        }
        for (int c = 0; c < C; c++)
            o[c] = 0.0f;
        for (int t = 0; t < L; t++)
            for (int c = 0; c < C; c++)
                o[c] += x[((size_t)b * T + t) * C + c];
        for (int c = 0; c < C; c++)
            o[c] /= (float)L;
    }
}

static void cpu_pool_bwd(tkmi_se_backend *be, float *dx, const float *dout, const int32_t *len,
                         int B, int T, int C, int mode)
{
    (void)be;
    memset(dx, 0, (size_t)B * T * C * sizeof(float));
    for (int b = 0; b < B; b++) {
        const float *d = dout + (size_t)b * C;
        int L = len[b];
        if (mode == TKMI_POOL_END) {
            memcpy(dx + ((size_t)b * T + L - 1) * C, d, (size_t)C * sizeof(float));
            continue;
        }
        for (int t = 0; t < L; t++)
            for (int c = 0; c < C; c++)
                dx[((size_t)b * T + t) * C + c] = d[c] / (float)L;
    }
}

/* ---- hashed n-gram bag ------------------------------------------------------ */

static void cpu_bag_fwd(tkmi_se_backend *be, float *out, const float *tab, const int32_t *feat,
                        const int32_t *cnt, int B, int F, int C)
{
    (void)be;
    float s[256];
    for (int b = 0; b < B; b++) {
        const int32_t *f = feat + (size_t)b * F;
        for (int c0 = 0; c0 < C; c0 += 256) { /* channels in chunks that fit s */
            int nc = C - c0 < 256 ? C - c0 : 256;
            for (int c = 0; c < nc; c++)
                s[c] = 0.0f;
            for (int j = 0; j < cnt[b]; j++) {
                const float *r = tab + (size_t)f[j] * C + c0;
                for (int c = 0; c < nc; c++)
                    s[c] += r[c];
            }
            float *o = out + (size_t)b * C + c0;
            for (int c = 0; c < nc; c++)
                o[c] += s[c] / (float)cnt[b];
        }
    }
}

typedef struct {
    float *dtab;
    const float *dout;
    const int32_t *ubkt, *uoff, *erow, *cnt;
    int C;
} bag_bwd_args;

/* each bucket is one table row, so buckets split across threads freely */
HOT static void bag_bwd_range(void *ctx, size_t b, size_t e)
{
    const bag_bwd_args *a = ctx;
    for (size_t u = b; u < e; u++) {
        float *d = a->dtab + (size_t)a->ubkt[u] * a->C;
        for (int32_t k = a->uoff[u]; k < a->uoff[u + 1]; k++) {
            const int32_t r = a->erow[k];
            const float *g = a->dout + (size_t)r * a->C;
            const float n = (float)a->cnt[r];
            for (int c = 0; c < a->C; c++)
                d[c] += g[c] / n;
        }
    }
}

static void cpu_bag_bwd(tkmi_se_backend *be, float *dtab, const float *dout, const int32_t *ubkt,
                        const int32_t *uoff, const int32_t *erow, const int32_t *cnt, int U, int C)
{
    bag_bwd_args a = { dtab, dout, ubkt, uoff, erow, cnt, C };
    pool_run(POOL(be), (size_t)U, 256, bag_bwd_range, &a);
}

/* ---- losses ---------------------------------------------------------------- */

static void cpu_gather_rows(tkmi_se_backend *be, float *out, const float *m, const int32_t *idx,
                            int B, int C)
{
    (void)be;
    for (int b = 0; b < B; b++)
        memcpy(out + (size_t)b * C, m + (size_t)idx[b] * C, (size_t)C * sizeof(float));
}

typedef struct {
    float *out, *norm;
    const float *inp;
    int C;
} rn_args;

HOT static void rn_range(void *ctx, size_t b, size_t e)
{
    const rn_args *a = ctx;
    for (size_t r = b; r < e; r++) {
        const float *x = a->inp + r * a->C;
        float s = 0.0f;
        for (int c = 0; c < a->C; c++)
            s += x[c] * x[c];
        float nrm = sqrtf(s);
        if (nrm < 1e-12f)
            nrm = 1e-12f;
        float *o = a->out + r * a->C;
        for (int c = 0; c < a->C; c++)
            o[c] = x[c] / nrm;
        a->norm[r] = nrm;
    }
}

static void cpu_row_normalize(tkmi_se_backend *be, float *out, float *norm, const float *inp, int R, int C)
{
    rn_args a = { out, norm, inp, C };
    pool_run(POOL(be), (size_t)R, 256, rn_range, &a);
}

static void cpu_row_normalize_bwd(tkmi_se_backend *be, float *dinp, const float *dout, const float *out,
                                  const float *norm, int R, int C)
{
    (void)be;
    for (int r = 0; r < R; r++) {
        const float *d = dout + (size_t)r * C, *y = out + (size_t)r * C;
        float dot = 0.0f;
        for (int c = 0; c < C; c++)
            dot += d[c] * y[c];
        float *di = dinp + (size_t)r * C;
        for (int c = 0; c < C; c++)
            di[c] += (d[c] - y[c] * dot) / norm[r];
    }
}

static void cpu_pointwise_loss(tkmi_se_backend *be, float *loss, float *dy, const float *y,
                               const float *t, int B, int C, float w_mse, float w_l1, float w_cos)
{
    (void)be;
    const float invB = 1.0f / (float)B, invC = 1.0f / (float)C;
    for (int b = 0; b < B; b++) {
        const float *yb = y + (size_t)b * C, *tb = t + (size_t)b * C;
        float *d = dy + (size_t)b * C;
        float se = 0.0f, ae = 0.0f, yy = 0.0f, tt = 0.0f, yt = 0.0f;
        for (int c = 0; c < C; c++) {
            float e = yb[c] - tb[c];
            se += e * e;
            ae += fabsf(e);
            yy += yb[c] * yb[c];
            tt += tb[c] * tb[c];
            yt += yb[c] * tb[c];
        }
        float ny = sqrtf(yy), nt = sqrtf(tt);
        if (ny < 1e-12f)
            ny = 1e-12f;
        if (nt < 1e-12f)
            nt = 1e-12f;
        float cosv = yt / (ny * nt);
        loss[b] = w_mse * se * invC + w_l1 * ae * invC + w_cos * (1.0f - cosv);
        for (int c = 0; c < C; c++) {
            float e = yb[c] - tb[c];
            float g = w_mse * 2.0f * e * invC;
            g += w_l1 * (e > 0.0f ? 1.0f : e < 0.0f ? -1.0f : 0.0f) * invC;
            /* d(1 - cos)/dy = -(t/(|y||t|) - cos * y/|y|^2) */
            g -= w_cos * (tb[c] / (ny * nt) - cosv * yb[c] / (ny * ny));
            d[c] = g * invB;
        }
    }
}

typedef struct {
    float *loss, *dl;
    const float *logits;
    const int32_t *idx;
    int B, V;
    float w;
} sx_args;

HOT static void sx_range(void *ctx, size_t b0, size_t e0)
{
    const sx_args *a = ctx;
    for (size_t b = b0; b < e0; b++) {
        const float *l = a->logits + b * (size_t)a->V;
        float *d = a->dl + b * (size_t)a->V;
        float mx = -INFINITY;
        for (int v = 0; v < a->V; v++)
            if (l[v] > mx)
                mx = l[v];
        for (int v = 0; v < a->V; v++)
            d[v] = vexpf(l[v] - mx);
        double sum = 0.0;
        for (int v = 0; v < a->V; v++)
            sum += d[v];
        a->loss[b] += a->w * (float)(log(sum) + (double)mx - (double)l[a->idx[b]]);
        float scale = (float)((double)a->w / (double)a->B / sum);
        for (int v = 0; v < a->V; v++)
            d[v] *= scale;
        scale = a->w / (float)a->B;
        d[a->idx[b]] -= scale;
    }
}

static void cpu_softmax_xent(tkmi_se_backend *be, float *loss, float *dlogits, const float *logits,
                             const int32_t *idx, int B, int V, float weight)
{
    sx_args a = { loss, dlogits, logits, idx, B, V, weight };
    pool_run(POOL(be), (size_t)B, 1, sx_range, &a);
}

/* ---- optimizer --------------------------------------------------------------- */

#define SUMSQ_CHUNK 65536

typedef struct {
    const float *x;
    size_t n;
    double *part;
} sq_args;

static void sq_range(void *ctx, size_t b, size_t e)
{
    const sq_args *a = ctx;
    for (size_t ch = b; ch < e; ch++) {
        size_t i0 = ch * SUMSQ_CHUNK, i1 = i0 + SUMSQ_CHUNK < a->n ? i0 + SUMSQ_CHUNK : a->n;
        double s = 0.0;
        for (size_t i = i0; i < i1; i++)
            s += (double)a->x[i] * a->x[i];
        a->part[ch] = s;
    }
}

static double cpu_sumsq(tkmi_se_backend *be, const float *x, size_t n)
{
    size_t nch = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
    double stackp[64], *part = nch <= 64 ? stackp : tkmi_malloc(nch * sizeof(double));
    if (!part)
        return NAN;
    sq_args a = { x, n, part };
    pool_run(POOL(be), nch, 1, sq_range, &a);
    double s = 0.0;
    for (size_t i = 0; i < nch; i++)
        s += part[i];
    if (part != stackp)
        tkmi_free(part);
    return s;
}

typedef struct {
    float *p, *m, *v;
    const float *g;
    float lr, b1, b2, eps, wd, c1, c2, gs;
} adam_args;

HOT static void adam_range(void *ctx, size_t b, size_t e)
{
    const adam_args *a = ctx;
    for (size_t i = b; i < e; i++) {
        float g = a->g[i] * a->gs;
        float m = a->b1 * a->m[i] + (1.0f - a->b1) * g;
        float v = a->b2 * a->v[i] + (1.0f - a->b2) * g * g;
        a->m[i] = m;
        a->v[i] = v;
        float mh = m / a->c1, vh = v / a->c2;
        a->p[i] -= a->lr * (mh / (sqrtf(vh) + a->eps) + a->wd * a->p[i]);
    }
}

static void cpu_adamw(tkmi_se_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                      float lr, float beta1, float beta2, float eps, float wd, int t, float gscale)
{
    adam_args a = { p, m, v, g, lr, beta1, beta2, eps, wd,
                    1.0f - powf(beta1, (float)t), 1.0f - powf(beta2, (float)t), gscale };
    pool_run(POOL(be), n, 8192, adam_range, &a);
}

/* ---- memory ------------------------------------------------------------------ */

static void *cpu_alloc(tkmi_se_backend *be, size_t bytes)
{
    (void)be;
    return tkmi_calloc(1, bytes ? bytes : 1);
}

static void cpu_free(tkmi_se_backend *be, void *p)
{
    (void)be;
    tkmi_free(p);
}

static void cpu_copy(tkmi_se_backend *be, void *dst, const void *src, size_t bytes)
{
    (void)be;
    if (bytes)
        memmove(dst, src, bytes);
}

static void cpu_zero(tkmi_se_backend *be, void *p, size_t bytes)
{
    (void)be;
    memset(p, 0, bytes);
}

static int cpu_sync(tkmi_se_backend *be)
{
    (void)be;
    return 0;
}

static void cpu_destroy(tkmi_se_backend *be)
{
    if (!be)
        return;
    pool_destroy(POOL(be));
    tkmi_free(be->impl);
    tkmi_free(be);
}

int tkmi_se_backend_cpu(int threads, tkmi_se_backend **out)
{
    *out = NULL;
    tkmi_se_backend *be = tkmi_calloc(1, sizeof(*be));
    pool *p = tkmi_calloc(1, sizeof(*p));
    if (!be || !p) {
        tkmi_free(be);
        tkmi_free(p);
        return TKM_ENOMEM;
    }
    int rc = pool_init(p, threads);
    be->impl = p;
    if (rc < 0) {
        cpu_destroy(be);
        return rc;
    }
    be->name = "cpu";
    be->alloc = cpu_alloc;
    be->free = cpu_free;
    be->upload = cpu_copy;
    be->download = cpu_copy;
    be->zero = cpu_zero;
    be->sync = cpu_sync;
    be->destroy = cpu_destroy;
    be->gemm = cpu_gemm;
    be->add_bias = cpu_add_bias;
    be->bias_grad = cpu_bias_grad;
    be->embed_fwd = cpu_embed_fwd;
    be->embed_bwd = cpu_embed_bwd;
    be->layernorm_fwd = cpu_layernorm_fwd;
    be->layernorm_bwd = cpu_layernorm_bwd;
    be->attention_fwd = cpu_attention_fwd;
    be->attention_bwd = cpu_attention_bwd;
    be->gelu_fwd = cpu_gelu_fwd;
    be->gelu_bwd = cpu_gelu_bwd;
    be->add = cpu_add;
    be->pool_fwd = cpu_pool_fwd;
    be->pool_bwd = cpu_pool_bwd;
    be->bag_fwd = cpu_bag_fwd;
    be->bag_bwd = cpu_bag_bwd;
    be->gather_rows = cpu_gather_rows;
    be->row_normalize = cpu_row_normalize;
    be->row_normalize_bwd = cpu_row_normalize_bwd;
    be->pointwise_loss = cpu_pointwise_loss;
    be->softmax_xent = cpu_softmax_xent;
    be->sumsq = cpu_sumsq;
    be->adamw = cpu_adamw;
    *out = be;
    return 0;
}
