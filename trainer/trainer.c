/* trainer.c - the public trainer API and its thread pipeline: options,
 * tkm_trainer_new/free, adding lines and files (the reader copies lines into
 * 4 MB blocks that worker threads normalize, cut and count into private
 * tables, see pretok_count.c), merging the tables in sorted order so the
 * result does not depend on the thread count, and tkm_trainer_train, which
 * hands the counts to the BPE, Unigram, char or word trainer. */
#include <stdio.h>
#include <math.h>
#include <stdlib.h>

#include "trainer_internal.h"

#define BLOCK_BYTES (4u << 20)
/* --max-memory's bytes not for the count tables (start_workers) */
#define PROC_BYTES ((uint64_t)24 << 20)
#define SPILL_MIN ((size_t)2 << 20)
#define WORKER_BYTES (((uint64_t)sizeof(tkmi_hot) << TKMI_HOT_BITS) + ((uint64_t)2 << 20))

/* ---- worker threads ---- */
/* input_tsv: TEXT<TAB>COUNT as sentencepiece reads it (absl::SimpleAtoi:
 * optional spaces and sign). Returns TEXT's length and the count, or <0. */
static int tsv_split(const char *line, size_t len, size_t *tlen, int64_t *count)
{
    const char *tab = memchr(line, '\t', len);
    TKM_RETURN_ERROR_IF(!tab || memchr(tab + 1, '\t', len - (size_t)(tab + 1 - line)), TKM_EFORMAT,
                        "input_format=tsv wants TEXT<TAB>COUNT (exactly one tab)");
    const char *p = tab + 1, *e = line + len;
    while (p < e && (*p == ' ' || *p == '\r' || *p == '\f' || *p == '\v')) p++;
    while (e > p && (e[-1] == ' ' || e[-1] == '\r' || e[-1] == '\f' || e[-1] == '\v')) e--;
    if (p < e && *p == '+') p++;
    int64_t v = 0;
    int ok = p < e;
    for (; ok && p < e; p++) {
        ok = *p >= '0' && *p <= '9' && v <= (INT64_MAX - 9) / 10;
        v = v * 10 + (*p - '0');
    }
    TKM_RETURN_ERROR_IF(!ok || v < 1, TKM_EFORMAT, "input_format=tsv: the count must be an integer >= 1");
    *tlen = (size_t)(tab - line);
    *count = v;
    return 0;
}

static int process_block(struct tkm_trainer *t, tkmi_worker *w, tkmi_block *b)
{
    w->inc = b->inc;
    const char *p = b->data, *end = b->data + b->len;
    /* --max-memory: a block of distinct words can add several times its
     * size to the table, so the table is looked at every 64 lines too and
     * spilled once past its share or once full (its next growth would
     * pass the share; at 7/8 load it grows anyway), but not under SPILL_MIN
     * bytes: a tiny share still spills only every few MB of table */
    size_t lines = 0, mid = t->worker_limit > SPILL_MIN ? t->worker_limit : SPILL_MIN;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)(nl - p);
        if (t->o.input_tsv) { /* checked when added */
            int64_t cnt = 1;
            if (tsv_split(p, len, &len, &cnt) < 0) return TKM_EFORMAT;
            w->inc = cnt;
        }
        TKM_FORWARD_IF_ERROR(tkmi_pretok_line(t, w, p, len));
        p = nl + 1;
        size_t held;
        if (t->worker_limit && (++lines & 63) == 0 &&
            ((held = tkmi_counts_bytes(&w->counts)) > mid || (w->counts.full && held > SPILL_MIN))) {
            TKM_FORWARD_IF_ERROR(tkmi_pretok_drain(w));
            TKM_FORWARD_IF_ERROR(tkmi_spill_worker(t, w));
        }
    }
    /* --max-memory: past its share, the table goes to disk (count_spill.c) */
    if (t->worker_limit && (w->counts.full || tkmi_counts_bytes(&w->counts) > t->worker_limit)) {
        TKM_FORWARD_IF_ERROR(tkmi_pretok_drain(w));
        TKM_FORWARD_IF_ERROR(tkmi_spill_worker(t, w));
    }
    return 0;
}

