/* se_model.h - the soft-embedding encoder (internal; softemb/se_model.c): a
 * bidirectional byte-level transformer (nanoGPT blocks without the causal
 * mask) whose pooled output is projected to the teacher's width. All math
 * goes through a tkmi_se_backend, so one step runs entirely on the CPU
 * reference or entirely on a GPU. */
#ifndef TKM_SE_MODEL_H
#define TKM_SE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/se_ops.h"

/* input alphabet: bytes 0..255, then these */
enum { TKMI_SE_START = 256, TKMI_SE_END = 257, TKMI_SE_PAD = 258, TKMI_SE_VOCAB = 259 };

typedef struct tkmi_se_config {
    int layers, heads, width; /* transformer */
    int max_bytes;            /* longest input; T = max_bytes + 2 (START, END) */
    int pool;                 /* TKMI_POOL_END or TKMI_POOL_MEAN */
    int head_mlp;             /* 0: linear head, 1: Linear-GELU-Linear */
    int out_dim;              /* teacher width */
    /* hashed byte n-gram bag added to the pooled vector (fastText-like):
     * ngram_buckets rows of width `width` (0: no bag); n-grams of the input
     * START bytes END for n = 1..ngram_max, plus one feature for the whole
     * input. The bag learns fast where the transformer needs many epochs. */
    int ngram_buckets, ngram_max;
} tkmi_se_config;

typedef struct tkmi_se_loss_weights {
    float mse, l1, cos, ctr; /* ctr: softmax over the target matrix by cosine / temperature */
    float temperature;
} tkmi_se_loss_weights;

typedef struct tkmi_se_tensor {
    const char *name;
    size_t off, n; /* in floats, inside the parameter buffer */
    int decay;     /* AdamW weight decay applies */
} tkmi_se_tensor;

typedef struct tkmi_se_model tkmi_se_model;

/* Checks a configuration (heads divide width, sizes in range). */
int tkmi_se_config_check(const tkmi_se_config *c);
/* Creates a model on `be` (borrowed) with room for batches of up to max_batch
 * sequences; parameters initialised from `seed` (GPT-2 style). */
int tkmi_se_model_new(const tkmi_se_config *c, tkmi_se_backend *be, int max_batch, uint64_t seed,
                      tkmi_se_model **out);
/* training 0: forward only (no gradients, AdamW moments or backward
 * scratch; loss_grad and step fail, moments cannot be read or set). */
int tkmi_se_model_new_ex(const tkmi_se_config *c, tkmi_se_backend *be, int max_batch, uint64_t seed, int training,
                         tkmi_se_model **out);
void tkmi_se_model_free(tkmi_se_model *m);
const tkmi_se_config *tkmi_se_model_config(const tkmi_se_model *m);
size_t tkmi_se_model_nparams(const tkmi_se_model *m);
const tkmi_se_tensor *tkmi_se_model_tensors(const tkmi_se_model *m, int *n);
/* Host copies of parameters / AdamW moments (nparams floats each). */
int tkmi_se_model_get(tkmi_se_model *m, float *params, float *adam_m, float *adam_v);
int tkmi_se_model_set(tkmi_se_model *m, const float *params, const float *adam_m, const float *adam_v);

/* Fills tok [B*T] and len [B] for byte strings (truncated to max_bytes):
 * START bytes END PAD...; T is max(len). Returns T. */
int tkmi_se_pack(const tkmi_se_config *c, const unsigned char *const *bytes, const size_t *lens, int B,
                 int32_t *tok, int32_t *len);

/* Sets the loss targets: the rows of the target matrix (R x out_dim, host
 * memory) uploaded once; targets are row indices into it. */
int tkmi_se_model_set_targets(tkmi_se_model *m, const float *rows, size_t R);

/* Forward pass for B sequences padded to T; the prediction (B x out_dim) is
 * copied to host `out` when not NULL. */
int tkmi_se_forward(tkmi_se_model *m, const int32_t *tok, const int32_t *len, int B, int T, float *out);

typedef struct tkmi_se_hparams {
    float lr, beta1, beta2, eps, weight_decay, clip;
    tkmi_se_loss_weights w;
} tkmi_se_hparams;

/* One training step: forward, loss against target rows `target[b]`, backward,
 * gradient clipping, AdamW (step is 1-based). *loss = mean loss over the batch,
 * *gnorm = gradient norm before clipping. */
int tkmi_se_step(tkmi_se_model *m, const int32_t *tok, const int32_t *len, const int32_t *target,
                 int B, int T, const tkmi_se_hparams *hp, int step, float *loss, float *gnorm);
/* Loss and gradients only (no update; gradients readable with _get_grads). */
int tkmi_se_loss_grad(tkmi_se_model *m, const int32_t *tok, const int32_t *len, const int32_t *target,
                      int B, int T, const tkmi_se_loss_weights *w, float *loss);
int tkmi_se_model_get_grads(tkmi_se_model *m, float *grads);

/* The bag features of one packed input (tok[0..len), START ... END) into
 * feat (room for tkmi_se_bag_max_features); returns their count. */
int tkmi_se_bag_features(const tkmi_se_config *c, const int32_t *tok, int len, int32_t *feat);
int tkmi_se_bag_max_features(const tkmi_se_config *c);

/* Forward FLOPs of one sequence of length T (matmuls and attention). */
double tkmi_se_flops_per_seq(const tkmi_se_config *c, int T);

#endif
