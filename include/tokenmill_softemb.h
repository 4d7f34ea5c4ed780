/* tokenmill_softemb.h - soft embeddings: read a teacher model's input-embedding
 * matrix, train a small byte-level transformer encoder that maps a token's
 * UTF-8 bytes to the teacher's row, evaluate it honestly on a held-out split
 * against baselines, and predict rows for a new vocabulary (tokenmill softemb).
 *
 * Conventions as in tokenmill.h: functions return 0 (or a count) or a negative
 * TKM_E* code with detail in tkm_last_error(); handles are freed with their
 * _free function (NULL accepted); nothing here prints or exits. */
#ifndef TOKENMILL_SOFTEMB_H
#define TOKENMILL_SOFTEMB_H

#include <stddef.h>
#include <stdint.h>

#include "tokenmill.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- teachers: an embedding matrix with the bytes of each row's token ---- */

typedef enum {
    TKM_ROW_NORMAL = 0,  /* a real token: trained on and evaluated */
    TKM_ROW_SPECIAL = 1, /* control / unknown / [CLS]-like: excluded */
    TKM_ROW_UNUSED = 2   /* unused / reserved rows ([unused7], UNUSED type, empty): excluded */
} tkm_row_kind;

typedef struct tkm_teacher tkm_teacher;

typedef struct tkm_teacher_opts {
    const char *tensor; /* tensor name; NULL: token_embd.weight (GGUF), else the
                           2-D tensor whose name ends in embed_tokens.weight or
                           word_embeddings.weight (safetensors) */
    const char *vocab;  /* vocabulary: .model, tokenizer.json, vocab.txt (one
                           piece per line); NULL: the GGUF metadata, or a
                           tokenizer.json / vocab.txt / tokenizer.model next to
                           the matrix file */
} tkm_teacher_opts;

/* Loads a teacher: GGUF v3 (F32, F16, BF16, Q8_0), safetensors (F32, F16,
 * BF16) or .npy (<f4, <f2, 2-D, C order), chosen by magic bytes. The matrix
 * is converted to float32. Piece strings are decoded to real bytes:
 * sentencepiece U+2581 -> space and <0xNN> -> that byte; GPT-2 byte-level
 * characters -> bytes (when the vocabulary is byte-level; added tokens of a
 * tokenizer.json, USER_DEFINED GGUF tokens and special tokens are raw text,
 * and a normal piece outside the alphabet is TKM_EFORMAT); WordPiece: "##x"
 * -> "x", any other normal piece p -> " p" (a word start, as U+2581p). An
 * empty piece, or one decoding to nothing, is TKM_ROW_UNUSED; so are matrix
 * rows beyond the vocabulary (padding). The vocabulary may not be longer than
 * the matrix.
 * @return 0, TKM_EIO, TKM_EFORMAT (file and byte offset named), TKM_ENOTSUP
 * (e.g. "unsupported tensor type Q4_K"), TKM_ENOMEM. */
int tkm_teacher_load(const char *path, const tkm_teacher_opts *opts, tkm_teacher **out);
void tkm_teacher_free(tkm_teacher *t);
size_t tkm_teacher_rows(const tkm_teacher *t);
size_t tkm_teacher_dim(const tkm_teacher *t);
/* rows x dim, row-major float32 */
const float *tkm_teacher_matrix(const tkm_teacher *t);
/* The piece as the vocabulary spells it (NUL-terminated). */
const char *tkm_teacher_piece(const tkm_teacher *t, size_t row);
/* The decoded bytes of the row's token (not NUL-terminated; may contain NUL).
 * A row out of range: NULL, *len 0 (and tkm_teacher_row_kind: UNUSED). */
const unsigned char *tkm_teacher_bytes(const tkm_teacher *t, size_t row, size_t *len);
/* The text bytes of a sentencepiece piece (U+2581 -> space; with
 * is_byte_piece, "<0xNN>" -> that byte) into out (room for n bytes); returns
 * their count. Teachers with a .model vocabulary and `softemb apply` decode so. */