static void *worker_main(void *arg)
{
    tkmi_worker *w = arg;
    struct tkm_trainer *t = w->t;
    for (;;) {
        pthread_mutex_lock(&t->mu);
        while (!t->queue_head && !t->closing) pthread_cond_wait(&t->cv_full, &t->mu);
        tkmi_block *b = t->queue_head;
        if (b) {
            t->queue_head = b->next;
            if (!t->queue_head) t->queue_tail = NULL;
            t->queued--;
        }
        pthread_mutex_unlock(&t->mu);
        if (!b) break;
        int rc = w->err ? 0 : process_block(t, w, b);
        if (rc < 0 && !w->err) {
            w->err = rc;
            pthread_mutex_lock(&t->mu);
            if (!t->err) {
                t->err = rc;
                snprintf(t->errmsg, sizeof t->errmsg, "%s", tkm_last_error());
            }
            pthread_mutex_unlock(&t->mu);
        }
        pthread_mutex_lock(&t->mu);
        b->len = 0;
        b->next = t->free_blocks;
        t->free_blocks = b;
        pthread_cond_signal(&t->cv_empty);
        pthread_mutex_unlock(&t->mu);
    }
    return NULL;
}

static int start_workers(struct tkm_trainer *t)
{
    if (t->started) return 0;
    int n = t->o.threads < 1 ? 1 : t->o.threads;
    t->workers = tkmi_calloc((size_t)n, sizeof *t->workers);
    TKM_RETURN_ERROR_IF(!t->workers, TKM_ENOMEM, "out of memory");
    t->n_workers = n;
    if (t->o.max_memory) {
        /* the tables' share: the limit less the line blocks, the process's
         * own (code, normalizer, the hot tables and a spill's write buffer
         * per worker: PROC_BYTES plus WORKER_BYTES each, measured at 12-17
         * MB in all on small inputs), then 1/64 of the rest for a spill's
         * sort scratch (1/256 of a table's entries, 16 bytes each and as
         * much again inside qsort: about 1/150 of the table) and the
         * allocator's slack. Then peak RSS stays under the limit while
         * counting and spilling (tests/cli/scale.sh). */
        uint64_t fixed = (uint64_t)(2 * n + 1) * BLOCK_BYTES + PROC_BYTES + (uint64_t)n * WORKER_BYTES;
        uint64_t left = t->o.max_memory > fixed ? t->o.max_memory - fixed : 1;
        left -= left / 64;
        t->worker_limit = (size_t)(left / (uint64_t)n ? left / (uint64_t)n : 1);
        t->stats.count_table_bytes = (uint64_t)t->worker_limit * (uint64_t)n;
    }
    for (int i = 0; i < n; i++) {
        t->workers[i].t = t;
        TKM_FORWARD_IF_ERROR(tkmi_counts_init(&t->workers[i].counts, 1 << 16));
        t->workers[i].counts.limit = t->worker_limit;
        TKM_FORWARD_IF_ERROR(tkmi_pretok_hot(&t->workers[i]));
    }
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv_full, NULL);
    pthread_cond_init(&t->cv_empty, NULL);
    /* 2 blocks per worker in flight at most: bounded memory. */
    for (int i = 0; i < 2 * n + 1; i++) {
        tkmi_block *b = tkmi_calloc(1, sizeof *b);
        TKM_RETURN_ERROR_IF(!b, TKM_ENOMEM, "out of memory");
        b->next = t->free_blocks;
        t->free_blocks = b;
    }
    if (n > 1)
        for (int i = 0; i < n; i++)
            TKM_RETURN_ERROR_IF(pthread_create(&t->workers[i].th, NULL, worker_main, &t->workers[i]) != 0, TKM_ENOMEM,
                                "cannot start counting thread %d", i);
    t->started = 1;
    return 0;
}

static int dispatch(struct tkm_trainer *t, tkmi_block *b)
{
    if (t->n_workers == 1) {
        int rc = process_block(t, &t->workers[0], b);
        b->len = 0;
        b->next = t->free_blocks;
        t->free_blocks = b;
        return rc;
    }
    pthread_mutex_lock(&t->mu);
    b->next = NULL;
    if (t->queue_tail) t->queue_tail->next = b;
    else t->queue_head = b;
    t->queue_tail = b;
    t->queued++;
    pthread_cond_signal(&t->cv_full);
    int err = t->err;
    pthread_mutex_unlock(&t->mu);
    if (err) return tkmi_error(err, "%s", t->errmsg);
    return 0;
}

