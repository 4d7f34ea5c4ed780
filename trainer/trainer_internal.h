/* trainer_internal.h - state shared by the trainer's counting stage
 * (pretok_count.c) and its BPE merge stage (bpe_train.c). */
#ifndef TKM_TRAINER_INTERNAL_H
#define TKM_TRAINER_INTERNAL_H

#include <pthread.h>
#include <stdio.h>

#include "../lib/model_internal.h"
#include "../lib/rehash.h"

/* Pre-token -> count table (pretok_count.c). Its layout is private to
 * pretok_count.c and the inline accessors below; everyone else reads it
 * through them (tkmi_counts_iter/next, get, set, copy, absorb, sorted).
 *
 *   slots  s[cap]: uint64 (record id + 1) << 24 | top 24 bits of the hash;
 *          0 empty; linear probing, at most 3/4 full (the tag filters
 *          probes: a key is compared only when its 24 bits match)
 *   arena  chunks of TKMI_CHUNK bytes (the first grows up to it), never
 *          moved once full: records count (int64) | key length (varint) |
 *          key, back to back; a record's id is chunk << TKMI_CHUNK_SHIFT
 *          | offset (one longer than a chunk has a block of its own, which
 *          takes the ids of as many chunks)
 *
 * About 8 / load + 9 + key bytes per pre-token (was 32 / load + key). The
 * chunks are large enough (64 MiB) that the C library maps each on its own
 * and gives it back when it is freed: a table merged into another
 * (tkmi_counts_absorb) frees its chunks as it goes. Count 0: an entry
 * emptied (dp.c), skipped by the walks. */
#define TKMI_CHUNK_SHIFT 26
#define TKMI_CHUNK ((size_t)1 << TKMI_CHUNK_SHIFT)
typedef struct {
    char *p;     /* NULL: an id taken by the block of a long record before it */
    size_t used; /* bytes of records */
    size_t size; /* bytes allocated */
} tkmi_chunk;
/* limit (0: none): bytes the table may hold (tkmi_counts_bytes) while it
 * grows, the old and new slots of a rehash counted together; a rehash that
 * would pass it is put off (the slots fill up to 7/8 at most) and full set:
 * the owner spills the table (--max-memory, count_spill.c). */
typedef struct {
    uint64_t *s;
    size_t cap;
    size_t n;    /* entries (with a count) */
    size_t nrec; /* records (slots used) */
    tkmi_chunk *ch;
    size_t nch, ch_cap;
    size_t arena_bytes; /* bytes allocated for chunks */
    size_t limit;
    int full;
} tkmi_counts;
/* One entry: key[0..len), count; id names it while the table lives. */
typedef struct {
    const char *key;
    size_t len;
    int64_t count;
    uint64_t id;
} tkmi_centry;
int tkmi_counts_init(tkmi_counts *c, size_t expect);
void tkmi_counts_free(tkmi_counts *c);
/* Adds n to key k[0..len) (h: tkmi_hash_bytes(k, len), always). */
int tkmi_counts_add(tkmi_counts *c, const char *k, size_t len, uint64_t h, int64_t n);
/* Adds every entry of src to c and frees src, chunk by chunk as it goes
 * (src is freed also on an error). */
int tkmi_counts_absorb(tkmi_counts *c, tkmi_counts *src);
/* Calls fn on every entry of c, in record order, freeing c's memory as it
 * goes (the slots first, then each chunk once walked); stops at fn's first
 * nonzero return and returns it. c is empty afterwards, whatever the result. */
int tkmi_counts_drain(tkmi_counts *c, int (*fn)(void *ctx, const tkmi_centry *e), void *ctx);
/* dst = a copy of src (the same records at the same ids, and walks in the
 * same order). */
