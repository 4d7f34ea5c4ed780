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
 * Elementwise ops, layernorm, softmax and the optimizer are not counted. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/se_ops.h"
#include "../softemb/model.h"
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
            "  --ngram-buckets N       add the hashed n-gram bag (n = 1..5; 0: none, the seed)\n");
}

static uint64_t rs = 12345;
static float frand(void) /* [-1, 1) */
{
    return (float)((double)(tkmi_splitmix64(&rs) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

int main(int argc, char **argv)
{
    tkmi_se_config c = { .layers = 4, .heads = 8, .width = 768, .max_bytes = 48, .pool = TKMI_POOL_END,
                         .head_mlp = 0, .out_dim = 4096 };
    int B = 640, R = 32000, steps = 20, warmup = 3, threads = 0, tf32 = 0, device = 0;
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
    if (tkmi_se_config_check(&c) < 0 || B < 1 || R < 1 || steps < 1 || warmup < 0) {
        fprintf(stderr, "softemb_step: bad configuration: %s\n", B < 1 || R < 1 || steps < 1 || warmup < 0
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

    tkmi_se_model_free(m);
    be->destroy(be);
    free(rows);
    free(bytes);
    free(bp);
    free(bl);
    free(tok);
    free(len);
    free(tgt);
    return 0;
}