static int get_block(struct tkm_trainer *t, tkmi_block **out)
{
    pthread_mutex_lock(&t->mu);
    while (!t->free_blocks) pthread_cond_wait(&t->cv_empty, &t->mu);
    tkmi_block *b = t->free_blocks;
    t->free_blocks = b->next;
    pthread_mutex_unlock(&t->mu);
    b->next = NULL;
    b->len = 0;
    *out = b;
    return 0;
}

/* sentencepiece's LoadSentences filter (off by default). */
static int skip_line(tkm_trainer *t, const char *line, size_t len)
{
    if (t->o.max_sentence_length > 0 && len > (size_t)t->o.max_sentence_length) return 1;
    if (t->o.skip_unk_lines)
        for (const char *p = line; (p = memchr(p, 0xE2, len - (size_t)(p - line))) && len - (size_t)(p - line) >= 3; p++)
            if ((uint8_t)p[1] == 0x81 && (uint8_t)p[2] == 0x87) return 1;
    return 0;
}

int tkm_trainer_add_line(tkm_trainer *t, const char *line, size_t len)
{
    if (t->o.input_tsv) {
        size_t tl;
        int64_t cnt;
        TKM_FORWARD_IF_ERROR(tsv_split(line, len, &tl, &cnt));
        if (tl == 0 || ((t->o.max_sentence_length > 0 || t->o.skip_unk_lines) && skip_line(t, line, tl))) {
            t->stats.skipped_lines += tl > 0;
            return 0;
        }
    } else if ((t->o.max_sentence_length > 0 || t->o.skip_unk_lines) && skip_line(t, line, len)) {
        t->stats.skipped_lines++;
        return 0;
    }
    TKM_FORWARD_IF_ERROR(start_workers(t));
    size_t block_bytes = t->block_bytes ? t->block_bytes : BLOCK_BYTES;
    if (t->cur && t->cur->len + len + 1 > block_bytes && t->cur->len > 0) {
        tkmi_block *b = t->cur;
        t->cur = NULL;
        TKM_FORWARD_IF_ERROR(dispatch(t, b));
    }
    if (t->cur && t->cur->inc != t->cur_inc && t->cur->len > 0) {
        tkmi_block *b = t->cur; /* a block holds lines of one weight */
        t->cur = NULL;
        TKM_FORWARD_IF_ERROR(dispatch(t, b));
    }
    if (!t->cur) TKM_FORWARD_IF_ERROR(get_block(t, &t->cur));
    tkmi_block *b = t->cur;
    b->inc = t->cur_inc;
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&b->data, &b->cap, b->len + len + 1, 1));
    memcpy(b->data + b->len, line, len);
    /* A '\n' cannot occur inside a line, so it is a safe separator. */
    b->data[b->len + len] = '\n';
    b->len += len + 1;
    return 0;
}

int tkm_trainer_add_file_weighted(tkm_trainer *t, const char *path, double weight)
{
    TKM_RETURN_ERROR_IF(!t->o.weighted, TKM_EINVAL, "weights need the weighted option set before counting");
    TKM_RETURN_ERROR_IF(!(weight > 0 && weight <= 1000), TKM_EINVAL, "%s: weight %g out of range (0, 1000]", path, weight);
    int64_t inc = llround(weight * 100.0);
    if (inc < 1) inc = 1;
    int64_t saved = t->cur_inc;
    t->cur_inc = inc;
    int rc = tkm_trainer_add_file(t, path);
    t->cur_inc = saved;
    return rc;
}

int tkm_trainer_add_file(tkm_trainer *t, const char *path)
{
    tkm_reader *r;
    TKM_FORWARD_IF_ERROR(tkm_reader_open(path, &r));
    const char *line;
    size_t len;
    int rc;
    uint64_t next_report = 0;
    while ((rc = tkm_reader_next(r, &line, &len)) > 0) {
        rc = tkm_trainer_add_line(t, line, len);
        if (rc < 0) {
            if (t->o.input_tsv && rc == TKM_EFORMAT) {
                char msg[256];
                snprintf(msg, sizeof msg, "%s", tkm_last_error());
                rc = tkmi_error(rc, "%s:%llu: %s", path, (unsigned long long)tkm_reader_lineno(r), msg);
            }
            break;
        }
        t->st.bytes += len + 1;
        if (t->progress && t->st.bytes >= next_report) {
            tkmi_progress(t, "reading", t->st.bytes, 0);
            next_report = t->st.bytes + (16u << 20);
        }
    }
    tkm_reader_close(r);
    if (rc < 0) return rc;
    return tkmi_trainer_add_input(t, path);
}

