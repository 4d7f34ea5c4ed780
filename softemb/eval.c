/* eval.c - honest evaluation of soft embeddings: a grouped train/test split of
 * the teacher vocabulary, retrieval metrics against the whole teacher matrix,
 * and four baselines that see only the training rows (eval_internal.h). */
#include <math.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <unicode/uchar.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include "../lib/parallel.h"
#include "../lib/tkm_internal.h"
#include "eval_internal.h"
#include "tokenmill_softemb.h"

/* The tile kernels (eval_kernels.h) are compiled once per vector width for
 * an ISA that has it and picked at run time; other hot loops are cloned per
 * CPU feature. Float sums keep their order (no -ffast-math), and every score
 * goes through the same inlined kernel, so on a given machine results depend
 * on neither the thread count nor which rows share a tile. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define SE_X86 1
#define HOT __attribute__((target_clones("avx512f", "fma", "default"), optimize("O3", "fp-contract=fast")))
#define ATTR_W16 __attribute__((target("avx512f"), optimize("O3", "fp-contract=fast")))
#define ATTR_W8 __attribute__((target("avx2,fma"), optimize("O3", "fp-contract=fast")))
#define ATTR_W4 __attribute__((optimize("O3", "fp-contract=fast")))
#define ALWAYS_INLINE inline __attribute__((always_inline))
#elif defined(__GNUC__) && !defined(__clang__)
#define HOT __attribute__((optimize("O3", "fp-contract=fast")))
#define ATTR_W4 HOT
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define HOT
#define ATTR_W4
#define ALWAYS_INLINE inline __attribute__((always_inline))
#endif

/* ---- threads: run fn(ctx, task, tid) for task in [0, ntasks) ----------------------- */

#define MAX_THREADS 256

typedef void (*task_fn)(void *ctx, size_t task, int tid);
typedef struct {
    task_fn fn;
    void *ctx;
    size_t ntasks;
    atomic_size_t next;
} par_job;
typedef struct {
    par_job *job;
    int tid;
    int rc; /* tasks cannot fail: always 0 */
} par_arg;

static int nthreads_of(int threads) { return tkmi_thread_count(threads, MAX_THREADS); }

static void *par_main(void *p)
{
    par_arg *a = p;
    for (;;) {
        size_t t = atomic_fetch_add(&a->job->next, 1);
        if (t >= a->job->ntasks)
            break;
        a->job->fn(a->job->ctx, t, a->tid);
    }
    return NULL;
}

/* Tasks are taken from a shared counter, so which thread runs which task
 * varies; callers make every task's result independent of that (each task
 * owns its outputs; per-thread integer counts are summed at the end). The
 * threads run through the one parallel-for (lib/parallel.h): a thread that
 * cannot be created runs on the caller's, finding what tasks are left. */
static void par_run(int threads, size_t ntasks, task_fn fn, void *ctx)
{
    par_job job = { fn, ctx, ntasks, 0 };
    if ((size_t)threads > ntasks)
        threads = ntasks ? (int)ntasks : 1;
    par_arg args[MAX_THREADS];
    for (int i = 0; i < threads; i++)
        args[i] = (par_arg){ &job, i, 0 };
    tkmi_par_jobs(args, threads, sizeof *args, offsetof(par_arg, rc), par_main);
}

/* ---- split -------------------------------------------------------------------------------- */

size_t tkmi_se_group_key(const unsigned char *b, size_t len, unsigned char *out, size_t cap)
{
    size_t o = 0;
    while (len && *b == ' ') {
        b++;
        len--;
    }
    for (size_t i = 0; i < len;) {
        unsigned char c = b[i];
        if (c < 0x80) { /* ASCII: what ICU's folding does there too */
            if (o < cap)
                out[o] = (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            o++;
            i++;
            continue;
        }
        int mb;
        int32_t cp = tkmi_utf8_decode(b + i, len - i, &mb);
        if (cp < 0) { /* not UTF-8: keep the raw byte, escaped */
            if (o + 2 <= cap) {
                out[o] = 0xFF;
                out[o + 1] = c;
            }
            o += 2;
            i++;
            continue;
        }
        i += (size_t)mb;
        UChar src[2], dst[8];
        int32_t sl = 0;
        U16_APPEND_UNSAFE(src, sl, cp);
        UErrorCode st = U_ZERO_ERROR;
        int32_t dl = u_strFoldCase(dst, 8, src, sl, U_FOLD_CASE_DEFAULT, &st);
        if (U_FAILURE(st) || dl <= 0) {
            memcpy(dst, src, sizeof(src));
            dl = sl;
        }
        for (int32_t k = 0; k < dl;) {
            UChar32 f;
            U16_NEXT(dst, k, dl, f);
            char enc[4];
            int el = tkmi_utf8_encode((uint32_t)f, enc);
            if (o + (size_t)el <= cap)
                memcpy(out + o, enc, (size_t)el);
            o += (size_t)el;
        }
    }
    return o;
}

uint64_t tkmi_se_group_hash(const unsigned char *key, size_t len, uint64_t seed)
{
    return tkmi_hash_u64(tkmi_hash_bytes(key, len) ^ tkmi_hash_u64(seed ^ 0x73706c6974ull /* "split" */));
}

static uint64_t frac_cut(double frac)
{
    double c = ldexp(frac, 64);
    return c >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)c;
}

/* Test (1) when the group's hash is below cut; scratch grows as needed. */
static int group_side(const unsigned char *b, size_t len, uint64_t seed, uint64_t cut, unsigned char **scratch,
                      size_t *cap, int *side)
{
    size_t need = 4 * len + 4;
    if (need > *cap) {
        unsigned char *p = tkmi_realloc(*scratch, need);
        TKM_RETURN_ERROR_IF(!p, TKM_ENOMEM, "out of memory for the split");
        *scratch = p;
        *cap = need;
    }
    size_t kl = tkmi_se_group_key(b, len, *scratch, *cap);
    *side = tkmi_se_group_hash(*scratch, kl, seed) < cut;
    return 0;
}

int tkmi_se_split_view(const tkmi_se_view *v, double test_frac, uint64_t seed, uint8_t *split)
{
    TKM_RETURN_ERROR_IF(!(test_frac >= 0.0 && test_frac < 1.0), TKM_EINVAL,
                        "test fraction %g is not in [0, 1)", test_frac);
    const uint64_t cut = frac_cut(test_frac);
    unsigned char *scratch = NULL;
    size_t cap = 0;
    long ntest = 0;
    int rc = 0;
    for (size_t r = 0; r < v->rows && rc == 0; r++) {
        if (v->kinds && v->kinds[r] != TKM_ROW_NORMAL) {
            split[r] = 2;
            continue;
        }
        int side = 0;
        rc = group_side(v->bytes[r], v->lens[r], seed, cut, &scratch, &cap, &side);
        split[r] = (uint8_t)side;
        ntest += side;
    }
    tkmi_free(scratch);
    if (rc < 0)
        return rc;
    TKM_RETURN_ERROR_IF(ntest > 0x7fffffffL, TKM_ERANGE, "%ld test rows do not fit the return value", ntest);
    return (int)ntest;
}

