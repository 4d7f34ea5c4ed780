/* hf_pipeline.h - tokenizers read from HF tokenizer.json and tiktoken rank
 * files (lib/hf_read.c): the description of HF's pipeline (added tokens,
 * normalizers, pre-tokenizers) in front of a per-word model, rank-based BPE
 * (lib/rank_bpe.c) or sentencepiece's Unigram (lib/unigram_encode.c), that
 * m->front holds. lib/hf_pipeline.c runs it (tkmi_hf_kind, lib/encoder.h). */
#ifndef TKM_HF_PIPELINE_H
#define TKM_HF_PIPELINE_H

#include <unicode/uregex.h>

#include "model_internal.h"
#include "pairmap.h"

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
    /* rank BPE: (left id, right id) -> (aux = rank, merged id); a later
     * merge of the same pair replaces an earlier one (HF) */
    tkmi_pairmap merges;
    tkmi_strmap vocab;           /* model vocabulary (piece bytes -> id) */
    int byte_level;              /* symbols are bytes (byte-level BPE, tiktoken) */
    int32_t byte_sym[256];       /* byte-level: id of each byte, -1 if none */
    int32_t fb_byte[256];        /* byte fallback ids (<0xNN>), or -1 */
    int byte_fallback, unk_id, fuse_unk, ignore_merges;
};

/* lib/hf_pipeline.c */
void tkmi_front_free(struct tkmi_front *f);
/* Validates a step's regex (compiles it once), naming where it came from. */
int tkmi_front_check_regex(const char *src, const char *where);

#endif
