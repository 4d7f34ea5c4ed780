/* softemb_step.c - times one soft-embedding training step (forward, loss,
 * backward, clipping, AdamW) on the CPU or CUDA backend with synthetic data:
 * random byte strings of exactly --bytes bytes (so T = bytes + 2 every step,
 * as in the seed's fixed padding) and a random teacher matrix. Prints
 * steps/s, achieved TFLOP/s and MFU. Built by `make bench/softemb_step`,
 * never by make check; bench/softemb_gpu.sh runs the seed configuration.
 *
 * FLOPs per step, counted analytically (the same count as the progress lines
 * of `tokenmill softemb train`):
 *   per sequence forward F = layers * (2 T (3D^2 + D^2 + 8D^2) + 4 T^2 D)
 *                           + 2 D^2 [MLP head] + 2 D E
 *   per step = 3 * F * B          (backward = 2 x forward)
 *            + 4 * B * R * E      (contrastive loss, when on: logits and the
 *                                  gradient to the prediction; the teacher
 *                                  rows are fixed, so no third product)
 * Elementwise ops, layernorm, softmax and the optimizer are not counted.
 *
 * --profile N: after the timed steps, N more steps with every op of the
 * backend table timed on its own (the backend is synchronized before and
 * after each call, so the profiled steps are slower than the timed ones: the
 * table says where the time goes, the steps/s line above says how fast it is);
 * gemms are listed per shape with their TFLOP/s. No nsys needed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/se_ops.h"
#include "../softemb/se_model.h"
#include "tkm_internal.h"
#include "tokenmill.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench/softemb_step [options]\n"
            "  --device cpu|cuda[:N]   backend (default cuda)\n"
            "  --threads N             CPU threads (default: all cores)\n"
            "  --tf32                  TF32 tensor cores for the CUDA gemms\n"
            "  --layers N --heads N --width N --bytes N   encoder (4, 8, 768, 48: T = 50)\n"
            "  --mlp-head              Linear-GELU-Linear head instead of linear\n"
            "  --batch N               sequences per step (640)\n"
            "  --teacher-width N       E (4096)\n"
            "  --teacher-rows N        R, random rows resident on the device (32000)\n"
            "  --ctr W                 contrastive loss weight over all R rows (0: off)\n"
            "  --steps N --warmup N    timed steps (20) after untimed ones (3)\n"
            "  --peak TFLOPS           extra peak to report MFU against\n"
            "  --ngram-buckets N       add the hashed n-gram bag (n = 1..5; 0: none, the seed)\n"
            "  --profile N             then N steps with every op timed (synchronized): a table\n");
}

static uint64_t rs = 12345;
static float frand(void) /* [-1, 1) */
{
    return (float)((double)(tkmi_splitmix64(&rs) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* ---- --profile: the backend table wrapped, each op synchronized and timed ---- */

static tkmi_se_backend *P_in; /* the real backend */
static int P_on;
typedef struct {
    char key[64];
    double secs, flop;
    long calls;
} prof_row;
static prof_row P_rows[128];
static int P_n;

static double prof_begin(void)
{
    if (!P_on)
        return 0.0;
    P_in->sync(P_in);
    return tkmi_now();
}

static void prof_end(const char *key, double t0, double flop)
{
    if (!P_on)
        return;
    P_in->sync(P_in);
    double dt = tkmi_now() - t0;
    int i = 0;
    while (i < P_n && strcmp(P_rows[i].key, key) != 0)
        i++;
    if (i == P_n) {
        if (P_n == (int)(sizeof(P_rows) / sizeof(P_rows[0])))
            i = P_n - 1; /* (never with this model: a few dozen keys) */
        else
            snprintf(P_rows[P_n++].key, sizeof(P_rows[0].key), "%s", key);
    }
    P_rows[i].secs += dt;
    P_rows[i].flop += flop;
    P_rows[i].calls++;
}

#define PROF_OP(name, params, args)                  \
    static void p_##name params                      \
    {                                                \
        (void)be;                                    \
        double t0_ = prof_begin();                   \
        P_in->name args;                             \
        prof_end(#name, t0_, 0.0);                   \
    }
PROF_OP(upload, (tkmi_se_backend * be, void *d, const void *s, size_t n), (P_in, d, s, n))
PROF_OP(download, (tkmi_se_backend * be, void *d, const void *s, size_t n), (P_in, d, s, n))
PROF_OP(zero, (tkmi_se_backend * be, void *p, size_t n), (P_in, p, n))
PROF_OP(add_bias, (tkmi_se_backend * be, float *o, const float *b, int N, int C), (P_in, o, b, N, C))
PROF_OP(bias_grad, (tkmi_se_backend * be, float *d, const float *o, int N, int C), (P_in, d, o, N, C))
PROF_OP(embed_fwd,
        (tkmi_se_backend * be, float *o, const int32_t *t, const float *wte, const float *wpe, int B, int T, int C),
        (P_in, o, t, wte, wpe, B, T, C))
PROF_OP(embed_bwd,
        (tkmi_se_backend * be, float *dwte, float *dwpe, const float *d, const int32_t *t, int B, int T, int C),
        (P_in, dwte, dwpe, d, t, B, T, C))
PROF_OP(layernorm_fwd,
        (tkmi_se_backend * be, float *o, float *mean, float *rstd, const float *x, const float *w, const float *b,
         int N, int C),
        (P_in, o, mean, rstd, x, w, b, N, C))
PROF_OP(layernorm_bwd,
        (tkmi_se_backend * be, float *dx, float *dw, float *db, const float *d, const float *x, const float *w,
         const float *mean, const float *rstd, int N, int C),
        (P_in, dx, dw, db, d, x, w, mean, rstd, N, C))
PROF_OP(attention_fwd,
        (tkmi_se_backend * be, float *o, float *att, const float *qkv, const int32_t *len, int B, int T, int C,
         int H),
        (P_in, o, att, qkv, len, B, T, C, H))
PROF_OP(attention_bwd,
        (tkmi_se_backend * be, float *dqkv, const float *d, const float *qkv, const float *att, const int32_t *len,
         int B, int T, int C, int H),
        (P_in, dqkv, d, qkv, att, len, B, T, C, H))
PROF_OP(gelu_fwd, (tkmi_se_backend * be, float *o, const float *x, size_t n), (P_in, o, x, n))
PROF_OP(gelu_bwd, (tkmi_se_backend * be, float *dx, const float *x, const float *d, size_t n), (P_in, dx, x, d, n))
PROF_OP(add, (tkmi_se_backend * be, float *o, const float *a, const float *b, size_t n), (P_in, o, a, b, n))
PROF_OP(pool_fwd,
        (tkmi_se_backend * be, float *o, const float *x, const int32_t *len, int B, int T, int C, int mode),
        (P_in, o, x, len, B, T, C, mode))
PROF_OP(pool_bwd,
        (tkmi_se_backend * be, float *dx, const float *d, const int32_t *len, int B, int T, int C, int mode),
        (P_in, dx, d, len, B, T, C, mode))
PROF_OP(bag_fwd,
        (tkmi_se_backend * be, float *o, const float *tab, const int32_t *f, const int32_t *cnt, int B, int F,
         int C),
        (P_in, o, tab, f, cnt, B, F, C))
PROF_OP(bag_bwd,
        (tkmi_se_backend * be, float *dtab, const float *d, const int32_t *ub, const int32_t *uo, const int32_t *er,
         const int32_t *cnt, int U, int C),
        (P_in, dtab, d, ub, uo, er, cnt, U, C))
PROF_OP(gather_rows, (tkmi_se_backend * be, float *o, const float *m, const int32_t *idx, int B, int C),
        (P_in, o, m, idx, B, C))
PROF_OP(row_normalize, (tkmi_se_backend * be, float *o, float *nrm, const float *x, int R, int C),
        (P_in, o, nrm, x, R, C))
PROF_OP(row_normalize_bwd,
        (tkmi_se_backend * be, float *dx, const float *d, const float *o, const float *nrm, int R, int C),
        (P_in, dx, d, o, nrm, R, C))
PROF_OP(pointwise_loss,
        (tkmi_se_backend * be, float *l, float *dy, const float *y, const float *t, int B, int C, float a, float b,
         float c),
        (P_in, l, dy, y, t, B, C, a, b, c))
PROF_OP(softmax_xent,
        (tkmi_se_backend * be, float *l, float *dl, const float *lg, const int32_t *idx, int B, int V, float w),
        (P_in, l, dl, lg, idx, B, V, w))
PROF_OP(adamw,
        (tkmi_se_backend * be, float *p, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2,
         float eps, float wd, int t, float gs),
        (P_in, p, g, m, v, n, lr, b1, b2, eps, wd, t, gs))
#undef PROF_OP

static void p_gemm(tkmi_se_backend *be, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc)
{
    (void)be;
    char key[64];
    snprintf(key, sizeof(key), "gemm %s%s %d x %d x %d%s", ta ? "T" : "N", tb ? "T" : "N", M, N, K,
             beta != 0.0f ? " +=" : "");
    double t0 = prof_begin();
    P_in->gemm(P_in, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    prof_end(key, t0, 2.0 * M * N * K);
}

static double p_sumsq(tkmi_se_backend *be, const float *x, size_t n)
{
    (void)be;
    double t0 = prof_begin();
    double r = P_in->sumsq(P_in, x, n);
    prof_end("sumsq", t0, 0.0);
    return r;
}

/* a copy of `in` (same impl: unwrapped calls go straight through) whose ops are timed when P_on */
static tkmi_se_backend prof_wrap(tkmi_se_backend *in)
{
    tkmi_se_backend w = *in;
    P_in = in;
#define W(name) w.name = p_##name
    W(upload); W(download); W(zero); W(gemm); W(add_bias); W(bias_grad); W(embed_fwd); W(embed_bwd);
    W(layernorm_fwd); W(layernorm_bwd); W(attention_fwd); W(attention_bwd); W(gelu_fwd); W(gelu_bwd); W(add);
    W(pool_fwd); W(pool_bwd); W(bag_fwd); W(bag_bwd); W(gather_rows); W(row_normalize); W(row_normalize_bwd);
    W(pointwise_loss); W(softmax_xent); W(sumsq); W(adamw);
#undef W
    return w;
}

static int prof_cmp(const void *a, const void *b)
{
    double x = ((const prof_row *)a)->secs, y = ((const prof_row *)b)->secs;
    return x < y ? 1 : x > y ? -1 : strcmp(((const prof_row *)a)->key, ((const prof_row *)b)->key);
}

static void prof_print(int steps, double wall)
{
    double tot = 0.0, gemm = 0.0;
    for (int i = 0; i < P_n; i++) {
        tot += P_rows[i].secs;
        if (!strncmp(P_rows[i].key, "gemm", 4))
            gemm += P_rows[i].secs;
    }
    qsort(P_rows, (size_t)P_n, sizeof(P_rows[0]), prof_cmp);
    printf("profile           %d steps, every op synchronized: %.1f ms/step (ops %.1f ms, of which gemm %.1f ms = "
           "%.0f%%)\n",
           steps, 1e3 * wall / steps, 1e3 * tot / steps, 1e3 * gemm / steps, tot > 0 ? 100.0 * gemm / tot : 0.0);
    printf("  %-34s %9s %10s %6s %9s\n", "op", "calls/st", "ms/step", "share", "TFLOP/s");
    for (int i = 0; i < P_n; i++) {
        const prof_row *r = &P_rows[i];
        char tf[16] = "";
        if (r->flop > 0 && r->secs > 0)
            snprintf(tf, sizeof(tf), "%.1f", r->flop / r->secs / 1e12);
        printf("  %-34s %9.1f %10.3f %5.1f%% %9s\n", r->key, (double)r->calls / steps, 1e3 * r->secs / steps,
               tot > 0 ? 100.0 * r->secs / tot : 0.0, tf);
    }
}

int main(int argc, char **argv)
{
    tkmi_se_config c = { .layers = 4, .heads = 8, .width = 768, .max_bytes = 48, .pool = TKMI_POOL_END,
                         .head_mlp = 0, .out_dim = 4096 };
    int B = 640, R = 32000, steps = 20, warmup = 3, threads = 0, tf32 = 0, device = 0, profile = 0;
    const char *dev = "cuda";
    float ctr = 0.0f;
    double peak = 0.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, dst, conv)                 \
    if (!strcmp(a, name) && v) {             \
        dst = conv(v);                       \
        i++;                                 \
        continue;                            \
    }
        OPT("--layers", c.layers, atoi)
        OPT("--heads", c.heads, atoi)
        OPT("--width", c.width, atoi)
        OPT("--bytes", c.max_bytes, atoi)
        OPT("--batch", B, atoi)
        OPT("--teacher-width", c.out_dim, atoi)
        OPT("--teacher-rows", R, atoi)
        OPT("--ctr", ctr, (float)atof)
        OPT("--steps", steps, atoi)
        OPT("--warmup", warmup, atoi)
        OPT("--threads", threads, atoi)
        OPT("--peak", peak, atof)
        OPT("--device", dev, (const char *))
        OPT("--ngram-buckets", c.ngram_buckets, atoi)
        OPT("--profile", profile, atoi)
#undef OPT
        if (!strcmp(a, "--tf32")) {
            tf32 = 1;
            continue;
        }
        if (!strcmp(a, "--mlp-head")) {
            c.head_mlp = 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        fprintf(stderr, "softemb_step: unknown or incomplete option %s\n", a);
        usage(stderr);
        return 2;
    }
    c.ngram_max = c.ngram_buckets > 0 ? 5 : 0;
    int cuda = strncmp(dev, "cuda", 4) == 0;
    if (cuda && dev[4] == ':')
        device = atoi(dev + 5);
    else if (!cuda && strcmp(dev, "cpu") != 0) {
        fprintf(stderr, "softemb_step: --device must be cpu, cuda or cuda:N\n");
        return 2;
    }
    if (tkmi_se_config_check(&c) < 0 || B < 1 || R < 1 || steps < 1 || warmup < 0 || profile < 0) {
        fprintf(stderr, "softemb_step: bad configuration: %s\n", B < 1 || R < 1 || steps < 1 || warmup < 0 || profile < 0
                                                                     ? "batch, rows and steps must be positive"
                                                                     : tkm_last_error());
        return 2;
    }

    tkmi_se_backend *be = NULL;
    int rc = cuda ? tkmi_se_backend_cuda(device, &be) : tkmi_se_backend_cpu(threads, &be);
    if (rc < 0) {
        fprintf(stderr, "softemb_step: %s backend: %s\n", dev, tkm_last_error());
        return rc == TKM_ENOTSUP ? 77 : 1;
    }
    if (cuda && tf32)
        tkmi_se_backend_cuda_set_tf32(be, 1);
    tkmi_se_backend pw, *real = be;
    if (profile) { /* the model runs on the wrapper; timing stays off until the profiled steps */
        pw = prof_wrap(be);
        be = &pw;
    }

    const int T = c.max_bytes + 2;
    const size_t E = (size_t)c.out_dim;
    float *rows = malloc((size_t)R * E * sizeof(float));
    unsigned char *bytes = malloc((size_t)B * c.max_bytes);
    const unsigned char **bp = malloc((size_t)B * sizeof(*bp));
    size_t *bl = malloc((size_t)B * sizeof(*bl));
    int32_t *tok = malloc((size_t)B * T * sizeof(int32_t)), *len = malloc((size_t)B * sizeof(int32_t)),
            *tgt = malloc((size_t)B * sizeof(int32_t));
    if (!rows || !bytes || !bp || !bl || !tok || !len || !tgt) {
        fprintf(stderr, "softemb_step: out of host memory\n");
        return 1;
    }
    for (size_t i = 0; i < (size_t)R * E; i++)
        rows[i] = 0.05f * frand();

    tkmi_se_model *m = NULL;
    if ((rc = tkmi_se_model_new(&c, be, B, 1, &m)) < 0 || (rc = tkmi_se_model_set_targets(m, rows, (size_t)R)) < 0) {
        fprintf(stderr, "softemb_step: %s\n", tkm_last_error());
        return 1;
    }
    /* MSE relative to the rows' mean square (as train.c does) plus cosine */
    double ms = 0.05 * 0.05 / 3.0;
    tkmi_se_hparams hp = { .lr = 3e-4f, .beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.01f,
                           .clip = 1.0f, .w = { (float)(1.0 / ms), 0.0f, 1.0f, ctr, 0.05f } };

    double flops_step = 3.0 * tkmi_se_flops_per_seq(&c, T) * B + (ctr > 0 ? 4.0 * B * (double)R * (double)E : 0.0);
    double t0 = 0.0, first_loss = 0.0;
    float loss = 0.0f, gnorm = 0.0f;
    for (int s = 0; s < warmup + steps; s++) {
        /* new random strings and targets every step, as training does */
        for (int b = 0; b < B; b++) {
            unsigned char *p = bytes + (size_t)b * c.max_bytes;
            for (int i = 0; i < c.max_bytes; i++)
                p[i] = (unsigned char)(32 + (tkmi_splitmix64(&rs) % 95));
            bp[b] = p;
            bl[b] = (size_t)c.max_bytes;
            tgt[b] = (int32_t)(tkmi_splitmix64(&rs) % (uint64_t)R);
        }
        int Ts = tkmi_se_pack(&c, bp, bl, B, tok, len);
        if (s == warmup)
            t0 = tkmi_now(); /* step returns after its device work (it reads the loss back) */
        if ((rc = tkmi_se_step(m, tok, len, tgt, B, Ts, &hp, s + 1, &loss, &gnorm)) < 0) {
            fprintf(stderr, "softemb_step: step %d: %s\n", s + 1, tkm_last_error());
            return 1;
        }
        if (s == 0)
            first_loss = loss;
    }
    if ((rc = be->sync(be)) < 0) {
        fprintf(stderr, "softemb_step: %s\n", tkm_last_error());
        return 1;
    }
    double secs = tkmi_now() - t0, sps = steps / secs, tflops = flops_step * sps / 1e12;

    printf("device            %s%s (%s)\n", dev, cuda ? (tf32 ? ", TF32 gemm" : ", fp32 gemm") : "",
           be->name);
    printf("model             %d layers, %d heads, width %d, T %d, %s head, n-gram bag %d, batch %d\n", c.layers,
           c.heads, c.width, T, c.head_mlp ? "MLP" : "linear", c.ngram_buckets, B);
    printf("teacher           %d random rows x %zu; losses mse+cos%s\n", R, E, ctr > 0 ? "+contrastive" : "");
    printf("parameters        %zu\n", tkmi_se_model_nparams(m));
    printf("FLOP per step     %.4g (3 x forward%s)\n", flops_step, ctr > 0 ? " + 4 B R E" : "");
    printf("steps timed       %d after %d warm-up, %.3f s\n", steps, warmup, secs);
    printf("loss              %.5g (step 1) -> %.5g (step %d), gradient norm %.4g\n", first_loss, (double)loss,
           warmup + steps, (double)gnorm);
    printf("steps/s           %.3f   (%.1f ms/step, %.0f sequences/s)\n", sps, 1e3 / sps, sps * B);
    printf("achieved          %.3f TFLOP/s\n", tflops);
    if (cuda) {
        printf("MFU               %.1f%% of 989 TFLOP/s (H100 SXM bf16 dense), %.1f%% of 494 (TF32 dense), "
               "%.1f%% of 67 (fp32 CUDA cores)\n",
               100.0 * tflops / 989.0, 100.0 * tflops / 494.0, 100.0 * tflops / 67.0);
        printf("10k steps         %.1f min\n", 10000.0 / sps / 60.0);
    }
    if (peak > 0)
        printf("MFU               %.1f%% of %.4g TFLOP/s (--peak)\n", 100.0 * tflops / peak, peak);
    if (profile) {
        P_on = 1;
        double p0 = tkmi_now();
        for (int s = warmup + steps; s < warmup + steps + profile; s++) {
            int Ts = tkmi_se_pack(&c, bp, bl, B, tok, len); /* the last step's strings again */
            if ((rc = tkmi_se_step(m, tok, len, tgt, B, Ts, &hp, s + 1, &loss, &gnorm)) < 0) {
                fprintf(stderr, "softemb_step: profiled step %d: %s\n", s + 1, tkm_last_error());
                return 1;
            }
        }
        if ((rc = real->sync(real)) < 0) {
            fprintf(stderr, "softemb_step: %s\n", tkm_last_error());
            return 1;
        }
        P_on = 0;
        prof_print(profile, tkmi_now() - p0);
    }

    tkmi_se_model_free(m);
    real->destroy(real);
    free(rows);
    free(bytes);
    free(bp);
    free(bl);
    free(tok);
    free(len);
    free(tgt);
    return 0;
}
