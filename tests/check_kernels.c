/* check_kernels.c - the CUDA backend against the CPU reference: every op of
 * kernels/se_ops.h on random inputs with awkward shapes, then one full training
 * step of the encoder; integers must match exactly, floats by normalized error
 * max|a-b| / max|a| <= 1e-5 (fp32, TF32 off). Exits 77 (skip) when there is no
 * CUDA backend: built without CUDA, no module, or no device. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/se_ops.h"
#include "../softemb/se_model.h"
#include "skip.h"
#include "tokenmill.h"

static tkmi_se_backend *cpu, *gpu;
static uint64_t rs = 42;

static float frand(void)
{
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rs >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* a pair of equal buffers, one per backend */
typedef struct {
    float *h, *c, *g;
    size_t n;
} buf;

static buf mk(size_t n, int random)
{
    buf b = { calloc(n ? n : 1, sizeof(float)), NULL, NULL, n };
    for (size_t i = 0; random && i < n; i++)
        b.h[i] = frand();
    b.c = cpu->alloc(cpu, n * sizeof(float));
    b.g = gpu->alloc(gpu, n * sizeof(float));
    cpu->upload(cpu, b.c, b.h, n * sizeof(float));
    gpu->upload(gpu, b.g, b.h, n * sizeof(float));
    return b;
}

static int32_t *mki(const int32_t *h, size_t n, tkmi_se_backend *be)
{
    int32_t *p = be->alloc(be, n * sizeof(int32_t));
    be->upload(be, p, h, n * sizeof(int32_t));
    return p;
}

static void rm(buf *b)
{
    cpu->free(cpu, b->c);
    gpu->free(gpu, b->g);
    free(b->h);
}

/* normalized error between the two copies */
static double err(const buf *b)
{
    float *x = malloc(b->n * sizeof(float) + 4), *y = malloc(b->n * sizeof(float) + 4);
    cpu->download(cpu, x, b->c, b->n * sizeof(float));
    gpu->download(gpu, y, b->g, b->n * sizeof(float));
    ck_assert_int_eq(gpu->sync(gpu), 0);
    double mx = 1e-6, d = 0;
    for (size_t i = 0; i < b->n; i++) {
        ck_assert_msg(isfinite(y[i]), "non-finite value at %zu", i);
        if (fabs(x[i]) > mx)
            mx = fabs(x[i]);
        if (fabs((double)x[i] - y[i]) > d)
            d = fabs((double)x[i] - y[i]);
    }
    free(x);
    free(y);
    return d / mx;
}

/* TKM_KERNELS_VERBOSE=1 prints every comparison's measured error (the GPU
 * session records them), not only the failing ones */
static void note(const char *what, double e, double tol)
{
    static int verbose = -1;
    if (verbose < 0) {
        const char *v = getenv("TKM_KERNELS_VERBOSE");
        verbose = v && *v && strcmp(v, "0") != 0;
    }
    if (verbose)
        printf("error %-44s %-10.3g tolerance %g%s\n", what, e, tol, e <= tol ? "" : "  FAIL");
}

#define CLOSE(b, tol, what)                                                          \
    do {                                                                             \
        double e_ = err(&(b));                                                       \
        note((what), e_, (tol));                                                     \
        ck_assert_msg(e_ <= (tol), "%s: normalized error %g", (what), e_);            \
    } while (0)

