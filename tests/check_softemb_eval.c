/* check_softemb_eval.c - the softemb evaluation (softemb/eval.c): grouped
 * split, retrieval metrics, the four baselines and the dense solver under
 * them, on synthetic teachers with known answers; the public wrappers end to
 * end on the MiniLM teacher when corpora/teacher.sh has fetched it. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../softemb/eval_internal.h"
#include "skip.h"
#include "tkm_internal.h"
#include "tokenmill_softemb.h"

#define SEED 20240601u

static double urand(uint64_t *s) { return (double)(tkmi_splitmix64(s) >> 11) / 9007199254740992.0; }

/* A synthetic teacher: strings (copied), a matrix, kinds. */
typedef struct {
    tkmi_se_view v;
    unsigned char **b;
    size_t *lens;
    float *m;
    uint8_t *kinds;
} synth;

static void synth_init(synth *s, size_t rows, size_t dim)
{
    s->b = calloc(rows, sizeof(*s->b));
    s->lens = calloc(rows, sizeof(size_t));
    s->m = calloc(rows * dim, sizeof(float));
    s->kinds = calloc(rows, 1);
    ck_assert(s->b && s->lens && s->m && s->kinds);
    s->v = (tkmi_se_view){ rows, dim, s->m, (const unsigned char *const *)s->b, s->lens, s->kinds };
}

static void synth_set(synth *s, size_t r, const char *str)
{
    free(s->b[r]);
    s->lens[r] = strlen(str);
    s->b[r] = malloc(s->lens[r] + 1);
    memcpy(s->b[r], str, s->lens[r] + 1);
}

static void synth_free(synth *s)
{
    for (size_t r = 0; r < s->v.rows; r++)
        free(s->b[r]);
    free(s->b);
    free(s->lens);
    free(s->m);
    free(s->kinds);
}

static size_t key_of(const char *s, unsigned char *out)
{
    return tkmi_se_group_key((const unsigned char *)s, strlen(s), out, 4 * strlen(s) + 4);
}

/* ---- split ---- */

START_TEST(test_group_key)
{
    unsigned char k[64];
    size_t n = key_of(" The", k);
    ck_assert(n == 3 && !memcmp(k, "the", 3));
    n = key_of("   THE", k);
    ck_assert(n == 3 && !memcmp(k, "the", 3));
    n = key_of("Stra\xC3\x9F" "e", k); /* full folding: sharp s -> ss */
    ck_assert(n == 7 && !memcmp(k, "strasse", 7));
    n = key_of(" \xC3\x89" "cole", k); /* É -> é */
    ck_assert(n == 6 && !memcmp(k, "\xC3\xA9" "cole", 6));
    n = key_of("\xE2\x84\xAA", k); /* KELVIN SIGN folds to k */
    ck_assert(n == 1 && k[0] == 'k');
    n = key_of("A\x80", k); /* a stray byte is kept, escaped */
    ck_assert(n == 3 && k[0] == 'a' && k[1] == 0xFF && k[2] == 0x80);
    ck_assert_uint_eq(key_of(" ", k), 0);
    ck_assert_uint_eq(key_of("", k), 0);
    ck_assert_uint_ne(key_of(" a b", k), 0); /* only leading spaces go */
    ck_assert(!memcmp(k, "a b", 3));
}
END_TEST