/* Records an input's name (the model's input fields, count file headers). */
int tkmi_trainer_add_input(struct tkm_trainer *t, const char *path)
{
    char **ni = tkmi_realloc(t->inputs, (size_t)(t->n_inputs + 1) * sizeof *ni);
    TKM_RETURN_ERROR_IF(!ni, TKM_ENOMEM, "out of memory");
    t->inputs = ni;
    t->inputs[t->n_inputs] = tkmi_strdup(path);
    TKM_RETURN_ERROR_IF(!t->inputs[t->n_inputs], TKM_ENOMEM, "out of memory");
    t->n_inputs++;
    return 0;
}

static int stop_workers(struct tkm_trainer *t)
{
    if (!t->started) return 0;
    int rc = 0;
    if (t->cur) {
        tkmi_block *b = t->cur;
        t->cur = NULL;
        if (b->len) rc = dispatch(t, b);
        else { b->next = t->free_blocks; t->free_blocks = b; }
    }
    if (t->n_workers > 1) {
        pthread_mutex_lock(&t->mu);
        t->closing = 1;
        pthread_cond_broadcast(&t->cv_full);
        pthread_mutex_unlock(&t->mu);
        for (int i = 0; i < t->n_workers; i++) pthread_join(t->workers[i].th, NULL);
    }
    t->started = 0;
    /* the hot tables' counts join the workers' tables */
    for (int i = 0; i < t->n_workers && rc == 0 && !t->err; i++) {
        rc = tkmi_pretok_drain(&t->workers[i]);
        tkmi_free(t->workers[i].hot);
        t->workers[i].hot = NULL;
    }
    /* the line blocks are not needed any more: give their memory back */
    for (tkmi_block *b = t->free_blocks, *n; b; b = n) { n = b->next; tkmi_free(b->data); tkmi_free(b); }
    t->free_blocks = NULL;
    if (rc < 0) return rc;
    if (t->err) return tkmi_error(t->err, "%s", t->errmsg);
    return 0;
}

/* --max-memory: would merging the workers' tables in memory pass the
 * limit? The merged table holds at most the sum of their entries; at its
 * last rehash its old and new slots, every record and the tables not merged
 * yet are held together (a table merged frees its slots first and its
 * chunks as they are read). Then they are spilled and merged from disk. */
static int merge_too_big(const struct tkm_trainer *t)
{
    if (!t->worker_limit || t->n_workers < 2) return 0;
    size_t n = 0, bytes = 0;
    for (int i = 0; i < t->n_workers; i++) {
        const tkmi_counts *c = &t->workers[i].counts;
        n += c->n;
        bytes += tkmi_counts_bytes(c) - (i ? 0 : c->cap * sizeof *c->s); /* (0's: in the peak below) */
    }
    bytes += tkmi_counts_slot_peak(n);
    return bytes > t->worker_limit * (size_t)t->n_workers;
}

int tkmi_counts_finish(struct tkm_trainer *t, tkmi_counts *out)
{
    memset(out, 0, sizeof *out);
    TKM_FORWARD_IF_ERROR(stop_workers(t));
    TKM_RETURN_ERROR_IF(!t->workers, TKM_EEMPTY, "no input: the corpus is empty");
    tkmi_counts *acc = &t->workers[0].counts;
    acc->limit = 0; /* (the limit is for counting: the merge may grow it) */
    tkmi_count_stats st = t->workers[0].st;
    if (t->n_runs || merge_too_big(t)) { /* spilled: merge the sorted runs instead */
        TKM_FORWARD_IF_ERROR(tkmi_spill_finish(t, out));
        acc = out;
    }
    t->stats.spill_bytes = t->spill_bytes;
    for (int i = 1; i < t->n_workers; i++) {
        TKM_FORWARD_IF_ERROR(tkmi_counts_absorb(acc, &t->workers[i].counts));
        st.lines += t->workers[i].st.lines;
        st.bytes += t->workers[i].st.bytes;
        st.invalid += t->workers[i].st.invalid;
        st.nul += t->workers[i].st.nul;
        st.tokens += t->workers[i].st.tokens;
    }
    for (int i = 0; i < t->n_workers; i++) {
        tkmi_free(t->workers[i].norm);
        t->workers[i].norm = NULL;
    }
    if (acc != out) {
        *out = *acc;
        memset(acc, 0, sizeof *acc);
    }
    t->stats.lines = st.lines;
    t->stats.bytes = st.bytes;
    t->stats.invalid_utf8_bytes = st.invalid;
    t->stats.nul_bytes = st.nul;
    t->stats.pretokens_total = st.tokens;
    /* (after a spill for BPE the table may hold only the kept ones) */
    t->stats.pretokens_unique = t->stats.spill_runs ? t->unique_all : out->n;
    return 0;
}

