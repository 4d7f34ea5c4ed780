/* trainer_internal.h - state shared by the trainer's counting stage
 * (pretok_count.c) and its BPE merge stage (bpe_train.c). */
#ifndef TKM_TRAINER_INTERNAL_H
#define TKM_TRAINER_INTERNAL_H

#include <pthread.h>

#include "../lib/model_internal.h"

/* Pre-token -> count table with its own key arena. */
typedef struct {
    uint64_t *hash;
    uint64_t *koff;
    uint32_t *klen;
    int64_t *count;
    size_t cap, n;
    char *arena;
    size_t arena_n, arena_cap;
} tkmi_counts;
int tkmi_counts_init(tkmi_counts *c, size_t expect);
void tkmi_counts_free(tkmi_counts *c);
int tkmi_counts_add(tkmi_counts *c, const char *k, size_t len, uint64_t h, int64_t n);

typedef struct {
    uint64_t lines, bytes, invalid, nul, tokens;
} tkmi_count_stats;

typedef struct tkmi_block {
    char *data;
    size_t len, cap;
    struct tkmi_block *next;
} tkmi_block;

typedef struct {
    struct tkm_trainer *t;
    tkmi_counts counts;
    tkmi_count_stats st;
    char *norm;
    size_t norm_cap;
    pthread_t th;
    int err;
} tkmi_worker;

struct tkm_trainer {
    tkm_train_options o;
    /* owned copies of option strings */
    char **user, **control;
    char *unk_piece, *bos_piece, *eos_piece, *pad_piece, *unk_surface;
    char **inputs;
    int n_inputs;
    tkm_model norm_model; /* normalizer settings + user-defined trie */
    tkm_progress_fn progress;
    void *progress_ctx;
    /* counting */
    tkmi_worker *workers;
    int n_workers, started;
    pthread_mutex_t mu;
    pthread_cond_t cv_full, cv_empty;
    tkmi_block *queue_head, *queue_tail, *free_blocks;
    size_t queued;
    int closing;
    tkmi_block *cur;
    tkmi_count_stats st;
    tkm_train_stats stats;
    double t_start;
    int err;
    char errmsg[512];
};

/* Pre-tokenizes one normalized line into w's counts. */
int tkmi_pretok_line(struct tkm_trainer *t, tkmi_worker *w, const char *line, size_t len);
/* Merges worker tables into one and returns it (workers' tables freed). */
int tkmi_counts_finish(struct tkm_trainer *t, tkmi_counts *out);
/* Runs BPE on the counts and serializes the model. */
int tkmi_bpe_train(struct tkm_trainer *t, tkmi_counts *counts, tkm_model **out);

#endif