START_TEST(test_split_groups)
{
    static const char *const words[] = { " The", "the", "THE", "Stra\xC3\x9F" "e", " STRASSE", " ", "", "<s>" };
    const size_t nw = sizeof(words) / sizeof(words[0]), N = 10000 + nw;
    synth s;
    synth_init(&s, N, 1);
    for (size_t i = 0; i < nw; i++)
        synth_set(&s, i, words[i]);
    s.kinds[nw - 1] = TKM_ROW_SPECIAL;
    char buf[32];
    for (size_t i = nw; i < N; i++) {
        snprintf(buf, sizeof(buf), "%sg%zu", i % 2 ? " " : "", i);
        synth_set(&s, i, buf);
    }
    uint8_t *split = malloc(N), *again = malloc(N);
    int test_side[3] = { 0, 0, 0 };
    for (uint64_t seed = 1; seed <= 40; seed++) {
        int nt = tkmi_se_split_view(&s.v, 0.1, seed, split);
        ck_assert_int_ge(nt, 0);
        ck_assert(split[0] == split[1] && split[1] == split[2]);
        ck_assert(split[3] == split[4]);
        ck_assert(split[5] == split[6]); /* a lone space and the empty string: one group */
        ck_assert_int_eq(split[nw - 1], 2);
        test_side[0] |= split[0];
        test_side[1] |= split[3];
        test_side[2] |= split[5];
        /* 10,000 groups: within 1.5 points of 10% (5 sigma) */
        double frac = (double)nt / (double)(N - 1);
        ck_assert_msg(fabs(frac - 0.1) < 0.015, "seed %llu: test fraction %g", (unsigned long long)seed, frac);
        ck_assert_int_eq(tkmi_se_split_view(&s.v, 0.1, seed, again), nt);
        ck_assert(!memcmp(split, again, N));
    }
    ck_assert(test_side[0] && test_side[1] && test_side[2]); /* the groups do move with the seed */
    int nt = tkmi_se_split_view(&s.v, 0.5, 3, split);
    ck_assert_msg(fabs(nt / (double)(N - 1) - 0.5) < 0.025, "test fraction %g", nt / (double)(N - 1));
    ck_assert_int_eq(tkmi_se_split_view(&s.v, 0.0, 3, split), 0);
    ck_assert_int_eq(tkmi_se_split_view(&s.v, 1.0, 3, split), TKM_EINVAL);
    ck_assert_int_eq(tkmi_se_split_view(&s.v, -0.1, 3, split), TKM_EINVAL);
    /* row order does not matter: the same strings reversed get the same sides */
    ck_assert_int_ge(tkmi_se_split_view(&s.v, 0.3, 9, split), 0);
    synth r;
    synth_init(&r, N, 1);
    for (size_t i = 0; i < N; i++) {
        synth_set(&r, N - 1 - i, (const char *)s.b[i]);
        r.kinds[N - 1 - i] = s.kinds[i];
    }
    ck_assert_int_ge(tkmi_se_split_view(&r.v, 0.3, 9, again), 0);
    for (size_t i = 0; i < N; i++)
        ck_assert_int_eq(split[i], again[N - 1 - i]);
    synth_free(&r);
    synth_free(&s);
    free(split);
    free(again);
}
END_TEST

/* ---- metrics ---- */

START_TEST(test_metrics_hand)
{
    /* r0 (1,0), r1 (0,1), r2 (2,0): r0's direction, twice as long, r3 (1,1), r4 (-1,0) */
    synth s;
    synth_init(&s, 5, 2);
    const float m[10] = { 1, 0, 0, 1, 2, 0, 1, 1, -1, 0 };
    memcpy(s.m, m, sizeof(m));
    /* q = (1, 0.1): dots 1, 0.1, 2, 1.1, -1; cosines r0 = r2 (a tie), then r3 */
    const float pred[4] = { 1, 0.1f, 1, 0.1f };
    const uint32_t rows[2] = { 0, 2 };
    uint32_t rc[2], rd[2];
    tkm_se_metrics mt;
    ck_assert_int_eq(tkmi_se_metrics_view(&s.v, pred, rows, 2, 1, &mt, rc, rd), 0);
    ck_assert_uint_eq(rc[0], 1); /* ties with r2, which has a higher index */
    ck_assert_uint_eq(rd[0], 3); /* r2 and r3 have larger dots */
    ck_assert_uint_eq(rc[1], 2); /* ties with r0, which has a lower index */
    ck_assert_uint_eq(rd[1], 1);
    ck_assert_uint_eq(mt.n, 2);
    ck_assert(mt.top1_cos == 0.5 && mt.top10_cos == 1.0 && mt.top1_dot == 0.5 && mt.top10_dot == 1.0);
    ck_assert(fabs(mt.mrr_cos - 0.75) < 1e-15);
    const double qn = sqrt(1.0 + (double)0.1f * 0.1f);
    ck_assert(fabs(mt.mean_cos - 1.0 / qn) < 1e-12);
    const double rel0 = (double)0.1f, rel2 = sqrt(1.0 + (double)0.1f * 0.1f) / 2.0;
    ck_assert(fabs(mt.rel_l2 - (rel0 + rel2) / 2) < 1e-12);
    /* bad target rows are refused */
    const uint32_t bad[1] = { 5 };
    ck_assert_int_eq(tkmi_se_metrics_view(&s.v, pred, bad, 1, 1, &mt, NULL, NULL), TKM_EINVAL);
    ck_assert_int_eq(tkmi_se_metrics_view(&s.v, pred, rows, 0, 1, &mt, NULL, NULL), 0);
    ck_assert_uint_eq(mt.n, 0);
    float nan_pred[2] = { NAN, 0 };
    ck_assert_int_eq(tkmi_se_metrics_view(&s.v, nan_pred, rows, 1, 1, &mt, NULL, NULL), TKM_ERANGE);
    synth_free(&s);
}
END_TEST

