// se_ops_cuda.cu - the CUDA backend of the soft-embedding op table (se_ops.h):
// cuBLAS for every matrix product, one small kernel per other op, float32
// throughout (TF32 tensor cores on request). Built as the loadable module
// tokenmill-cuda.so so that tokenmill never loads the CUDA libraries unless a
// GPU run is asked for (kernels/se_ops_dl.c opens it). Each kernel mirrors the
// CPU reference in se_ops_cpu.c; tests/check_kernels.c compares them.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenmill.h" // the error codes (TKM_E*): the module reports through them

extern "C" {
#include "se_ops.h"
}

typedef int (*err_fn)(int code, const char *fmt, ...);

namespace {

struct impl {
    cublasHandle_t blas;
    int err;          // first error (TKM_E*), 0 if none
    char msg[256];
    err_fn report;
    // device buffers kept between calls: [0] attention backward dS [B, H, T, T];
    // [1] column-sum partials; [2] attention pointer arrays; [3] embedding
    // gradient partials; [4] the largest token id (bytes held in scratch_n)
    void *scratch[5];
    size_t scratch_n[5];
    double *partial;   // sumsq partial sums
};

impl *I(tkmi_se_backend *be) { return (impl *)be->impl; }

void record(tkmi_se_backend *be, const char *what, const char *detail)
{
    impl *p = I(be);
    if (p->err)
        return;
    p->err = TKM_EIO;
    snprintf(p->msg, sizeof(p->msg), "CUDA: %s failed: %s", what, detail);
}

void check(tkmi_se_backend *be, cudaError_t e, const char *what)
{
    if (e != cudaSuccess)
        record(be, what, cudaGetErrorString(e));
}

void check_launch(tkmi_se_backend *be, const char *what) { check(be, cudaGetLastError(), what); }

void check_blas(tkmi_se_backend *be, cublasStatus_t s, const char *what)
{
    if (s != CUBLAS_STATUS_SUCCESS) {
        char b[96];
        snprintf(b, sizeof(b), "%s (cuBLAS status %d)", cublasGetStatusString(s), (int)s);
        record(be, what, b);
    }
}

unsigned blocks(size_t n, unsigned t) { return (unsigned)((n + t - 1) / t); }

// A device buffer of at least `bytes` kept between calls (one per slot); it
// only grows. cudaFree waits for the device, so no queued kernel still uses it.
void *scratch(tkmi_se_backend *be, int slot, size_t bytes, const char *what)
{
    impl *p = I(be);
    if (bytes <= p->scratch_n[slot])
        return p->scratch[slot];
    cudaFree(p->scratch[slot]);
    p->scratch[slot] = NULL;
    p->scratch_n[slot] = 0;
    if (cudaMalloc(&p->scratch[slot], bytes) != cudaSuccess) {
        cudaGetLastError();
        record(be, "cudaMalloc", what);
        return NULL;
    }
    p->scratch_n[slot] = bytes;
    return p->scratch[slot];
}

// ---- memory ---------------------------------------------------------------

void *g_alloc(tkmi_se_backend *be, size_t bytes)
{
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    check(be, cudaMemset(p, 0, bytes ? bytes : 1), "cudaMemset");
    return p;
}

void g_free(tkmi_se_backend *, void *p) { cudaFree(p); }

void g_upload(tkmi_se_backend *be, void *dst, const void *src, size_t bytes)
{
    if (bytes)
        check(be, cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to the device");
}

void g_download(tkmi_se_backend *be, void *dst, const void *src, size_t bytes)
{
    if (bytes)
        check(be, cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy to the host");
}

void g_zero(tkmi_se_backend *be, void *p, size_t bytes)
{
    if (bytes)
        check(be, cudaMemset(p, 0, bytes), "cudaMemset");
}

int g_sync(tkmi_se_backend *be)
{
    check(be, cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    impl *p = I(be);
    if (p->err)
        return p->report(p->err, "%s", p->msg);
    return 0;
}

void g_destroy(tkmi_se_backend *be)
{
    if (!be)
        return;
    impl *p = I(be);
    if (p) {
        for (int i = 0; i < 5; i++)
            cudaFree(p->scratch[i]);
        cudaFree(p->partial);
        if (p->blas)
            cublasDestroy(p->blas);
        free(p);
    }
    free(be);
}

// ---- linear algebra ---------------------------------------------------------

// C[r, j] *= beta for r < M, j < N (C = 0 when beta = 0: C is not read)
__global__ void k_scale_rows(float *C, int ldc, int M, int N, float beta)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)M * N)
        return;
    float *c = C + (i / N) * ldc + i % N;
    *c = beta == 0.0f ? 0.0f : beta * *c;
}

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the same
// buffers with the operands swapped.
void g_gemm(tkmi_se_backend *be, int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
            const float *B, int ldb, float beta, float *C, int ldc)
{
    // cuBLAS rejects a leading dimension below max(1, rows) and then prints to
    // stderr itself ("On entry to SGEMM parameter number 10 ..."): check the
    // row-major equivalents here, record TKM_EINVAL with the call's shape, and
    // never hand cuBLAS an illegal call. Empty products return before that.
    impl *p = I(be);
    if (M < 0 || N < 0 || K < 0 || lda < (transA ? M : K) || lda < 1 || ldb < (transB ? K : N) || ldb < 1 ||
        ldc < N || ldc < 1) {
        if (!p->err) {
            p->err = TKM_EINVAL;
            snprintf(p->msg, sizeof(p->msg),
                     "CUDA: gemm: invalid arguments (M %d, N %d, K %d, transA %d, transB %d, lda %d, ldb %d, ldc %d)", M,
                     N, K, transA, transB, lda, ldb, ldc);
        }
        return;
    }
    if (M == 0 || N == 0)
        return;
    if (K == 0) { // an empty sum: C = beta * C, without asking cuBLAS
        if (beta != 1.0f) {
            k_scale_rows<<<blocks((size_t)M * N, 256), 256>>>(C, ldc, M, N, beta);
            check_launch(be, "gemm (K = 0)");
        }
        return;
    }
    check_blas(be,
               cublasSgemm(I(be)->blas, transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N, N, M,
                           K, &alpha, B, ldb, A, lda, &beta, C, ldc),
               "cublasSgemm");
}

__global__ void k_add_bias(float *out, const float *bias, size_t n, int C)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n)
        out[i] += bias[i % C];
}