int tkmi_counts_copy(const tkmi_counts *src, tkmi_counts *dst);
/* The record at id. */
static inline const char *tkmi_counts_rec(const tkmi_counts *c, uint64_t id)
{
    return c->ch[id >> TKMI_CHUNK_SHIFT].p + (id & (TKMI_CHUNK - 1));
}
/* Decodes the record r (at id) into e; returns the bytes it takes. */
static inline size_t tkmi_counts_dec(const char *r, uint64_t id, tkmi_centry *e)
{
    const uint8_t *p = (const uint8_t *)r + 8;
    size_t len = p[0] & 0x7F, i = 1;
    for (int sh = 7; p[i - 1] & 0x80; sh += 7, i++) len |= (size_t)(p[i] & 0x7F) << sh;
    memcpy(&e->count, r, 8);
    e->key = (const char *)p + i;
    e->len = len;
    e->id = id;
    return 8 + i + len;
}
static inline void tkmi_counts_get(const tkmi_counts *c, uint64_t id, tkmi_centry *e)
{
    tkmi_counts_dec(tkmi_counts_rec(c, id), id, e);
}
static inline void tkmi_counts_prefetch(const tkmi_counts *c, uint64_t id) { __builtin_prefetch(tkmi_counts_rec(c, id)); }

/* a LEB128 varint (count files, spill runs): the bytes written, at most 10 */
static inline size_t tkmi_varint_put(uint8_t *p, uint64_t v)
{
    size_t k = 0;
    for (; v >= 0x80; v >>= 7) p[k++] = (uint8_t)(v | 0x80);
    p[k++] = (uint8_t)v;
    return k;
}
/* Sets the count of entry id (0 empties it: the table is only walked from then on). */
static inline void tkmi_counts_set(tkmi_counts *c, uint64_t id, int64_t count)
{
    memcpy(c->ch[id >> TKMI_CHUNK_SHIFT].p + (id & (TKMI_CHUNK - 1)), &count, 8);
}
/* A walk over the entries with a count, in the table's record order (it
 * depends on the order of insertion: readers must not depend on it), or
 * over part `part` of `parts` (the records split by bytes, for threads). */
typedef struct {
    const tkmi_counts *c;
    size_t ch, off;    /* next record */
    size_t end_ch, end_off; /* first record of the next part */
} tkmi_citer;
void tkmi_counts_iter(const tkmi_counts *c, int part, int parts, tkmi_citer *it);
/* The next entry: 1, or 0 at the end. */
static inline int tkmi_counts_next(tkmi_citer *it, tkmi_centry *e)
{
    const tkmi_counts *c = it->c;
    for (;;) {
        if (it->ch > it->end_ch || (it->ch == it->end_ch && it->off >= it->end_off)) return 0;
        if (it->ch >= c->nch || it->off >= c->ch[it->ch].used) {
            it->ch++;
            it->off = 0;
            continue;
        }
        it->off += tkmi_counts_dec(c->ch[it->ch].p + it->off, (uint64_t)it->ch << TKMI_CHUNK_SHIFT | it->off, e);
        if (e->count) return 1;
    }
}
/* The key order of count files and spill runs: bytewise, a prefix first. */
static inline int tkmi_key_cmp(const char *a, size_t la, const char *b, size_t lb)
{
    int r = memcmp(a, b, la < lb ? la : lb);
    return r ? r : (la > lb) - (la < lb);
}
/* Ids of c's entries (c->n of them) in key order (pretok_count.c). */
int tkmi_counts_sorted(const tkmi_counts *c, uint64_t **out);

typedef struct {
    uint64_t lines, bytes, invalid, nul, tokens;
} tkmi_count_stats;

typedef struct tkmi_block {
    char *data;
    size_t len, cap;
    int64_t inc; /* count added per pre-token (input weight) */
    struct tkmi_block *next;
} tkmi_block;

/* pre-tokens of the current line waiting to be counted: their table slots
 * are prefetched when they are cut and counted at the end of the line (or
 * when the batch is full), so the cache misses overlap */
#define TKMI_PEND 64
typedef struct { const char *s; uint64_t h; uint32_t len; } tkmi_pend;

/* A worker's hot table (pretok_count.c): a small direct-mapped table of
 * frequent pre-tokens, cache resident, that absorbs most occurrences before
 * the big table; an entry's count goes to the big table when it is evicted
 * and by tkmi_pretok_drain. Keys up to TKMI_HOT_KEY bytes. */
#define TKMI_HOT_BITS 15
#define TKMI_HOT_KEY 40
typedef struct {
    uint64_t h;
    int64_t count; /* 0: empty */
    uint32_t len, hits;
    char key[TKMI_HOT_KEY];
} tkmi_hot;

typedef struct {
    struct tkm_trainer *t;
    tkmi_counts counts;
    tkmi_pend pend[TKMI_PEND];
    int n_pend;
    tkmi_hot *hot; /* NULL: none (every occurrence goes to counts) */
    tkmi_count_stats st;
    char *norm;
    size_t norm_cap;
    int64_t inc;
    pthread_t th;
    int err;
} tkmi_worker;

