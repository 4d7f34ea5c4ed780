/* check_softemb.c - unit suite for the soft-embedding encoder: the CPU gemm
 * against a double-precision loop, a finite-difference check of every
 * gradient, bit-identical steps for any thread count, and an encoder that
 * learns a small synthetic teacher. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/se_ops.h"
#include "../softemb/model.h"
#include "tokenmill.h"

static uint64_t rs = 12345;
static float frand(void) /* uniform in [-1, 1) */
{
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rs >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* ---- gemm ---------------------------------------------------------------------- */
START_TEST(test_gemm)
{
    tkmi_se_backend *be;
    ck_assert_int_eq(tkmi_se_backend_cpu(3, &be), 0);
    const int shapes[][3] = { { 1, 1, 1 }, { 7, 70, 300 }, { 64, 64, 64 }, { 13, 129, 17 },
                              { 130, 5, 1000 }, { 4, 200, 15 } };
    for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
        int M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int beta = 0; beta < 2; beta++) {
                    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
                    size_t asz = (size_t)(ta ? K : M) * lda, bsz = (size_t)(tb ? N : K) * ldb;
                    float *A = malloc(asz * 4), *B = malloc(bsz * 4), *C = malloc((size_t)M * ldc * 4);
                    double *R = malloc((size_t)M * N * 8);
                    for (size_t i = 0; i < asz; i++) A[i] = frand();
                    for (size_t i = 0; i < bsz; i++) B[i] = frand();
                    for (size_t i = 0; i < (size_t)M * ldc; i++) C[i] = beta ? frand() : NAN;
                    for (int i = 0; i < M; i++)
                        for (int j = 0; j < N; j++) {
                            double s = 0;
                            for (int k = 0; k < K; k++)
                                s += (double)(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                                     (tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
                            R[(size_t)i * N + j] = 0.5 * s + (beta ? C[(size_t)i * ldc + j] : 0.0);
                        }
                    be->gemm(be, ta, tb, M, N, K, 0.5f, A, lda, B, ldb, (float)beta, C, ldc);
                    for (int i = 0; i < M; i++)
                        for (int j = 0; j < N; j++) {
                            double d = fabs(C[(size_t)i * ldc + j] - R[(size_t)i * N + j]);
                            ck_assert_msg(d <= 1e-5 * (1 + sqrt((double)K)), "gemm %dx%dx%d ta%d tb%d beta%d: %g",
                                          M, N, K, ta, tb, beta, d);
                        }
                    free(A); free(B); free(C); free(R);
                }
    }
    be->destroy(be);
}
END_TEST

/* ---- a tiny model and a batch ---------------------------------------------------- */
static const char *const words[] = { "the", " cat", "sat", " on", "a", " mat", "##ing", "xyz!" };

typedef struct {
    int32_t tok[8 * 10], len[8], tgt[8];
    int B, T;
} batch;

static void make_batch(const tkmi_se_config *c, int B, batch *bt)
{
    const unsigned char *bp[8];
    size_t bl[8];
    for (int b = 0; b < B; b++) {
        bp[b] = (const unsigned char *)words[b];
        bl[b] = strlen(words[b]);
        bt->tgt[b] = b % 5;
    }
    bt->B = B;
    bt->T = tkmi_se_pack(c, bp, bl, B, bt->tok, bt->len);
}

static tkmi_se_model *tiny(tkmi_se_backend *be, int pool, int head_mlp, float *targets, int R)
{
    tkmi_se_config c = { .layers = 2, .heads = 2, .width = 16, .max_bytes = 6, .pool = pool,
                         .head_mlp = head_mlp, .out_dim = 8 };
    tkmi_se_model *m;
    ck_assert_int_eq(tkmi_se_model_new(&c, be, 8, 7, &m), 0);
    for (int i = 0; i < R * 8; i++)
        targets[i] = frand();
    ck_assert_int_eq(tkmi_se_model_set_targets(m, targets, (size_t)R), 0);
    /* move every parameter away from its initial value so no gradient is trivially 0 */
    size_t np = tkmi_se_model_nparams(m);
    float *p = malloc(np * 4);
    ck_assert_int_eq(tkmi_se_model_get(m, p, NULL, NULL), 0);
    for (size_t i = 0; i < np; i++)
        p[i] += 0.1f * frand();
    ck_assert_int_eq(tkmi_se_model_set(m, p, NULL, NULL), 0);
    free(p);
    return m;
}

/* ---- finite differences ------------------------------------------------------------ */
static void grad_check(int pool, int head_mlp)
{
    tkmi_se_backend *be;
    ck_assert_int_eq(tkmi_se_backend_cpu(2, &be), 0);
    float targets[5 * 8];
    tkmi_se_model *m = tiny(be, pool, head_mlp, targets, 5);
    batch bt;
    make_batch(tkmi_se_model_config(m), 8, &bt);
    tkmi_se_loss_weights w = { .mse = 0.7f, .l1 = 0.3f, .cos = 1.0f, .ctr = 0.5f, .temperature = 0.5f };
    size_t np = tkmi_se_model_nparams(m);
    float *p = malloc(np * 4), *g = malloc(np * 4), loss;
    ck_assert_int_eq(tkmi_se_model_get(m, p, NULL, NULL), 0);
    ck_assert_int_eq(tkmi_se_loss_grad(m, bt.tok, bt.len, bt.tgt, bt.B, bt.T, &w, &loss), 0);
    ck_assert_int_eq(tkmi_se_model_get_grads(m, g), 0);
    int nt, checked = 0, worst_t = -1;
    double worst = 0;
    const tkmi_se_tensor *ts = tkmi_se_model_tensors(m, &nt);
    for (int ti = 0; ti < nt; ti++) {
        /* a few elements of every tensor, the largest gradients among them */
        for (int s = 0; s < 6; s++) {
            size_t i = ts[ti].off + (size_t)((frand() + 1.0f) * 0.5f * (float)ts[ti].n) % ts[ti].n;
            if (strcmp(ts[ti].name, "wte") == 0) /* rows of bytes that occur in the batch */
                i = ts[ti].off + (size_t)'a' * 16 + (size_t)s;
            float orig = p[i], lp, lm;
            const float h = 1e-2f;
            p[i] = orig + h;
            ck_assert_int_eq(tkmi_se_model_set(m, p, NULL, NULL), 0);
            ck_assert_int_eq(tkmi_se_loss_grad(m, bt.tok, bt.len, bt.tgt, bt.B, bt.T, &w, &lp), 0);
            p[i] = orig - h;
            ck_assert_int_eq(tkmi_se_model_set(m, p, NULL, NULL), 0);
            ck_assert_int_eq(tkmi_se_loss_grad(m, bt.tok, bt.len, bt.tgt, bt.B, bt.T, &w, &lm), 0);
            p[i] = orig;
            double fd = ((double)lp - lm) / (2.0 * h);
            double err = fabs(fd - g[i]) / (fabs(fd) + fabs(g[i]) + 1e-3);
            if (err > worst) {
                worst = err;
                worst_t = ti;
            }
            ck_assert_msg(err < 0.05, "%s[%zu] (pool %d, mlp %d): analytic %g, numeric %g",
                          ts[ti].name, i - ts[ti].off, pool, head_mlp, (double)g[i], fd);
            checked++;
        }
    }
    ck_assert_int_ge(checked, 6 * nt);
    (void)worst_t;
    free(p);
    free(g);
    tkmi_se_model_free(m);
    be->destroy(be);
}

START_TEST(test_gradients_end_linear) { grad_check(TKMI_POOL_END, 0); }
END_TEST
START_TEST(test_gradients_mean_mlp) { grad_check(TKMI_POOL_MEAN, 1); }
END_TEST

/* ---- thread-count independence --------------------------------------------------- */
START_TEST(test_threads_bit_identical)
{
    float *res[2];
    size_t np = 0;
    for (int k = 0; k < 2; k++) {
        tkmi_se_backend *be;
        ck_assert_int_eq(tkmi_se_backend_cpu(k ? 3 : 1, &be), 0);
        rs = 999;
        float targets[5 * 8];
        tkmi_se_model *m = tiny(be, TKMI_POOL_END, 1, targets, 5);
        batch bt;
        make_batch(tkmi_se_model_config(m), 8, &bt);
        tkmi_se_hparams hp = { .lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f,
                               .weight_decay = 0.1f, .clip = 0.5f,
                               .w = { 1, 1, 1, 1, 0.1f } };
        for (int s = 1; s <= 3; s++) {
            float loss, gn;
            ck_assert_int_eq(tkmi_se_step(m, bt.tok, bt.len, bt.tgt, bt.B, bt.T, &hp, s, &loss, &gn), 0);
        }
        np = tkmi_se_model_nparams(m);
        res[k] = malloc(np * 4);
        ck_assert_int_eq(tkmi_se_model_get(m, res[k], NULL, NULL), 0);
        tkmi_se_model_free(m);
        be->destroy(be);
    }
    ck_assert(memcmp(res[0], res[1], np * 4) == 0);
    free(res[0]);
    free(res[1]);
}
END_TEST

/* ---- it learns ----------------------------------------------------------------------- */
START_TEST(test_learns_synthetic_teacher)
{
    enum { R = 64, E = 16 };
    tkmi_se_backend *be;
    ck_assert_int_eq(tkmi_se_backend_cpu(2, &be), 0);
    tkmi_se_config c = { .layers = 1, .heads = 2, .width = 32, .max_bytes = 8, .pool = TKMI_POOL_END,
                         .head_mlp = 0, .out_dim = E };
    tkmi_se_model *m;
    ck_assert_int_eq(tkmi_se_model_new(&c, be, R, 3, &m), 0);
    float *tg = malloc(R * E * 4);
    for (int i = 0; i < R * E; i++)
        tg[i] = frand();
    ck_assert_int_eq(tkmi_se_model_set_targets(m, tg, R), 0);
    char strs[R][9];
    const unsigned char *bp[R];
    size_t bl[R];
    int32_t tok[R * 10], len[R], tgt[R];
    for (int r = 0; r < R; r++) {
        int n = 2 + r % 6;
        for (int i = 0; i < n; i++)
            strs[r][i] = (char)('a' + (r * 7 + i * 3 + (r >> 3)) % 26);
        bp[r] = (const unsigned char *)strs[r];
        bl[r] = (size_t)n;
        tgt[r] = r;
    }
    int T = tkmi_se_pack(&c, bp, bl, R, tok, len);
    tkmi_se_hparams hp = { .lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.0f,
                           .clip = 1.0f, .w = { 0, 0, 1, 1, 0.1f } };
    float first = 0, loss = 0, gn;
    for (int s = 1; s <= 300; s++) {
        ck_assert_int_eq(tkmi_se_step(m, tok, len, tgt, R, T, &hp, s, &loss, &gn), 0);
        if (s == 1)
            first = loss;
    }
    ck_assert_msg(loss < 0.2f * first, "loss %g -> %g", (double)first, (double)loss);
    /* top-1 retrieval of the training rows by cosine */
    float *y = malloc(R * E * 4);
    ck_assert_int_eq(tkmi_se_forward(m, tok, len, R, T, y), 0);
    int hits = 0;
    for (int r = 0; r < R; r++) {
        int best = -1;
        double bs = -2;
        for (int q = 0; q < R; q++) {
            double d = 0, ny = 0, nq = 0;
            for (int e = 0; e < E; e++) {
                d += y[r * E + e] * tg[q * E + e];
                ny += y[r * E + e] * y[r * E + e];
                nq += tg[q * E + e] * tg[q * E + e];
            }
            d /= sqrt(ny * nq);
            if (d > bs) {
                bs = d;
                best = q;
            }
        }
        hits += best == r;
    }
    ck_assert_msg(hits >= R * 95 / 100, "top-1 %d/%d", hits, R);
    /* a row's prediction does not depend on the rest of the batch */
    float y1[E];
    int32_t tok1[10], len1[1];
    int T1 = tkmi_se_pack(&c, &bp[5], &bl[5], 1, tok1, len1);
    ck_assert_int_eq(tkmi_se_forward(m, tok1, len1, 1, T1, y1), 0);
    ck_assert(memcmp(y1, y + 5 * E, sizeof(y1)) == 0);
    free(y);
    free(tg);
    tkmi_se_model_free(m);
    be->destroy(be);
}
END_TEST

START_TEST(test_config_errors)
{
    tkmi_se_config c = { .layers = 2, .heads = 3, .width = 16, .max_bytes = 6, .out_dim = 8 };
    ck_assert_int_eq(tkmi_se_config_check(&c), TKM_EINVAL);
    ck_assert_ptr_nonnull(strstr(tkm_last_error(), "heads (3) must divide width (16)"));
    c.heads = 2;
    c.max_bytes = 5000;
    ck_assert_int_eq(tkmi_se_config_check(&c), TKM_EINVAL);
    c.max_bytes = 6;
    ck_assert_int_eq(tkmi_se_config_check(&c), 0);
}
END_TEST

static Suite *softemb_suite(void)
{
    Suite *s = suite_create("softemb");
    TCase *k = tcase_create("kernels");
    tcase_add_test(k, test_gemm);
    tcase_set_timeout(k, 120);
    suite_add_tcase(s, k);
    TCase *m = tcase_create("model");
    tcase_add_test(m, test_config_errors);
    tcase_add_test(m, test_gradients_end_linear);
    tcase_add_test(m, test_gradients_mean_mlp);
    tcase_add_test(m, test_threads_bit_identical);
    tcase_add_test(m, test_learns_synthetic_teacher);
    tcase_set_timeout(m, 300);
    suite_add_tcase(s, m);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(softemb_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