void g_add_bias(tkmi_se_backend *be, float *out, const float *bias, int N, int C)
{
    size_t n = (size_t)N * C;
    if (!n)
        return;
    k_add_bias<<<blocks(n, 256), 256>>>(out, bias, n, C);
    check_launch(be, "add_bias");
}

// Column sums over N rows (bias and layernorm gradients), deterministic: the
// rows are cut into at most COL_PARTS chunks fixed by N alone; a block of 32
// columns x 8 row lanes sums one chunk (lane y takes rows y, y+8, ...; the 8
// lanes are then added in order) into part[chunk, c]; a second kernel adds
// the chunks in order. One thread per column over all N rows (the obvious
// kernel) leaves the GPU nearly idle: N = 32000, C = 768 is 6 blocks.
#define COL_PARTS 64

int col_rows(int N)
{
    int r = (N + COL_PARTS - 1) / COL_PARTS;
    r = (r + 7) / 8 * 8;
    return r < 64 ? 64 : r;
}

// LN: also sum (inp - mean) * rstd * x into the second half of part (dw)
template <bool LN>
__global__ void k_colpart(float *part, const float *x, const float *inp, const float *mean, const float *rstd, int N,
                          int C, int rows, int parts)
{
    __shared__ float sh[2][8][33];
    int tx = threadIdx.x, ty = threadIdx.y, c = blockIdx.x * 32 + tx;
    int r0 = blockIdx.y * rows, r1 = r0 + rows < N ? r0 + rows : N;
    float s = 0.0f, s2 = 0.0f;
    if (c < C)
        for (int n = r0 + ty; n < r1; n += 8) {
            float d = x[(size_t)n * C + c];
            s += d;
            if (LN)
                s2 += (inp[(size_t)n * C + c] - mean[n]) * rstd[n] * d;
        }
    sh[0][ty][tx] = s;
    sh[1][ty][tx] = s2;
    __syncthreads();
    if (ty == 0 && c < C) {
        for (int k = 1; k < 8; k++) {
            s += sh[0][k][tx];
            s2 += sh[1][k][tx];
        }
        part[(size_t)blockIdx.y * C + c] = s;
        if (LN)
            part[((size_t)parts + blockIdx.y) * C + c] = s2;
    }
}

// d[c] += sum of the parts in order; LN: dw from the second half, db from the first
__global__ void k_colfinal(float *d, float *dw, const float *part, int C, int parts)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C)
        return;
    float s = 0.0f;
    for (int k = 0; k < parts; k++)
        s += part[(size_t)k * C + c];
    d[c] += s;
    if (dw) {
        s = 0.0f;
        for (int k = 0; k < parts; k++)
            s += part[((size_t)parts + k) * C + c];
        dw[c] += s;
    }
}

// db[c] += sum_n x[n, c]; with dw: dw[c] += sum_n (inp - mean[n]) * rstd[n] * x
void colsum(tkmi_se_backend *be, float *db, float *dw, const float *x, const float *inp, const float *mean,
            const float *rstd, int N, int C, const char *what)
{
    if (C <= 0 || N <= 0)
        return;
    int rows = col_rows(N), parts = (N + rows - 1) / rows;
    float *part = (float *)scratch(be, 1, (size_t)(dw ? 2 : 1) * parts * C * sizeof(float),
                                   "out of device memory for column sums");
    if (!part)
        return;
    dim3 grid(blocks((size_t)C, 32), (unsigned)parts), thr(32, 8);
    if (dw)
        k_colpart<true><<<grid, thr>>>(part, x, inp, mean, rstd, N, C, rows, parts);
    else
        k_colpart<false><<<grid, thr>>>(part, x, NULL, NULL, NULL, N, C, rows, parts);
    check_launch(be, what);
    k_colfinal<<<blocks((size_t)C, 128), 128>>>(db, dw, part, C, parts);
    check_launch(be, what);
}

void g_bias_grad(tkmi_se_backend *be, float *dbias, const float *dout, int N, int C)
{
    colsum(be, dbias, NULL, dout, NULL, NULL, NULL, N, C, "bias_grad");
}

// ---- encoder ----------------------------------------------------------------

__global__ void k_embed_fwd(float *out, const int32_t *tok, const float *wte, const float *wpe, int T, int C, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    size_t p = i / C;
    int c = (int)(i % C);
    out[i] = wte[(size_t)tok[p] * C + c] + wpe[(p % T) * C + c];
}