/* ---- trainer lifecycle ---- */
void tkm_train_options_init(tkm_train_options *o)
{
    memset(o, 0, sizeof *o);
    o->model_type = TKM_MODEL_BPE;
    o->vocab_size = 8000;
    o->character_coverage = 0.9995f;
    o->max_piece_length = 16;
    o->split_by_unicode_script = 1;
    o->split_by_number = 1;
    o->split_by_whitespace = 1;
    o->hard_vocab_limit = 1;
    o->unk_id = 0;
    o->bos_id = 1;
    o->eos_id = 2;
    o->pad_id = -1;
    o->unk_piece = "<unk>";
    o->bos_piece = "<s>";
    o->eos_piece = "</s>";
    o->pad_piece = "<pad>";
    o->unk_surface = " \xE2\x81\x87 ";
    o->threads = 1;
    o->balance_latin = -1;
    o->balance_japanese = -1;
    o->seed_size = 1000000;
    o->shrinking_factor = 0.75f;
    o->num_sub_iterations = 2;
}

static char **dup_list(const char *const *v, int n)
{
    char **r = tkmi_calloc((size_t)n + 1, sizeof *r);
    if (!r) return NULL;
    for (int i = 0; i < n; i++)
        if (!(r[i] = tkmi_strdup(v[i]))) return r; /* caller checks */
    return r;
}