size_t tkm_se_sp_piece_bytes(const char *piece, size_t n, int is_byte_piece, unsigned char *out);
tkm_row_kind tkm_teacher_row_kind(const tkm_teacher *t, size_t row);
/* "gguf", "safetensors", "npy"; and the vocabulary style: "sentencepiece",
 * "byte-level", "wordpiece", "plain". */
const char *tkm_teacher_format(const tkm_teacher *t);
const char *tkm_teacher_vocab_style(const tkm_teacher *t);

typedef enum { TKM_DTYPE_F32 = 0, TKM_DTYPE_F16 = 1, TKM_DTYPE_BF16 = 2 } tkm_dtype;

/* Writes a GGUF v3 file with metadata general.architecture = "tokenmill-softemb",
 * tokenizer.ggml.tokens = pieces (strings as given; NULL: no vocabulary),
 * tokenizer.ggml.model from vocab_style ("sentencepiece" -> "llama",
 * "byte-level" -> "gpt2", "wordpiece" -> "bert", "plain" -> "plain"; NULL:
 * none), tokenizer.ggml.token_type from kinds (NORMAL 1, SPECIAL 3 control,
 * UNUSED 5; <0xNN> pieces of a sentencepiece vocabulary 6; normal pieces of
 * a byte-level vocabulary with characters outside the GPT-2 alphabet 4,
 * USER_DEFINED, so they read back as raw text; NULL: none, unless such pieces
 * need 4), and
 * one tensor token_embd.weight (ne = [dim, rows], as llama.cpp stores it) in
 * dtype (F16/BF16 rounded to nearest even). The matrix is streamed, not
 * copied. Atomic: a temp file renamed into place. */
int tkm_emb_write_gguf(const char *path, size_t rows, size_t dim, const float *m,
                       const char *const *pieces, const char *vocab_style, const tkm_row_kind *kinds,
                       tkm_dtype dtype);
/* llama.cpp's token types (tokenizer.ggml.token_type), numbered as
 * sentencepiece's piece types. */
enum {
    TKM_GGUF_NORMAL = 1,
    TKM_GGUF_UNKNOWN = 2,
    TKM_GGUF_CONTROL = 3,
    TKM_GGUF_USER_DEFINED = 4,
    TKM_GGUF_UNUSED = 5,
    TKM_GGUF_BYTE = 6
};
/* Writes a GGUF v3 file whose rows are the pieces of a sentencepiece model
 * (rows = tkm_model_size(model)), with the model's tokenizer in llama.cpp's
 * keys and conventions: tokenizer.ggml.model "llama" (BPE) or "t5" (Unigram),
 * tokens (the pieces' exact bytes), token_type (TKM_GGUF_*: piece types as
 * sentencepiece numbers them), scores, unknown/bos/eos/padding_token_id
 * (those the model has), add_bos_token (when it has a BOS), add_eos_token
 * false, add_space_prefix and remove_extra_whitespaces from its normalizer;
 * and token_embd.weight as tkm_emb_write_gguf. Atomic.
 * @return 0; TKM_ENOTSUP for WORD/CHAR models; TKM_EINVAL, TKM_EIO, TKM_ENOMEM. */
int tkm_emb_write_gguf_model(const char *path, const tkm_model *model, size_t dim, const float *m, tkm_dtype dtype);
/* Writes a .npy (version 1.0, '<f4', shape (rows, dim)). Atomic. */
int tkm_emb_write_npy(const char *path, size_t rows, size_t dim, const float *m);

/* ---- honest evaluation: grouped split, metrics, baselines ---------------- */

/* Splits the NORMAL rows into train (0) and test (1); special/unused rows get
 * 2. Rows are grouped by a normalized string (decoded bytes with leading
 * spaces removed, lowercased: ASCII and, via ICU, full Unicode case folding),
 * so " The", "the" and "THE" are on the same side. A group is a test group
 * when a 64-bit hash of (seed, normalized string) falls below test_frac of
 * the hash range, so the split does not depend on row order or thread count.
 * @return the number of test rows (>= 0) or a negative TKM_E* code. */