void g_embed_fwd(tkmi_se_backend *be, float *out, const int32_t *tok, const float *wte, const float *wpe, int B, int T,
                 int C)
{
    size_t n = (size_t)B * T * C;
    if (!n)
        return;
    k_embed_fwd<<<blocks(n, 256), 256>>>(out, tok, wte, wpe, T, C, n);
    check_launch(be, "embed_fwd");
}

// The token-embedding gradient, deterministic: the positions are cut into at
// most EMB_PARTS chunks fixed by N; a block (one warp) per chunk and 32
// columns keeps a [V, 32] tile of sums in shared memory, each thread walking
// its column over the chunk's positions in order; a second kernel adds the
// chunks in order. The op is not told V (the rows of wte), so it reads the
// largest token id back first (one int, at the end of the backward pass where
// the host waits for the gradient norm anyway). Vocabularies over EMB_MAXV
// rows fall back to atomic adds, whose order (so the last bits) may vary.
#define EMB_PARTS 64
#define EMB_MAXV 320 // 32 columns x 320 rows x 4 bytes = 40 KB of shared memory

__global__ void k_maxtok(int32_t *out, const int32_t *tok, size_t n)
{
    __shared__ int32_t red[1024];
    int tid = threadIdx.x;
    int32_t m = -1;
    for (size_t i = tid; i < n; i += 1024)
        m = max(m, tok[i]);
    red[tid] = m;
    __syncthreads();
    for (int k = 512; k > 0; k >>= 1) {
        if (tid < k)
            red[tid] = max(red[tid], red[tid + k]);
        __syncthreads();
    }
    if (tid == 0)
        *out = red[0];
}

__global__ void k_embed_part(float *part, const float *dout, const int32_t *tok, size_t N, int C, int V, size_t rows)
{
    __shared__ float h[EMB_MAXV * 32];
    int tx = threadIdx.x, c = blockIdx.x * 32 + tx;
    size_t n0 = blockIdx.y * rows, n1 = n0 + rows < N ? n0 + rows : N;
    if (c >= C)
        return; // each thread touches only its own column of h: no barrier needed
    for (int v = 0; v < V; v++)
        h[v * 32 + tx] = 0.0f;
    for (size_t n = n0; n < n1; n++)
        h[tok[n] * 32 + tx] += dout[n * C + c];
    float *o = part + (size_t)blockIdx.y * V * C + c;
    for (int v = 0; v < V; v++)
        o[(size_t)v * C] = h[v * 32 + tx];
}

__global__ void k_embed_final(float *dwte, const float *part, size_t VC, int parts)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= VC)
        return;
    float s = 0.0f;
    for (int k = 0; k < parts; k++)
        s += part[(size_t)k * VC + i];
    dwte[i] += s;
}

__global__ void k_embed_bwd_wte(float *dwte, const float *dout, const int32_t *tok, int C, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    size_t p = i / C;
    atomicAdd(&dwte[(size_t)tok[p] * C + (i % C)], dout[i]); // order of additions may vary
}

__global__ void k_embed_bwd_wpe(float *dwpe, const float *dout, int B, int T, int C)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= T * C)
        return;
    int t = i / C, c = i % C;
    float s = 0.0f;
    for (int b = 0; b < B; b++)
        s += dout[((size_t)b * T + t) * C + c];
    dwpe[i] += s;
}

void g_embed_bwd(tkmi_se_backend *be, float *dwte, float *dwpe, const float *dout, const int32_t *tok, int B, int T,
                 int C)
{
    size_t n = (size_t)B * T * C;
    if (!n)
        return;
    k_embed_bwd_wpe<<<blocks((size_t)T * C, 256), 256>>>(dwpe, dout, B, T, C);
    check_launch(be, "embed_bwd");
    size_t N = (size_t)B * T, rows = (N + EMB_PARTS - 1) / EMB_PARTS;
    int parts = (int)((N + rows - 1) / rows), V = 0;
    int32_t *mx = (int32_t *)scratch(be, 4, sizeof(int32_t), "out of device memory for embed_bwd");
    if (mx) {
        k_maxtok<<<1, 1024>>>(mx, tok, N);
        check_launch(be, "embed_bwd");
        int32_t top = -1;
        check(be, cudaMemcpy(&top, mx, sizeof(top), cudaMemcpyDeviceToHost), "cudaMemcpy to the host");
        V = top + 1;
    }
    float *part = NULL;
    if (V >= 1 && V <= EMB_MAXV)
        part = (float *)scratch(be, 3, (size_t)parts * V * C * sizeof(float), "out of device memory for embed_bwd");
    if (part) {
        k_embed_part<<<dim3(blocks((size_t)C, 32), (unsigned)parts), 32>>>(part, dout, tok, N, C, V, rows);
        check_launch(be, "embed_bwd");
        k_embed_final<<<blocks((size_t)V * C, 256), 256>>>(dwte, part, (size_t)V * C, parts);
    } else {
        k_embed_bwd_wte<<<blocks(n, 256), 256>>>(dwte, dout, tok, C, n);
    }
    check_launch(be, "embed_bwd");
}

__device__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// one warp per row
__global__ void k_ln_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, int N,
                         int C)
{
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N)
        return;
    const float *x = inp + (size_t)row * C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32)
        s += x[c];
    float m = warp_sum(s) / C;
    float v = 0.0f;
    for (int c = lane; c < C; c += 32)
        v += (x[c] - m) * (x[c] - m);
    float r = 1.0f / sqrtf(warp_sum(v) / C + 1e-5f);
    float *o = out + (size_t)row * C;
    for (int c = lane; c < C; c += 32)
        o[c] = (x[c] - m) * r * w[c] + b[c];
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = r;
    }
}