START_TEST(test_metrics_top10_and_duplicates)
{
    /* dim 1, row k = 2^(k-20): by dot the target k has 39 - k rows above it;
     * by cosine all rows tie exactly (powers of two), so rank = k + 1 */
    synth s;
    synth_init(&s, 40, 1);
    for (int k = 0; k < 40; k++)
        s.m[k] = ldexpf(1.0f, k - 20);
    const float pred[3] = { 1, 1, 1 };
    const uint32_t rows[3] = { 30, 29, 12 };
    uint32_t rc[3], rd[3];
    tkm_se_metrics mt;
    ck_assert_int_eq(tkmi_se_metrics_view(&s.v, pred, rows, 3, 2, &mt, rc, rd), 0);
    ck_assert_uint_eq(rd[0], 10);
    ck_assert_uint_eq(rd[1], 11);
    ck_assert_uint_eq(rd[2], 28);
    ck_assert_uint_eq(rc[0], 31);
    ck_assert_uint_eq(rc[1], 30);
    ck_assert_uint_eq(rc[2], 13);
    ck_assert(fabs(mt.top10_dot - 1.0 / 3) < 1e-15 && mt.top1_dot == 0.0 && mt.top10_cos == 0.0);
    ck_assert(fabs(mt.mrr_cos - (1.0 / 31 + 1.0 / 30 + 1.0 / 13) / 3) < 1e-15);
    synth_free(&s);
    /* exact duplicates in a wider matrix: the lower index wins */
    enum { R = 300, E = 37 };
    synth d;
    synth_init(&d, R, E);
    uint64_t st = SEED;
    for (size_t i = 0; i < (size_t)R * E; i++)
        d.m[i] = (float)(urand(&st) - 0.5);
    memcpy(d.m + 250 * E, d.m + 7 * E, E * sizeof(float)); /* row 250 = row 7 */
    memcpy(d.m + 251 * E, d.m + 7 * E, E * sizeof(float)); /* row 251 = row 7 */
    float q[3 * E];
    memcpy(q, d.m + 7 * E, E * sizeof(float));
    memcpy(q + E, d.m + 7 * E, E * sizeof(float));
    memcpy(q + 2 * E, d.m + 7 * E, E * sizeof(float));
    const uint32_t dr[3] = { 7, 250, 251 };
    ck_assert_int_eq(tkmi_se_metrics_view(&d.v, q, dr, 3, 3, &mt, rc, rd), 0);
    ck_assert_uint_eq(rc[0], 1);
    ck_assert_uint_eq(rc[1], 2);
    ck_assert_uint_eq(rc[2], 3);
    ck_assert_uint_eq(rd[1], rd[0] + 1); /* by dot too, wherever row 7 ranks */
    ck_assert_uint_eq(rd[2], rd[0] + 2);
    synth_free(&d);
}
END_TEST

/* Ranks against a double-precision reference: a row counts as surely above
 * (below) when its score beats the target's by more than a relative 1e-5. */
START_TEST(test_metrics_random_vs_reference)
{
    enum { R = 777, E = 45, N = 97 };
    synth s;
    synth_init(&s, R, E);
    uint64_t st = SEED + 1;
    for (size_t i = 0; i < (size_t)R * E; i++)
        s.m[i] = (float)(urand(&st) * 2 - 1);
    float *pred = malloc((size_t)N * E * sizeof(float));
    uint32_t rows[N], rc[N], rd[N];
    for (int i = 0; i < N; i++) {
        rows[i] = (uint32_t)(tkmi_splitmix64(&st) % R);
        for (int k = 0; k < E; k++) /* the target plus noise: ranks spread from 1 to hundreds */
            pred[(size_t)i * E + k] = s.m[(size_t)rows[i] * E + k] + (float)((urand(&st) - 0.5) * 0.2 * (i % 10));
    }
    tkm_se_metrics mt;
    for (int wi = 0; wi < 3; wi++) {
        const int width = tkmi_se_kernel_width(16 >> wi);
        ck_assert_int_eq(tkmi_se_metrics_view(&s.v, pred, rows, N, 2, &mt, rc, rd), 0);
        for (int i = 0; i < N; i++) {
            double sc[R], cs[R];
            for (int r = 0; r < R; r++) {
                double d = 0, nn = 0;
                for (int k = 0; k < E; k++) {
                    d += (double)pred[(size_t)i * E + k] * s.m[(size_t)r * E + k];
                    nn += (double)s.m[(size_t)r * E + k] * s.m[(size_t)r * E + k];
                }
                sc[r] = d;
                cs[r] = d / sqrt(nn);
            }
            for (int which = 0; which < 2; which++) {
                const double *x = which ? cs : sc, t = x[rows[i]], eps = 1e-4 + 1e-5 * fabs(t);
                uint32_t lo = 1, hi = 1;
                for (int r = 0; r < R; r++) {
                    if (r == (int)rows[i])
                        continue;
                    lo += x[r] > t + eps;
                    hi += x[r] > t - eps;
                }
                uint32_t got = which ? rc[i] : rd[i];
                ck_assert_msg(got >= lo && got <= hi, "width %d, query %d (%s): rank %u, reference %u..%u", width, i,
                              which ? "cos" : "dot", got, lo, hi);
            }
        }
    }
    tkmi_se_kernel_width(0);
    free(pred);
    synth_free(&s);
}
END_TEST