/* ---- metrics ------------------------------------------------------------------------------
 *
 * Ranking n queries against R rows is an (n x dim) x (dim x R) product. Rows
 * are cut into blocks that fit in L2 (one task each); a block is packed into
 * k-major tiles of NR rows so the kernel loads NR row values per k with a
 * vector load and broadcasts one value of each of MR queries:
 *
 *     tile (NR rows):  p[k][0..NR)      queries: q0[k] ... q(MR-1)[k]
 *     acc[i][j] += q_i[k] * p[k][j]      for k = 0..dim-1, in order
 *
 * Each score is one float sum over k in order, so a row's score against a
 * query does not depend on its tile, block or thread. The target's own score
 * is computed first by the same kernel (a tile of the MR targets, diagonal
 * kept), then every block counts rows above the target (score > target's, or
 * equal with a lower index) into per-thread integer counters, summed at the
 * end: no n x R matrix, results independent of the thread count. */

#define MR 6
#define NR_MAX 32 /* the widest tile (16-float vectors) */

typedef struct {
    const float *m, *pred;
    const uint32_t *rows;
    size_t n, R, dim, rb, nqb;
    const float *invn; /* 1/|row|, 0 for a zero row; padded with zeros to a tile */
    const float *zero; /* dim zeros: the query of a padded slot */
    float *tdot, *tcos;
    float **panel;     /* per thread: rb * dim */
    uint32_t **cnt;    /* per thread: 2n (cosine, dot) */
} mctx;

static void set_q(const mctx *c, size_t qb, const float *q[MR])
{
    for (int i = 0; i < MR; i++) {
        size_t qi = qb * MR + (size_t)i;
        q[i] = qi < c->n ? c->pred + qi * c->dim : c->zero;
    }
}

/* Packs nr rows k-major into p: rows ids[0..nr) (UINT32_MAX: zeros) or,
 * without ids, rows [r0, r0 + nr) (zeros past R). */
static void pack_tile(const mctx *c, const uint32_t *ids, size_t r0, size_t nr, float *p)
{
    for (size_t j = 0; j < nr; j++) {
        size_t r = ids ? ids[j] : r0 + j;
        if (ids ? r == UINT32_MAX : r >= c->R) {
            for (size_t k = 0; k < c->dim; k++)
                p[k * nr + j] = 0.0f;
            continue;
        }
        const float *row = c->m + r * c->dim;
        for (size_t k = 0; k < c->dim; k++)
            p[k * nr + j] = row[k];
    }
}

/* the dense solver's tiles (see the Cholesky below) */
#define DMR 6            /* rows per double tile */
#define KC 256           /* k chunk kept in L2 */
#define RBLK (8 * DMR)   /* rows per block passing over a chunk */
#define CB 64            /* Cholesky column block */
#define SOLVE_COLS 64    /* right-hand sides per solve task */

typedef struct {
    double *a;
    size_t n, j0, jb;
    const double *panel; /* k-major L[J][0:j0]: panel[k * CB + j] */
    const double *zero;  /* a row of zeros for padded tile rows */
    const double *lt;    /* L[J][J] transposed, CB x CB */
    double *t;           /* partial sums, (n + RBLK) x CB */
} chol_ctx;

typedef struct {
    const double *l;
    size_t n, m;
    double *b;
    const double *zero;
    double **t; /* per thread: RBLK x SOLVE_COLS */
} solve_ctx;

typedef struct {
    int width; /* floats per vector */
    task_fn target, rank, chol_update, solve;
} se_kernels;

#ifdef SE_X86
#define KW 16
#define KSUF _w16
#define KATTR ATTR_W16
#include "eval_kernels.h"
#define KW 8
#define KSUF _w8
#define KATTR ATTR_W8
#include "eval_kernels.h"
#endif
#define KW 4
#define KSUF _w4
#define KATTR ATTR_W4
#include "eval_kernels.h"

static int best_w = 4, forced_width; /* forced: tests only */
static pthread_once_t best_once = PTHREAD_ONCE_INIT;

static void find_best_width(void)
{
#ifdef SE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        best_w = 16;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        best_w = 8;
#endif
}

int tkmi_se_kernel_width(int width)
{
    pthread_once(&best_once, find_best_width);
    forced_width = width == 4 || (width == 8 && best_w >= 8) || (width == 16 && best_w >= 16) ? width : 0;
    return forced_width ? forced_width : best_w;
}

/* for_metrics: on the Xeon we develop on, 8-float vectors score 1.3-1.9x
 * faster than 16-float ones (which win by ~15% in the double solver), so the
 * metrics take width 8 where both run, unless a width is forced. */
static const se_kernels *kernels(int for_metrics)
{
    pthread_once(&best_once, find_best_width);
    const int w = forced_width ? forced_width : for_metrics && best_w == 16 ? 8 : best_w;
#ifdef SE_X86
    if (w == 16)
        return &kernels_w16;
    if (w == 8)
        return &kernels_w8;
#endif
    (void)w;
    return &kernels_w4;
}