void g_layernorm_fwd(tkmi_se_backend *be, float *out, float *mean, float *rstd, const float *inp, const float *w,
                     const float *b, int N, int C)
{
    if (N <= 0)
        return;
    k_ln_fwd<<<blocks((size_t)N, 8), 256>>>(out, mean, rstd, inp, w, b, N, C);
    check_launch(be, "layernorm_fwd");
}

__global__ void k_ln_bwd_rows(float *dinp, const float *dout, const float *inp, const float *w, const float *mean,
                              const float *rstd, int N, int C)
{
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N)
        return;
    const float *x = inp + (size_t)row * C, *d = dout + (size_t)row * C;
    float m = mean[row], r = rstd[row], a = 0.0f, bsum = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float dn = w[c] * d[c];
        a += dn;
        bsum += dn * (x[c] - m) * r;
    }
    a = warp_sum(a) / C;
    bsum = warp_sum(bsum) / C;
    float *di = dinp + (size_t)row * C;
    for (int c = lane; c < C; c += 32) {
        float dn = w[c] * d[c];
        di[c] += (dn - a - (x[c] - m) * r * bsum) * r;
    }
}

void g_layernorm_bwd(tkmi_se_backend *be, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                     const float *w, const float *mean, const float *rstd, int N, int C)
{
    if (N <= 0)
        return;
    k_ln_bwd_rows<<<blocks((size_t)N, 8), 256>>>(dinp, dout, inp, w, mean, rstd, N, C);
    check_launch(be, "layernorm_bwd");
    colsum(be, db, dw, dout, inp, mean, rstd, N, C, "layernorm_bwd");
}

// Attention as batched cuBLAS products over the B*H (sequence, head) pairs,
// with the mask applied by the softmax kernels:
//   forward   S = scale Q K^T (all T keys); P = softmax over keys u < len[b],
//             0 beyond (in att); O = P V
//   backward  dV = P^T dO; dP = dO V^T; dS = P o (dP - rowsum(P o dP)) scale,
//             0 beyond len[b]; dQ = dS K; dK = dS^T Q
// Q, K, V of pair (b, h) are T x hs blocks with row stride 3C inside qkv, so
// the batches are given as pointer arrays (built on the device, slot 2).
// Keys u >= len[b] get probability 0, so they contribute nothing to O and get
// zero dK and dV, as in the CPU reference (which skips them); this assumes
// their values are finite (0 x inf would be NaN), which they are: padding
// positions run through the same network as the others.
enum { AP_Q, AP_K, AP_V, AP_P, AP_O, AP_DS, AP_DQ, AP_DK, AP_DV, AP_N };

__global__ void k_attn_ptrs(float **ptr, const float *qkv, const float *att, const float *o, const float *ds,
                            const float *dqkv, int B, int T, int C, int H)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x, BH = B * H;
    if (i >= BH)
        return;
    int b = i / H, h = i % H, hs = C / H;
    size_t q = (size_t)b * T * 3 * C + (size_t)h * hs, tt = (size_t)i * T * T;
    ptr[AP_Q * BH + i] = (float *)qkv + q;
    ptr[AP_K * BH + i] = (float *)qkv + q + C;
    ptr[AP_V * BH + i] = (float *)qkv + q + 2 * C;
    ptr[AP_P * BH + i] = (float *)att + tt;
    ptr[AP_O * BH + i] = (float *)o + (size_t)b * T * C + (size_t)h * hs;
    if (ds) {
        ptr[AP_DS * BH + i] = (float *)ds + tt;
        ptr[AP_DQ * BH + i] = (float *)dqkv + q;
        ptr[AP_DK * BH + i] = (float *)dqkv + q + C;
        ptr[AP_DV * BH + i] = (float *)dqkv + q + 2 * C;
    }
}

// row-major batched product, the same operand swap as g_gemm; at most 32768
// products per call (grid limits of some cuBLAS versions)
void gemm_batched(tkmi_se_backend *be, int transA, int transB, int M, int N, int K, float alpha, float **A, int lda,
                  float **B, int ldb, float beta, float **C, int ldc, int count, const char *what)
{
    for (int i = 0; i < count; i += 32768) {
        int n = count - i < 32768 ? count - i : 32768;
        check_blas(be,
                   cublasSgemmBatched(I(be)->blas, transB ? CUBLAS_OP_T : CUBLAS_OP_N,
                                      transA ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha,
                                      (const float *const *)(B + i), ldb, (const float *const *)(A + i), lda, &beta,
                                      (float *const *)(C + i), ldc, n),
                   what);
    }
}

float **attn_ptrs(tkmi_se_backend *be, const float *qkv, const float *att, const float *o, const float *ds,
                  const float *dqkv, int B, int T, int C, int H)
{
    size_t BH = (size_t)B * H;
    float **ptr = (float **)scratch(be, 2, AP_N * BH * sizeof(float *), "out of device memory for attention");
    if (!ptr)
        return NULL;
    k_attn_ptrs<<<blocks(BH, 128), 128>>>(ptr, qkv, att, o, ds, dqkv, B, T, C, H);
    check_launch(be, "attention pointers");
    return ptr;
}

