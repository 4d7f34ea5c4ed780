/* encoder.h - the encoder interface behind tkm_encoder: one table of
 * functions per kind of model, in the spirit of sentencepiece's
 * ModelInterface. lib/encoder.c defines the encoder object and sentencepiece's
 * line path (normalize, the kind's pieces, post-processing); lib/encode.c picks
 * the kind of a model (the public tkm_encoder_new / tkm_encode). The kinds:
 *   tkmi_bpe_kind       sentencepiece BPE            lib/bpe_encode.c
 *   tkmi_unigram_kind   sentencepiece Unigram        lib/unigram_encode.c
 *   tkmi_charword_kind  sentencepiece char and word  lib/charword_encode.c
 *   tkmi_hf_kind        HF pipeline (tokenizer.json, tiktoken)  lib/hf_pipeline.c */
#ifndef TKM_ENCODER_H
#define TKM_ENCODER_H

#include "model_internal.h"

/* A raw piece of a normalized line: its id and byte length. */
typedef struct { int32_t id; uint32_t len; } tkmi_tok;
typedef struct { tkmi_tok *v; size_t n, cap; } tkmi_toks;
static inline int tkmi_toks_push(tkmi_toks *t, int32_t id, uint32_t len)
{
    if (t->n == t->cap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&t->v, &t->cap, t->n + 1, sizeof *t->v));
    t->v[t->n++] = (tkmi_tok){id, len};
    return 0;
}

typedef struct tkmi_encoder_kind {
    const char *name;
    /* Builds the kind's tables for m into *state. */
    int (*create)(const tkm_model *m, void **state);
    /* sentencepiece kinds: the pieces of a normalized line s[0..n), appended
     * to out (before unknown collapsing and byte fallback). */
    int (*pieces)(void *state, const char *s, size_t n, tkmi_toks *out);
    /* Kinds with a pipeline of their own (HF): the whole line, replacing
     * normalize + pieces + post-processing. NULL for sentencepiece kinds. */
    int (*encode)(void *state, const char *text, size_t len, const int32_t **ids, size_t *n);
    void (*destroy)(void *state);
} tkmi_encoder_kind;

extern const tkmi_encoder_kind tkmi_bpe_kind, tkmi_unigram_kind, tkmi_charword_kind, tkmi_hf_kind;

struct tkm_encoder {
    const tkm_model *m;
    const tkmi_encoder_kind *kind;
    void *state;                          /* the kind's */
    char *norm; size_t norm_len, norm_cap; /* the normalized line */
    tkmi_toks toks;                       /* its raw pieces */
    int32_t *ids; size_t n_ids, ids_cap;  /* the ids after post-processing */
};

/* An encoder of model m with the given kind (lib/encoder.c). */
int tkmi_encoder_open(const tkm_model *m, const tkmi_encoder_kind *kind, tkm_encoder **out);
void tkmi_encoder_close(tkm_encoder *e);
/* Encodes one line: the kind's own encode, or sentencepiece's line path. */
int tkmi_encoder_line(tkm_encoder *e, const char *text, size_t len, const int32_t **ids, size_t *n);

#endif