int tkmi_se_metrics_view(const tkmi_se_view *v, const float *pred, const uint32_t *rows, size_t n, int threads,
                         tkm_se_metrics *out, uint32_t *rank_cos, uint32_t *rank_dot)
{
    memset(out, 0, sizeof(*out));
    out->n = n;
    if (n == 0)
        return 0;
    const size_t R = v->rows, E = v->dim;
    TKM_RETURN_ERROR_IF(R == 0 || E == 0, TKM_EINVAL, "empty teacher matrix");
    TKM_RETURN_ERROR_IF(R >= 0x7fffffffu - 2 * NR_MAX, TKM_ERANGE, "%zu teacher rows are too many", R);
    for (size_t i = 0; i < n; i++)
        TKM_RETURN_ERROR_IF(rows[i] >= R, TKM_EINVAL, "query %zu: target row %u is not below %zu", i,
                            (unsigned)rows[i], R);
    threads = nthreads_of(threads);
    mctx c = { .m = v->m, .pred = pred, .rows = rows, .n = n, .R = R, .dim = E };
    /* a block of rows fills about 512 KB packed */
    size_t rb = (512u * 1024 / (E * sizeof(float))) / NR_MAX * NR_MAX;
    c.rb = rb < NR_MAX ? NR_MAX : rb > 8192 ? 8192 : rb;
    c.nqb = (n + MR - 1) / MR;
    const size_t nblk = (R + c.rb - 1) / c.rb;
    if ((size_t)threads > nblk)
        threads = (int)nblk;
    float *invn = tkmi_calloc(R + 2 * NR_MAX, sizeof(float)), *zero = tkmi_calloc(E, sizeof(float));
    float *tdot = tkmi_malloc(n * sizeof(float)), *tcos = tkmi_malloc(n * sizeof(float));
    float **panel = tkmi_calloc((size_t)threads, sizeof(float *));
    uint32_t **cnt = tkmi_calloc((size_t)threads, sizeof(uint32_t *));
    int rc = 0;
    if (!invn || !zero || !tdot || !tcos || !panel || !cnt)
        rc = TKM_ENOMEM;
    for (int t = 0; t < threads && rc == 0; t++) {
        panel[t] = tkmi_malloc(c.rb * E * sizeof(float));
        cnt[t] = tkmi_calloc(2 * n, sizeof(uint32_t));
        if (!panel[t] || !cnt[t])
            rc = TKM_ENOMEM;
    }
    if (rc < 0) {
        rc = tkmi_error(TKM_ENOMEM, "out of memory for metrics over %zu x %zu", R, E);
        goto done;
    }
    for (size_t r = 0; r < R; r++) {
        const float *g = v->m + r * E;
        double s = 0;
        for (size_t k = 0; k < E; k++)
            s += (double)g[k] * g[k];
        invn[r] = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
    }
    /* per-query quality, in double, summed in query order */
    double sum_cos = 0, sum_rel = 0;
    for (size_t i = 0; i < n; i++) {
        const float *p = pred + i * E, *g = v->m + (size_t)rows[i] * E;
        double pp = 0, pg = 0, gg = 0, dd = 0;
        for (size_t k = 0; k < E; k++) {
            pp += (double)p[k] * p[k];
            pg += (double)p[k] * g[k];
            gg += (double)g[k] * g[k];
            dd += ((double)p[k] - g[k]) * ((double)p[k] - g[k]);
        }
        if (!isfinite(pp)) {
            rc = tkmi_error(TKM_ERANGE, "prediction %zu (row %u) is not finite", i, (unsigned)rows[i]);
            goto done;
        }
        sum_cos += pp > 0 && gg > 0 ? pg / sqrt(pp * gg) : 0.0;
        sum_rel += gg > 0 ? sqrt(dd / gg) : 0.0;
    }
    c.invn = invn;
    c.zero = zero;
    c.tdot = tdot;
    c.tcos = tcos;
    c.panel = panel;
    c.cnt = cnt;
    const se_kernels *kn = kernels(1);
    par_run(threads, c.nqb, kn->target, &c);
    par_run(threads, nblk, kn->rank, &c);
    double mrr = 0;
    size_t t1c = 0, t10c = 0, t1d = 0, t10d = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t ac = 0, ad = 0;
        for (int t = 0; t < threads; t++) {
            ac += cnt[t][2 * i];
            ad += cnt[t][2 * i + 1];
        }
        t1c += ac == 0;
        t10c += ac < 10;
        t1d += ad == 0;
        t10d += ad < 10;
        mrr += 1.0 / (1.0 + ac);
        if (rank_cos)
            rank_cos[i] = ac + 1;
        if (rank_dot)
            rank_dot[i] = ad + 1;
    }
    out->top1_cos = (double)t1c / (double)n;
    out->top10_cos = (double)t10c / (double)n;
    out->top1_dot = (double)t1d / (double)n;
    out->top10_dot = (double)t10d / (double)n;
    out->mrr_cos = mrr / (double)n;
    out->mean_cos = sum_cos / (double)n;
    out->rel_l2 = sum_rel / (double)n;
done:
    for (int t = 0; panel && cnt && t < threads; t++) {
        tkmi_free(panel[t]);
        tkmi_free(cnt[t]);
    }
    tkmi_free(panel);
    tkmi_free(cnt);
    tkmi_free(invn);
    tkmi_free(zero);
    tkmi_free(tdot);
    tkmi_free(tcos);
    return rc;
}

/* ---- dense linear algebra for the ridge baseline ---------------------------------------
 *
 * The same scheme in double: a DMR x DNR tile of partial sums T continues
 * T[i][j] += sum_k a_i[k] * p[k][j] in k order, the a rows read in place (one
 * broadcast per row and k), p rows DNR wide at stride ldp. Long sums are cut
 * into chunks of KC so the p chunk stays in L2 while a block of RBLK rows
 * passes over it; a partial sum is stored and reloaded exactly, so chunking
 * changes no result. */

#define KC 256
#define RBLK (8 * DMR)

/* Cholesky, left-looking by column blocks of CB:
 *
 *   for each block J = [j0, j0 + jb):
 *     1. rows i >= j0:  a[i][J] -= L[i][0:j0] . L[J][0:j0]     (the bulk: tiles)
 *     2. factor the diagonal block in place                      (sequential)
 *     3. rows i >= j0 + jb:  a[i][J] <- a[i][J] L[J][J]^-T        (row by row)
 *
 * Every entry subtracts one tile sum over k < j0, then its k in [j0, j) one
 * by one, whatever rows a thread takes. */



/* step 3 for row j0 + jb + task: right-looking inside the block, so the
 * inner loop runs over contiguous columns; each entry still subtracts in k order */
HOT static void chol_solve_row_task(void *ctx, size_t task, int tid)
{
    chol_ctx *c = ctx;
    const size_t i = c->j0 + c->jb + task, jb = c->jb;
    double *x = c->a + i * c->n + c->j0;
    for (size_t j = 0; j < jb; j++) {
        double xj = x[j] / c->lt[j * CB + j];
        x[j] = xj;
        const double *l = c->lt + j * CB;
        for (size_t j2 = j + 1; j2 < jb; j2++)
            x[j2] -= xj * l[j2];
    }
}