// one warp per row (b, h, t) of S (in att): masked softmax in place
__global__ void k_attn_softmax(float *att, const int32_t *len, int B, int H, int T)
{
    size_t row = blockIdx.x * (size_t)(blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= (size_t)B * H * T)
        return;
    int L = len[row / ((size_t)H * T)];
    float *r = att + row * T;
    float mx = -INFINITY;
    for (int u = lane; u < L; u += 32)
        mx = fmaxf(mx, r[u]);
    for (int o = 16; o > 0; o >>= 1)
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    float sum = 0.0f;
    for (int u = lane; u < L; u += 32)
        sum += expf(r[u] - mx);
    float inv = 1.0f / warp_sum(sum);
    for (int u = lane; u < T; u += 32)
        r[u] = u < L ? expf(r[u] - mx) * inv : 0.0f;
}

// one warp per row: dS = P o (dP - <P, dP>) scale over u < L, 0 beyond (in place in dP)
__global__ void k_attn_softmax_bwd(float *ds, const float *att, const int32_t *len, int B, int H, int T, float scale)
{
    size_t row = blockIdx.x * (size_t)(blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= (size_t)B * H * T)
        return;
    int L = len[row / ((size_t)H * T)];
    const float *p = att + row * T;
    float *d = ds + row * T;
    float dot = 0.0f;
    for (int u = lane; u < L; u += 32)
        dot += p[u] * d[u];
    dot = warp_sum(dot);
    for (int u = lane; u < T; u += 32)
        d[u] = u < L ? p[u] * (d[u] - dot) * scale : 0.0f;
}

void g_attention_fwd(tkmi_se_backend *be, float *out, float *att, const float *qkv, const int32_t *len, int B, int T,
                     int C, int H)
{
    int BH = B * H, hs = C / H;
    if (BH <= 0 || T <= 0)
        return;
    float **ptr = attn_ptrs(be, qkv, att, out, NULL, NULL, B, T, C, H);
    if (!ptr)
        return;
    float scale = 1.0f / sqrtf((float)hs);
    gemm_batched(be, 0, 1, T, T, hs, scale, ptr + AP_Q * BH, 3 * C, ptr + AP_K * BH, 3 * C, 0.0f, ptr + AP_P * BH, T,
                 BH, "cublasSgemmBatched (attention scores)");
    k_attn_softmax<<<blocks((size_t)BH * T, 8), 256>>>(att, len, B, H, T);
    check_launch(be, "attention softmax");
    gemm_batched(be, 0, 0, T, hs, T, 1.0f, ptr + AP_P * BH, T, ptr + AP_V * BH, 3 * C, 0.0f, ptr + AP_O * BH, C, BH,
                 "cublasSgemmBatched (attention values)");
}

void g_attention_bwd(tkmi_se_backend *be, float *dqkv, const float *dout, const float *qkv, const float *att,
                     const int32_t *len, int B, int T, int C, int H)
{
    int BH = B * H, hs = C / H;
    if (BH <= 0 || T <= 0)
        return;
    float *ds = (float *)scratch(be, 0, (size_t)BH * T * T * sizeof(float), "out of device memory for attention");
    if (!ds)
        return;
    float **ptr = attn_ptrs(be, qkv, att, dout, ds, dqkv, B, T, C, H);
    if (!ptr)
        return;
    float scale = 1.0f / sqrtf((float)hs);
    // dV = P^T dO
    gemm_batched(be, 1, 0, T, hs, T, 1.0f, ptr + AP_P * BH, T, ptr + AP_O * BH, C, 0.0f, ptr + AP_DV * BH, 3 * C, BH,
                 "cublasSgemmBatched (attention dV)");
    // dP = dO V^T, then dS in place
    gemm_batched(be, 0, 1, T, T, hs, 1.0f, ptr + AP_O * BH, C, ptr + AP_V * BH, 3 * C, 0.0f, ptr + AP_DS * BH, T, BH,
                 "cublasSgemmBatched (attention dP)");
    k_attn_softmax_bwd<<<blocks((size_t)BH * T, 8), 256>>>(ds, att, len, B, H, T, scale);
    check_launch(be, "attention softmax backward");
    // dQ = dS K, dK = dS^T Q
    gemm_batched(be, 0, 0, T, hs, T, 1.0f, ptr + AP_DS * BH, T, ptr + AP_K * BH, 3 * C, 0.0f, ptr + AP_DQ * BH, 3 * C,
                 BH, "cublasSgemmBatched (attention dQ)");
    gemm_batched(be, 1, 0, T, hs, T, 1.0f, ptr + AP_DS * BH, T, ptr + AP_Q * BH, 3 * C, 0.0f, ptr + AP_DK * BH, 3 * C,
                 BH, "cublasSgemmBatched (attention dK)");
}

#define GELU_K 0.7978845608028654f

__global__ void k_gelu_fwd(float *out, const float *x, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) {
        float v = x[i];
        out[i] = 0.5f * v * (1.0f + tanhf(GELU_K * (v + 0.044715f * v * v * v)));
    }
}

__global__ void k_gelu_bwd(float *dinp, const float *x, const float *dout, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) {
        float v = x[i], u = GELU_K * (v + 0.044715f * v * v * v), th = tanhf(u);
        float g = 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * GELU_K * (1.0f + 3.0f * 0.044715f * v * v);
        dinp[i] = g * dout[i];
    }
}

void g_gelu_fwd(tkmi_se_backend *be, float *out, const float *inp, size_t n)
{
    if (!n)
        return;
    k_gelu_fwd<<<blocks(n, 256), 256>>>(out, inp, n);
    check_launch(be, "gelu_fwd");
}

