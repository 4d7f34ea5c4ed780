/* rank_bpe.h - rank-based BPE on one word (lib/rank_bpe.c), as HF's BPE
 * model and tiktoken run it: lowest rank first, leftmost among equal ranks,
 * with byte fallback and unknown fusing. The model is the merge table and
 * vocabulary of a struct tkmi_front (lib/hf_pipeline.h). */
#ifndef TKM_RANK_BPE_H
#define TKM_RANK_BPE_H

#include "hf_pipeline.h"

/* Per-encoder scratch (symbols and the heap of candidate merges). */
typedef struct {
    struct tkmi_rsym { int32_t prev, next; uint32_t len; int32_t id; } *sy;
    size_t sycap;
    struct tkmi_rheap { uint32_t rank; int32_t pos, id; } *hp;
    size_t hn, hcap;
} tkmi_rank_scratch;

/* Appends the ids of word w[0..n) to *ids (*nids used of *idcap, growable). */
int tkmi_rank_word(tkmi_rank_scratch *s, const struct tkmi_front *f, const char *w, size_t n, int32_t **ids,
                   size_t *nids, size_t *idcap);
void tkmi_rank_scratch_free(tkmi_rank_scratch *s);

#endif
