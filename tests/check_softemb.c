/* check_softemb.c - unit suite for the soft-embedding encoder: the CPU gemm
 * against a double-precision loop, a finite-difference check of every
 * gradient, bit-identical steps for any thread count, and an encoder that
 * learns a small synthetic teacher. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>
#include <zlib.h>

#include "../kernels/se_ops.h"
#include "../softemb/se_model.h"
#include "tokenmill.h"
#include "tokenmill_softemb.h"
#include "tmpfiles.h"

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
                              { 130, 5, 1000 }, { 4, 200, 15 },
                              /* more than one task each way and three k blocks */
                              { 75, 270, 530 } };
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

/* Each element of C is summed by one task in a fixed order: 1 and 3 threads
 * give the same bits on a product cut into many tasks. */
START_TEST(test_gemm_threads_bit_identical)
{
    const int M = 150, N = 600, K = 700;
    float *A = malloc((size_t)M * K * 4), *B = malloc((size_t)N * K * 4);
    float *C1 = malloc((size_t)M * N * 4), *C3 = malloc((size_t)M * N * 4);
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = frand();
    for (size_t i = 0; i < (size_t)N * K; i++) B[i] = frand();
    for (int tb = 0; tb < 2; tb++) {
        tkmi_se_backend *b1, *b3;
        ck_assert_int_eq(tkmi_se_backend_cpu(1, &b1), 0);
        ck_assert_int_eq(tkmi_se_backend_cpu(3, &b3), 0);
        b1->gemm(b1, 0, tb, M, N, K, 1.0f, A, K, B, tb ? K : N, 0.0f, C1, N);
        b3->gemm(b3, 0, tb, M, N, K, 1.0f, A, K, B, tb ? K : N, 0.0f, C3, N);
        ck_assert(memcmp(C1, C3, (size_t)M * N * 4) == 0);
        b1->destroy(b1);
        b3->destroy(b3);
    }
    free(A); free(B); free(C1); free(C3);
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

static tkmi_se_model *tiny_bag(tkmi_se_backend *be, int pool, int head_mlp, float *targets, int R, int buckets)
{
    tkmi_se_config c = { .layers = 2, .heads = 2, .width = 16, .max_bytes = 6, .pool = pool,
                         .head_mlp = head_mlp, .out_dim = 8, .ngram_buckets = buckets,
                         .ngram_max = buckets ? 3 : 0 };
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
static void grad_check(int pool, int head_mlp, int buckets)
{
    tkmi_se_backend *be;
    ck_assert_int_eq(tkmi_se_backend_cpu(2, &be), 0);
    float targets[5 * 8];
    tkmi_se_model *m = tiny_bag(be, pool, head_mlp, targets, 5, buckets);
    batch bt;
    make_batch(tkmi_se_model_config(m), 8, &bt);
    int32_t feat0[64]; /* the bag rows the batch's first input uses */
    int nfeat0 = buckets ? tkmi_se_bag_features(tkmi_se_model_config(m), bt.tok, bt.len[0], feat0) : 0;
    ck_assert(nfeat0 <= tkmi_se_bag_max_features(tkmi_se_model_config(m)) && nfeat0 <= 64);
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
            if (strcmp(ts[ti].name, "ngram.embed") == 0) /* rows the batch reaches */
                i = ts[ti].off + (size_t)feat0[(s * 5) % nfeat0] * 16 + (size_t)(s * 3 % 16);
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

START_TEST(test_gradients_end_linear) { grad_check(TKMI_POOL_END, 0, 0); }
END_TEST
START_TEST(test_gradients_mean_mlp) { grad_check(TKMI_POOL_MEAN, 1, 0); }
END_TEST
/* a bag of 13 buckets: n-grams share rows, so the scatter sums several entries */
START_TEST(test_gradients_bag) { grad_check(TKMI_POOL_END, 1, 13); }
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
        tkmi_se_model *m = tiny_bag(be, TKMI_POOL_END, 1, targets, 5, 29);
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

/* ---- teachers: files in, files out (scratch files: tmpfiles.h) ------------------- */
START_TEST(test_gguf_roundtrip_and_truncation)
{
    const char *pieces[6] = { "<unk>", "\xe2\x96\x81the", "a\xe2\x96\x81" "b", "<0x41>", "", "\xe6\x97\xa5" };
    float m[6 * 4];
    for (int i = 0; i < 24; i++)
        m[i] = (float)(i - 11) * 0.37f + (i == 5 ? 1e-6f : 0.0f);
    const tkm_dtype dts[3] = { TKM_DTYPE_F32, TKM_DTYPE_F16, TKM_DTYPE_BF16 };
    const double tol[3] = { 0.0, 1e-3, 8e-3 };
    for (int d = 0; d < 3; d++) {
        ck_assert_int_eq(tkm_emb_write_gguf(tpath("t.gguf"), 6, 4, m, pieces, NULL, NULL, dts[d]), 0);
        tkm_teacher *t;
        ck_assert_int_eq(tkm_teacher_load(tpath("t.gguf"), NULL, &t), 0);
        ck_assert_uint_eq(tkm_teacher_rows(t), 6);
        ck_assert_uint_eq(tkm_teacher_dim(t), 4);
        ck_assert_str_eq(tkm_teacher_format(t), "gguf");
        ck_assert_str_eq(tkm_teacher_vocab_style(t), "sentencepiece");
        for (int i = 0; i < 24; i++)
            ck_assert_msg(fabs(tkm_teacher_matrix(t)[i] - m[i]) <= tol[d] * fabs(m[i]) + (d ? 1e-7 : 0),
                          "dtype %d value %d: %g vs %g", d, i, (double)tkm_teacher_matrix(t)[i], (double)m[i]);
        size_t n;
        const unsigned char *b = tkm_teacher_bytes(t, 1, &n);
        ck_assert(n == 4 && memcmp(b, " the", 4) == 0);
        b = tkm_teacher_bytes(t, 2, &n);
        ck_assert(n == 3 && memcmp(b, "a b", 3) == 0);
        b = tkm_teacher_bytes(t, 3, &n);
        ck_assert(n == 1 && b[0] == 'A');
        ck_assert_int_eq(tkm_teacher_row_kind(t, 4), TKM_ROW_UNUSED); /* empty piece */
        ck_assert_int_eq(tkm_teacher_row_kind(t, 5), TKM_ROW_NORMAL);
        tkm_teacher_free(t);
    }
    /* every proper prefix is refused cleanly, never read past the end */
    ck_assert_int_eq(tkm_emb_write_gguf(tpath("t.gguf"), 6, 4, m, pieces, NULL, NULL, TKM_DTYPE_F32), 0);
    size_t n;
    unsigned char *all = read_all(tpath("t.gguf"), &n);
    for (size_t k = 0; k < n; k++) {
        write_bytes(tpath("p.gguf"), all, k);
        tkm_teacher *t = NULL;
        int rc = tkm_teacher_load(tpath("p.gguf"), NULL, &t);
        ck_assert_msg(rc == TKM_EFORMAT || (k < 24 && rc < 0), "prefix %zu: rc %d", k, rc);
        ck_assert_ptr_null(t);
    }
    /* an unsupported tensor type: patch F32 (0) to Q4_0 (2) in the tensor info */
    size_t at = n - 24 * 4; /* data start (aligned) */
    size_t ti = 0;
    for (size_t i = 0; i + 17 < at; i++)
        if (!memcmp(all + i, "token_embd.weight", 17))
            ti = i + 17;
    ck_assert_uint_gt(ti, 0);
    all[ti + 4 + 16] = 2; /* n_dims (4) + ne[2] (16) -> type */
    write_bytes(tpath("q.gguf"), all, n);
    tkm_teacher *t = NULL;
    ck_assert_int_eq(tkm_teacher_load(tpath("q.gguf"), NULL, &t), TKM_ENOTSUP);
    ck_assert_ptr_nonnull(strstr(tkm_last_error(), "unsupported tensor type 2"));
    /* Q8_0 (type 8): one row of 32 values, scale 0.5 (f16 0x3800) */
    all[ti + 4 + 16] = 8;
    free(all);
    unsigned char q[34];
    q[0] = 0x00;
    q[1] = 0x38;
    for (int i = 0; i < 32; i++)
        q[2 + i] = (unsigned char)(int8_t)(i - 16);
    /* build: header, 1 kv (tokens), 1 tensor [32, 1] */
    unsigned char g[512];
    size_t k = 0;
#define P32(v) do { uint32_t v_ = (v); memcpy(g + k, &v_, 4); k += 4; } while (0)
#define P64(v) do { uint64_t v_ = (v); memcpy(g + k, &v_, 8); k += 8; } while (0)
#define PS(s) do { P64(strlen(s)); memcpy(g + k, s, strlen(s)); k += strlen(s); } while (0)
    memcpy(g, "GGUF", 4);
    k = 4;
    P32(3);
    P64(1);
    P64(1);
    PS("tokenizer.ggml.tokens");
    P32(9);
    P32(8);
    P64(1);
    PS("\xe2\x96\x81x");
    PS("token_embd.weight");
    P32(2);
    P64(32);
    P64(1);
    P32(8);
    P64(0);
    while (k % 32)
        g[k++] = 0;
    memcpy(g + k, q, 34);
    k += 34;
    write_bytes(tpath("q8.gguf"), g, k);
    ck_assert_int_eq(tkm_teacher_load(tpath("q8.gguf"), NULL, &t), 0);
    ck_assert_uint_eq(tkm_teacher_dim(t), 32);
    for (int i = 0; i < 32; i++)
        ck_assert(tkm_teacher_matrix(t)[i] == 0.5f * (float)(i - 16));
    tkm_teacher_free(t);
}
END_TEST

START_TEST(test_safetensors_wordpiece_npy)
{
    /* safetensors F16 [5, 2] + vocab.txt (WordPiece) */
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"embeddings.word_embeddings.weight\":{\"dtype\":\"F16\",\"shape\":[5,2],\"data_offsets\":[0,20]},"
                      "\"other.weight\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[20,24]}}";
    size_t hl = strlen(hdr);
    unsigned char buf[1024];
    uint64_t h64 = hl;
    memcpy(buf, &h64, 8);
    memcpy(buf + 8, hdr, hl);
    uint16_t v[10] = { 0x3C00, 0xBC00, 0x4000, 0x0000, 0x3800, 0x3800, 0x4200, 0xC200, 0x0001, 0x7BFF };
    memcpy(buf + 8 + hl, v, 20);
    memset(buf + 8 + hl + 20, 0, 4);
    write_bytes(tpath("model.safetensors"), buf, 8 + hl + 24);
    write_bytes(tpath("vocab.txt"), "[PAD]\n[unused0]\nthe\n##s\n[CLS]\n", 30);
    tkm_teacher *t;
    ck_assert_int_eq(tkm_teacher_load(tpath("model.safetensors"), NULL, &t), 0);
    ck_assert_str_eq(tkm_teacher_vocab_style(t), "wordpiece");
    ck_assert_uint_eq(tkm_teacher_rows(t), 5);
    const float want[10] = { 1, -1, 2, 0, 0.5f, 0.5f, 3, -3, 5.9604645e-08f, 65504 };
    for (int i = 0; i < 10; i++)
        ck_assert_msg(tkm_teacher_matrix(t)[i] == want[i], "%d: %g", i, (double)tkm_teacher_matrix(t)[i]);
    size_t n;
    ck_assert_int_eq(tkm_teacher_row_kind(t, 0), TKM_ROW_SPECIAL);
    ck_assert_int_eq(tkm_teacher_row_kind(t, 1), TKM_ROW_UNUSED);
    ck_assert_int_eq(tkm_teacher_row_kind(t, 4), TKM_ROW_SPECIAL);
    const unsigned char *b = tkm_teacher_bytes(t, 2, &n);
    ck_assert(n == 4 && !memcmp(b, " the", 4));
    b = tkm_teacher_bytes(t, 3, &n);
    ck_assert(n == 1 && b[0] == 's');
    /* npy round trip of the same matrix */
    ck_assert_int_eq(tkm_emb_write_npy(tpath("m.npy"), 5, 2, tkm_teacher_matrix(t)), 0);
    tkm_teacher *u;
    tkm_teacher_opts o = { .vocab = tpath("vocab.txt") };
    ck_assert_int_eq(tkm_teacher_load(tpath("m.npy"), &o, &u), 0);
    ck_assert(memcmp(tkm_teacher_matrix(u), tkm_teacher_matrix(t), 10 * sizeof(float)) == 0);
    size_t fn;
    unsigned char *f = read_all(tpath("m.npy"), &fn);
    ck_assert_uint_eq(fn % 16, (10 + 118 + 40) % 16); /* header padded to 64 bytes then 40 data bytes */
    write_bytes(tpath("m2.npy"), f, fn - 1);
    tkm_teacher *w = NULL;
    ck_assert_int_eq(tkm_teacher_load(tpath("m2.npy"), &o, &w), TKM_EFORMAT);
    free(f);
    tkm_teacher_free(u);
    tkm_teacher_free(t);
    /* a vocabulary longer than the matrix is refused */
    write_bytes(tpath("vocab.txt"), "a\nb\nc\nd\ne\nf\n", 12);
    ck_assert_int_eq(tkm_teacher_load(tpath("model.safetensors"), NULL, &t), TKM_EFORMAT);
    /* byte-level tokenizer.json: GPT-2 characters map back to bytes */
    const char *tj = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"\\u0120the\":0,\"a\":1,\"\\u010a\":2,\"<|endoftext|>\":3,\"x\":4},\"merges\":[]},"
                     "\"added_tokens\":[{\"id\":3,\"content\":\"<|endoftext|>\",\"special\":true}],"
                     "\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}";
    write_bytes(tpath("tokenizer.json"), tj, strlen(tj));
    o.vocab = tpath("tokenizer.json");
    ck_assert_int_eq(tkm_teacher_load(tpath("m.npy"), &o, &t), 0);
    ck_assert_str_eq(tkm_teacher_vocab_style(t), "byte-level");
    b = tkm_teacher_bytes(t, 0, &n);
    ck_assert(n == 4 && !memcmp(b, " the", 4));
    b = tkm_teacher_bytes(t, 2, &n);
    ck_assert(n == 1 && b[0] == '\n');
    ck_assert_int_eq(tkm_teacher_row_kind(t, 3), TKM_ROW_SPECIAL);
    /* the split groups case and leading-space variants */
    uint8_t split[5];
    ck_assert_int_ge(tkm_se_split(t, 0.5, 7, split), 0);
    ck_assert_int_eq(split[3], 2);
    tkm_teacher_free(t);
}
END_TEST

START_TEST(test_split_groups_and_metrics)
{
    /* rows: " The", "the", "THE" (a plain list keeps the space), then 2000 words */
    enum { N = 2003 };
    static char vocab_txt[N * 12];
    size_t k = 0;
    k += (size_t)sprintf(vocab_txt + k, " The\nthe\nTHE\n");
    for (int i = 3; i < N; i++)
        k += (size_t)sprintf(vocab_txt + k, "w%d\n", i);
    write_bytes(tpath("v.txt"), vocab_txt, k);
    float *m = calloc((size_t)N * 3, sizeof(float));
    for (int i = 0; i < N * 3; i++)
        m[i] = frand();
    ck_assert_int_eq(tkm_emb_write_npy(tpath("s.npy"), N, 3, m), 0);
    tkm_teacher_opts o = { .vocab = tpath("v.txt") };
    tkm_teacher *t;
    ck_assert_int_eq(tkm_teacher_load(tpath("s.npy"), &o, &t), 0);
    uint8_t *split = malloc(N);
    int seen_test = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        int nt = tkm_se_split(t, 0.2, seed, split);
        ck_assert(split[0] == split[1] && split[1] == split[2]);
        seen_test |= split[0] == 1;
        ck_assert_msg(nt > N * 0.15 && nt < N * 0.25, "%d test rows", nt);
    }
    ck_assert(seen_test); /* the group does go to the test side for some seed */
    /* metrics: predicting the targets exactly gives rank 1 everywhere */
    uint32_t rows[3] = { 5, 17, 1999 };
    float pred[9];
    for (int i = 0; i < 3; i++)
        memcpy(pred + 3 * i, m + 3 * rows[i], 3 * sizeof(float));
    tkm_se_metrics mt;
    ck_assert_int_eq(tkm_se_metrics_compute(t, pred, rows, 3, 2, &mt), 0);
    ck_assert(mt.top1_cos == 1.0 && mt.mrr_cos == 1.0 && fabs(mt.mean_cos - 1.0) < 1e-6 && mt.rel_l2 < 1e-6);
    /* a duplicated row with a lower index ranks first: the target is 2nd */
    memcpy(m + 3 * 4, m + 3 * 5, 3 * sizeof(float));
    ck_assert_int_eq(tkm_emb_write_npy(tpath("s.npy"), N, 3, m), 0);
    tkm_teacher_free(t);
    ck_assert_int_eq(tkm_teacher_load(tpath("s.npy"), &o, &t), 0);
    ck_assert_int_eq(tkm_se_metrics_compute(t, pred, rows, 1, 1, &mt), 0);
    ck_assert(mt.top1_cos == 0.0 && mt.top10_cos == 1.0 && fabs(mt.mrr_cos - 0.5) < 1e-12);
    /* baselines: global mean is the same vector for every query */
    float bp[6];
    ck_assert_int_eq(tkm_se_baseline_predict(t, split, TKM_BASE_GLOBAL_MEAN, rows, 2, 1, bp), 0);
    ck_assert(memcmp(bp, bp + 3, 3 * sizeof(float)) == 0);
    for (int b = 0; b < TKM_BASE_COUNT; b++)
        ck_assert_int_eq(tkm_se_baseline_predict(t, split, (tkm_se_baseline)b, rows, 3, 2, pred), 0);
    free(split);
    free(m);
    tkm_teacher_free(t);
}
END_TEST

static void encoder_files(int buckets)
{
    /* a tiny teacher, a short training run, save/load, predict */
    enum { N = 40, E = 8 };
    char v[N * 8];
    size_t k = 0;
    for (int i = 0; i < N; i++)
        k += (size_t)sprintf(v + k, "t%c%c\n", 'a' + i % 26, 'a' + i / 26);
    write_bytes(tpath("v2.txt"), v, k);
    float m[N * E];
    for (int i = 0; i < N * E; i++)
        m[i] = frand();
    ck_assert_int_eq(tkm_emb_write_npy(tpath("e.npy"), N, E, m), 0);
    tkm_teacher_opts to = { .vocab = tpath("v2.txt") };
    tkm_teacher *t;
    ck_assert_int_eq(tkm_teacher_load(tpath("e.npy"), &to, &t), 0);
    tkm_se_options o;
    tkm_se_options_default(&o, E);
    o.layers = 1;
    o.width = 16;
    o.heads = 2;
    o.steps = 20;
    o.warmup = 2;
    o.batch = 16;
    o.device = -1;
    o.threads = 2;
    o.checkpoint = tpath("c.tkse");
    o.checkpoint_every = 10;
    o.ngram_buckets = buckets;
    o.ngram_max = 3;
    /* the bag run also validates (before and after the step-10 checkpoint), so
     * resuming must carry the validation's best weights */
    o.valid_frac = buckets ? 0.3 : 0.0;
    o.valid_every = 3;
    uint8_t split[N];
    ck_assert_int_ge(tkm_se_split(t, o.test_frac, o.split_seed, split), 0);
    tkm_se_encoder *e, *r, *f;
    ck_assert_int_eq(tkm_se_train(t, split, &o, NULL, &e), 0);
    /* resuming the step-10 checkpoint reproduces the uninterrupted run */
    ck_assert_int_eq(tkm_se_train(t, split, &o, tpath("c.tkse"), &r), 0);
    {
        tkm_se_info ie;
        tkm_se_get_info(e, &ie);
        if (buckets) { /* validated: a step was chosen, on validation rows the split kept apart */
            ck_assert(ie.valid_frac == 0.3);
            ck_assert(ie.best_step >= 3 && ie.best_step <= 20 && ie.best_mrr > 0);
            uint8_t *vs = malloc(N);
            memcpy(vs, split, N);
            int nv = tkm_se_split_valid(t, 0.3, o.split_seed, vs);
            ck_assert_int_gt(nv, 0);
            for (int i = 0; i < N; i++)
                ck_assert(split[i] == vs[i] || (split[i] == 0 && vs[i] == TKM_SE_VALID));
            free(vs);
        } else {
            ck_assert(ie.valid_frac == 0 && ie.best_step == 0);
        }
    }
    if (!buckets) {
        /* a version 1 file (written before the split rule's version and the
         * n-gram bag were recorded) loads as rule 1, and resuming it is refused */
        size_t nc;
        unsigned char *c = read_all(tpath("c.tkse"), &nc);
        ck_assert(c && nc > 24);
        unsigned char *v1 = malloc(nc);
        memcpy(v1, c, 8);
        const unsigned char one[4] = {1, 0, 0, 0};
        memcpy(v1 + 8, one, 4);
        ck_assert(c[12] == TKM_SE_SPLIT_VERSION && c[13] == 0 && c[14] == 0 && c[15] == 0);
        /* version 3: magic, version, split version, 7 architecture words, the
         * bag's 2 words (0, 0 here), the rest, then the validation record
         * (share, step, MRR, no weights: 28 bytes) before the checksum;
         * version 1 lacks the split version, the bag words and the record */
        ck_assert(memcmp(c + 44, "\0\0\0\0\0\0\0\0", 8) == 0);
        ck_assert(memcmp(c + nc - 8, "\0\0\0\0", 4) == 0); /* no validation weights */
        size_t n = nc - 16 - 28; /* without those and the old checksum */
        memcpy(v1 + 12, c + 16, 28);
        memcpy(v1 + 40, c + 52, n - 40);
        uLong crc = crc32(crc32(0L, Z_NULL, 0), v1, (uInt)n);
        for (int i = 0; i < 4; i++)
            v1[n + (size_t)i] = (unsigned char)(crc >> (8 * i));
        write_bytes(tpath("v1.tkse"), v1, n + 4);
        tkm_se_encoder *old = NULL, *rr = NULL;
        ck_assert_msg(tkm_se_load(tpath("v1.tkse"), &old) == 0, "%s", tkm_last_error());
        tkm_se_info in;
        tkm_se_get_info(old, &in);
        ck_assert_uint_eq(in.split_version, 1);
        tkm_se_get_info(e, &in);
        ck_assert_uint_eq(in.split_version, TKM_SE_SPLIT_VERSION);
        ck_assert_int_eq(tkm_se_train(t, split, &o, tpath("v1.tkse"), &rr), TKM_EINVAL);
        ck_assert_ptr_nonnull(strstr(tkm_last_error(), "split rule"));
        ck_assert_ptr_null(rr);
        tkm_se_free(old);
        free(c);
        free(v1);
    }
    ck_assert_int_eq(tkm_se_save(e, tpath("e.tkse"), 0), 0);
    ck_assert_int_eq(tkm_se_save(r, tpath("r.tkse"), 0), 0);
    size_t n1, n2;
    unsigned char *b1 = read_all(tpath("e.tkse"), &n1), *b2 = read_all(tpath("r.tkse"), &n2);
    ck_assert(n1 == n2 && memcmp(b1, b2, n1) == 0);
    ck_assert_int_eq(tkm_se_load(tpath("e.tkse"), &f), 0);
    const unsigned char *bp[3];
    size_t bl[3];
    for (int i = 0; i < 3; i++)
        bp[i] = tkm_teacher_bytes(t, (size_t)i * 7, &bl[i]);
    float p1[3 * E], p2[3 * E], p3[E];
    ck_assert_int_eq(tkm_se_predict(e, bp, bl, 3, 1, p1), 0);
    ck_assert_int_eq(tkm_se_predict(f, bp, bl, 3, 3, p2), 0);
    ck_assert_int_eq(tkm_se_predict(f, bp + 2, bl + 2, 1, 2, p3), 0);
    ck_assert(memcmp(p1, p2, sizeof(p1)) == 0);
    ck_assert(memcmp(p3, p1 + 2 * E, sizeof(p3)) == 0);
    { /* rows are batched by length inside: neither the order nor the other
       * rows of a batch change a bit of a row's prediction */
        const unsigned char *rp[4] = { (const unsigned char *)"a longer token", bp[2],
                                       (const unsigned char *)"x", bp[0] };
        size_t rl[4] = { 14, bl[2], 1, bl[0] };
        float pr[4 * E], one[E];
        ck_assert_int_eq(tkm_se_predict(f, rp, rl, 4, 2, pr), 0);
        ck_assert(memcmp(pr + 1 * E, p1 + 2 * E, E * sizeof(float)) == 0);
        ck_assert(memcmp(pr + 3 * E, p1, E * sizeof(float)) == 0);
        for (int i = 0; i < 4; i += 2) {
            ck_assert_int_eq(tkm_se_predict(f, rp + i, rl + i, 1, 1, one), 0);
            ck_assert(memcmp(pr + (size_t)i * E, one, E * sizeof(float)) == 0);
        }
    }
    /* truncated and corrupted files are refused */
    for (size_t cut = 0; cut < n1; cut += 1 + cut / 3) {
        write_bytes(tpath("x.tkse"), b1, cut);
        tkm_se_encoder *x = NULL;
        ck_assert_int_lt(tkm_se_load(tpath("x.tkse"), &x), 0);
        ck_assert_ptr_null(x);
    }
    b1[n1 / 2] ^= 0x10;
    write_bytes(tpath("x.tkse"), b1, n1);
    tkm_se_encoder *x = NULL;
    ck_assert_int_eq(tkm_se_load(tpath("x.tkse"), &x), TKM_EFORMAT);
    ck_assert_ptr_nonnull(strstr(tkm_last_error(), "checksum"));
    free(b1);
    free(b2);
    tkm_se_free(e);
    tkm_se_free(r);
    tkm_se_free(f);
    tkm_teacher_free(t);
}

START_TEST(test_encoder_files) { encoder_files(0); }
END_TEST
/* with an n-gram bag: resume, save, load and predict keep every bit */
START_TEST(test_encoder_files_bag) { encoder_files(97); }
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
    tcase_add_test(k, test_gemm_threads_bit_identical);
    tcase_set_timeout(k, 120);
    suite_add_tcase(s, k);
    TCase *m = tcase_create("model");
    tcase_add_test(m, test_config_errors);
    tcase_add_test(m, test_gradients_end_linear);
    tcase_add_test(m, test_gradients_mean_mlp);
    tcase_add_test(m, test_gradients_bag);
    tcase_add_test(m, test_threads_bit_identical);
    tcase_add_test(m, test_learns_synthetic_teacher);
    tcase_set_timeout(m, 300);
    suite_add_tcase(s, m);
    TCase *f = tcase_create("files");
    tcase_add_checked_fixture(f, setup_dir, teardown_dir);
    tcase_add_test(f, test_gguf_roundtrip_and_truncation);
    tcase_add_test(f, test_safetensors_wordpiece_npy);
    tcase_add_test(f, test_split_groups_and_metrics);
    tcase_add_test(f, test_encoder_files);
    tcase_add_test(f, test_encoder_files_bag);
    tcase_set_timeout(f, 120);
    suite_add_tcase(s, f);
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