void g_gelu_bwd(tkmi_se_backend *be, float *dinp, const float *inp, const float *dout, size_t n)
{
    if (!n)
        return;
    k_gelu_bwd<<<blocks(n, 256), 256>>>(dinp, inp, dout, n);
    check_launch(be, "gelu_bwd");
}

__global__ void k_add(float *out, const float *a, const float *b, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n)
        out[i] = a[i] + b[i];
}

void g_add(tkmi_se_backend *be, float *out, const float *a, const float *b, size_t n)
{
    if (!n)
        return;
    k_add<<<blocks(n, 256), 256>>>(out, a, b, n);
    check_launch(be, "add");
}

__global__ void k_pool_fwd(float *out, const float *x, const int32_t *len, int B, int T, int C, int mode)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= B * C)
        return;
    int b = i / C, c = i % C, L = len[b];
    if (mode == TKMI_POOL_END) {
        out[i] = x[((size_t)b * T + L - 1) * C + c];
        return;
    }
    float s = 0.0f;
    for (int t = 0; t < L; t++)
        s += x[((size_t)b * T + t) * C + c];
    out[i] = s / (float)L;
}

__global__ void k_pool_bwd(float *dx, const float *dout, const int32_t *len, int B, int T, int C, int mode)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)B * T * C)
        return;
    int c = (int)(i % C), t = (int)((i / C) % T), b = (int)(i / ((size_t)C * T)), L = len[b];
    float d = dout[(size_t)b * C + c];
    dx[i] = mode == TKMI_POOL_END ? (t == L - 1 ? d : 0.0f) : (t < L ? d / (float)L : 0.0f);
}

void g_pool_fwd(tkmi_se_backend *be, float *out, const float *x, const int32_t *len, int B, int T, int C, int mode)
{
    if (B <= 0 || C <= 0)
        return;
    k_pool_fwd<<<blocks((size_t)B * C, 256), 256>>>(out, x, len, B, T, C, mode);
    check_launch(be, "pool_fwd");
}

void g_pool_bwd(tkmi_se_backend *be, float *dx, const float *dout, const int32_t *len, int B, int T, int C, int mode)
{
    if (B <= 0 || T <= 0 || C <= 0)
        return;
    k_pool_bwd<<<blocks((size_t)B * T * C, 256), 256>>>(dx, dout, len, B, T, C, mode);
    check_launch(be, "pool_bwd");
}

// ---- hashed n-gram bag ----------------------------------------------------------

// one thread per (row, channel): the row's features summed in order, as the CPU does
__global__ void k_bag_fwd(float *out, const float *tab, const int32_t *feat, const int32_t *cnt, int B, int F,
                          int C)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)B * C)
        return;
    int b = (int)(i / C), c = (int)(i % C);
    const int32_t *f = feat + (size_t)b * F;
    float s = 0.0f;
    for (int j = 0; j < cnt[b]; j++)
        s += tab[(size_t)f[j] * C + c];
    out[i] += s / (float)cnt[b];
}

// one block per bucket, threads over channels: the bucket's entries in the
// order the host listed them, so the sum is deterministic without atomics
__global__ void k_bag_bwd(float *dtab, const float *dout, const int32_t *ubkt, const int32_t *uoff,
                          const int32_t *erow, const int32_t *cnt, int U, int C)
{
    int u = blockIdx.x;
    if (u >= U)
        return;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float d = dtab[(size_t)ubkt[u] * C + c];
        for (int32_t k = uoff[u]; k < uoff[u + 1]; k++) {
            int32_t r = erow[k];
            d += dout[(size_t)r * C + c] / (float)cnt[r];
        }
        dtab[(size_t)ubkt[u] * C + c] = d;
    }
}

void g_bag_fwd(tkmi_se_backend *be, float *out, const float *tab, const int32_t *feat, const int32_t *cnt, int B,
               int F, int C)
{
    if (B <= 0 || C <= 0)
        return;
    k_bag_fwd<<<blocks((size_t)B * C, 256), 256>>>(out, tab, feat, cnt, B, F, C);
    check_launch(be, "bag_fwd");
}

void g_bag_bwd(tkmi_se_backend *be, float *dtab, const float *dout, const int32_t *ubkt, const int32_t *uoff,
               const int32_t *erow, const int32_t *cnt, int U, int C)
{
    if (U <= 0 || C <= 0)
        return;
    k_bag_bwd<<<(unsigned)U, 128>>>(dtab, dout, ubkt, uoff, erow, cnt, U, C);
    check_launch(be, "bag_bwd");
}

// ---- losses -------------------------------------------------------------------

__global__ void k_gather(float *out, const float *m, const int32_t *idx, int B, int C)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < B * C)
        out[i] = m[(size_t)idx[i / C] * C + i % C];
}

void g_gather_rows(tkmi_se_backend *be, float *out, const float *m, const int32_t *idx, int B, int C)
{
    if (B <= 0 || C <= 0)
        return;
    k_gather<<<blocks((size_t)B * C, 256), 256>>>(out, m, idx, B, C);
    check_launch(be, "gather_rows");
}

__global__ void k_rownorm(float *out, float *norm, const float *inp, int R, int C)
{
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= R)
        return;
    const float *x = inp + (size_t)row * C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32)
        s += x[c] * x[c];
    float n = fmaxf(sqrtf(warp_sum(s)), 1e-12f);
    for (int c = lane; c < C; c += 32)
        out[(size_t)row * C + c] = x[c] / n;
    if (lane == 0)
        norm[row] = n;
}

