/* front.h - tokenizers read from HF tokenizer.json and tiktoken rank files:
 * the HF pipeline (added tokens, normalizers, pre-tokenizers) in front of a
 * per-word model, rank-based BPE (lib/rank_bpe.c) or sentencepiece's Unigram
 * (lib/bpe_encode.c). Internal; reached through tkm_model/tkm_encoder. */
#ifndef TKM_FRONT_H
#define TKM_FRONT_H

#include <unicode/uregex.h>

#include "model_internal.h"

enum { TKMI_NORM_REPLACE, TKMI_NORM_PREPEND, TKMI_NORM_NFC, TKMI_NORM_NFD, TKMI_NORM_NFKC, TKMI_NORM_NFKD,
       TKMI_NORM_LOWER, TKMI_NORM_STRIP };
enum { TKMI_PRE_METASPACE, TKMI_PRE_BYTELEVEL, TKMI_PRE_SPLIT, TKMI_PRE_DIGITS };
/* Split behaviours of HF's SplitDelimiterBehavior */
enum { TKMI_SPLIT_ISOLATED, TKMI_SPLIT_REMOVED, TKMI_SPLIT_MERGED_PREV, TKMI_SPLIT_MERGED_NEXT, TKMI_SPLIT_CONTIGUOUS };
/* Metaspace prepend schemes */
enum { TKMI_PREPEND_NEVER, TKMI_PREPEND_ALWAYS, TKMI_PREPEND_FIRST };

/* One normalizer or pre-tokenizer step. A pattern is either a literal
 * (lit, litlen) or a regex (re_src: ICU syntax, compiled per encoder). */
typedef struct {
    int kind;
    char *lit; size_t litlen;    /* REPLACE/SPLIT literal pattern, PREPEND text, METASPACE replacement */
    char *re_src;                /* regex pattern (NULL: literal) */
    char *content; size_t clen;  /* REPLACE replacement */
    int left, right;             /* STRIP */
    int scheme, split;           /* METASPACE */
    int add_prefix_space, use_regex; /* BYTELEVEL */
    int behavior, invert;        /* SPLIT */
    int individual;              /* DIGITS */
} tkmi_step;

enum { TKMI_WORD_RANK = 1, TKMI_WORD_UNIGRAM = 2 };

struct tkmi_front {
    tkmi_step *norm; int n_norm;
    tkmi_step *pre; int n_pre;
    /* added tokens matched on the raw text / on the normalized text */
    tkmi_ptrie added_raw, added_norm;
    int n_added_raw, n_added_norm;
    int word;                    /* TKMI_WORD_* */
    /* rank BPE: (left id, right id) -> (priority, merged id) */
    struct tkmi_rslot { uint64_t key; uint32_t rank; int32_t id; } *merges;
    size_t m_cap, m_n;
    tkmi_strmap vocab;           /* model vocabulary (piece bytes -> id) */
    int byte_level;              /* symbols are bytes (byte-level BPE, tiktoken) */
    int32_t byte_sym[256];       /* byte-level: id of each byte, -1 if none */
    int32_t fb_byte[256];        /* byte fallback ids (<0xNN>), or -1 */
    int byte_fallback, unk_id, fuse_unk, ignore_merges;
};

void tkmi_front_free(struct tkmi_front *f);
/* Validates a step's regex (compiles it once), naming where it came from. */
int tkmi_front_check_regex(const char *src, const char *where);
/* Adds a merge; a later one for the same pair replaces an earlier one (HF). */
int tkmi_front_add_merge(struct tkmi_front *f, int32_t l, int32_t r, uint32_t rank, int32_t id);
/* Builds a tkm_model around f from pieces (types/scores per id; ids without
 * a piece are filled with unused pieces) and, for Unigram, serialized
 * protobuf: see tkmi_model_load_pb. Takes ownership of f in every case. */
int tkmi_front_model(struct tkmi_front *f, const char *name, const char *const *pieces, const uint32_t *lens,
                     const float *scores, const uint8_t *types, int n, int model_type, int byte_fallback,
                     tkm_model **out);

/* Per-encoder state (compiled regexes, buffers, word cache). */
typedef struct tkmi_fstate tkmi_fstate;
int tkmi_fstate_new(const tkm_model *m, tkmi_fstate **out);
void tkmi_fstate_free(tkmi_fstate *s);
/* Encodes one line through the pipeline; Unigram words are encoded with
 * tkmi_encode_word (the sentencepiece encoder on an identity model). */
int tkmi_front_encode(tkm_encoder *e, tkmi_fstate *s, const char *text, size_t len, const int32_t **ids, size_t *n);
int tkmi_encode_word(tkm_encoder *e, const char *text, size_t len, const int32_t **ids, size_t *n);

/* Loads a ModelProto; need_unk = 0 accepts a model without an unknown piece. */
int tkmi_model_load_pb(const void *data, size_t size, const char *name, int need_unk, tkm_model **out);

#endif
