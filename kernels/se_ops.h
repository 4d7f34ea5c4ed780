/* se_ops.h - the operations of the soft-embedding encoder, behind one table so
 * the same model code runs on the CPU reference (se_ops_cpu.c, the
 * specification of every op) and on CUDA (se_ops_cuda.cu, cuBLAS + kernels).
 *
 * Conventions: every pointer argument to an op is backend memory (host memory
 * for the CPU backend, device memory for CUDA) obtained from ->alloc. Float
 * tensors are float32, row-major; indices and lengths are int32. Ops return
 * nothing: a backend records its first error and ->sync reports it. Shapes:
 * N = B*T positions (B sequences padded to T), C channels, H heads, V rows.
 * "+=" in a comment means the op accumulates into its output; "=" overwrites.
 * Every reduction runs in an order fixed by the shapes alone, never by the
 * thread count, so the CPU backend is bit-reproducible for any thread count. */
#ifndef TKM_SE_OPS_H
#define TKM_SE_OPS_H

#include <stddef.h>
#include <stdint.h>

typedef struct tkmi_se_backend tkmi_se_backend;

enum { TKMI_POOL_END = 0, TKMI_POOL_MEAN = 1 };

struct tkmi_se_backend {
    const char *name; /* "cpu" or "cuda" */
    void *impl;       /* backend state */

    /* ---- memory ---- */
    void *(*alloc)(tkmi_se_backend *be, size_t bytes); /* zero-filled; NULL on failure */
    void (*free)(tkmi_se_backend *be, void *p);
    void (*upload)(tkmi_se_backend *be, void *dst, const void *src, size_t bytes);   /* host -> backend */
    void (*download)(tkmi_se_backend *be, void *dst, const void *src, size_t bytes); /* backend -> host */
    void (*zero)(tkmi_se_backend *be, void *p, size_t bytes);
    /* Waits for queued work; returns 0 or the first recorded error (TKM_E*). */
    int (*sync)(tkmi_se_backend *be);
    void (*destroy)(tkmi_se_backend *be);