struct tkm_trainer {
    tkm_train_options o;
    /* owned copies of option strings */
    char **user, **control;
    char *unk_piece, *bos_piece, *eos_piece, *pad_piece, *unk_surface, *required;
    char **inputs;
    int n_inputs;
    tkm_model norm_model; /* normalizer settings + user-defined trie */
    char *norm_name, *norm_tsv; /* normalizer_spec name and rule TSV (NULL: none) */
    uint8_t *charsmap;    /* precompiled_charsmap (NULL: identity) */
    size_t charsmap_len;
    char *denorm_tsv;     /* denormalization rules: path and compiled map */
    uint8_t *denorm_map;
    size_t denorm_map_len;
    /* which bytes can start a user-defined symbol: bit 0 one of one byte,
     * bit 1 a longer one, whose first two bytes are set in user_first2 */
    uint8_t user_first[256];
    uint64_t user_first2[1024];
    /* past user_first2: the two-byte starts of a symbol of 2 or 3 bytes
     * (these always walk the trie), and a bit per hash of the first four
     * bytes of each longer symbol (TKMI_PRE4), so that U+2581 before a
     * letter does not walk the trie for nerdstash's U+2581 runs */
    uint64_t user_short2[1024];
    uint64_t user_pre4[128];
    int user_utf8; /* every user-defined symbol is valid UTF-8 (the one-pass pre-tokenizer takes them) */
    uint8_t plain[128]; /* ASCII bytes that only extend a run of their script: not NUL, ' ', a digit
                           nor the first byte of a user-defined symbol (pretok_count.c) */
    int letters_plain; /* the 52 ASCII letters are plain and of one script: runs are found 8 bytes at a time */
    int64_t cur_inc; /* weight of the lines being added (1, or weight x 100) */
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
    size_t block_bytes; /* lines per block to a counting worker: BLOCK_BYTES (4 MB) when 0;
                           tests set it small so that every worker counts and tables merge */
    tkmi_count_stats st;
    /* spilled runs (count_spill.c): sorted (key, count) files in hash
     * partitions, under mu; sp_* the spill's progress (under its lock) */
    struct tkmi_run **runs;
    uint64_t sp_done, sp_total;
    size_t n_runs, runs_cap;
    uint64_t spill_bytes;
    size_t worker_limit; /* bytes of table per worker before it spills; 0 none */
    tkm_train_stats stats;
    double t_start;
    int err;
    char errmsg[512];
    size_t seed_table_max; /* Unigram seed counting: entries a pass may hold (0: from physical memory) */
    struct tkmi_cfset *cfset; /* count files and imported counts (count_file.c); NULL: none */
    /* treat_whitespace_as_suffix, split_by_whitespace=false or a
     * pretokenization delimiter: lines are cut by pretok_ws.c */
    int pretok_ws;
    char *delim; /* the delimiter (owned), NULL: none */
    char *seed_file; /* seed_sentencepieces_file (owned), NULL: none */
    size_t delim_len;
    /* BPE and Unigram after a spill (count_spill.c): load_filter (set by
     * tkm_trainer_train to the model type when the table goes straight to
     * that trainer; 0: not) lets the merge of the runs load only the
     * pre-tokens the trainer's budget keeps; mb_pre is that decision for
     * merge_budget or word_budget, chars_extra the characters of those left
     * out (for the character coverage), unique_all the unique pre-tokens
     * counted */
    int load_filter;
    struct { int set; int64_t drop_below; size_t max_syms; } mb_pre; /* drop_below: the sample's tau */
    struct tkmi_chars *chars_extra;
    int64_t chars_extra_sum;
    uint64_t unique_all;
    /* the counted table kept for retraining (balance.c: weights search, sweeps) */
    tkmi_counts kept;
    int kept_ok;
};