START_TEST(test_gemm)
{
    const int sh[][3] = { { 1, 1, 1 }, { 7, 70, 300 }, { 130, 33, 65 }, { 640, 96, 768 } };
    for (size_t s = 0; s < 4; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int beta = 0; beta < 2; beta++) {
                    int M = sh[s][0], N = sh[s][1], K = sh[s][2];
                    buf A = mk((size_t)M * K, 1), B = mk((size_t)K * N, 1), C = mk((size_t)M * N, 1);
                    cpu->gemm(cpu, ta, tb, M, N, K, 0.7f, A.c, ta ? M : K, B.c, tb ? K : N, (float)beta, C.c, N);
                    gpu->gemm(gpu, ta, tb, M, N, K, 0.7f, A.g, ta ? M : K, B.g, tb ? K : N, (float)beta, C.g, N);
                    CLOSE(C, 1e-5, "gemm");
                    rm(&A);
                    rm(&B);
                    rm(&C);
                }
    /* empty products (M, N or K = 0, leading dimensions at least 1, as cuBLAS
     * wants them): C = beta * C, no error recorded (err() checks sync) */
    const int em[][3] = { { 0, 5, 3 }, { 4, 0, 3 }, { 4, 5, 0 }, { 0, 0, 0 } };
    for (size_t s = 0; s < 4; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int beta = 0; beta < 2; beta++) {
                int M = em[s][0], N = em[s][1], K = em[s][2];
                int lda = (ta ? M : K) > 1 ? (ta ? M : K) : 1, ldb = N > 1 ? N : 1, ldc = N > 1 ? N : 1;
                buf A = mk((size_t)M * K, 1), B = mk((size_t)K * N, 1), C = mk((size_t)M * N, 1);
                cpu->gemm(cpu, ta, 0, M, N, K, 0.7f, A.c, lda, B.c, ldb, (float)beta, C.c, ldc);
                gpu->gemm(gpu, ta, 0, M, N, K, 0.7f, A.g, lda, B.g, ldb, (float)beta, C.g, ldc);
                CLOSE(C, 0, "gemm (empty product)");
                rm(&A);
                rm(&B);
                rm(&C);
            }
}
END_TEST

START_TEST(test_elementwise_and_norms)
{
    const int N = 1003, C = 96;
    buf x = mk((size_t)N * C, 1), y = mk((size_t)N * C, 1), o = mk((size_t)N * C, 0), bias = mk(C, 1);
    cpu->add_bias(cpu, x.c, bias.c, N, C);
    gpu->add_bias(gpu, x.g, bias.g, N, C);
    CLOSE(x, 1e-6, "add_bias");
    cpu->bias_grad(cpu, bias.c, y.c, N, C);
    gpu->bias_grad(gpu, bias.g, y.g, N, C);
    CLOSE(bias, 1e-5, "bias_grad");
    cpu->add(cpu, o.c, x.c, y.c, (size_t)N * C);
    gpu->add(gpu, o.g, x.g, y.g, (size_t)N * C);
    CLOSE(o, 1e-6, "add");
    cpu->gelu_fwd(cpu, o.c, x.c, (size_t)N * C);
    gpu->gelu_fwd(gpu, o.g, x.g, (size_t)N * C);
    CLOSE(o, 1e-5, "gelu_fwd");
    cpu->gelu_bwd(cpu, o.c, x.c, y.c, (size_t)N * C);
    gpu->gelu_bwd(gpu, o.g, x.g, y.g, (size_t)N * C);
    CLOSE(o, 1e-5, "gelu_bwd");
    buf w = mk(C, 1), b = mk(C, 1), mean = mk(N, 0), rstd = mk(N, 0), dw = mk(C, 0), db = mk(C, 0);
    cpu->layernorm_fwd(cpu, o.c, mean.c, rstd.c, x.c, w.c, b.c, N, C);
    gpu->layernorm_fwd(gpu, o.g, mean.g, rstd.g, x.g, w.g, b.g, N, C);
    CLOSE(o, 1e-5, "layernorm_fwd");
    CLOSE(rstd, 1e-5, "layernorm rstd");
    cpu->layernorm_bwd(cpu, o.c, dw.c, db.c, y.c, x.c, w.c, mean.c, rstd.c, N, C);
    gpu->layernorm_bwd(gpu, o.g, dw.g, db.g, y.g, x.g, w.g, mean.g, rstd.g, N, C);
    CLOSE(o, 1e-5, "layernorm_bwd dinp");
    CLOSE(dw, 1e-5, "layernorm_bwd dw");
    CLOSE(db, 1e-5, "layernorm_bwd db");
    buf nrm = mk(N, 0);
    cpu->row_normalize(cpu, o.c, nrm.c, x.c, N, C);
    gpu->row_normalize(gpu, o.g, nrm.g, x.g, N, C);
    CLOSE(o, 1e-5, "row_normalize");
    cpu->row_normalize_bwd(cpu, y.c, x.c, o.c, nrm.c, N, C);
    gpu->row_normalize_bwd(gpu, y.g, x.g, o.g, nrm.g, N, C);
    CLOSE(y, 1e-5, "row_normalize_bwd");
    double sc = cpu->sumsq(cpu, x.c, x.n), sg = gpu->sumsq(gpu, x.g, x.n);
    ck_assert_msg(fabs(sc - sg) <= 1e-9 * sc, "sumsq %g vs %g", sc, sg);
    /* AdamW on identical inputs in a state AdamW can reach: gradients from
     * mk (y above differs between the backends by the row_normalize_bwd
     * rounding), second moments v >= (1 - beta2) m^2 > 0. With v = 0 and |m|
     * ~ 1 instead, the step m^ / sqrt(v^) ~ m / |g| turns a 1e-7 difference of
     * a tiny gradient into a 1e-3 difference of p (the first GPU run). Three
     * steps (t = 1, 2, 3: bias correction), gradients scaled by 0.5 (clipping). */
    buf g = mk(x.n, 1), m = mk(x.n, 1), v = mk(x.n, 1);
    for (size_t i = 0; i < v.n; i++)
        v.h[i] = 0.01f * m.h[i] * m.h[i] + 1e-4f * fabsf(v.h[i]);
    cpu->upload(cpu, v.c, v.h, v.n * sizeof(float));
    gpu->upload(gpu, v.g, v.h, v.n * sizeof(float));
    for (int t = 1; t <= 3; t++) {
        cpu->adamw(cpu, x.c, g.c, m.c, v.c, x.n, 1e-3f, 0.9f, 0.99f, 1e-8f, 0.1f, t, 0.5f);
        gpu->adamw(gpu, x.g, g.g, m.g, v.g, x.n, 1e-3f, 0.9f, 0.99f, 1e-8f, 0.1f, t, 0.5f);
    }
    CLOSE(x, 1e-5, "adamw p");
    CLOSE(m, 1e-5, "adamw m");
    CLOSE(v, 1e-5, "adamw v");
    buf *all[] = { &x, &y, &o, &bias, &w, &b, &mean, &rstd, &dw, &db, &nrm, &g, &m, &v };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        rm(all[i]);
}
END_TEST