int tkm_se_split(const tkm_teacher *t, double test_frac, uint64_t seed, uint8_t *split);
/* The validation rows of training (tkm_se_options.valid_frac): among the
 * train rows (0) of split, those whose group a second split with seed
 * split_seed ^ "valid" holds out become TKM_SE_VALID (3). When that would
 * leave no training row or take none, split is left as it is (training then
 * uses every train row and keeps its last weights).
 * @return the number of validation rows or a negative TKM_E* code. */
#define TKM_SE_VALID 3
int tkm_se_split_valid(const tkm_teacher *t, double valid_frac, uint64_t split_seed, uint8_t *split);
/* The version of tkm_se_split's rule, recorded in every .tkse: an encoder
 * trained under another rule may have trained on rows this split holds out,
 * so evaluation and resuming refuse it. 1: groups by ASCII lowercasing;
 * 2: full Unicode case folding (ICU) per code point. */
#define TKM_SE_SPLIT_VERSION 2u

typedef struct tkm_se_metrics {
    size_t n;           /* rows evaluated */
    double top1_cos;    /* share whose target row is the best by cosine among all teacher rows */
    double top10_cos;   /* ... among the best 10 by cosine */
    double top1_dot;    /* same, by dot product */
    double top10_dot;
    double mrr_cos;     /* mean of 1/rank by cosine */
    double mean_cos;    /* mean cosine(pred, target) */
    double rel_l2;      /* mean |pred - target| / |target| */
} tkm_se_metrics;

/* Scores predictions pred (n x dim, row-major) against teacher rows rows[i].
 * Retrieval ranks the target among ALL teacher rows; rank = 1 + rows scoring
 * strictly higher + rows scoring equal with a lower index. threads <= 0: all cores. */
int tkm_se_metrics_compute(const tkm_teacher *t, const float *pred, const uint32_t *rows,
                           size_t n, int threads, tkm_se_metrics *out);

typedef enum {
    TKM_BASE_SUBTOKEN_MEAN = 0, /* mean of the teacher rows of the sub-tokens a greedy
                                   longest-match over the TRAIN pieces splits the bytes into */
    TKM_BASE_NGRAM_RIDGE = 1,   /* ridge regression from hashed byte 1..4-grams (fastText-like) */
    TKM_BASE_NEAREST = 2,       /* row of the nearest train string (byte edit distance) */
    TKM_BASE_GLOBAL_MEAN = 3,   /* mean of the train rows */
    TKM_BASE_COUNT = 4
} tkm_se_baseline;
const char *tkm_se_baseline_name(tkm_se_baseline b); /* "subtoken-mean", "ngram-ridge", "nearest-string", "global-mean" */

/* Predicts pred (n x dim) for rows[] using only rows with split[row] == 0. */
int tkm_se_baseline_predict(const tkm_teacher *t, const uint8_t *split, tkm_se_baseline which,
                            const uint32_t *rows, size_t n, int threads, float *pred);

/* ---- the encoder: training, files, prediction ----------------------------- */

typedef struct tkm_se_encoder tkm_se_encoder;

typedef struct tkm_se_progress {
    long step, steps;     /* steps done / planned */
    int epoch;
    double loss;          /* mean training loss since the previous report */
    double lr, gnorm;     /* learning rate and gradient norm of the last step */
    double seqs_per_s;    /* sequences (teacher rows) per second since the previous report */
    double tokens_per_s;  /* positions (bytes + START + END, padding excluded) per second */
    double gflops_per_s;  /* model FLOPs (forward + backward = 3x forward matmuls and
                             attention, padding included, plus the contrastive
                             products) per second */
    double elapsed_s;
    /* validation reports (valid = 1; the fields above are those of the last
     * report): retrieval on the validation rows, and whether it is the best yet */
    int valid, valid_best;
    double valid_top1, valid_mrr;
} tkm_se_progress;