int tkmi_se_cholesky(double *a, size_t n, int threads)
{
    if (n == 0)
        return 0;
    threads = nthreads_of(threads);
    double *panel = tkmi_malloc(n * CB * sizeof(double)), *zero = tkmi_calloc(n, sizeof(double));
    double *lt = tkmi_calloc(CB * CB, sizeof(double)), *t = tkmi_malloc((n + RBLK) * CB * sizeof(double));
    if (!panel || !zero || !lt || !t) {
        tkmi_free(panel);
        tkmi_free(zero);
        tkmi_free(lt);
        tkmi_free(t);
        return tkmi_error(TKM_ENOMEM, "out of memory for a %zu x %zu Cholesky factorization", n, n);
    }
    chol_ctx c = { .a = a, .n = n, .panel = panel, .zero = zero, .lt = lt, .t = t };
    int rc = 0;
    for (size_t j0 = 0; j0 < n && rc == 0; j0 += CB) {
        const size_t jb = n - j0 < CB ? n - j0 : CB;
        c.j0 = j0;
        c.jb = jb;
        if (j0 > 0) {
            for (size_t k = 0; k < j0; k++) /* panel[k][j] = L[j0 + j][k] */
                for (size_t j = 0; j < CB; j++)
                    panel[k * CB + j] = j < jb ? a[(j0 + j) * n + k] : 0.0;
            par_run(threads, (n - j0 + RBLK - 1) / RBLK, kernels(0)->chol_update, &c);
        }
        /* step 2: the diagonal block, column by column */
        for (size_t j = 0; j < jb; j++) {
            double *rj = a + (j0 + j) * n + j0;
            double d = rj[j];
            for (size_t k = 0; k < j; k++)
                d -= rj[k] * rj[k];
            if (!(d > 0.0) || !isfinite(d)) {
                rc = tkmi_error(TKM_ERANGE, "matrix is not positive definite (pivot %zu of %zu is %g)", j0 + j, n,
                                d);
                break;
            }
            d = sqrt(d);
            rj[j] = d;
            for (size_t i = j + 1; i < jb; i++) {
                double *ri = a + (j0 + i) * n + j0;
                double s = ri[j];
                for (size_t k = 0; k < j; k++)
                    s -= ri[k] * rj[k];
                ri[j] = s / d;
            }
        }
        if (rc < 0)
            break;
        for (size_t j = 0; j < jb; j++)
            for (size_t j2 = 0; j2 < jb; j2++)
                lt[j * CB + j2] = j2 >= j ? a[(j0 + j2) * n + j0 + j] : 0.0;
        if (j0 + jb < n)
            par_run(threads, n - j0 - jb, chol_solve_row_task, &c);
    }
    /* mirror L into the upper triangle: row i of it is column i of L, which
     * the back substitution reads contiguously */
    for (size_t i = 0; i < n && rc == 0; i++)
        for (size_t j = 0; j < i; j++)
            a[j * n + i] = a[i * n + j];
    tkmi_free(panel);
    tkmi_free(zero);
    tkmi_free(lt);
    tkmi_free(t);
    return rc;
}



int tkmi_se_cholesky_solve(const double *l, size_t n, double *b, size_t m, int threads)
{
    if (n == 0 || m == 0)
        return 0;
    threads = nthreads_of(threads);
    const size_t ntask = (m + SOLVE_COLS - 1) / SOLVE_COLS;
    if ((size_t)threads > ntask)
        threads = (int)ntask;
    double *zero = tkmi_calloc(n, sizeof(double));
    double **t = tkmi_calloc((size_t)threads, sizeof(double *));
    int rc = zero && t ? 0 : TKM_ENOMEM;
    for (int i = 0; i < threads && rc == 0; i++)
        if (!(t[i] = tkmi_malloc(RBLK * SOLVE_COLS * sizeof(double))))
            rc = TKM_ENOMEM;
    if (rc == 0) {
        solve_ctx c = { l, n, m, b, zero, t };
        par_run(threads, ntask, kernels(0)->solve, &c);
    } else {
        rc = tkmi_error(TKM_ENOMEM, "out of memory for a triangular solve");
    }
    for (int i = 0; t && i < threads; i++)
        tkmi_free(t[i]);
    tkmi_free(t);
    tkmi_free(zero);
    return rc;
}

/* ---- baselines ----------------------------------------------------------------------------- */

/* The train rows in ascending order; TKM_EEMPTY when there are none. */
static int train_rows(const tkmi_se_view *v, const uint8_t *split, uint32_t **out, size_t *nt)
{
    uint32_t *tr = tkmi_malloc((v->rows ? v->rows : 1) * sizeof(uint32_t));
    TKM_RETURN_ERROR_IF(!tr, TKM_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t r = 0; r < v->rows; r++)
        if (split[r] == 0)
            tr[k++] = (uint32_t)r;
    if (k == 0) {
        tkmi_free(tr);
        return tkmi_error(TKM_EEMPTY, "the split has no training rows");
    }
    *out = tr;
    *nt = k;
    return 0;
}

static void mean_of(const tkmi_se_view *v, const uint32_t *tr, size_t nt, double *mean)
{
    const size_t E = v->dim;
    memset(mean, 0, E * sizeof(double));
    for (size_t i = 0; i < nt; i++) {
        const float *g = v->m + (size_t)tr[i] * E;
        for (size_t k = 0; k < E; k++)
            mean[k] += g[k];
    }
    for (size_t k = 0; k < E; k++)
        mean[k] /= (double)nt;
}

/* (a) subtoken-mean: a byte trie of the train rows' bytes, edges in one
 * open-addressing table keyed by (node, byte). A word-start piece carries its
 * leading space in its bytes (" play"), a continuation piece does not
 * ("ing"), so the match needs no special case for either. */
typedef struct {
    uint64_t *key; /* node << 8 | byte, + 1 (0: empty) */
    uint32_t *child;
    size_t cap;
    int32_t *row; /* per node: the lowest train row spelled by it, or -1 */
    size_t nodes;
} trie;

static size_t trie_slot(const trie *t, uint64_t k)
{
    size_t s = (size_t)tkmi_hash_u64(k) & (t->cap - 1);
    while (t->key[s] && t->key[s] != k)
        s = (s + 1) & (t->cap - 1);
    return s;
}

static int32_t trie_next(const trie *t, uint32_t node, unsigned char b)
{
    size_t s = trie_slot(t, ((uint64_t)node << 8 | b) + 1);
    return t->key[s] ? (int32_t)t->child[s] : -1;
}