START_TEST(test_encoder_ops)
{
    const int B = 5, T = 37, C = 48, H = 4, V = TKMI_SE_VOCAB;
    int32_t len[5] = { 1, 37, 2, 19, 36 }, tok[5 * 37];
    for (int i = 0; i < B * T; i++)
        tok[i] = (int32_t)((unsigned)(frand() + 1.0f) * 128) % V;
    int32_t *lc = mki(len, B, cpu), *lg = mki(len, B, gpu), *tc = mki(tok, (size_t)B * T, cpu),
            *tg = mki(tok, (size_t)B * T, gpu);
    buf wte = mk((size_t)V * C, 1), wpe = mk((size_t)T * C, 1), x = mk((size_t)B * T * C, 0);
    cpu->embed_fwd(cpu, x.c, tc, wte.c, wpe.c, B, T, C);
    gpu->embed_fwd(gpu, x.g, tg, wte.g, wpe.g, B, T, C);
    CLOSE(x, 1e-6, "embed_fwd");
    buf d = mk((size_t)B * T * C, 1);
    cpu->embed_bwd(cpu, wte.c, wpe.c, d.c, tc, B, T, C);
    gpu->embed_bwd(gpu, wte.g, wpe.g, d.g, tg, B, T, C);
    CLOSE(wte, 1e-5, "embed_bwd wte (atomics on the GPU)");
    CLOSE(wpe, 1e-5, "embed_bwd wpe");
    buf qkv = mk((size_t)B * T * 3 * C, 1), att = mk((size_t)B * H * T * T, 0), out = mk((size_t)B * T * C, 0);
    cpu->attention_fwd(cpu, out.c, att.c, qkv.c, lc, B, T, C, H);
    gpu->attention_fwd(gpu, out.g, att.g, qkv.g, lg, B, T, C, H);
    CLOSE(att, 1e-5, "attention_fwd att");
    CLOSE(out, 1e-5, "attention_fwd out");
    buf dqkv = mk((size_t)B * T * 3 * C, 1);
    cpu->attention_bwd(cpu, dqkv.c, d.c, qkv.c, att.c, lc, B, T, C, H);
    gpu->attention_bwd(gpu, dqkv.g, d.g, qkv.g, att.g, lg, B, T, C, H);
    CLOSE(dqkv, 1e-5, "attention_bwd");
    buf pooled = mk((size_t)B * C, 0);
    for (int mode = 0; mode < 2; mode++) {
        cpu->pool_fwd(cpu, pooled.c, x.c, lc, B, T, C, mode);
        gpu->pool_fwd(gpu, pooled.g, x.g, lg, B, T, C, mode);
        CLOSE(pooled, 1e-6, "pool_fwd");
        cpu->pool_bwd(cpu, x.c, pooled.c, lc, B, T, C, mode);
        gpu->pool_bwd(gpu, x.g, pooled.g, lg, B, T, C, mode);
        CLOSE(x, 1e-6, "pool_bwd");
    }
    buf *all[] = { &wte, &wpe, &x, &d, &qkv, &att, &out, &dqkv, &pooled };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        rm(all[i]);
    cpu->free(cpu, lc);
    gpu->free(gpu, lg);
    cpu->free(cpu, tc);
    gpu->free(gpu, tg);
}
END_TEST