typedef struct tkm_se_options {
    /* architecture */
    int layers, heads, width;
    int max_bytes;        /* longer tokens are truncated (counted in the report) */
    int pool_mean;        /* 0: the END position's output, 1: mean over positions */
    int head_mlp;         /* 0: linear head, 1: Linear-GELU-Linear */
    /* hashed byte n-gram bag added to the pooled vector: ngram_buckets rows of
     * `width` floats (0: none), n-grams n = 1..ngram_max plus the whole token */
    int ngram_buckets, ngram_max;
    /* loss = w_mse*MSE + w_l1*L1 + w_cos*(1-cos) + w_ctr*contrastive, where the
     * contrastive term is cross-entropy of softmax(cos(pred, row)/temperature)
     * over all TRAINING rows of the teacher (held-out rows never enter training) */
    float w_mse, w_l1, w_cos, w_ctr, temperature;
    /* optimisation: AdamW, linear warmup then cosine decay to lr*min_lr_ratio */
    int batch;
    long steps, warmup;
    float lr, min_lr_ratio, weight_decay, clip, beta1, beta2;
    uint64_t seed;        /* initialisation and batch order */
    /* data split (see tkm_se_split) */
    double test_frac;
    uint64_t split_seed;
    /* validation: this share of the TRAINING rows (grouped like the split, with
     * a seed derived from split_seed) is left out of training and scored every
     * valid_every steps (0: steps / 12); the encoder keeps the weights with the
     * best validation MRR. valid_frac 0 (the default): no validation, the
     * last weights. */
    double valid_frac;
    long valid_every;
    /* execution */
    int threads;          /* CPU threads, <= 0: all cores */
    int device;           /* -1: CPU; >= 0: that CUDA device; -2: a CUDA device if present, else CPU */
    int tf32;             /* CUDA: allow TF32 tensor cores in matrix products */
    /* reporting and checkpoints */
    long log_every;
    void (*progress)(void *ud, const tkm_se_progress *p);
    void *progress_ud;
    const char *checkpoint;  /* written atomically every checkpoint_every steps (0: never) */
    long checkpoint_every;
} tkm_se_options;

/* Defaults for a teacher of width dim: small enough to train on a CPU in
 * minutes for dim <= 512 (2 layers, 4 heads, width 256), the soft-tokenizer
 * seed's 4 x 8 x 768 above; cosine + contrastive loss; batch 256. */
void tkm_se_options_default(tkm_se_options *o, size_t dim);

/* Trains an encoder on the rows of t with split[row] == 0 (see tkm_se_split;
 * the split used should be the one o->test_frac and o->split_seed give, which
 * the encoder records for evaluation). With `resume` (a
 * checkpoint written by an earlier run with the same architecture), training
 * continues from its step with its weights and AdamW moments.
 * @return 0, TKM_EINVAL (options), TKM_EEMPTY (no training rows), TKM_ENOTSUP
 * (CUDA requested but unavailable), TKM_ERANGE (diverged), TKM_ENOMEM, TKM_EIO. */
int tkm_se_train(const tkm_teacher *t, const uint8_t *split, const tkm_se_options *o, const char *resume,
                 tkm_se_encoder **out);

/* .tkse files: a little-endian header (architecture, split, teacher
 * fingerprint, steps), float32 weights, optional AdamW moments, CRC-32. */
int tkm_se_save(const tkm_se_encoder *e, const char *path, int with_optimizer);
int tkm_se_load(const char *path, tkm_se_encoder **out);
void tkm_se_free(tkm_se_encoder *e);