START_TEST(test_metrics_threads_bit_identical)
{
    enum { R = 2049, E = 70, N = 131 };
    synth s;
    synth_init(&s, R, E);
    uint64_t st = SEED + 2;
    for (size_t i = 0; i < (size_t)R * E; i++)
        s.m[i] = (float)(urand(&st) - 0.5);
    float *pred = malloc((size_t)N * E * sizeof(float));
    uint32_t rows[N];
    for (int i = 0; i < N; i++) {
        rows[i] = (uint32_t)(tkmi_splitmix64(&st) % R);
        for (int k = 0; k < E; k++)
            pred[(size_t)i * E + k] = s.m[(size_t)rows[i] * E + k] + (float)((urand(&st) - 0.5) * (i % 5));
    }
    tkm_se_metrics a, b, w16;
    uint32_t ra[2][N], rb[2][N], r16[2][N];
    int have16 = 0;
    for (int wi = 0; wi < 3; wi++) {
        const int width = tkmi_se_kernel_width(16 >> wi);
        ck_assert_int_eq(tkmi_se_metrics_view(&s.v, pred, rows, N, 1, &a, ra[0], ra[1]), 0);
        ck_assert_int_eq(tkmi_se_metrics_view(&s.v, pred, rows, N, 3, &b, rb[0], rb[1]), 0);
        ck_assert_msg(!memcmp(&a, &b, sizeof(a)), "width %d", width);
        ck_assert(!memcmp(ra, rb, sizeof(ra)));
        ck_assert(a.top1_cos > 0.05 && a.top1_cos < 0.95); /* a case where ranks vary */
        if (width == 16) {
            have16 = 1;
            w16 = a;
            memcpy(r16, ra, sizeof(ra));
        } else if (width == 8 && have16) { /* both fused multiply-adds, lane by lane: the same sums */
            ck_assert(!memcmp(&a, &w16, sizeof(a)));
            ck_assert(!memcmp(ra, r16, sizeof(ra)));
        }
    }
    tkmi_se_kernel_width(0);
    free(pred);
    synth_free(&s);
}
END_TEST

/* ---- the dense solver ---- */

static double *random_spd(size_t n, uint64_t *st)
{
    double *g = malloc(n * n * sizeof(double)), *a = malloc(n * n * sizeof(double));
    for (size_t i = 0; i < n * n; i++)
        g[i] = urand(st) - 0.5;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j <= i; j++) {
            double v = 0;
            for (size_t k = 0; k < n; k++)
                v += g[i * n + k] * g[j * n + k];
            a[i * n + j] = a[j * n + i] = v + (i == j ? 0.5 : 0.0);
        }
    free(g);
    return a;
}

START_TEST(test_cholesky)
{
    const size_t n = 203, m = 37; /* not multiples of any block size */
    const int width = tkmi_se_kernel_width(16 >> _i);
    fprintf(stderr, "cholesky: width %d\n", width);
    uint64_t st = SEED + 3;
    double *a = random_spd(n, &st), *l1 = malloc(n * n * sizeof(double)), *l3 = malloc(n * n * sizeof(double));
    memcpy(l1, a, n * n * sizeof(double));
    memcpy(l3, a, n * n * sizeof(double));
    ck_assert_int_eq(tkmi_se_cholesky(l1, n, 1), 0);
    ck_assert_int_eq(tkmi_se_cholesky(l3, n, 3), 0);
    ck_assert(!memcmp(l1, l3, n * n * sizeof(double)));
    double err = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j <= i; j++) {
            double v = 0;
            for (size_t k = 0; k <= j; k++)
                v += l1[i * n + k] * l1[j * n + k];
            err = fmax(err, fabs(v - a[i * n + j]));
            if (j < i) /* the upper triangle mirrors L */
                ck_assert(l1[j * n + i] == l1[i * n + j]);
        }
    ck_assert_msg(err < 1e-9, "|L L^T - A| = %g", err);
    double *b = malloc(n * m * sizeof(double)), *x1 = malloc(n * m * sizeof(double)),
           *x3 = malloc(n * m * sizeof(double));
    for (size_t i = 0; i < n * m; i++)
        b[i] = urand(&st) - 0.5;
    memcpy(x1, b, n * m * sizeof(double));
    memcpy(x3, b, n * m * sizeof(double));
    ck_assert_int_eq(tkmi_se_cholesky_solve(l1, n, x1, m, 1), 0);
    ck_assert_int_eq(tkmi_se_cholesky_solve(l1, n, x3, m, 3), 0);
    ck_assert(!memcmp(x1, x3, n * m * sizeof(double)));
    err = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t e = 0; e < m; e++) {
            double v = 0;
            for (size_t k = 0; k < n; k++)
                v += a[i * n + k] * x1[k * m + e];
            err = fmax(err, fabs(v - b[i * m + e]));
        }
    ck_assert_msg(err < 1e-8, "|A X - B| = %g", err);
    /* not positive definite: refused, naming the pivot */
    memcpy(l1, a, n * n * sizeof(double));
    l1[100 * n + 100] = -1.0;
    ck_assert_int_eq(tkmi_se_cholesky(l1, n, 2), TKM_ERANGE);
    ck_assert_ptr_nonnull(strstr(tkm_last_error(), "pivot 100 of 203"));
    tkmi_se_kernel_width(0);
    free(a);
    free(l1);
    free(l3);
    free(b);
    free(x1);
    free(x3);
}
END_TEST