    /* ---- linear algebra ---- */
    /* C[M,N] = alpha * op(A)[M,K] . op(B)[K,N] + beta * C, row-major; op(X) = X
     * or X^T (then X is stored [K,M] / [N,K]); lda/ldb/ldc are row strides.
     * beta is 0 (C is not read) or 1. */
    void (*gemm)(tkmi_se_backend *be, int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
    /* out[n,c] += bias[c] */
    void (*add_bias)(tkmi_se_backend *be, float *out, const float *bias, int N, int C);
    /* dbias[c] += sum_n dout[n,c] (n ascending) */
    void (*bias_grad)(tkmi_se_backend *be, float *dbias, const float *dout, int N, int C);

    /* ---- encoder ---- */
    /* out[b*T+t, :] = wte[tok[b*T+t], :] + wpe[t, :] */
    void (*embed_fwd)(tkmi_se_backend *be, float *out, const int32_t *tok, const float *wte,
                      const float *wpe, int B, int T, int C);
    /* dwte[tok[n], :] += dout[n, :]; dwpe[t, :] += dout[b*T+t, :] */
    void (*embed_bwd)(tkmi_se_backend *be, float *dwte, float *dwpe, const float *dout,
                      const int32_t *tok, int B, int T, int C);
    /* out = (inp - mean) * rstd * w + b per row; mean/rstd [N] saved; eps 1e-5 */
    void (*layernorm_fwd)(tkmi_se_backend *be, float *out, float *mean, float *rstd,
                          const float *inp, const float *w, const float *b, int N, int C);
    /* dinp += ..., dw += ..., db += ... */
    void (*layernorm_bwd)(tkmi_se_backend *be, float *dinp, float *dw, float *db, const float *dout,
                          const float *inp, const float *w, const float *mean, const float *rstd,
                          int N, int C);
    /* qkv [N, 3C] (q | k | v, heads of C/H contiguous inside each). Bidirectional
     * attention of every position over the keys t' < len[b] (no causal mask);
     * att [B, H, T, T] = softmax probabilities (0 for masked keys);
     * out [N, C] = att . v, scale 1/sqrt(C/H). Positions t >= len[b] are computed
     * like the others (they attend to the valid keys) and never used as keys. */
    void (*attention_fwd)(tkmi_se_backend *be, float *out, float *att, const float *qkv,
                          const int32_t *len, int B, int T, int C, int H);
    /* dqkv = gradient w.r.t. qkv (overwritten, all of it) */
    void (*attention_bwd)(tkmi_se_backend *be, float *dqkv, const float *dout, const float *qkv,
                          const float *att, const int32_t *len, int B, int T, int C, int H);
    /* tanh-approximation GELU: out = gelu(inp); dinp = gelu'(inp) * dout */
    void (*gelu_fwd)(tkmi_se_backend *be, float *out, const float *inp, size_t n);
    void (*gelu_bwd)(tkmi_se_backend *be, float *dinp, const float *inp, const float *dout, size_t n);
    /* out = a + b (out may alias a) */
    void (*add)(tkmi_se_backend *be, float *out, const float *a, const float *b, size_t n);
    /* out [B, C]: the row at t = len[b]-1 (END) or the mean over t < len[b] (MEAN) */
    void (*pool_fwd)(tkmi_se_backend *be, float *out, const float *x, const int32_t *len, int B,
                     int T, int C, int mode);
    /* dx [N, C] = (overwritten; zero at positions that were not pooled) */
    void (*pool_bwd)(tkmi_se_backend *be, float *dx, const float *dout, const int32_t *len, int B,
                     int T, int C, int mode);

    /* ---- hashed n-gram bag (fastText-like side input) ---- */
    /* out[b, :] += (1 / cnt[b]) * sum_{j < cnt[b]} tab[feat[b * F + j], :], j ascending
     * (cnt[b] >= 1) */
    void (*bag_fwd)(tkmi_se_backend *be, float *out, const float *tab, const int32_t *feat,
                    const int32_t *cnt, int B, int F, int C);
    /* For each u < U (distinct rows ubkt[u] of the table):
     * dtab[ubkt[u], :] += sum_{e in [uoff[u], uoff[u+1])} dout[erow[e], :] / cnt[erow[e]],
     * e ascending. The caller lists the entries of a bucket in (row, j) order. */
    void (*bag_bwd)(tkmi_se_backend *be, float *dtab, const float *dout, const int32_t *ubkt,
                    const int32_t *uoff, const int32_t *erow, const int32_t *cnt, int U, int C);

    /* ---- losses ---- */
    /* out[b, :] = m[idx[b], :] */
    void (*gather_rows)(tkmi_se_backend *be, float *out, const float *m, const int32_t *idx, int B, int C);
    /* out = inp / max(|inp|, 1e-12) per row, norm[r] = that divisor */
    void (*row_normalize)(tkmi_se_backend *be, float *out, float *norm, const float *inp, int R, int C);
    /* dinp += (dout - out * <dout, out>) / norm, per row (out = normalized rows) */
    void (*row_normalize_bwd)(tkmi_se_backend *be, float *dinp, const float *dout, const float *out,
                              const float *norm, int R, int C);
    /* Per sample b: loss[b] = w_mse * mean_c (y-t)^2 + w_l1 * mean_c |y-t|
     *                        + w_cos * (1 - cos(y, t));
     * dy (overwritten) = d(sum_b loss[b] / B)/dy. loss [B] overwritten. */
    void (*pointwise_loss)(tkmi_se_backend *be, float *loss, float *dy, const float *y,
                           const float *t, int B, int C, float w_mse, float w_l1, float w_cos);
    /* Cross-entropy of softmax(logits[b, :]) against class idx[b]:
     * loss[b] += weight * ce; dlogits (overwritten) = weight * (p - onehot) / B. */
    void (*softmax_xent)(tkmi_se_backend *be, float *loss, float *dlogits, const float *logits,
                         const int32_t *idx, int B, int V, float weight);

    /* ---- optimizer ---- */
    /* sum of squares of x[0..n) (a fixed-order reduction), returned to the host */
    double (*sumsq)(tkmi_se_backend *be, const float *x, size_t n);
    /* AdamW with bias correction at step t (1-based); g is scaled by gscale
     * first (gradient clipping); decoupled weight decay p -= lr * wd * p. */
    void (*adamw)(tkmi_se_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                  float lr, float beta1, float beta2, float eps, float wd, int t, float gscale);
};

/* The CPU reference backend with `threads` worker threads (<= 0: all cores). */
int tkmi_se_backend_cpu(int threads, tkmi_se_backend **out);
/* The CUDA backend on device `device` (returns TKM_ENOTSUP when built
 * without CUDA or when no device is present; the message says which). */
int tkmi_se_backend_cuda(int device, tkmi_se_backend **out);
/* CUDA: let cuBLAS use TF32 tensor cores for gemm (off by default; the
 * environment variable TKM_CUDA_TF32=1 turns it on for new backends). */
void tkmi_se_backend_cuda_set_tf32(tkmi_se_backend *be, int on);

#endif