__global__ void k_rownorm_bwd(float *dinp, const float *dout, const float *out, const float *norm, int R, int C)
{
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= R)
        return;
    const float *d = dout + (size_t)row * C, *y = out + (size_t)row * C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32)
        s += d[c] * y[c];
    s = warp_sum(s);
    for (int c = lane; c < C; c += 32)
        dinp[(size_t)row * C + c] += (d[c] - y[c] * s) / norm[row];
}

void g_row_normalize(tkmi_se_backend *be, float *out, float *norm, const float *inp, int R, int C)
{
    if (R <= 0)
        return;
    k_rownorm<<<blocks((size_t)R, 8), 256>>>(out, norm, inp, R, C);
    check_launch(be, "row_normalize");
}

void g_row_normalize_bwd(tkmi_se_backend *be, float *dinp, const float *dout, const float *out, const float *norm, int R,
                         int C)
{
    if (R <= 0)
        return;
    k_rownorm_bwd<<<blocks((size_t)R, 8), 256>>>(dinp, dout, out, norm, R, C);
    check_launch(be, "row_normalize_bwd");
}

// one warp per sample
__global__ void k_pointwise(float *loss, float *dy, const float *y, const float *t, int B, int C, float wm, float wl,
                            float wc)
{
    int b = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (b >= B)
        return;
    const float *yb = y + (size_t)b * C, *tb = t + (size_t)b * C;
    float se = 0, ae = 0, yy = 0, tt = 0, yt = 0;
    for (int c = lane; c < C; c += 32) {
        float e = yb[c] - tb[c];
        se += e * e;
        ae += fabsf(e);
        yy += yb[c] * yb[c];
        tt += tb[c] * tb[c];
        yt += yb[c] * tb[c];
    }
    se = warp_sum(se);
    ae = warp_sum(ae);
    yy = warp_sum(yy);
    tt = warp_sum(tt);
    yt = warp_sum(yt);
    float ny = fmaxf(sqrtf(yy), 1e-12f), nt = fmaxf(sqrtf(tt), 1e-12f), cosv = yt / (ny * nt);
    float invB = 1.0f / B, invC = 1.0f / C;
    if (lane == 0)
        loss[b] = wm * se * invC + wl * ae * invC + wc * (1.0f - cosv);
    for (int c = lane; c < C; c += 32) {
        float e = yb[c] - tb[c];
        float g = wm * 2.0f * e * invC + wl * (e > 0.0f ? 1.0f : e < 0.0f ? -1.0f : 0.0f) * invC;
        g -= wc * (tb[c] / (ny * nt) - cosv * yb[c] / (ny * ny));
        dy[(size_t)b * C + c] = g * invB;
    }
}

void g_pointwise_loss(tkmi_se_backend *be, float *loss, float *dy, const float *y, const float *t, int B, int C,
                      float w_mse, float w_l1, float w_cos)
{
    if (B <= 0)
        return;
    k_pointwise<<<blocks((size_t)B, 8), 256>>>(loss, dy, y, t, B, C, w_mse, w_l1, w_cos);
    check_launch(be, "pointwise_loss");
}

// one block of 256 threads per sample; block reductions through shared memory
__global__ void k_softmax_xent(float *loss, float *dl, const float *logits, const int32_t *idx, int B, int V, float w)
{
    __shared__ float red[256];
    __shared__ double dred[256];
    int b = blockIdx.x, tid = threadIdx.x;
    const float *l = logits + (size_t)b * V;
    float *d = dl + (size_t)b * V;
    float mx = -INFINITY;
    for (int v = tid; v < V; v += 256)
        mx = fmaxf(mx, l[v]);
    red[tid] = mx;
    __syncthreads();
    for (int s = 128; s > 0; s >>= 1) {
        if (tid < s)
            red[tid] = fmaxf(red[tid], red[tid + s]);
        __syncthreads();
    }
    mx = red[0];
    double sum = 0.0;
    for (int v = tid; v < V; v += 256) {
        float e = expf(l[v] - mx);
        d[v] = e;
        sum += e;
    }
    dred[tid] = sum;
    __syncthreads();
    for (int s = 128; s > 0; s >>= 1) {
        if (tid < s)
            dred[tid] += dred[tid + s];
        __syncthreads();
    }
    sum = dred[0];
    float scale = (float)((double)w / (double)B / sum);
    for (int v = tid; v < V; v += 256)
        d[v] *= scale;
    __syncthreads();
    if (tid == 0) {
        int k = idx[b];
        loss[b] += w * (float)(log(sum) + (double)mx - (double)l[k]);
        d[k] -= w / (float)B;
    }
}

void g_softmax_xent(tkmi_se_backend *be, float *loss, float *dlogits, const float *logits, const int32_t *idx, int B,
                    int V, float weight)
{
    if (B <= 0)
        return;
    k_softmax_xent<<<B, 256>>>(loss, dlogits, logits, idx, B, V, weight);
    check_launch(be, "softmax_xent");
}

// ---- optimizer ------------------------------------------------------------------

#define SUMSQ_BLOCKS 256