/* ---- baselines ---- */

START_TEST(test_subtoken_mean)
{
    /* train: " play", "ing", " p", "xyz"; test: " playing", "qqq", " pxyzq" */
    static const char *const w[] = { " play", "ing", " p", "xyz", " playing", "qqq", " pxyzq", "<unk>" };
    enum { R = 8, E = 3 };
    synth s;
    synth_init(&s, R, E);
    for (int i = 0; i < R; i++)
        synth_set(&s, (size_t)i, w[i]);
    for (int i = 0; i < R * E; i++)
        s.m[i] = (float)(i * 0.37 - 2.0);
    const uint8_t split[R] = { 0, 0, 0, 0, 1, 1, 1, 2 };
    const uint32_t rows[3] = { 4, 5, 6 };
    float pred[3 * E];
    tkmi_se_base_stats st;
    ck_assert_int_eq(tkmi_se_baseline_view(&s.v, split, TKM_BASE_SUBTOKEN_MEAN, rows, 3, 1, NULL, &st, pred), 0);
    for (int k = 0; k < E; k++) {
        /* " playing" = " play" (longest, not " p") + "ing" */
        ck_assert(pred[k] == (float)(((double)s.m[0 * E + k] + s.m[1 * E + k]) / 2));
        /* "qqq": no piece: the mean of the train rows */
        double mean = ((double)s.m[k] + s.m[E + k] + s.m[2 * E + k] + s.m[3 * E + k]) / 4;
        ck_assert(pred[E + k] == (float)mean);
        /* " pxyzq" = " p" + "xyz", the unmatched "q" skipped */
        ck_assert(pred[2 * E + k] == (float)(((double)s.m[2 * E + k] + s.m[3 * E + k]) / 2));
    }
    ck_assert_uint_eq(st.no_pieces, 1);
    synth_free(&s);
}
END_TEST

static size_t lev_ref(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < v)
                v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

START_TEST(test_nearest_string)
{
    uint32_t work[64];
    const unsigned char *k = (const unsigned char *)"kitten", *si = (const unsigned char *)"sitting";
    ck_assert_uint_eq(tkmi_se_levenshtein(k, 6, si, 7, 10, work), 3);
    ck_assert_uint_eq(tkmi_se_levenshtein(k, 6, si, 7, 3, work), 3);
    ck_assert_uint_eq(tkmi_se_levenshtein(k, 6, si, 7, 2, work), 3); /* above the bound: bound + 1 */
    ck_assert_uint_eq(tkmi_se_levenshtein(k, 6, k, 0, 9, work), 6);
    /* "sitten" is 1 from "mitten" and "kitten": the lower row wins */
    static const char *const w[] = { "sitting", "mitten", "kitten", "kitchen", "sitten", "ab", "abcdefgh" };
    enum { R = 7, E = 2 };
    synth s;
    synth_init(&s, R, E);
    for (int i = 0; i < R; i++) {
        synth_set(&s, (size_t)i, w[i]);
        s.m[i * E] = (float)i;
    }
    const uint8_t split[R] = { 0, 0, 0, 0, 1, 0, 1 };
    const uint32_t rows[2] = { 4, 6 };
    float pred[2 * E];
    ck_assert_int_eq(tkmi_se_baseline_view(&s.v, split, TKM_BASE_NEAREST, rows, 2, 2, NULL, NULL, pred), 0);
    ck_assert(pred[0] == 1.0f);
    size_t dbest = SIZE_MAX;
    int rbest = -1;
    for (int i = 0; i < R; i++)
        if (split[i] == 0 && lev_ref(w[6], w[i]) < dbest) {
            dbest = lev_ref(w[6], w[i]);
            rbest = i;
        }
    ck_assert(pred[E] == (float)rbest);
    synth_free(&s);
    /* random short strings over a small alphabet: many ties; brute force agrees */
    enum { N = 400 };
    synth r;
    synth_init(&r, N, 1);
    uint64_t st = SEED + 4;
    uint8_t sp[N];
    for (int i = 0; i < N; i++) {
        char buf[16];
        size_t len = tkmi_splitmix64(&st) % 9;
        for (size_t j = 0; j < len; j++)
            buf[j] = (char)('a' + tkmi_splitmix64(&st) % 3);
        buf[len] = 0;
        synth_set(&r, (size_t)i, buf);
        r.m[i] = (float)i;
        sp[i] = tkmi_splitmix64(&st) % 4 == 0;
    }
    uint32_t q[N];
    size_t nq = 0;
    for (int i = 0; i < N; i++)
        if (sp[i])
            q[nq++] = (uint32_t)i;
    float *p1 = malloc(nq * sizeof(float)), *p3 = malloc(nq * sizeof(float));
    ck_assert_int_eq(tkmi_se_baseline_view(&r.v, sp, TKM_BASE_NEAREST, q, nq, 1, NULL, NULL, p1), 0);
    ck_assert_int_eq(tkmi_se_baseline_view(&r.v, sp, TKM_BASE_NEAREST, q, nq, 3, NULL, NULL, p3), 0);
    ck_assert(!memcmp(p1, p3, nq * sizeof(float)));
    for (size_t i = 0; i < nq; i++) {
        size_t best = SIZE_MAX;
        int brow = -1;
        for (int t = 0; t < N; t++) {
            if (sp[t])
                continue;
            size_t d = lev_ref((const char *)r.b[q[i]], (const char *)r.b[t]);
            if (d < best) {
                best = d;
                brow = t;
            }
        }
        ck_assert_msg(p1[i] == (float)brow, "query \"%s\": row %g, expected %d", r.b[q[i]], p1[i], brow);
    }
    free(p1);
    free(p3);
    synth_free(&r);
}
END_TEST

