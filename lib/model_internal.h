/* model_internal.h - the in-memory model shared by the encoder, decoder and
 * trainer (lib/model.c), the normalizer (lib/normalize.c), the charsmap
 * builder (lib/charsmap_build.c) and the protobuf writer (lib/model.c). */
#ifndef TKM_MODEL_INTERNAL_H
#define TKM_MODEL_INTERNAL_H

#include "ptrie.h"
#include "tkm_internal.h"

struct tkm_model {
    uint8_t *raw;
    size_t raw_len;
    char *name;
    int n;
    uint32_t *poff, *plen; /* piece bytes in raw (protobuf strings are raw bytes) */
    float *score;
    uint8_t *type;
    int model_type, vocab_size_spec, byte_fallback, treat_ws_suffix;
    int has_trainer_spec, has_normalizer_spec, hard_vocab_limit;
    char *warning; /* tkm_model_warning (owned), NULL when none */
    int unk_id, bos_id, eos_id, pad_id;
    const char *unk_surface; size_t unk_surface_len;
    /* normalizer */
    int add_dummy_prefix, remove_extra_ws, escape_ws;
    const uint8_t *charsmap; size_t charsmap_len;
    uint32_t *darts; size_t darts_units; /* charsmap trie, an aligned copy (owned) */
    const char *norm_strings; size_t norm_strings_len;
    /* denormalizer_spec's precompiled_charsmap (field 5), applied to decoded
     * text; NULL when absent */
    const uint8_t *denorm_map; size_t denorm_map_len;
    tkmi_strmap pieces;   /* NORMAL, USER_DEFINED, UNUSED */
    tkmi_strmap reserved; /* UNKNOWN, CONTROL, BYTE */
    int byte_id[256];
    tkmi_ptrie user;      /* user-defined symbols (valid when has_user) */
    int has_user;
    int has_unused;
    /* set for tokenizers read from tokenizer.json / tiktoken files: the HF
     * pipeline in front of the pieces (lib/hf_pipeline.h); NULL for .model files */
    struct tkmi_front *front;
};

/* Loads a ModelProto (lib/model.c); need_unk = 0 accepts a model without an
 * unknown piece. */
int tkmi_model_load_pb(const void *data, size_t size, const char *name, int need_unk, tkm_model **out);

static inline const char *tkmi_piece(const tkm_model *m, int id) { return (const char *)m->raw + m->poff[id]; }
/* sentencepiece's PieceToId: reserved first, then normal, else unk. */
int tkmi_piece_to_id(const tkm_model *m, const char *s, size_t len);

/* Normalizes one line as sentencepiece's Normalizer (identity or charsmap,
 * add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces, U+FFFD for
 * invalid bytes). Output appended to *out (growable). Returns 0 or <0. */
int tkmi_normalize(const tkm_model *m, const char *in, size_t len, char **out, size_t *olen, size_t *ocap);
/* Points d's charsmap fields at a precompiled_charsmap blob (validated;
 * TKM_EFORMAT names `what`) except darts, which the caller sets to an aligned
 * copy of the darts_units units at blob + 4. */
int tkmi_charsmap_view(tkm_model *d, const uint8_t *blob, size_t len, const char *name, const char *what);

/* Builds sentencepiece's precompiled_charsmap for a named rule (nmt_nfkc,
 * nfkc, nmt_nfkc_cf, nfkc_cf; identity or NULL gives no map: *blob NULL) or
 * for a rule TSV (tsv non-NULL, sentencepiece's normalization_rule_tsv
 * format). *blob is tkmi_malloc'd. lib/charsmap_build.c. */
int tkmi_charsmap_build(const char *rule, const char *tsv, uint8_t **blob, size_t *len);

/* ---- protobuf writer ---- */
typedef struct { uint8_t *p; size_t n, cap; int err; } tkmi_pb;
void tkmi_pb_varint(tkmi_pb *b, uint64_t v);
void tkmi_pb_tag(tkmi_pb *b, int field, int wire);
void tkmi_pb_bytes(tkmi_pb *b, int field, const void *s, size_t len);
void tkmi_pb_str(tkmi_pb *b, int field, const char *s);
void tkmi_pb_int(tkmi_pb *b, int field, int64_t v);   /* int32/int64/bool/enum */
void tkmi_pb_float(tkmi_pb *b, int field, float v);
void tkmi_pb_append(tkmi_pb *b, const void *p, size_t n);

#endif