__global__ void k_sumsq(double *part, const float *x, size_t n)
{
    __shared__ double red[256];
    size_t per = (n + SUMSQ_BLOCKS - 1) / SUMSQ_BLOCKS, b0 = blockIdx.x * per, b1 = b0 + per < n ? b0 + per : n;
    double s = 0.0;
    for (size_t i = b0 + threadIdx.x; i < b1; i += 256)
        s += (double)x[i] * x[i];
    red[threadIdx.x] = s;
    __syncthreads();
    for (int k = 128; k > 0; k >>= 1) {
        if (threadIdx.x < k)
            red[threadIdx.x] += red[threadIdx.x + k];
        __syncthreads();
    }
    if (threadIdx.x == 0)
        part[blockIdx.x] = red[0];
}

double g_sumsq(tkmi_se_backend *be, const float *x, size_t n)
{
    impl *p = I(be);
    if (!p->partial && cudaMalloc((void **)&p->partial, SUMSQ_BLOCKS * sizeof(double)) != cudaSuccess) {
        cudaGetLastError();
        record(be, "cudaMalloc", "out of device memory");
        return NAN;
    }
    k_sumsq<<<SUMSQ_BLOCKS, 256>>>(p->partial, x, n);
    check_launch(be, "sumsq");
    double h[SUMSQ_BLOCKS];
    check(be, cudaMemcpy(h, p->partial, sizeof(h), cudaMemcpyDeviceToHost), "cudaMemcpy to the host");
    double s = 0.0;
    for (int i = 0; i < SUMSQ_BLOCKS; i++)
        s += h[i];
    return s;
}

__global__ void k_adamw(float *p, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2, float eps,
                        float wd, float c1, float c2, float gs)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    float gi = g[i] * gs;
    float mi = b1 * m[i] + (1.0f - b1) * gi, vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] -= lr * ((mi / c1) / (sqrtf(vi / c2) + eps) + wd * p[i]);
}

void g_adamw(tkmi_se_backend *be, float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1,
             float beta2, float eps, float wd, int t, float gscale)
{
    if (!n)
        return;
    k_adamw<<<blocks(n, 256), 256>>>(p, g, m, v, n, lr, beta1, beta2, eps, wd, 1.0f - powf(beta1, (float)t),
                                     1.0f - powf(beta2, (float)t), gscale);
    check_launch(be, "adamw");
}

} // namespace

extern "C" {

// The module's entry points, found by kernels/se_ops_dl.c with dlsym.
int tkmi_se_cuda_module_create(int device, tkmi_se_backend **out, err_fn report);
void tkmi_se_cuda_module_set_tf32(tkmi_se_backend *be, int on);

int tkmi_se_cuda_module_create(int device, tkmi_se_backend **out, err_fn report)
{
    *out = NULL;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        cudaGetLastError();
        return report(TKM_ENOTSUP, "no CUDA device (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    }
    if (device < 0 || device >= n)
        return report(TKM_ENOTSUP, "CUDA device %d does not exist (%d present)", device, n);
    if ((e = cudaSetDevice(device)) != cudaSuccess)
        return report(TKM_ENOTSUP, "cudaSetDevice(%d): %s", device, cudaGetErrorString(e));
    tkmi_se_backend *be = (tkmi_se_backend *)calloc(1, sizeof(*be));
    impl *p = (impl *)calloc(1, sizeof(*p));
    if (!be || !p) {
        free(be);
        free(p);
        return report(TKM_ENOMEM, "out of memory");
    }
    p->report = report;
    if (cublasCreate(&p->blas) != CUBLAS_STATUS_SUCCESS) {
        free(be);
        free(p);
        return report(TKM_ENOTSUP, "cublasCreate failed on CUDA device %d", device);
    }
    // fp32 unless TF32 is asked for (here by TKM_CUDA_TF32=1, or later by
    // tkmi_se_backend_cuda_set_tf32)
    const char *tf = getenv("TKM_CUDA_TF32");
    int tf32 = tf && *tf && strcmp(tf, "0") != 0;
    cublasSetMathMode(p->blas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH);
    be->name = "cuda";
    be->impl = p;
    be->alloc = g_alloc;
    be->free = g_free;
    be->upload = g_upload;
    be->download = g_download;
    be->zero = g_zero;
    be->sync = g_sync;
    be->destroy = g_destroy;
    be->gemm = g_gemm;
    be->add_bias = g_add_bias;
    be->bias_grad = g_bias_grad;
    be->embed_fwd = g_embed_fwd;
    be->embed_bwd = g_embed_bwd;
    be->layernorm_fwd = g_layernorm_fwd;
    be->layernorm_bwd = g_layernorm_bwd;
    be->attention_fwd = g_attention_fwd;
    be->attention_bwd = g_attention_bwd;
    be->gelu_fwd = g_gelu_fwd;
    be->gelu_bwd = g_gelu_bwd;
    be->add = g_add;
    be->pool_fwd = g_pool_fwd;
    be->pool_bwd = g_pool_bwd;
    be->bag_fwd = g_bag_fwd;
    be->bag_bwd = g_bag_bwd;
    be->gather_rows = g_gather_rows;
    be->row_normalize = g_row_normalize;
    be->row_normalize_bwd = g_row_normalize_bwd;
    be->pointwise_loss = g_pointwise_loss;
    be->softmax_xent = g_softmax_xent;
    be->sumsq = g_sumsq;
    be->adamw = g_adamw;
    *out = be;
    return 0;
}

void tkmi_se_cuda_module_set_tf32(tkmi_se_backend *be, int on)
{
    cublasSetMathMode(I(be)->blas, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH);
}

} // extern "C"