START_TEST(test_global_mean_and_errors)
{
    enum { R = 5, E = 2 };
    synth s;
    synth_init(&s, R, E);
    for (int i = 0; i < R; i++)
        synth_set(&s, (size_t)i, "x");
    const float m[R * E] = { 1, 2, 3, 4, 100, 100, 5, 6, 7, 8 };
    memcpy(s.m, m, sizeof(m));
    const uint8_t split[R] = { 0, 0, 1, 2, 0 };
    const uint32_t rows[2] = { 2, 3 };
    float pred[2 * E];
    ck_assert_int_eq(tkmi_se_baseline_view(&s.v, split, TKM_BASE_GLOBAL_MEAN, rows, 2, 1, NULL, NULL, pred), 0);
    ck_assert(pred[0] == (float)(11.0 / 3) && pred[1] == (float)(14.0 / 3) && pred[2] == pred[0] && pred[3] == pred[1]);
    const uint8_t none[R] = { 1, 1, 1, 2, 1 };
    for (int b = 0; b < TKM_BASE_COUNT; b++)
        ck_assert_int_eq(tkmi_se_baseline_view(&s.v, none, (tkm_se_baseline)b, rows, 2, 1, NULL, NULL, pred),
                         TKM_EEMPTY);
    ck_assert_int_eq(tkmi_se_baseline_view(&s.v, split, TKM_BASE_COUNT, rows, 2, 1, NULL, NULL, pred), TKM_EINVAL);
    const uint32_t bad[1] = { 9 };
    ck_assert_int_eq(tkmi_se_baseline_view(&s.v, split, TKM_BASE_NEAREST, bad, 1, 1, NULL, NULL, pred), TKM_EINVAL);
    ck_assert_str_eq(tkm_se_baseline_name(TKM_BASE_NGRAM_RIDGE), "ngram-ridge");
    ck_assert_str_eq(tkm_se_baseline_name(TKM_BASE_SUBTOKEN_MEAN), "subtoken-mean");
    ck_assert_str_eq(tkm_se_baseline_name(TKM_BASE_NEAREST), "nearest-string");
    ck_assert_str_eq(tkm_se_baseline_name(TKM_BASE_GLOBAL_MEAN), "global-mean");
    synth_free(&s);
}
END_TEST

START_TEST(test_ngram_features)
{
    uint32_t idx[64];
    double val[64];
    int n = tkmi_se_ngram_features((const unsigned char *)"ab", 2, 1u << 20, idx, val);
    /* " ab ": 4 unigrams (two spaces: one bucket, value 2 up to sign), 3 bigrams,
     * 2 trigrams, 1 four-gram: 9 buckets (collisions are unlikely in 2^20), + bias */
    ck_assert_int_eq(n, 10);
    double ss = 0;
    for (int i = 0; i + 1 < n; i++) {
        ck_assert(i == 0 || idx[i] > idx[i - 1]);
        ss += val[i] * val[i];
    }
    ck_assert(fabs(ss - 1) < 1e-12);
    ck_assert(idx[n - 1] == 1u << 20 && val[n - 1] == 1.0);
    int twos = 0;
    for (int i = 0; i + 1 < n; i++)
        twos += fabs(fabs(val[i]) * sqrt(12.0) - 2.0) < 1e-12; /* |x|^2 = 4 + 8 = 12 */
    ck_assert_int_eq(twos, 1);
    ck_assert_int_eq(tkmi_se_ngram_features((const unsigned char *)"", 0, 1u << 20, idx, val), 3); /* " ", "  ", bias */
}
END_TEST

