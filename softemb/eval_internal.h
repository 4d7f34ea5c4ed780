/* eval_internal.h - the evaluation algorithms of softemb/eval.c (grouped split,
 * retrieval metrics, baselines) over a plain view of a teacher, so that tests
 * can drive them with synthetic matrices and the tkm_se_* wrappers stay thin. */
#ifndef TKM_SOFTEMB_EVAL_INTERNAL_H
#define TKM_SOFTEMB_EVAL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tokenmill_softemb.h"

/* A teacher as the evaluation sees it: rows x dim float32 (row-major), each
 * row's decoded bytes and its tkm_row_kind (kinds NULL: every row NORMAL). */
typedef struct {
    size_t rows, dim;
    const float *m;
    const unsigned char *const *bytes;
    const size_t *lens;
    const uint8_t *kinds;
} tkmi_se_view;

/* ---- split ---- */

/* The normalized group key of a token's bytes: leading ' ' removed, ASCII
 * lowercased, other valid UTF-8 case-folded by ICU (u_strFoldCase, full
 * folding, one code point at a time: folding is context-free); a byte that
 * is not part of valid UTF-8 is kept as 0xFF followed by that byte (0xFF never
 * occurs in UTF-8, so distinct raw bytes stay distinct). Writes at most cap
 * bytes to out (4 * len + 4 always suffices) and returns the key length. */
size_t tkmi_se_group_key(const unsigned char *b, size_t len, unsigned char *out, size_t cap);
/* 64-bit hash of (seed, key); a group is a test group when it is below
 * test_frac * 2^64. */
uint64_t tkmi_se_group_hash(const unsigned char *key, size_t len, uint64_t seed);
int tkmi_se_split_view(const tkmi_se_view *v, double test_frac, uint64_t seed, uint8_t *split);

/* ---- metrics ---- */

/* As tkm_se_metrics_compute; rank_cos / rank_dot (each NULL or n entries)
 * receive each query's rank (1 = best). */
int tkmi_se_metrics_view(const tkmi_se_view *v, const float *pred, const uint32_t *rows, size_t n, int threads,
                         tkm_se_metrics *out, uint32_t *rank_cos, uint32_t *rank_dot);

/* ---- baselines ---- */

typedef struct {
    int ngram_dim;         /* hashed n-gram buckets of ngram-ridge; <= 0: 4096 */
    const double *lambdas; /* ridge grid (NULL: the default grid) */
    int nlambdas;
} tkmi_se_base_opts;

typedef struct {
    double lambda;          /* ngram-ridge: the chosen ridge penalty */
    double val_cos;         /* ... its mean cosine on the validation slice */
    size_t nfit, nval;      /* ... train rows fitted while choosing / validation rows */
    size_t no_pieces;       /* subtoken-mean: queries that got no piece (global mean) */
    double seconds_fit;     /* ngram-ridge: time spent choosing lambda and refitting */
} tkmi_se_base_stats;

/* As tkm_se_baseline_predict. o and st may be NULL. */
int tkmi_se_baseline_view(const tkmi_se_view *v, const uint8_t *split, tkm_se_baseline which, const uint32_t *rows,
                          size_t n, int threads, const tkmi_se_base_opts *o, tkmi_se_base_stats *st, float *pred);

/* ---- building blocks, exposed for tests ---- */

/* In-place Cholesky of the symmetric positive definite n x n matrix a
 * (row-major, lower triangle read): on return the lower triangle holds L with
 * a = L L^T. Blocked, threaded, bit-identical for any thread count.
 * @return 0, TKM_ERANGE (not positive definite; names the pivot), TKM_ENOMEM. */
int tkmi_se_cholesky(double *a, size_t n, int threads);
/* Solves L L^T X = B in place (B: n x m row-major) with the factor from
 * tkmi_se_cholesky. */
int tkmi_se_cholesky_solve(const double *l, size_t n, double *b, size_t m, int threads);
/* The ngram-ridge features of a string: (bucket, value) pairs sorted by
 * bucket, L2-normalized, then the bias (index D, value 1). idx and val need
 * room for 4 * len + 9 entries. @return the count or TKM_ENOMEM. */
int tkmi_se_ngram_features(const unsigned char *b, size_t len, uint32_t D, uint32_t *idx, double *val);
/* Forces the tile kernels' vector width (16, 8 or 4 floats; 0: the widest
 * this CPU runs; a width it cannot run falls back to that). For tests.
 * @return the width now in use. */
int tkmi_se_kernel_width(int width);
/* Byte Levenshtein distance if it is <= maxd, else maxd + 1. work: lb + 1 entries. */
size_t tkmi_se_levenshtein(const unsigned char *a, size_t la, const unsigned char *b, size_t lb, size_t maxd,
                           uint32_t *work);

#endif