/* ---- shared by the BPE and Unigram trainers (vocab_common.c) ---- */
/* the bit of user_pre4 of four bytes v (loaded little- or big-endian alike) */
#define TKMI_PRE4(v) ((uint32_t)((v) * 0x9E3779B1u) >> 19)
typedef struct { uint32_t cp; int32_t req; int64_t cnt; } tkmi_chcount; /* req: in required_chars */
typedef struct { uint32_t *key; int64_t *cnt; int32_t *sym; size_t cap, n; } tkmi_cpmap; /* code point -> count, sym */
size_t tkmi_cpmap_slot(tkmi_cpmap *m, uint32_t cp);
int tkmi_cpmap_add(tkmi_cpmap *m, uint32_t cp, int64_t n);
void tkmi_cpmap_free(tkmi_cpmap *m);
/* The pre-token budget under --max-memory (vocab_common.c): the trainer's
 * estimated bytes (model: BPE's merge loop, narrow its word symbols; the
 * Unigram words) by pre-token count (exact below TKMI_MB_EXACT, then by bit
 * length), from which the threshold of the rare ones' sample is decided.
 * Filled from the table (merge_budget, word_budget) or while count_spill.c
 * merges the spilled runs, so that only the sample is ever loaded. */
#define TKMI_MB_EXACT 1024
#define TKMI_MB_NB (TKMI_MB_EXACT + 64)
typedef struct { double bytes; uint64_t uniq, occ; } tkmi_mb_bucket;
typedef struct {
    tkmi_mb_bucket by[TKMI_MB_NB];
    int model, narrow;                   /* set by the caller */
    double all;                          /* the estimate for every pre-token */
    size_t longest;                      /* characters of the longest */
} tkmi_mb_hist;
/* narrow word symbols (as bpe_words decides); merge_bytes of a pre-token of
 * n characters (bpe_train.c) */
int tkmi_mb_narrow(const tkm_train_options *o);
double tkmi_mb_bytes(size_t n, int narrow);
/* the budget of model (TKM_MODEL_BPE or TKM_MODEL_UNIGRAM; 0: none); the
 * estimate for a pre-token of len bytes and nchars characters */
uint64_t tkmi_mb_budget(const struct tkm_trainer *t, int model);
double tkmi_mb_cost(const tkmi_mb_hist *h, size_t len, size_t nchars);
void tkmi_mb_add(tkmi_mb_hist *h, const char *key, size_t len, int64_t c);
/* The threshold sample (vocab_common.c): tau (0: everything fits) and the
 * expected unique pre-tokens kept; a pre-token counted c times is kept when
 * tkmi_mb_keep says so, counted max(c, tau) times; sets the stats'
 * estimate and threshold (the trainers count what is left out) */
int64_t tkmi_mb_decide_sample(struct tkm_trainer *t, const tkmi_mb_hist *h, uint64_t budget, uint64_t *kept_uniq);
static inline int tkmi_mb_keep(uint64_t key_hash, int64_t c, int64_t tau)
{
    if (c >= tau) return 1;
    /* a uniform draw in [0, tau) from bits the table's slots do not use */
    uint64_t r = tkmi_hash_u64(key_hash ^ 0x5bd1e9955bd1e995ull);
    return (int64_t)(((unsigned __int128)r * (uint64_t)tau) >> 64) < c;
}
/* the error when the sample keeps no pre-token at all */
int tkmi_mb_none_kept(const struct tkm_trainer *t, int model, uint64_t budget);

/* Characters of pre-tokens times their counts: BMP code points summed in a
 * direct table, the others in a map (vocab_common.c's character step; the
 * pre-tokens a spill leaves out are summed here by count_spill.c and added
 * to the step's result). */
typedef struct tkmi_chars {
    int64_t *bmp;   /* 65536 sums */
    uint64_t *seen; /* a bit per BMP code point met */
    tkmi_cpmap other;
} tkmi_chars;
/* Adds the characters of key s[0..n) (count c each); returns how many, or <0. */
static inline int64_t tkmi_chars_key(tkmi_chars *p, const uint8_t *s, size_t n, int64_t c)
{
    int64_t k = 0;
    for (size_t i = 0; i < n;) {
        uint8_t b = s[i];
        int32_t cp;
        int mb = 1;
        /* valid 1-, 2- and 3-byte characters decoded here (as
         * tkmi_utf8_decode would: no overlong form, no surrogate) */
        if (b < 0x80) {
            cp = b;
        } else if (b >= 0xC2 && b < 0xE0 && i + 2 <= n && (s[i + 1] & 0xC0) == 0x80) {
            cp = (b & 0x1F) << 6 | (s[i + 1] & 0x3F), mb = 2;
        } else if ((b & 0xF0) == 0xE0 && i + 3 <= n && (s[i + 1] & 0xC0) == 0x80 && (s[i + 2] & 0xC0) == 0x80 &&
                   (b != 0xE0 || s[i + 1] >= 0xA0) && (b != 0xED || s[i + 1] < 0xA0)) {
            cp = (b & 0x0F) << 12 | (s[i + 1] & 0x3F) << 6 | (s[i + 2] & 0x3F), mb = 3;
        } else {
            cp = tkmi_utf8_decode(s + i, n - i, &mb);
        }
        if (cp >= 0 && cp < 65536) {
            p->bmp[cp] += c;
            p->seen[cp >> 6] |= (uint64_t)1 << (cp & 63);
        } else {
            int rc = tkmi_cpmap_add(&p->other, (uint32_t)cp, c);
            if (rc < 0) return rc;
        }
        k++;
        i += (size_t)mb;
    }
    return k;
}
/* Zeroed sums (TKM_ENOMEM: p is then safe to free). */
int tkmi_chars_init(tkmi_chars *p);
void tkmi_chars_free(tkmi_chars *p);