START_TEST(test_losses)
{
    const int B = 9, E = 50, V = 30011;
    int32_t idx[9] = { 0, 5, 30010, 77, 77, 1, 2, 3, 29999 };
    int32_t *ic = mki(idx, B, cpu), *ig = mki(idx, B, gpu);
    buf m = mk((size_t)V * E, 1), t = mk((size_t)B * E, 0), y = mk((size_t)B * E, 1), loss = mk(B, 0),
        dy = mk((size_t)B * E, 0);
    cpu->gather_rows(cpu, t.c, m.c, ic, B, E);
    gpu->gather_rows(gpu, t.g, m.g, ig, B, E);
    CLOSE(t, 0.0, "gather_rows");
    cpu->pointwise_loss(cpu, loss.c, dy.c, y.c, t.c, B, E, 0.5f, 0.25f, 1.0f);
    gpu->pointwise_loss(gpu, loss.g, dy.g, y.g, t.g, B, E, 0.5f, 0.25f, 1.0f);
    CLOSE(loss, 1e-5, "pointwise loss");
    CLOSE(dy, 1e-5, "pointwise dy");
    buf logits = mk((size_t)B * V, 1), dl = mk((size_t)B * V, 0);
    cpu->softmax_xent(cpu, loss.c, dl.c, logits.c, ic, B, V, 0.7f);
    gpu->softmax_xent(gpu, loss.g, dl.g, logits.g, ig, B, V, 0.7f);
    CLOSE(loss, 1e-5, "softmax_xent loss");
    CLOSE(dl, 1e-5, "softmax_xent dlogits");
    buf *all[] = { &m, &t, &y, &loss, &dy, &logits, &dl };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        rm(all[i]);
    cpu->free(cpu, ic);
    gpu->free(gpu, ig);
}
END_TEST

/* attention at the seed's head size (width 768, 8 heads: 96 per head) and at
 * T = 128, with lengths 1 and T; the CUDA backend runs it as batched cuBLAS
 * products with the mask in the softmax kernels */
START_TEST(test_attention_shapes)
{
    const int shapes[][3] = { { 50, 768, 8 }, { 128, 64, 2 }, { 33, 96, 3 } };
    for (size_t s = 0; s < 3; s++) {
        const int B = 4, T = shapes[s][0], C = shapes[s][1], H = shapes[s][2];
        int32_t len[4] = { 1, T, T / 2 + 1, T - 1 };
        int32_t *lc = mki(len, B, cpu), *lg = mki(len, B, gpu);
        buf qkv = mk((size_t)B * T * 3 * C, 1), att = mk((size_t)B * H * T * T, 0), out = mk((size_t)B * T * C, 0);
        buf d = mk((size_t)B * T * C, 1), dqkv = mk((size_t)B * T * 3 * C, 1);
        cpu->attention_fwd(cpu, out.c, att.c, qkv.c, lc, B, T, C, H);
        gpu->attention_fwd(gpu, out.g, att.g, qkv.g, lg, B, T, C, H);
        CLOSE(att, 1e-5, "attention_fwd att");
        CLOSE(out, 1e-5, "attention_fwd out");
        cpu->attention_bwd(cpu, dqkv.c, d.c, qkv.c, att.c, lc, B, T, C, H);
        gpu->attention_bwd(gpu, dqkv.g, d.g, qkv.g, att.g, lg, B, T, C, H);
        CLOSE(dqkv, 1e-5, "attention_bwd");
        buf *all[] = { &qkv, &att, &out, &d, &dqkv };
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
            rm(all[i]);
        cpu->free(cpu, lc);
        gpu->free(gpu, lg);
    }
}
END_TEST