int tkm_trainer_new(const tkm_train_options *o, tkm_trainer **out)
{
    *out = NULL;
    TKM_RETURN_ERROR_IF(o->model_type != TKM_MODEL_BPE && o->model_type != TKM_MODEL_UNIGRAM &&
                            o->model_type != TKM_MODEL_CHAR && o->model_type != TKM_MODEL_WORD,
                        TKM_ENOTSUP, "model type %d is not supported (BPE, Unigram, char, word)", o->model_type);
    TKM_RETURN_ERROR_IF(o->input_tsv && o->weighted, TKM_EINVAL, "input_tsv and weighted inputs do not combine");
    TKM_RETURN_ERROR_IF(o->use_all_vocab && o->model_type != TKM_MODEL_CHAR && o->model_type != TKM_MODEL_WORD,
                        TKM_ENOTSUP, "use_all_vocab is implemented for char and word models only");
    TKM_RETURN_ERROR_IF((o->model_type == TKM_MODEL_CHAR || o->model_type == TKM_MODEL_WORD) &&
                            (o->balance_latin >= 0 || o->balance_japanese >= 0),
                        TKM_ENOTSUP, "--balance is implemented for BPE only");
    TKM_RETURN_ERROR_IF(o->model_type == TKM_MODEL_UNIGRAM &&
                            (o->seed_size < 1 || !(o->shrinking_factor > 0 && o->shrinking_factor < 1) ||
                             o->num_sub_iterations < 1 || o->num_sub_iterations > 100),
                        TKM_EINVAL, "invalid Unigram options (seed size >= 1, 0 < shrinking factor < 1, 1..100 sub-iterations)");
    TKM_RETURN_ERROR_IF(o->vocab_size < 1 || o->vocab_size > (1 << 20), TKM_EINVAL,
                        "vocab size %d out of range (1..1048576)", o->vocab_size);
    TKM_RETURN_ERROR_IF(!(o->character_coverage > 0 && o->character_coverage <= 1), TKM_EINVAL,
                        "character coverage %g out of range (0, 1]", (double)o->character_coverage);
    TKM_RETURN_ERROR_IF(o->max_piece_length < 1 || o->max_piece_length > 1024, TKM_EINVAL,
                        "max piece length %d out of range (1..1024)", o->max_piece_length);
    TKM_RETURN_ERROR_IF(o->seed_sentencepieces_file && *o->seed_sentencepieces_file && o->model_type != TKM_MODEL_UNIGRAM,
                        TKM_ENOTSUP, "seed pieces from a file are only for Unigram (as in sentencepiece)");
    TKM_RETURN_ERROR_IF(o->pretokenization_delimiter && *o->pretokenization_delimiter && o->model_type != TKM_MODEL_BPE &&
                            o->model_type != TKM_MODEL_UNIGRAM,
                        TKM_ENOTSUP, "a pretokenization delimiter is only supported for BPE and Unigram (as in sentencepiece)");
    TKM_RETURN_ERROR_IF(o->threads < 1 || o->threads > 256, TKM_EINVAL, "threads %d out of range (1..256)", o->threads);
    TKM_RETURN_ERROR_IF(o->unk_id < 0, TKM_EINVAL, "unk id must be >= 0 (an unknown piece is required)");
    TKM_RETURN_ERROR_IF(o->balance_latin > 1 || o->balance_japanese > 1 ||
                            (o->balance_latin > 0 ? o->balance_latin : 0) +
                                    (o->balance_japanese > 0 ? o->balance_japanese : 0) > 1.0f,
                        TKM_EINVAL, "balance targets must be shares between 0 and 1 summing to at most 1");
    TKM_RETURN_ERROR_IF(o->balance_method != TKM_BALANCE_BUDGET && o->balance_method != TKM_BALANCE_WEIGHTS, TKM_EINVAL,
                        "balance method %d is not supported (budget or weights)", o->balance_method);
    TKM_RETURN_ERROR_IF(o->model_type == TKM_MODEL_UNIGRAM && (o->balance_latin >= 0 || o->balance_japanese >= 0),
                        TKM_ENOTSUP, "--balance is implemented for BPE only (Unigram: not yet)");
    tkm_trainer *t = tkmi_calloc(1, sizeof *t);
    TKM_RETURN_ERROR_IF(!t, TKM_ENOMEM, "out of memory");
    t->o = *o;
    t->user = dup_list(o->user_defined_symbols, o->n_user_defined);
    t->control = dup_list(o->control_symbols, o->n_control);
    t->unk_piece = tkmi_strdup(o->unk_piece);
    t->bos_piece = tkmi_strdup(o->bos_piece);
    t->eos_piece = tkmi_strdup(o->eos_piece);
    t->pad_piece = tkmi_strdup(o->pad_piece);
    t->unk_surface = tkmi_strdup(o->unk_surface);
    if (o->required_chars) t->required = tkmi_strdup(o->required_chars);
    t->o.required_chars = t->required;
    t->o.user_defined_symbols = (const char *const *)t->user;
    t->o.control_symbols = (const char *const *)t->control;
    t->o.unk_piece = t->unk_piece;
    t->o.bos_piece = t->bos_piece;
    t->o.eos_piece = t->eos_piece;
    t->o.pad_piece = t->pad_piece;
    t->o.unk_surface = t->unk_surface;
    t->o.pretokenization_delimiter = NULL;
    int delim_lost = 0;
    if (o->pretokenization_delimiter && *o->pretokenization_delimiter) {
        t->delim = tkmi_strdup(o->pretokenization_delimiter);
        t->delim_len = strlen(o->pretokenization_delimiter);
        t->o.pretokenization_delimiter = t->delim;
        delim_lost = !t->delim;
    }
    if (o->seed_sentencepieces_file && *o->seed_sentencepieces_file) {
        t->seed_file = tkmi_strdup(o->seed_sentencepieces_file);
        delim_lost |= !t->seed_file;
    }
    t->o.seed_sentencepieces_file = t->seed_file;
    t->pretok_ws = (o->model_type == TKM_MODEL_BPE || o->model_type == TKM_MODEL_UNIGRAM) &&
                   (o->treat_whitespace_as_suffix || !o->split_by_whitespace || t->delim_len);
    t->t_start = tkmi_now();
    t->cur_inc = o->weighted ? 100 : 1; /* weighted counting: weight 1 = 100 */
    tkm_model *nm = &t->norm_model;
    nm->add_dummy_prefix = o->add_dummy_prefix;
    nm->remove_extra_ws = o->remove_extra_whitespaces;
    nm->escape_ws = 1;
    nm->treat_ws_suffix = o->treat_whitespace_as_suffix != 0;
    int rc = 0, n = o->n_user_defined;
    /* the rule's precompiled charsmap, read by tkmi_normalize as a loaded
     * model's would be (lib/model.c decode_charsmap) */
    t->norm_name = tkmi_strdup(o->normalization_rule_tsv ? "user_defined"
                               : o->normalization_rule_name ? o->normalization_rule_name : "identity");
    if (o->normalization_rule_tsv) t->norm_tsv = tkmi_strdup(o->normalization_rule_tsv);
    t->o.normalization_rule_name = NULL;
    t->o.normalization_rule_tsv = NULL;
    if (!t->norm_name || (o->normalization_rule_tsv && !t->norm_tsv)) rc = tkmi_error(TKM_ENOMEM, "out of memory");
    if (rc == 0) rc = tkmi_charsmap_build(o->normalization_rule_name, o->normalization_rule_tsv, &t->charsmap, &t->charsmap_len);
    if (rc == 0 && o->denormalization_rule_tsv) {
        t->denorm_tsv = tkmi_strdup(o->denormalization_rule_tsv);
        rc = t->denorm_tsv ? tkmi_charsmap_build(NULL, o->denormalization_rule_tsv, &t->denorm_map, &t->denorm_map_len)
                           : tkmi_error(TKM_ENOMEM, "out of memory");
    }
    t->o.denormalization_rule_tsv = NULL;
    if (rc == 0 && t->charsmap) {
        uint32_t tsize;
        memcpy(&tsize, t->charsmap, 4);
        nm->charsmap = t->charsmap;
        nm->charsmap_len = t->charsmap_len;
        nm->darts = (uint32_t *)(void *)(t->charsmap + 4); /* tkmi_malloc'd + 4: aligned */
        nm->darts_units = tsize / 4;
        nm->norm_strings = (const char *)t->charsmap + 4 + tsize;
        nm->norm_strings_len = t->charsmap_len - 4 - tsize;
    }
    uint32_t *lens = tkmi_malloc(((size_t)n + 1) * sizeof *lens);
    int32_t *ids = tkmi_malloc(((size_t)n + 1) * sizeof *ids);
    int lost = !lens || !ids || !t->user || !t->control || !t->unk_piece || !t->bos_piece || !t->eos_piece ||
               !t->pad_piece || !t->unk_surface || delim_lost;
    for (int i = 0; !lost && i < o->n_control; i++) lost = !t->control[i];
    if (lost) rc = tkmi_error(TKM_ENOMEM, "out of memory");
    for (int i = 0; rc == 0 && i < n; i++) {
        if (!t->user[i]) { rc = tkmi_error(TKM_ENOMEM, "out of memory"); break; }
        if (!t->user[i][0]) { rc = tkmi_error(TKM_EINVAL, "user-defined symbol %d is empty", i + 1); break; }
        lens[i] = (uint32_t)strlen(t->user[i]);
        ids[i] = i;
        uint8_t b0 = (uint8_t)t->user[i][0];
        if (lens[i] == 1) t->user_first[b0] |= 1;
        else {
            unsigned k = (unsigned)b0 << 8 | (uint8_t)t->user[i][1];
            t->user_first[b0] |= 2;
            t->user_first2[k >> 6] |= (uint64_t)1 << (k & 63);
            if (lens[i] < 4) {
                t->user_short2[k >> 6] |= (uint64_t)1 << (k & 63);
            } else {
                uint32_t v, h;
                memcpy(&v, t->user[i], 4);
                h = TKMI_PRE4(v);
                t->user_pre4[h >> 6] |= (uint64_t)1 << (h & 63);
            }
        }
    }
    for (int b = 1; b < 128; b++) t->plain[b] = b != ' ' && !tkmi_is_decimal_digit((uint32_t)b) && !t->user_first[b];
    t->letters_plain = 1;
    for (int b = 'A'; b <= 'z'; b++)
        if ((b <= 'Z' || b >= 'a') && (!t->plain[b] || tkmi_script((uint32_t)b) != tkmi_script('a'))) t->letters_plain = 0;
    t->user_utf8 = 1;
    for (int i = 0; rc == 0 && i < n; i++)
        for (size_t j = 0, mb; j < lens[i]; j += mb) {
            int m;
            if (tkmi_utf8_decode((const uint8_t *)t->user[i] + j, lens[i] - j, &m) < 0) t->user_utf8 = 0;
            mb = (size_t)m;
        }
    if (rc == 0 && n > 0) {
        rc = tkmi_ptrie_build(&nm->user, (const char *const *)t->user, lens, ids, (size_t)n);
        nm->has_user = 1;
    }
    tkmi_free(lens);
    tkmi_free(ids);
    if (rc < 0) { tkm_trainer_free(t); return rc; }
    *out = t;
    return 0;
}