typedef struct { const char *s; size_t len; int type; } tkmi_metap;
typedef struct {
    tkmi_metap *slots;   /* [V]: special pieces at their ids */
    int V, n_meta;
    tkmi_strmap meta;    /* their strings */
    tkmi_cpmap cm;       /* all characters with counts */
    tkmi_chcount *chars; /* sorted by count desc; the first nreq are kept */
    size_t nch, nreq;
    int64_t all, acc;
    char byte_names[256][7]; /* "<0x00>".."<0xFF>", pointed to by slots */
} tkmi_vbase;
/* Places the special pieces and computes the character coverage. */
int tkmi_vbase_init(struct tkm_trainer *t, const tkmi_counts *counts, tkmi_vbase *vb);
void tkmi_vbase_free(tkmi_vbase *vb);
/* Serializes a model of `vocab` pieces: specials at their ids, the other ids
 * filled with strs/scores in order. */
int tkmi_vbase_write(struct tkm_trainer *t, tkmi_vbase *vb, int vocab, const char *const *strs, const uint32_t *lens,
                     const float *scores, size_t n, tkm_model **out);
/* sentencepiece's whitespace rule (IsValidSentencePiece) for the other
 * modes, mode = tkmi_ws_mode(): a piece of len characters (all_ws: all
 * U+2581, first_ws / prev_ws: its first / last one is) grown by one more
 * (is_ws: U+2581). -1: invalid, and so is every longer piece; 0: invalid, a
 * longer one may be valid; 1: valid. Mode 0 (the default rule) is inlined
 * where it is used. */
static inline int tkmi_ws_mode(const tkm_train_options *o)
{
    return o->treat_whitespace_as_suffix ? (o->split_by_whitespace ? 1 : 3) : (o->split_by_whitespace ? 0 : 2);
}
static inline int tkmi_ws_grow(int mode, int allow, int is_ws, int len, int all_ws, int first_ws, int prev_ws)
{
    if (allow && all_ws && is_ws) return 1;
    switch (mode) {
    case 1: return prev_ws ? -1 : 1;                      /* suffix: U+2581 only last */
    case 2: return is_ws && len > 0 ? 0 : 1;              /* no split: anywhere but last */
    case 3: return first_ws && len > 0 ? -1 : 1;          /* suffix, no split: anywhere but first */
    default: return is_ws ? (len > 0 ? -1 : 1) : (all_ws && len >= 2 ? -1 : 1);
    }
}
int tkmi_unigram_train(struct tkm_trainer *t, tkmi_counts *counts, tkm_model **out);
/* Unigram seed candidates: a piece, its bytes, its score (count x characters) */
typedef struct { const char *s; uint32_t len; int64_t score; } tkmi_seedp;
/* seed_file.c: the valid pieces of o->seed_sentencepieces_file (of at
 * least two characters, each once), pointing into *buf; free both */
int tkmi_seed_file_read(const tkm_train_options *o, tkmi_seedp **out, size_t *n, char **buf);

/* dp.c: sentencepiece's differential privacy (Unigram): each unique
 * pre-token's count gets normal noise of o->differential_privacy_noise_level
 * (drawn from a hash of o->random_seed and its bytes), rounded at >= 0,
 * and becomes 0 below o->differential_privacy_clipping_threshold; entries
 * counted 0 leave the table (their slots emptied: only walk it after).
 * Nothing happens unless o->enable_differential_privacy. */