/* column sums (bias and layernorm parameter gradients) over many rows, which
 * the CUDA backend cuts into chunks, with widths not a multiple of 32 */
START_TEST(test_column_sums)
{
    const int shapes[][2] = { { 1, 5 }, { 5000, 33 }, { 32000, 70 }, { 64, 1 } };
    for (size_t s = 0; s < 4; s++) {
        const int N = shapes[s][0], C = shapes[s][1];
        buf x = mk((size_t)N * C, 1), dy = mk((size_t)N * C, 1), o = mk((size_t)N * C, 1), w = mk(C, 1),
            b = mk(C, 1), mean = mk(N, 0), rstd = mk(N, 0), dw = mk(C, 1), db = mk(C, 1);
        cpu->bias_grad(cpu, db.c, dy.c, N, C);
        gpu->bias_grad(gpu, db.g, dy.g, N, C);
        CLOSE(db, 1e-5, "bias_grad");
        cpu->layernorm_fwd(cpu, o.c, mean.c, rstd.c, x.c, w.c, b.c, N, C);
        gpu->layernorm_fwd(gpu, o.g, mean.g, rstd.g, x.g, w.g, b.g, N, C);
        CLOSE(mean, 1e-5, "layernorm mean");
        cpu->layernorm_bwd(cpu, o.c, dw.c, db.c, dy.c, x.c, w.c, mean.c, rstd.c, N, C);
        gpu->layernorm_bwd(gpu, o.g, dw.g, db.g, dy.g, x.g, w.g, mean.g, rstd.g, N, C);
        CLOSE(o, 1e-5, "layernorm_bwd dinp (accumulated)");
        CLOSE(dw, 1e-5, "layernorm_bwd dw (accumulated)");
        CLOSE(db, 1e-5, "layernorm_bwd db (accumulated)");
        double sc = cpu->sumsq(cpu, x.c, x.n), sg = gpu->sumsq(gpu, x.g, x.n);
        ck_assert_msg(fabs(sc - sg) <= 1e-9 * sc, "sumsq %g vs %g (n %zu)", sc, sg, x.n);
        buf *all[] = { &x, &dy, &o, &w, &b, &mean, &rstd, &dw, &db };
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
            rm(all[i]);
    }
}
END_TEST

/* TF32 on: the gemm still agrees to TF32 precision; off again: fp32 */
START_TEST(test_tf32_switch)
{
    const int M = 300, N = 200, K = 768;
    buf A = mk((size_t)M * K, 1), B = mk((size_t)K * N, 1), C = mk((size_t)M * N, 0);
    cpu->gemm(cpu, 0, 0, M, N, K, 1.0f, A.c, K, B.c, N, 0.0f, C.c, N);
    tkmi_se_backend_cuda_set_tf32(gpu, 1);
    gpu->gemm(gpu, 0, 0, M, N, K, 1.0f, A.g, K, B.g, N, 0.0f, C.g, N);
    double e = err(&C);
    note("gemm with TF32 on (300 x 200 x 768)", e, 1e-2);
    ck_assert_msg(e <= 1e-2, "TF32 gemm: normalized error %g", e);
    tkmi_se_backend_cuda_set_tf32(gpu, 0);
    gpu->gemm(gpu, 0, 0, M, N, K, 1.0f, A.g, K, B.g, N, 0.0f, C.g, N);
    CLOSE(C, 1e-5, "gemm after TF32 off");
    rm(&A);
    rm(&B);
    rm(&C);
}
END_TEST

/* a failing call is recorded and reported by sync with the call's name; the
 * first error is kept (on a backend of its own: errors are sticky) */