void tkm_trainer_free(tkm_trainer *t)
{
    if (!t) return;
    if (t->started) stop_workers(t);
    tkmi_counts_free(&t->kept);
    if (t->workers) {
        for (int i = 0; i < t->n_workers; i++) {
            tkmi_counts_free(&t->workers[i].counts);
            tkmi_free(t->workers[i].norm);
            tkmi_free(t->workers[i].hot);
        }
        tkmi_free(t->workers);
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv_full);
        pthread_cond_destroy(&t->cv_empty);
    }
    for (tkmi_block *b = t->free_blocks, *n; b; b = n) { n = b->next; tkmi_free(b->data); tkmi_free(b); }
    for (tkmi_block *b = t->queue_head, *n; b; b = n) { n = b->next; tkmi_free(b->data); tkmi_free(b); }
    if (t->cur) { tkmi_free(t->cur->data); tkmi_free(t->cur); }
    for (int i = 0; t->user && t->user[i]; i++) tkmi_free(t->user[i]);
    for (int i = 0; t->control && t->control[i]; i++) tkmi_free(t->control[i]);
    for (int i = 0; i < t->n_inputs; i++) tkmi_free(t->inputs[i]);
    tkmi_free(t->inputs);
    tkmi_free(t->user);
    tkmi_free(t->control);
    tkmi_free(t->unk_piece);
    tkmi_free(t->bos_piece);
    tkmi_free(t->eos_piece);
    tkmi_free(t->pad_piece);
    tkmi_free(t->unk_surface);
    tkmi_free(t->required);
    tkmi_free(t->delim);
    tkmi_free(t->seed_file);
    tkmi_ptrie_free(&t->norm_model.user);
    tkmi_free(t->norm_name);
    tkmi_free(t->norm_tsv);
    tkmi_free(t->charsmap);
    tkmi_free(t->denorm_tsv);
    tkmi_free(t->denorm_map);
    tkmi_spill_free(t);
    if (t->chars_extra) tkmi_chars_free(t->chars_extra);
    tkmi_free(t->chars_extra);
    tkmi_cfset_free(t);
    tkmi_free(t);
}