static int trie_build(const tkmi_se_view *v, const uint32_t *tr, size_t nt, trie *t)
{
    size_t total = 1;
    for (size_t i = 0; i < nt; i++)
        total += v->lens[tr[i]];
    memset(t, 0, sizeof(*t));
    t->cap = 16;
    while (t->cap < 2 * total)
        t->cap <<= 1;
    t->key = tkmi_calloc(t->cap, sizeof(uint64_t));
    t->child = tkmi_malloc(t->cap * sizeof(uint32_t));
    t->row = tkmi_malloc(total * sizeof(int32_t));
    TKM_RETURN_ERROR_IF(!t->key || !t->child || !t->row, TKM_ENOMEM, "out of memory for the piece trie");
    TKM_RETURN_ERROR_IF(total > 0xfffffff0u, TKM_ERANGE, "train pieces too long for the trie");
    t->nodes = 1;
    t->row[0] = -1;
    for (size_t i = 0; i < nt; i++) {
        const unsigned char *b = v->bytes[tr[i]];
        const size_t len = v->lens[tr[i]];
        if (len == 0)
            continue;
        uint32_t node = 0;
        for (size_t j = 0; j < len; j++) {
            uint64_t k = ((uint64_t)node << 8 | b[j]) + 1;
            size_t s = trie_slot(t, k);
            if (!t->key[s]) {
                t->key[s] = k;
                t->child[s] = (uint32_t)t->nodes;
                t->row[t->nodes++] = -1;
            }
            node = t->child[s];
        }
        if (t->row[node] < 0) /* rows come in ascending order: the lowest wins */
            t->row[node] = (int32_t)tr[i];
    }
    return 0;
}

static void trie_free(trie *t)
{
    tkmi_free(t->key);
    tkmi_free(t->child);
    tkmi_free(t->row);
}

static int base_subtoken(const tkmi_se_view *v, const uint32_t *tr, size_t nt, const double *mean,
                         const uint32_t *rows, size_t n, tkmi_se_base_stats *st, float *pred)
{
    const size_t E = v->dim;
    trie t;
    double *acc = tkmi_malloc(E * sizeof(double));
    int rc = acc ? trie_build(v, tr, nt, &t) : tkmi_error(TKM_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++) {
        const unsigned char *b = v->bytes[rows[i]];
        const size_t len = v->lens[rows[i]];
        size_t parts = 0;
        memset(acc, 0, E * sizeof(double));
        for (size_t pos = 0; pos < len;) {
            int32_t node = 0, hit = -1;
            size_t hitlen = 0;
            for (size_t j = pos; j < len; j++) {
                node = trie_next(&t, (uint32_t)node, b[j]);
                if (node < 0)
                    break;
                if (t.row[node] >= 0) {
                    hit = t.row[node];
                    hitlen = j + 1 - pos;
                }
            }
            if (hit < 0) { /* no train piece starts here: skip a byte */
                pos++;
                continue;
            }
            const float *g = v->m + (size_t)hit * E;
            for (size_t k = 0; k < E; k++)
                acc[k] += g[k];
            parts++;
            pos += hitlen;
        }
        if (!parts && st)
            st->no_pieces++;
        for (size_t k = 0; k < E; k++)
            pred[i * E + k] = (float)(parts ? acc[k] / (double)parts : mean[k]);
    }
    if (acc)
        trie_free(&t);
    tkmi_free(acc);
    return rc;
}

/* (b) ngram-ridge. Features of " " + bytes + " ": every byte 1..4-gram hashed
 * to one of D buckets with a hash-derived sign, duplicates summed, the vector
 * L2-normalized, then a constant 1 (the bias, index D, not penalized). */
typedef struct {
    size_t *off;   /* CSR over the listed rows */
    uint32_t *idx;
    double *val;
    size_t nnz;
} feats;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Features of one string into idx/val (room for 4 * (len + 2) + 1 entries,
 * plus scratch of 3 * that); returns the count, bias last. */
static size_t ngram_features(const unsigned char *b, size_t len, uint32_t D, unsigned char *s, uint32_t *idx,
                             double *val, uint32_t *scratch)
{
    s[0] = ' ';
    if (len)
        memcpy(s + 1, b, len);
    s[len + 1] = ' ';
    const size_t L = len + 2;
    size_t k = 0;
    for (size_t g = 1; g <= 4; g++)
        for (size_t i = 0; i + g <= L; i++) {
            uint64_t h = tkmi_hash_bytes(s + i, g);
            /* bucket in the low 31 bits of the key, the sign in bit 31 */
            scratch[k++] = (uint32_t)((h >> 1) % D) | (uint32_t)(h >> 63) << 31;
        }
    qsort(scratch, k, sizeof(uint32_t), cmp_u32);
    /* sorted by (sign, bucket): merge per bucket by walking both signs */
    size_t npos = 0;
    while (npos < k && !(scratch[npos] >> 31))
        npos++;
    size_t a = 0, c = npos, m = 0;
    while (a < npos || c < k) {
        uint32_t ba = a < npos ? scratch[a] : UINT32_MAX, bc = c < k ? scratch[c] & 0x7fffffffu : UINT32_MAX;
        uint32_t bkt = ba < bc ? ba : bc;
        double v = 0;
        while (a < npos && scratch[a] == bkt) {
            v += 1;
            a++;
        }
        while (c < k && (scratch[c] & 0x7fffffffu) == bkt) {
            v -= 1;
            c++;
        }
        if (v != 0) {
            idx[m] = bkt;
            val[m++] = v;
        }
    }
    double ss = 0;
    for (size_t i = 0; i < m; i++)
        ss += val[i] * val[i];
    const double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
    for (size_t i = 0; i < m; i++)
        val[i] *= inv;
    idx[m] = D;
    val[m++] = 1.0;
    return m;
}

int tkmi_se_ngram_features(const unsigned char *b, size_t len, uint32_t D, uint32_t *idx, double *val)
{
    unsigned char *s = tkmi_malloc(len + 2);
    uint32_t *scratch = tkmi_malloc((4 * (len + 2) + 1) * sizeof(uint32_t));
    int rc = s && scratch ? (int)ngram_features(b, len, D, s, idx, val, scratch)
                          : tkmi_error(TKM_ENOMEM, "out of memory for n-gram features");
    tkmi_free(s);
    tkmi_free(scratch);
    return rc;
}

static size_t max_len(const tkmi_se_view *v, const uint32_t *rows, size_t n)
{
    size_t mx = 0;
    for (size_t i = 0; i < n; i++)
        if (v->lens[rows[i]] > mx)
            mx = v->lens[rows[i]];
    return mx;
}