START_TEST(test_error_reporting)
{
    tkmi_se_backend *bad; /* CUDA only (main): the CPU backend has no failing calls to record */
    ck_assert_int_eq(tkmi_se_backend_cuda(0, &bad), 0);
    float *a = bad->alloc(bad, 64 * sizeof(float));
    ck_assert_ptr_nonnull(a);
    /* lda 2 < K 8: refused by the wrapper before cuBLAS sees it (cuBLAS
     * would print "On entry to SGEMM parameter number 10 had an illegal
     * value" to stderr) */
    bad->gemm(bad, 0, 0, 8, 8, 8, 1.0f, a, 2, a, 8, 0.0f, a, 8);
    bad->add(bad, a, a, a, 64);
    int rc = bad->sync(bad);
    ck_assert_int_eq(rc, TKM_EINVAL);
    ck_assert_msg(strstr(tkm_last_error(), "gemm: invalid arguments") != NULL &&
                      strstr(tkm_last_error(), "lda 2") != NULL,
                  "message: %s", tkm_last_error());
    ck_assert_int_eq(bad->sync(bad), rc);
    bad->free(bad, a);
    bad->destroy(bad);
}
END_TEST

/* the token-embedding gradient: bit-reproducible on the CUDA backend for the
 * encoder's 259 rows (chunked sums), and right with a vocabulary too large
 * for that (atomic adds) */
START_TEST(test_embed_grad)
{
    const int B = 7, T = 41, C = 70;
    int32_t tok[7 * 41];
    for (size_t s = 0; s < 2; s++) {
        const int V = s == 0 ? TKMI_SE_VOCAB : 1000;
        for (int i = 0; i < B * T; i++)
            tok[i] = i == 5 ? V - 1 : (int32_t)((frand() + 1.0f) * 0.5f * (float)(V - 1));
        int32_t *tc = mki(tok, (size_t)B * T, cpu), *tg = mki(tok, (size_t)B * T, gpu);
        buf d = mk((size_t)B * T * C, 1), w1 = mk((size_t)V * C, 0), w2 = mk((size_t)V * C, 0),
            p1 = mk((size_t)T * C, 0), p2 = mk((size_t)T * C, 0);
        cpu->embed_bwd(cpu, w1.c, p1.c, d.c, tc, B, T, C);
        gpu->embed_bwd(gpu, w1.g, p1.g, d.g, tg, B, T, C);
        CLOSE(w1, 1e-5, "embed_bwd dwte");
        CLOSE(p1, 1e-5, "embed_bwd dwpe");
        if (s == 0) { /* a second run gives the same bits */
            gpu->embed_bwd(gpu, w2.g, p2.g, d.g, tg, B, T, C);
            float *a = malloc(w1.n * sizeof(float)), *b = malloc(w1.n * sizeof(float));
            gpu->download(gpu, a, w1.g, w1.n * sizeof(float));
            gpu->download(gpu, b, w2.g, w2.n * sizeof(float));
            ck_assert_int_eq(gpu->sync(gpu), 0);
            ck_assert_msg(memcmp(a, b, w1.n * sizeof(float)) == 0, "embed_bwd dwte differs between two runs");
            free(a);
            free(b);
        }
        buf *all[] = { &d, &w1, &w2, &p1, &p2 };
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
            rm(all[i]);
        cpu->free(cpu, tc);
        gpu->free(gpu, tg);
    }
}
END_TEST

/* the n-gram bag: random features (repeats included) and the backward's
 * entries grouped by bucket as the model lists them */