int tkmi_dp_apply(const tkm_train_options *o, tkmi_counts *c, uint64_t *dropped_unique, uint64_t *dropped_occurrences);
int64_t tkmi_dp_count(const tkm_train_options *o, const char *s, size_t len, int64_t count);
double tkmi_dp_normal(uint64_t seed, const char *s, size_t len);
/* sentencepiece's char and word models (charword_train.c) */
int tkmi_char_train(struct tkm_trainer *t, tkmi_counts *counts, tkm_model **out);
int tkmi_word_train(struct tkm_trainer *t, tkmi_counts *counts, tkm_model **out);

/* trainer.c: records an input's name (model input fields, count file headers) */
int tkmi_trainer_add_input(struct tkm_trainer *t, const char *path);
/* Pre-tokenizes one normalized line into w's counts. */
int tkmi_pretok_line(struct tkm_trainer *t, tkmi_worker *w, const char *line, size_t len);
/* the same for the other whitespace rules and the delimiter (pretok_ws.c),
 * which emits and flushes through pretok_count.c's batch */
int tkmi_pretok_line_ws(struct tkm_trainer *t, tkmi_worker *w, const char *line, size_t len);
int tkmi_pretok_emit(tkmi_worker *w, const char *s, size_t len);
int tkmi_pretok_flush(tkmi_worker *w);
/* the hot table on (tkmi_pretok_hot) and its counts moved to w->counts and
 * cleared (tkmi_pretok_drain: before the table is read, spilled or merged) */
int tkmi_pretok_hot(tkmi_worker *w);
int tkmi_pretok_drain(tkmi_worker *w);
/* the general path, and whether the one-pass path applies (for tests) */
int tkmi_pretok_line_generic(struct tkm_trainer *t, tkmi_worker *w, const char *line, size_t len);
int tkmi_pretok_fast_ok(const struct tkm_trainer *t);
/* count_spill.c: bytes held by a table; writes w's table as a sorted run
 * and empties it; merges all runs (after the workers' last tables are
 * spilled too) into one table. */
size_t tkmi_counts_bytes(const tkmi_counts *c);
/* the bytes of a table's slots for n entries at its last growth (old and
 * new slots at once) */
size_t tkmi_counts_slot_peak(size_t n);
int tkmi_spill_worker(struct tkm_trainer *t, tkmi_worker *w);
/* The table's ids grouped by the top part_bits of their keys' hashes, in
 * place of its slots (which it then no longer has: only its records are
 * read and it is freed next): s[start[p]..start[p+1]) are partition p's
 * (start has 2^part_bits + 1 entries). Returns how many. */
size_t tkmi_counts_take_ids(tkmi_counts *c, unsigned part_bits, size_t *start);
/* t's progress callback, one call at a time (the reader and the counting
 * threads' spills both report) */
void tkmi_progress(struct tkm_trainer *t, const char *phase, uint64_t done, uint64_t total);
int tkmi_spill_finish(struct tkm_trainer *t, tkmi_counts *out);
void tkmi_spill_free(struct tkm_trainer *t);
/* Merges worker tables into one and returns it (workers' tables freed). */
int tkmi_counts_finish(struct tkm_trainer *t, tkmi_counts *out);
/* count_file.c: the counts of the text (tkmi_counts_finish) plus those of
 * the count files and imported records; frees the count-file state. */
int tkmi_cf_finish(struct tkm_trainer *t, tkmi_counts *out);
void tkmi_cfset_free(struct tkm_trainer *t);
/* Runs BPE on the counts and serializes the model. */
int tkmi_bpe_train(struct tkm_trainer *t, tkmi_counts *counts, tkm_model **out);
/* BPE models for trainers pt[0..n) (private copies, stats cleared) whose
 * options differ at most in budget balance targets, from one shared merge
 * prefix (bpe_sweep.c); counts: a copy of the kept table, freed. */
int tkmi_bpe_sweep(struct tkm_trainer *const *pt, int n, tkmi_counts *counts, tkm_model **out, int *rc, int threads);
/* balance.c: tkm_trainer_train through the kept table (balance_method
 * weights, or after tkm_trainer_finish_counting) */
int tkmi_balance_train(struct tkm_trainer *t, tkm_model **out);

#endif