static int feats_build(const tkmi_se_view *v, const uint32_t *rows, size_t n, uint32_t D, feats *f)
{
    memset(f, 0, sizeof(*f));
    const size_t ml = max_len(v, rows, n), cap1 = 4 * (ml + 2) + 1;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += 4 * (v->lens[rows[i]] + 2) + 1;
    f->off = tkmi_malloc((n + 1) * sizeof(size_t));
    f->idx = tkmi_malloc((total + 1) * sizeof(uint32_t));
    f->val = tkmi_malloc((total + 1) * sizeof(double));
    unsigned char *s = tkmi_malloc(ml + 2);
    uint32_t *scratch = tkmi_malloc(cap1 * sizeof(uint32_t));
    int rc = 0;
    if (!f->off || !f->idx || !f->val || !s || !scratch) {
        rc = tkmi_error(TKM_ENOMEM, "out of memory for n-gram features");
    } else {
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
            f->off[i] = o;
            o += ngram_features(v->bytes[rows[i]], v->lens[rows[i]], D, s, f->idx + o, f->val + o, scratch);
        }
        f->off[n] = o;
        f->nnz = o;
    }
    tkmi_free(s);
    tkmi_free(scratch);
    return rc;
}

static void feats_free(feats *f)
{
    tkmi_free(f->off);
    tkmi_free(f->idx);
    tkmi_free(f->val);
}

/* A += X^T X (lower triangle) and B += X^T Y over the listed rows, in row
 * order (single-threaded: a few passes over sparse rows). */
static void ridge_accumulate(const tkmi_se_view *v, const feats *f, const uint32_t *rows, size_t n, size_t nd,
                             double *A, double *B)
{
    const size_t E = v->dim;
    for (size_t r = 0; r < n; r++) {
        const uint32_t *ix = f->idx + f->off[r];
        const double *vx = f->val + f->off[r];
        const size_t k = f->off[r + 1] - f->off[r];
        const float *y = v->m + (size_t)rows[r] * E;
        for (size_t a = 0; a < k; a++) {
            double *Ar = A + (size_t)ix[a] * nd;
            for (size_t c = 0; c <= a; c++)
                Ar[ix[c]] += vx[a] * vx[c];
            double *Br = B + (size_t)ix[a] * E;
            for (size_t e = 0; e < E; e++)
                Br[e] += vx[a] * y[e];
        }
    }
}

/* pred = X W, in double, each row summed in feature order (bias last) */
static void ridge_predict(const tkmi_se_view *v, const feats *f, size_t n, const double *W, double *acc, float *pred)
{
    const size_t E = v->dim;
    for (size_t r = 0; r < n; r++) {
        memset(acc, 0, E * sizeof(double));
        for (size_t a = f->off[r]; a < f->off[r + 1]; a++) {
            const double x = f->val[a], *w = W + (size_t)f->idx[a] * E;
            for (size_t e = 0; e < E; e++)
                acc[e] += x * w[e];
        }
        for (size_t e = 0; e < E; e++)
            pred[r * E + e] = (float)acc[e];
    }
}

/* W = (A + lambda I')^-1 B with I' the identity without the bias entry. */
static int ridge_fit(const double *A, const double *B, size_t nd, size_t E, double lambda, int threads, double *work,
                     double *W)
{
    memcpy(work, A, nd * nd * sizeof(double));
    for (size_t i = 0; i + 1 < nd; i++)
        work[i * nd + i] += lambda;
    TKM_FORWARD_IF_ERROR(tkmi_se_cholesky(work, nd, threads));
    memcpy(W, B, nd * E * sizeof(double));
    return tkmi_se_cholesky_solve(work, nd, W, E, threads);
}

static double mean_cosine(const tkmi_se_view *v, const float *pred, const uint32_t *rows, size_t n)
{
    const size_t E = v->dim;
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        const float *p = pred + i * E, *g = v->m + (size_t)rows[i] * E;
        double pp = 0, pg = 0, gg = 0;
        for (size_t k = 0; k < E; k++) {
            pp += (double)p[k] * p[k];
            pg += (double)p[k] * g[k];
            gg += (double)g[k] * g[k];
        }
        s += pp > 0 && gg > 0 ? pg / sqrt(pp * gg) : 0.0;
    }
    return n ? s / (double)n : 0.0;
}

static const double default_lambdas[] = { 0.1, 0.3, 1.0, 3.0, 10.0, 30.0 };

static int base_ridge(const tkmi_se_view *v, const uint32_t *tr, size_t nt, const uint32_t *rows, size_t n,
                      int threads, const tkmi_se_base_opts *o, tkmi_se_base_stats *st, float *pred)
{
    const double t0 = tkmi_now();
    const size_t E = v->dim;
    const uint32_t D = o && o->ngram_dim > 0 ? (uint32_t)o->ngram_dim : 4096u;
    const double *grid = o && o->lambdas && o->nlambdas > 0 ? o->lambdas : default_lambdas;
    const int ngrid = o && o->lambdas && o->nlambdas > 0 ? o->nlambdas
                                                          : (int)(sizeof(default_lambdas) / sizeof(double));
    const size_t nd = (size_t)D + 1;
    TKM_RETURN_ERROR_IF(D > 0x7ffffffeu || nd > ((size_t)1 << 31) / nd, TKM_ERANGE, "%u n-gram buckets are too many",
                        D);
    /* the validation slice: a tenth of the train GROUPS, by a hash of their keys */
    uint32_t *fit = tkmi_malloc(nt * sizeof(uint32_t)), *val = tkmi_malloc(nt * sizeof(uint32_t));
    double *A = tkmi_calloc(nd * nd, sizeof(double)), *work = tkmi_malloc(nd * nd * sizeof(double));
    double *B = tkmi_calloc(nd * E, sizeof(double)), *W = tkmi_malloc(nd * E * sizeof(double));
    double *acc = tkmi_malloc((E ? E : 1) * sizeof(double));
    float *vp = NULL;
    feats ff = { 0 }, fv = { 0 }, fq = { 0 };
    unsigned char *scratch = NULL;
    size_t scap = 0, nfit = 0, nval = 0;
    int rc = 0;
    if (!fit || !val || !A || !work || !B || !W || !acc) {
        rc = tkmi_error(TKM_ENOMEM, "out of memory for ridge regression with %u features", D);
        goto done;
    }
    const uint64_t vcut = frac_cut(0.1);
    for (size_t i = 0; i < nt && rc == 0; i++) {
        int side = 0;
        rc = group_side(v->bytes[tr[i]], v->lens[tr[i]], 0x76616c6964ull /* "valid" */, vcut, &scratch, &scap, &side);
        if (side)
            val[nval++] = tr[i];
        else
            fit[nfit++] = tr[i];
    }
    if (rc < 0)
        goto done;
    if ((rc = feats_build(v, fit, nfit, D, &ff)) < 0 || (rc = feats_build(v, val, nval, D, &fv)) < 0 ||
        (rc = feats_build(v, rows, n, D, &fq)) < 0)
        goto done;
    ridge_accumulate(v, &ff, fit, nfit, nd, A, B);
    double best_l = grid[ngrid / 2], best = -2.0;
    if (nval > 0 && nfit > 0 && ngrid > 1) {
        vp = tkmi_malloc(nval * E * sizeof(float));
        if (!vp) {
            rc = tkmi_error(TKM_ENOMEM, "out of memory");
            goto done;
        }
        for (int g = 0; g < ngrid; g++) {
            if ((rc = ridge_fit(A, B, nd, E, grid[g], threads, work, W)) < 0)
                goto done;
            ridge_predict(v, &fv, nval, W, acc, vp);
            double cs = mean_cosine(v, vp, val, nval);
            if (cs > best) {
                best = cs;
                best_l = grid[g];
            }
        }
    }
    /* refit on all train rows: the validation rows are added after the fit
     * rows, so every entry keeps one summation order */
    ridge_accumulate(v, &fv, val, nval, nd, A, B);
    if ((rc = ridge_fit(A, B, nd, E, best_l, threads, work, W)) < 0)
        goto done;
    ridge_predict(v, &fq, n, W, acc, pred);
    if (st) {
        st->lambda = best_l;
        st->val_cos = best > -2.0 ? best : NAN;
        st->nfit = nfit;
        st->nval = nval;
        st->seconds_fit = tkmi_now() - t0;
    }
done:
    feats_free(&ff);
    feats_free(&fv);
    feats_free(&fq);
    tkmi_free(scratch);
    tkmi_free(fit);
    tkmi_free(val);
    tkmi_free(A);
    tkmi_free(work);
    tkmi_free(B);
    tkmi_free(W);
    tkmi_free(acc);
    tkmi_free(vp);
    return rc;
}