START_TEST(test_bag)
{
    enum { B = 37, F = 23, C = 70, NB = 50 };
    int32_t feat[B * F], cnt[B];
    for (int b = 0; b < B; b++) {
        cnt[b] = 1 + (int)((frand() + 1.0f) * 0.5f * (F - 1));
        for (int j = 0; j < F; j++)
            feat[b * F + j] = j < cnt[b] ? (int32_t)((frand() + 1.0f) * 0.5f * (NB - 1)) : 0;
    }
    int32_t ubkt[B * F], uoff[B * F + 1], erow[B * F];
    int U = 0, ne = 0;
    for (int k = 0; k < NB; k++) { /* buckets ascending, entries in (row, position) order */
        int first = 1;
        for (int b = 0; b < B; b++)
            for (int j = 0; j < cnt[b]; j++)
                if (feat[b * F + j] == k) {
                    if (first) {
                        ubkt[U] = k;
                        uoff[U++] = ne;
                        first = 0;
                    }
                    erow[ne++] = b;
                }
    }
    uoff[U] = ne;
    buf tab = mk((size_t)NB * C, 1), out = mk((size_t)B * C, 1), dout = mk((size_t)B * C, 1);
    buf dtab = mk((size_t)NB * C, 1);
    int32_t *fc = mki(feat, B * F, cpu), *fg = mki(feat, B * F, gpu);
    int32_t *cc = mki(cnt, B, cpu), *cg = mki(cnt, B, gpu);
    int32_t *uc = mki(ubkt, U, cpu), *ug = mki(ubkt, U, gpu);
    int32_t *oc = mki(uoff, U + 1, cpu), *og = mki(uoff, U + 1, gpu);
    int32_t *ec = mki(erow, ne, cpu), *eg = mki(erow, ne, gpu);
    cpu->bag_fwd(cpu, out.c, tab.c, fc, cc, B, F, C);
    gpu->bag_fwd(gpu, out.g, tab.g, fg, cg, B, F, C);
    CLOSE(out, 1e-6, "bag_fwd");
    cpu->bag_bwd(cpu, dtab.c, dout.c, uc, oc, ec, cc, U, C);
    gpu->bag_bwd(gpu, dtab.g, dout.g, ug, og, eg, cg, U, C);
    CLOSE(dtab, 1e-6, "bag_bwd");
    int32_t *ip[] = { fc, cc, uc, oc, ec };
    int32_t *ig[] = { fg, cg, ug, og, eg };
    for (int i = 0; i < 5; i++) {
        cpu->free(cpu, ip[i]);
        gpu->free(gpu, ig[i]);
    }
    buf *all[] = { &tab, &out, &dout, &dtab };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        rm(all[i]);
}
END_TEST

static void full_step(int buckets)
{
    tkmi_se_config c = { .layers = 2, .heads = 4, .width = 64, .max_bytes = 20, .pool = TKMI_POOL_END,
                         .head_mlp = 1, .out_dim = 48, .ngram_buckets = buckets, .ngram_max = buckets ? 3 : 0 };
    enum { B = 16, R = 300 };
    tkmi_se_model *mc, *mg;
    ck_assert_int_eq(tkmi_se_model_new(&c, cpu, B, 5, &mc), 0);
    ck_assert_int_eq(tkmi_se_model_new(&c, gpu, B, 5, &mg), 0);
    float *rows = malloc(R * 48 * sizeof(float));
    for (int i = 0; i < R * 48; i++)
        rows[i] = frand();
    ck_assert_int_eq(tkmi_se_model_set_targets(mc, rows, R), 0);
    ck_assert_int_eq(tkmi_se_model_set_targets(mg, rows, R), 0);
    char s[B][21];
    const unsigned char *bp[B];
    size_t bl[B];
    int32_t tok[B * 22], len[B], tgt[B];
    for (int b = 0; b < B; b++) {
        bl[b] = (size_t)(1 + b % 20);
        for (size_t i = 0; i < bl[b]; i++)
            s[b][i] = (char)('a' + (b * 7 + (int)i) % 26);
        bp[b] = (const unsigned char *)s[b];
        tgt[b] = (b * 37) % R;
    }
    int T = tkmi_se_pack(&c, bp, bl, B, tok, len);
    tkmi_se_hparams hp = { .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.01f,
                           .clip = 1.0f, .w = { 1, 0.5f, 1, 1, 0.1f } };
    float lc, lg, gc, gg;
    ck_assert_int_eq(tkmi_se_step(mc, tok, len, tgt, B, T, &hp, 1, &lc, &gc), 0);
    ck_assert_int_eq(tkmi_se_step(mg, tok, len, tgt, B, T, &hp, 1, &lg, &gg), 0);
    note(buckets ? "full step (bag): loss" : "full step: loss", fabs(lc - lg) / fabs(lc), 1e-5);
    note(buckets ? "full step (bag): gradient norm" : "full step: gradient norm", fabs(gc - gg) / fabs(gc), 1e-5);
    ck_assert_msg(fabs(lc - lg) <= 1e-5 * fabs(lc), "loss %g vs %g", (double)lc, (double)lg);
    ck_assert_msg(fabs(gc - gg) <= 1e-5 * fabs(gc), "gradient norm %g vs %g", (double)gc, (double)gg);
    size_t np = tkmi_se_model_nparams(mc);
    float *pc = malloc(np * sizeof(float)), *pg = malloc(np * sizeof(float));
    float *gcv = malloc(np * sizeof(float)), *ggv = malloc(np * sizeof(float));
    /* the gradients of the step (still in the gradient buffers) */
    ck_assert_int_eq(tkmi_se_model_get_grads(mc, gcv), 0);
    ck_assert_int_eq(tkmi_se_model_get_grads(mg, ggv), 0);
    double mg_ = 1e-12, dg = 0;
    for (size_t i = 0; i < np; i++) {
        mg_ = fmax(mg_, fabs(gcv[i]));
        dg = fmax(dg, fabs((double)gcv[i] - ggv[i]));
    }
    note(buckets ? "full step (bag): gradients" : "full step: gradients", dg / mg_, 1e-5);
    ck_assert_msg(dg / mg_ <= 1e-5, "gradients of a full step: normalized error %g", dg / mg_);
    /* the parameters after AdamW; Adam's first step moves a parameter by about
     * lr * sign(g), so entries whose gradient is at rounding level (|g| below
     * 1e-4 of the largest) are left out: their sign is noise on either side */
    ck_assert_int_eq(tkmi_se_model_get(mc, pc, NULL, NULL), 0);
    ck_assert_int_eq(tkmi_se_model_get(mg, pg, NULL, NULL), 0);
    double mx = 1e-6, d = 0;
    for (size_t i = 0; i < np; i++) {
        mx = fmax(mx, fabs(pc[i]));
        if (fabs(gcv[i]) >= 1e-4 * mg_ || gcv[i] == 0.0f)
            d = fmax(d, fabs((double)pc[i] - pg[i]));
    }
    note(buckets ? "full step (bag): parameters after AdamW" : "full step: parameters after AdamW", d / mx, 1e-5);
    ck_assert_msg(d / mx <= 1e-5, "parameters after one step: normalized error %g", d / mx);
    free(gcv);
    free(ggv);
    free(pc);
    free(pg);
    free(rows);
    tkmi_se_model_free(mc);
    tkmi_se_model_free(mg);
}