typedef struct tkm_se_info {
    int layers, heads, width, max_bytes, pool_mean, head_mlp, out_dim;
    int ngram_buckets, ngram_max; /* 0, 0: no n-gram bag */
    size_t nparams;
    long steps_done, steps_total;
    double test_frac;
    uint64_t split_seed;
    unsigned split_version; /* TKM_SE_SPLIT_VERSION when it was trained */
    size_t teacher_rows;
    uint64_t teacher_hash;  /* tkm_se_teacher_hash of the training teacher */
    const char *backend;    /* where it was trained: "cpu", "cuda" */
    double valid_frac;      /* the validation share it trained with (0: none) */
    long best_step;         /* the step whose weights were kept by validation (0: the last) */
    double best_mrr;        /* their validation MRR */
    size_t truncated;       /* training rows longer than max_bytes */
} tkm_se_info;
void tkm_se_get_info(const tkm_se_encoder *e, tkm_se_info *info);
/* A fingerprint of a teacher (rows, width, every row's bytes and kind). */
uint64_t tkm_se_teacher_hash(const tkm_teacher *t);

/* Predicts n rows (n x out_dim) for byte strings, on the CPU. */
int tkm_se_predict(const tkm_se_encoder *e, const unsigned char *const *bytes, const size_t *lens, size_t n,
                   int threads, float *out);

/* ---- splicing a new vocabulary into a llama.cpp model ---------------------- */

typedef struct tkm_se_splice_opts {
    const tkm_se_encoder *encoder;        /* predicts token_embd rows (required) */
    const tkm_se_encoder *output_encoder; /* predicts output.weight rows; NULL: their mean */
    int threads;                          /* for prediction; 0: all cores */
} tkm_se_splice_opts;

typedef struct tkm_se_splice_stats {
    size_t old_rows, rows, dim;
    size_t by_role;   /* rows copied by role: the new unk/bos/eos/pad take the old ones' rows */
    size_t by_piece;  /* rows copied because the same piece string is an old token */
    size_t by_bytes;  /* rows copied because an old NORMAL token has the same text bytes */
    size_t predicted; /* rows predicted by the encoder */
    size_t filled;    /* control/unknown/unused pieces without a match: the mean row */
    int output;       /* 1: the model has an untied output.weight, spliced the same way */
    size_t output_predicted; /* its rows predicted by output_encoder (0: the mean instead) */
    int encoder_matches;        /* 1: the encoder was trained on this token_embd (fingerprint) */
    int output_encoder_matches; /* 1: output_encoder was trained on this output.weight */
} tkm_se_splice_stats;

/* Writes a copy of the GGUF model gguf_in (version 2 or 3) with the
 * vocabulary `vocab` (a sentencepiece BPE or Unigram model, from a .model or
 * a sentencepiece-style tokenizer.json) to out, atomically (PATH.tmp.PID
 * renamed; "-" is standard output). token_embd.weight and, when present (an
 * untied head), output.weight get one row per new piece, in the input's
 * tensor type (F32, F16, BF16 or Q8_0): new id i takes, byte for byte, the
 * old row of (1) the old token of the same role (unknown, BOS, EOS,
 * padding), else (2) the lowest old token with the same piece string, else
 * (3) for normal, user-defined and byte pieces, the lowest old NORMAL token
 * with the same text bytes (U+2581 = space, <0xNN> = that byte, GPT-2
 * byte-level characters decoded); otherwise normal, user-defined and byte
 * pieces are predicted from their bytes by o->encoder (output.weight by
 * o->output_encoder, or the mean of the old NORMAL rows), and control,
 * unknown and unused pieces take the mean of the old NORMAL rows. The
 * tokenizer.ggml.* pairs (and tokenizer.huggingface.json) are replaced by
 * the new model's, as tkm_emb_write_gguf_model writes them, and
 * ARCH.vocab_size, when present, becomes the new size; every other pair and
 * tensor is copied unchanged, in the same order, at offsets aligned to the
 * file's general.alignment. st (may be NULL) receives the counts.
 * @return 0; TKM_EFORMAT (a malformed GGUF: file and offset named),
 * TKM_ENOTSUP (another tensor type, a byte-level vocabulary, a WORD/CHAR
 * model), TKM_EINVAL (the encoder's width differs), TKM_EIO, TKM_ENOMEM. */
int tkm_se_splice(const char *gguf_in, const tkm_model *vocab, const tkm_se_splice_opts *o, const char *out,
                  tkm_se_splice_stats *st);

#ifdef __cplusplus
}
#endif
#endif