/* (c) nearest-string: the smallest byte edit distance, ties to the lower
 * row. Train rows are bucketed by length and searched outward from the
 * query's length: |la - lb| bounds the distance from below, so the search
 * stops once it exceeds the best distance, and each DP stops as soon as a
 * whole row is above what could still win. */
size_t tkmi_se_levenshtein(const unsigned char *a, size_t la, const unsigned char *b, size_t lb, size_t maxd,
                           uint32_t *work)
{
    const size_t diff = la > lb ? la - lb : lb - la;
    if (diff > maxd)
        return maxd + 1;
    if (la == 0)
        return lb;
    for (size_t j = 0; j <= lb; j++)
        work[j] = (uint32_t)j;
    for (size_t i = 1; i <= la; i++) {
        uint32_t prev = work[0], rowmin = (uint32_t)i;
        work[0] = (uint32_t)i;
        const unsigned char ai = a[i - 1];
        for (size_t j = 1; j <= lb; j++) {
            const uint32_t up = work[j];
            uint32_t d = prev + (ai != b[j - 1]);
            if (up + 1 < d)
                d = up + 1;
            if (work[j - 1] + 1 < d)
                d = work[j - 1] + 1;
            work[j] = d;
            prev = up;
            if (d < rowmin)
                rowmin = d;
        }
        if (rowmin > maxd)
            return maxd + 1;
    }
    return work[lb] <= maxd ? work[lb] : maxd + 1;
}

typedef struct {
    const tkmi_se_view *v;
    const uint32_t *byl;  /* train rows sorted by (length, row) */
    const size_t *loff;   /* byl offsets per length, maxlen + 2 entries */
    size_t maxlen;
    const uint32_t *rows;
    size_t n;
    uint32_t **work;      /* per thread: maxlen + 1 */
    uint32_t *best_row;
} nn_ctx;

#define NN_CHUNK 16

static void nn_task(void *ctx, size_t task, int tid)
{
    nn_ctx *c = ctx;
    uint32_t *work = c->work[tid];
    for (size_t i = task * NN_CHUNK; i < c->n && i < (task + 1) * NN_CHUNK; i++) {
        const unsigned char *a = c->v->bytes[c->rows[i]];
        const size_t la = c->v->lens[c->rows[i]];
        size_t best = SIZE_MAX - 1;
        uint32_t brow = UINT32_MAX;
        for (size_t delta = 0; delta <= best; delta++) {
            int any = 0;
            for (int side = 0; side < 2; side++) {
                if (side == 1 && delta == 0)
                    break;
                if (side == 0 ? delta > la : la + delta > c->maxlen)
                    continue;
                any = 1; /* lengths remain on this side */
                const size_t lb = side == 0 ? la - delta : la + delta;
                if (lb > c->maxlen)
                    continue;
                for (size_t k = c->loff[lb]; k < c->loff[lb + 1] && delta <= best; k++) {
                    const uint32_t r = c->byl[k];
                    if (delta == best && r > brow)
                        break; /* can at most tie, and would lose the tie */
                    const size_t maxd = r < brow ? best : best - 1;
                    const size_t d = tkmi_se_levenshtein(a, la, c->v->bytes[r], lb, maxd, work);
                    if (d <= maxd && (d < best || r < brow)) {
                        best = d;
                        brow = r;
                    }
                }
            }
            if (!any)
                break;
        }
        c->best_row[i] = brow;
    }
}

static int base_nearest(const tkmi_se_view *v, const uint32_t *tr, size_t nt, const uint32_t *rows, size_t n,
                        int threads, float *pred)
{
    const size_t E = v->dim, maxlen = max_len(v, tr, nt);
    threads = nthreads_of(threads);
    size_t *loff = tkmi_calloc(maxlen + 2, sizeof(size_t));
    uint32_t *byl = tkmi_malloc(nt * sizeof(uint32_t)), *best = tkmi_malloc((n ? n : 1) * sizeof(uint32_t));
    uint32_t **work = tkmi_calloc((size_t)threads, sizeof(uint32_t *));
    int rc = 0;
    if (!loff || !byl || !best || !work)
        rc = TKM_ENOMEM;
    for (int t = 0; t < threads && rc == 0; t++)
        if (!(work[t] = tkmi_malloc((maxlen + 1) * sizeof(uint32_t))))
            rc = TKM_ENOMEM;
    if (rc < 0) {
        rc = tkmi_error(TKM_ENOMEM, "out of memory for nearest-string");
        goto done;
    }
    /* counting sort by length; rows stay ascending within a length */
    for (size_t i = 0; i < nt; i++)
        loff[v->lens[tr[i]] + 1]++;
    for (size_t l = 0; l <= maxlen; l++)
        loff[l + 1] += loff[l];
    {
        size_t *pos = tkmi_malloc((maxlen + 1) * sizeof(size_t));
        if (!pos) {
            rc = tkmi_error(TKM_ENOMEM, "out of memory for nearest-string");
            goto done;
        }
        memcpy(pos, loff, (maxlen + 1) * sizeof(size_t));
        for (size_t i = 0; i < nt; i++)
            byl[pos[v->lens[tr[i]]]++] = tr[i];
        tkmi_free(pos);
    }
    nn_ctx c = { v, byl, loff, maxlen, rows, n, work, best };
    par_run(threads, (n + NN_CHUNK - 1) / NN_CHUNK, nn_task, &c);
    for (size_t i = 0; i < n; i++)
        memcpy(pred + i * E, v->m + (size_t)best[i] * E, E * sizeof(float));
done:
    for (int t = 0; work && t < threads; t++)
        tkmi_free(work[t]);
    tkmi_free(work);
    tkmi_free(loff);
    tkmi_free(byl);
    tkmi_free(best);
    return rc;
}