/* Rows that are an exact linear function of the features: ridge with a tiny
 * penalty recovers held-out rows nearly exactly. */
START_TEST(test_ngram_ridge_recovers)
{
    enum { R = 3000, E = 8, D = 256 };
    const size_t nd = D + 1;
    uint64_t st = SEED + 5;
    double *w = malloc(nd * E * sizeof(double));
    for (size_t i = 0; i < nd * E; i++)
        w[i] = urand(&st) - 0.5;
    synth s;
    synth_init(&s, R, E);
    uint8_t *split = malloc(R);
    for (int r = 0; r < R; r++) {
        char buf[16];
        size_t len = 3 + tkmi_splitmix64(&st) % 6;
        for (size_t j = 0; j < len; j++)
            buf[j] = (char)('a' + tkmi_splitmix64(&st) % 26);
        buf[len] = 0;
        synth_set(&s, (size_t)r, buf);
        uint32_t idx[64];
        double val[64];
        int n = tkmi_se_ngram_features(s.b[r], len, D, idx, val);
        ck_assert_int_gt(n, 0);
        for (int e = 0; e < E; e++) {
            double y = 0;
            for (int a = 0; a < n; a++)
                y += val[a] * w[(size_t)idx[a] * E + (size_t)e];
            s.m[(size_t)r * E + (size_t)e] = (float)y;
        }
        split[r] = r % 10 == 0;
    }
    uint32_t q[R / 10];
    for (int i = 0; i < R / 10; i++)
        q[i] = (uint32_t)(10 * i);
    const double grid[] = { 1e-6, 1e-3, 1.0 };
    tkmi_se_base_opts o = { .ngram_dim = D, .lambdas = grid, .nlambdas = 3 };
    tkmi_se_base_stats bs;
    float *p1 = malloc((size_t)(R / 10) * E * sizeof(float)), *p3 = malloc((size_t)(R / 10) * E * sizeof(float));
    ck_assert_int_eq(tkmi_se_baseline_view(&s.v, split, TKM_BASE_NGRAM_RIDGE, q, R / 10, 1, &o, &bs, p1), 0);
    ck_assert_msg(bs.lambda < 0.01, "lambda %g", bs.lambda);
    ck_assert(bs.nval > 100 && bs.nfit + bs.nval == R - R / 10);
    ck_assert_msg(bs.val_cos > 0.99, "validation cosine %g", bs.val_cos);
    tkm_se_metrics mt;
    ck_assert_int_eq(tkmi_se_metrics_view(&s.v, p1, q, R / 10, 2, &mt, NULL, NULL), 0);
    ck_assert_msg(mt.mean_cos > 0.99 && mt.rel_l2 < 0.1, "cos %g rel %g", mt.mean_cos, mt.rel_l2);
    ck_assert_msg(mt.top1_cos > 0.9, "top-1 %g", mt.top1_cos);
    /* the same with 3 threads, bit for bit */
    ck_assert_int_eq(tkmi_se_baseline_view(&s.v, split, TKM_BASE_NGRAM_RIDGE, q, R / 10, 3, &o, &bs, p3), 0);
    ck_assert(!memcmp(p1, p3, (size_t)(R / 10) * E * sizeof(float)));
    free(p1);
    free(p3);
    free(w);
    free(split);
    synth_free(&s);
}
END_TEST

/* ---- the public wrappers on the real MiniLM teacher ---- */

#define MINILM fixture_path("TKM_CORPUS", "corpora/data", "teachers/minilm/model.safetensors")