START_TEST(test_full_step) { full_step(0); }
END_TEST
/* with an n-gram bag of few buckets, so rows share them */
START_TEST(test_full_step_bag) { full_step(61); }
END_TEST

int main(void)
{
    /* TKM_KERNELS_SELFTEST=1: the "GPU" is a second CPU backend (1 thread vs
     * 2), to run this harness where there is no GPU; the CPU backend is
     * bit-identical for any thread count, so every error must be 0 */
    const char *self = getenv("TKM_KERNELS_SELFTEST");
    if (self && *self && strcmp(self, "0") != 0) {
        if (tkmi_se_backend_cpu(1, &gpu) < 0) {
            fprintf(stderr, "CPU backend: %s\n", tkm_last_error());
            return EXIT_FAILURE;
        }
    } else if (tkmi_se_backend_cuda(0, &gpu) < 0) {
        printf("SKIP: %s\n", tkm_last_error());
        return 77;
    }
    /* (no ck_assert outside a test: Check aborts on it, even when it holds) */
    if (tkmi_se_backend_cpu(2, &cpu) < 0) {
        fprintf(stderr, "CPU backend: %s\n", tkm_last_error());
        return EXIT_FAILURE;
    }
    Suite *s = suite_create("kernels");
    TCase *t = tcase_create("cpu-vs-cuda");
    tcase_add_test(t, test_gemm);
    tcase_add_test(t, test_elementwise_and_norms);
    tcase_add_test(t, test_encoder_ops);
    tcase_add_test(t, test_losses);
    tcase_add_test(t, test_attention_shapes);
    tcase_add_test(t, test_column_sums);
    tcase_add_test(t, test_tf32_switch);
    ADD_TEST_IF(t, test_error_reporting, !strcmp(gpu->name, "cuda"),
                "self-test on a CPU backend: it has no failing calls to record");
    tcase_add_test(t, test_embed_grad);
    tcase_add_test(t, test_bag);
    tcase_add_test(t, test_full_step);
    tcase_add_test(t, test_full_step_bag);
    tcase_set_timeout(t, 300);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK); /* one CUDA context for all tests */
    srunner_run_all(sr, CK_NORMAL);
    skip_report("check_kernels");
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    gpu->destroy(gpu);
    cpu->destroy(cpu);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