const char *tkm_se_baseline_name(tkm_se_baseline b)
{
    static const char *const names[] = { "subtoken-mean", "ngram-ridge", "nearest-string", "global-mean" };
    return (unsigned)b < TKM_BASE_COUNT ? names[b] : "?";
}

int tkmi_se_baseline_view(const tkmi_se_view *v, const uint8_t *split, tkm_se_baseline which, const uint32_t *rows,
                          size_t n, int threads, const tkmi_se_base_opts *o, tkmi_se_base_stats *st, float *pred)
{
    TKM_RETURN_ERROR_IF((unsigned)which >= TKM_BASE_COUNT, TKM_EINVAL, "unknown baseline %d", (int)which);
    for (size_t i = 0; i < n; i++)
        TKM_RETURN_ERROR_IF(rows[i] >= v->rows, TKM_EINVAL, "query %zu: row %u is not below %zu", i,
                            (unsigned)rows[i], v->rows);
    if (st)
        memset(st, 0, sizeof(*st));
    uint32_t *tr = NULL;
    size_t nt = 0;
    TKM_FORWARD_IF_ERROR(train_rows(v, split, &tr, &nt));
    const size_t E = v->dim;
    double *mean = tkmi_malloc((E ? E : 1) * sizeof(double));
    int rc = 0;
    if (!mean) {
        tkmi_free(tr);
        return tkmi_error(TKM_ENOMEM, "out of memory");
    }
    mean_of(v, tr, nt, mean);
    switch (which) {
    case TKM_BASE_SUBTOKEN_MEAN: rc = base_subtoken(v, tr, nt, mean, rows, n, st, pred); break;
    case TKM_BASE_NGRAM_RIDGE: rc = base_ridge(v, tr, nt, rows, n, threads, o, st, pred); break;
    case TKM_BASE_NEAREST: rc = base_nearest(v, tr, nt, rows, n, threads, pred); break;
    default:
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < E; k++)
                pred[i * E + k] = (float)mean[k];
    }
    tkmi_free(mean);
    tkmi_free(tr);
    return rc;
}

/* ---- the public API: views of a tkm_teacher ------------------------------------------------ */

static int view_of(const tkm_teacher *t, int with_bytes, tkmi_se_view *v)
{
    memset(v, 0, sizeof(*v));
    v->rows = tkm_teacher_rows(t);
    v->dim = tkm_teacher_dim(t);
    v->m = tkm_teacher_matrix(t);
    if (!with_bytes)
        return 0;
    const size_t R = v->rows ? v->rows : 1;
    const unsigned char **b = tkmi_malloc(R * sizeof(*b));
    size_t *lens = tkmi_malloc(R * sizeof(size_t));
    uint8_t *kinds = tkmi_malloc(R);
    if (!b || !lens || !kinds) {
        tkmi_free(b);
        tkmi_free(lens);
        tkmi_free(kinds);
        return tkmi_error(TKM_ENOMEM, "out of memory");
    }
    for (size_t r = 0; r < v->rows; r++) {
        b[r] = tkm_teacher_bytes(t, r, &lens[r]);
        kinds[r] = (uint8_t)tkm_teacher_row_kind(t, r);
    }
    v->bytes = b;
    v->lens = lens;
    v->kinds = kinds;
    return 0;
}

static void view_free(tkmi_se_view *v)
{
    tkmi_free((void *)v->bytes);
    tkmi_free((void *)v->lens);
    tkmi_free((void *)v->kinds);
}

int tkm_se_split(const tkm_teacher *t, double test_frac, uint64_t seed, uint8_t *split)
{
    tkmi_se_view v;
    TKM_FORWARD_IF_ERROR(view_of(t, 1, &v));
    int rc = tkmi_se_split_view(&v, test_frac, seed, split);
    view_free(&v);
    return rc;
}

int tkm_se_split_valid(const tkm_teacher *t, double valid_frac, uint64_t split_seed, uint8_t *split)
{
    const size_t rows = tkm_teacher_rows(t);
    TKM_RETURN_ERROR_IF(!(valid_frac >= 0 && valid_frac < 1), TKM_EINVAL, "validation share must be in [0, 1)");
    if (valid_frac == 0)
        return 0;
    uint8_t *vs = tkmi_malloc(rows ? rows : 1);
    TKM_RETURN_ERROR_IF(!vs, TKM_ENOMEM, "out of memory for the validation split");
    int rc = tkm_se_split(t, valid_frac, split_seed ^ 0x76616c6964ull /* "valid" */, vs);
    if (rc < 0) {
        tkmi_free(vs);
        return rc;
    }
    size_t nv = 0, nfit = 0;
    for (size_t r = 0; r < rows; r++)
        if (split[r] == 0)
            vs[r] == 1 ? nv++ : nfit++;
    if (nv == 0 || nfit == 0) {
        tkmi_free(vs);
        return 0;
    }
    for (size_t r = 0; r < rows; r++)
        if (split[r] == 0 && vs[r] == 1)
            split[r] = TKM_SE_VALID;
    tkmi_free(vs);
    return nv > INT32_MAX ? INT32_MAX : (int)nv;
}

int tkm_se_metrics_compute(const tkm_teacher *t, const float *pred, const uint32_t *rows, size_t n, int threads,
                           tkm_se_metrics *out)
{
    tkmi_se_view v;
    TKM_FORWARD_IF_ERROR(view_of(t, 0, &v));
    return tkmi_se_metrics_view(&v, pred, rows, n, threads, out, NULL, NULL);
}

int tkm_se_baseline_predict(const tkm_teacher *t, const uint8_t *split, tkm_se_baseline which, const uint32_t *rows,
                            size_t n, int threads, float *pred)
{
    tkmi_se_view v;
    TKM_FORWARD_IF_ERROR(view_of(t, 1, &v));
    int rc = tkmi_se_baseline_view(&v, split, which, rows, n, threads, NULL, NULL, pred);
    view_free(&v);
    return rc;
}