/* added by main only when the teacher exists (corpora/teacher.sh) */
START_TEST(test_minilm_end_to_end)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s", MINILM);
    tkm_teacher *t;
    ck_assert_int_eq(tkm_teacher_load(path, NULL, &t), 0);
    const size_t R = tkm_teacher_rows(t), E = tkm_teacher_dim(t);
    ck_assert(R == 30522 && E == 384);
    uint8_t *split = malloc(R);
    int nt = tkm_se_split(t, 0.1, 1, split);
    size_t normal = 0;
    int the_side = -1, the_ok = 1;
    for (size_t r = 0; r < R; r++) {
        normal += split[r] != 2;
        size_t n;
        const unsigned char *b = tkm_teacher_bytes(t, r, &n);
        if ((n == 4 && !memcmp(b, " the", 4)) || (n == 3 && !memcmp(b, "the", 3))) {
            the_ok &= the_side < 0 || split[r] == the_side; /* " the" (the) and "the" (##the) */
            the_side = split[r];
        }
    }
    ck_assert(the_ok && the_side >= 0);
    ck_assert_msg(fabs(nt / (double)normal - 0.1) < 0.01, "%d of %zu rows held out", nt, normal);
    ck_assert_int_eq(split[0], 2); /* [PAD] */
    /* the teacher's own rows rank first by cosine */
    uint32_t rows[300];
    size_t n = 0;
    for (size_t r = 0; r < R && n < 300; r++)
        if (split[r] == 1)
            rows[n++] = (uint32_t)r;
    float *pred = malloc(n * E * sizeof(float));
    for (size_t i = 0; i < n; i++)
        memcpy(pred + i * E, tkm_teacher_matrix(t) + (size_t)rows[i] * E, E * sizeof(float));
    tkm_se_metrics self, m1;
    ck_assert_int_eq(tkm_se_metrics_compute(t, pred, rows, n, 0, &self), 0);
    ck_assert(self.top1_cos == 1.0 && self.mrr_cos == 1.0 && self.rel_l2 == 0.0);
    ck_assert_int_eq(tkm_se_metrics_compute(t, pred, rows, n, 1, &m1), 0);
    ck_assert(!memcmp(&self, &m1, sizeof(m1)));
    /* baselines through the wrappers (ridge is left to the bench: tens of seconds) */
    tkm_se_metrics mg, ms, mn;
    ck_assert_int_eq(tkm_se_baseline_predict(t, split, TKM_BASE_GLOBAL_MEAN, rows, n, 0, pred), 0);
    ck_assert_int_eq(tkm_se_metrics_compute(t, pred, rows, n, 0, &mg), 0);
    ck_assert_int_eq(tkm_se_baseline_predict(t, split, TKM_BASE_SUBTOKEN_MEAN, rows, n, 0, pred), 0);
    ck_assert_int_eq(tkm_se_metrics_compute(t, pred, rows, n, 0, &ms), 0);
    ck_assert_int_eq(tkm_se_baseline_predict(t, split, TKM_BASE_NEAREST, rows, n, 0, pred), 0);
    ck_assert_int_eq(tkm_se_metrics_compute(t, pred, rows, n, 0, &mn), 0);
    fprintf(stderr, "MiniLM, 300 held-out rows: mean cos global %.4f, subtoken %.4f, nearest %.4f\n", mg.mean_cos,
            ms.mean_cos, mn.mean_cos);
    ck_assert(mg.mean_cos > 0.05 && mg.mean_cos < 0.3);
    ck_assert(ms.mean_cos > mg.mean_cos && mn.mean_cos > mg.mean_cos);
    ck_assert(ms.top10_cos > mg.top10_cos && mn.top10_cos > mg.top10_cos);
    free(pred);
    free(split);
    tkm_teacher_free(t);
}
END_TEST

static Suite *softemb_eval_suite(void)
{
    Suite *s = suite_create("softemb_eval");
    TCase *sp = tcase_create("split");
    tcase_add_test(sp, test_group_key);
    tcase_add_test(sp, test_split_groups);
    suite_add_tcase(s, sp);
    TCase *m = tcase_create("metrics");
    tcase_add_test(m, test_metrics_hand);
    tcase_add_test(m, test_metrics_top10_and_duplicates);
    tcase_add_test(m, test_metrics_random_vs_reference);
    tcase_add_test(m, test_metrics_threads_bit_identical);
    suite_add_tcase(s, m);
    TCase *b = tcase_create("baselines");
    tcase_add_loop_test(b, test_cholesky, 0, 3); /* vector widths 16, 8, 4 */
    tcase_add_test(b, test_subtoken_mean);
    tcase_add_test(b, test_nearest_string);
    tcase_add_test(b, test_global_mean_and_errors);
    tcase_add_test(b, test_ngram_features);
    tcase_add_test(b, test_ngram_ridge_recovers);
    tcase_set_timeout(b, 120);
    suite_add_tcase(s, b);
    TCase *e = tcase_create("minilm");
    ADD_TEST_IF_FILE(e, test_minilm_end_to_end, MINILM);
    tcase_set_timeout(e, 300);
    suite_add_tcase(s, e);
    return s;
}

int main(void)
{
    fprintf(stderr, "check_softemb_eval: seed %u\n", SEED);
    SRunner *sr = srunner_create(softemb_eval_suite());
    srunner_run_all(sr, CK_NORMAL);
    skip_report("check_softemb_eval");
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