void tkm_trainer_set_progress(tkm_trainer *t, tkm_progress_fn fn, void *ctx)
{
    t->progress = fn;
    t->progress_ctx = ctx;
}

void tkm_trainer_stats(const tkm_trainer *t, tkm_train_stats *s) { *s = t->stats; }

int tkm_trainer_train(tkm_trainer *t, tkm_model **out)
{
    *out = NULL;
    if (t->kept_ok || (t->o.balance_method == TKM_BALANCE_WEIGHTS && (t->o.balance_latin >= 0 || t->o.balance_japanese >= 0)))
        return tkmi_balance_train(t, out);
    tkmi_counts counts;
    /* BPE or Unigram straight from the text: a spill's merge may load only
     * the pre-tokens the trainer's budget keeps (count_spill.c; not under
     * differential privacy, whose noise comes before Unigram's budget) */
    int m = t->o.model_type;
    t->load_filter = !t->cfset && (m == TKM_MODEL_BPE || (m == TKM_MODEL_UNIGRAM && !t->o.enable_differential_privacy))
                         ? m : 0;
    int rc = tkmi_cf_finish(t, &counts); /* text and count files */
    t->load_filter = 0;
    double t0 = tkmi_now();
    t->stats.seconds_count = t0 - t->t_start; /* reading + counting */
    if (rc == 0)
        rc = t->o.model_type == TKM_MODEL_UNIGRAM ? tkmi_unigram_train(t, &counts, out)
             : t->o.model_type == TKM_MODEL_CHAR  ? tkmi_char_train(t, &counts, out)
             : t->o.model_type == TKM_MODEL_WORD  ? tkmi_word_train(t, &counts, out)
                                                  : tkmi_bpe_train(t, &counts, out);
    tkmi_counts_free(&counts);
    t->stats.seconds_merge = tkmi_now() - t0;
    t->stats.seconds_total = tkmi_now() - t->t_start;
    return rc;
}
