/* check_trainer.c - unit suite for trainer/ through the public API: vocab
 * layout, sentencepiece's piece rules, determinism across thread counts,
 * round trips of random Unicode text, and error cases. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tokenmill.h"
#include "../trainer/trainer_internal.h"
#include "../trainer/uwords.h"

static const char *words[] = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "tokenizer",
                              "日本語", "東京", "ひらがな", "カタカナー", "12345", "2024", "naïve", "café", "Ωμέγα",
                              "a1b2", "<tag>", "    indent", "end.", "again,", "x"};
#define NW (int)(sizeof words / sizeof *words)

/* A deterministic corpus: n lines of pseudo-random words. */
static void add_corpus(tkm_trainer *t, int n, unsigned seed)
{
    char line[1024];
    for (int i = 0; i < n; i++) {
        size_t o = 0;
        int k = 3 + (int)(seed % 12);
        for (int j = 0; j < k; j++) {
            seed = seed * 1103515245u + 12345u;
            const char *w = words[(seed >> 16) % NW];
            o += (size_t)snprintf(line + o, sizeof line - o, j ? " %s" : "%s", w);
            /* glue a second word on 30% of the time: more pairs to learn */
            if ((seed >> 8) % 10 < 3) {
                seed = seed * 1103515245u + 12345u;
                o += (size_t)snprintf(line + o, sizeof line - o, "%s", words[(seed >> 16) % NW]);
            }
        }
        ck_assert_int_eq(tkm_trainer_add_line(t, line, o), 0);
    }
}

static tkm_model *train(tkm_train_options *o, int lines)
{
    tkm_trainer *t;
    ck_assert_int_eq(tkm_trainer_new(o, &t), 0);
    add_corpus(t, lines, 42);
    tkm_model *m = NULL;
    int rc = tkm_trainer_train(t, &m);
    ck_assert_msg(rc == 0, "train: %s", tkm_last_error());
    tkm_trainer_free(t);
    return m;
}

START_TEST(test_layout)
{
    tkm_train_options o;
    tkm_train_options_init(&o);
    o.vocab_size = 400;
    o.byte_fallback = 1;
    o.split_digits = 1;
    const char *user[] = {"<tag>", "\xE2\x96\x81\xE2\x96\x81"};
    o.user_defined_symbols = user;
    o.n_user_defined = 2;
    tkm_model *m = train(&o, 3000);
    ck_assert_int_eq(tkm_model_size(m), 400);
    ck_assert_int_eq(tkm_model_piece_type(m, 0), TKM_PIECE_UNKNOWN);
    ck_assert_int_eq(tkm_model_piece_type(m, 1), TKM_PIECE_CONTROL);
    ck_assert_int_eq(tkm_model_piece_type(m, 2), TKM_PIECE_CONTROL);
    ck_assert_int_eq(tkm_model_piece_type(m, 3), TKM_PIECE_USER_DEFINED);
    ck_assert_int_eq(tkm_model_piece_type(m, 4), TKM_PIECE_USER_DEFINED);
    ck_assert_int_eq(tkm_model_piece_type(m, 5), TKM_PIECE_BYTE);
    ck_assert_int_eq(tkm_model_piece_type(m, 260), TKM_PIECE_BYTE);
    size_t l;
    ck_assert(memcmp(tkm_model_piece(m, 5, &l), "<0x00>", 6) == 0);
    float prev = 1.0f;
    for (int id = 261; id < 400; id++) {
        ck_assert_int_eq(tkm_model_piece_type(m, id), TKM_PIECE_NORMAL);
        ck_assert_msg(tkm_model_score(m, id) < prev, "scores must decrease (id %d)", id);
        prev = tkm_model_score(m, id);
        const char *p = tkm_model_piece(m, id, &l);
        /* piece rules: digits alone, ▁ only first, no Latin+Han mix, <= 16 chars */
        int has_digit = 0, nch = 0, latin = 0, han = 0;
        for (size_t i = 0; i < l; i++) {
            unsigned char c = (unsigned char)p[i];
            if ((c & 0xC0) != 0x80) nch++;
            if (c >= '0' && c <= '9') has_digit = 1;
            if ((c | 32) >= 'a' && (c | 32) <= 'z') latin = 1;
            if (c >= 0xE3 && c <= 0xE9) han = 1;
            if (i > 0 && i + 2 < l && memcmp(p + i, "\xE2\x96\x81", 3) == 0)
                ck_abort_msg("piece %d '%.*s' has an inner whitespace", id, (int)l, p);
        }
        ck_assert_msg(!(has_digit && nch > 1), "piece %d '%.*s' joins a digit", id, (int)l, p);
        ck_assert_msg(!(latin && han), "piece %d '%.*s' mixes scripts", id, (int)l, p);
        ck_assert_int_le(nch, 16);
    }
    /* a user-defined symbol is one id */
    tkm_encoder *e;
    ck_assert_int_eq(tkm_encoder_new(m, &e), 0);
    const int32_t *ids;
    size_t n;
    ck_assert_int_eq(tkm_encode(e, "<tag>", 5, &ids, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(ids[0], 3);
    tkm_encoder_free(e);
    tkm_model_free(m);
}
END_TEST

/* Like train(), with counting blocks of block_bytes (the corpus is 1.4 MB,
 * a default block 4 MB: one worker would get everything). Workers take
 * blocks from a shared queue, so on a loaded machine a thread that starts
 * late may find none: the run is repeated (the same model each time) until
 * every one of the o->threads workers counted lines, so that the 2- and
 * 4-thread runs really merge tables; it fails after 8 tries. */
static tkm_model *train_small_blocks_once(tkm_train_options *o, int lines, size_t block_bytes, int *all_worked);

static tkm_model *train_small_blocks(tkm_train_options *o, int lines, size_t block_bytes)
{
    tkm_model *first = NULL;
    for (int attempt = 0; attempt < 8; attempt++) {
        int all = 0;
        tkm_model *m = train_small_blocks_once(o, lines, block_bytes, &all);
        if (first) {
            size_t la, lb;
            const uint8_t *pa = tkm_model_bytes(first, &la), *pb = tkm_model_bytes(m, &lb);
            ck_assert_msg(la == lb && memcmp(pa, pb, la) == 0, "try %d gave another model", attempt + 1);
            tkm_model_free(m);
        } else first = m;
        if (all) return first;
    }
    ck_abort_msg("%d threads: in 8 tries some worker never counted a block", o->threads);
    return NULL;
}

static tkm_model *train_small_blocks_once(tkm_train_options *o, int lines, size_t block_bytes, int *all_worked)
{
    tkm_trainer *t;
    ck_assert_int_eq(tkm_trainer_new(o, &t), 0);
    t->block_bytes = block_bytes;
    add_corpus(t, lines, 42);
    tkm_model *m = NULL;
    int rc = tkm_trainer_train(t, &m);
    ck_assert_msg(rc == 0, "train: %s", tkm_last_error());
    ck_assert_int_eq(t->n_workers, o->threads);
    char dist[256];
    size_t k = 0;
    for (int i = 0; i < t->n_workers; i++)
        k += (size_t)snprintf(dist + k, sizeof dist - k, " %llu", (unsigned long long)t->workers[i].st.lines);
    fprintf(stderr, "%d threads, %zu-byte blocks: lines per worker%s\n", o->threads, block_bytes, dist);
    *all_worked = 1;
    for (int i = 0; i < t->n_workers; i++)
        if (t->workers[i].st.lines == 0) *all_worked = 0;
    tkm_trainer_free(t);
    return m;
}

START_TEST(test_determinism_threads)
{
    tkm_train_options o;
    tkm_train_options_init(&o);
    o.vocab_size = 600;
    o.byte_fallback = 1;
    o.threads = 1;
    tkm_model *a = train(&o, 20000);
    o.threads = 2;
    tkm_model *b = train_small_blocks(&o, 20000, 4096);
    o.threads = 4;
    tkm_model *c = train_small_blocks(&o, 20000, 4096);
    size_t la, lb, lc;
    const uint8_t *pa = tkm_model_bytes(a, &la), *pb = tkm_model_bytes(b, &lb), *pc = tkm_model_bytes(c, &lc);
    ck_assert_uint_eq(la, lb);
    ck_assert(memcmp(pa, pb, la) == 0);
    ck_assert_uint_eq(la, lc);
    ck_assert(memcmp(pa, pc, la) == 0);
    tkm_model_free(a);
    tkm_model_free(b);
    tkm_model_free(c);
}
END_TEST

/* Random text without U+2581: sentencepiece reads that character as a space,
 * so it is the one character that cannot survive a round trip. */
static size_t random_utf8(unsigned *seed, char *out, size_t cap)
{
    static const uint32_t ranges[][2] = {{0x20, 0x7E}, {0xA0, 0x2FF}, {0x3040, 0x30FF}, {0x4E00, 0x9FFF},
                                         {0x1F600, 0x1F64F}, {0x0, 0x1F}, {0x2582, 0x2590}, {0xE000, 0xE0FF}};
    size_t o = 0;
    *seed = *seed * 1103515245u + 12345u;
    int n = (int)((*seed >> 16) % 40);
    for (int i = 0; i < n && o + 4 < cap; i++) {
        *seed = *seed * 1103515245u + 12345u;
        const uint32_t *r = ranges[(*seed >> 16) % 8];
        *seed = *seed * 1103515245u + 12345u;
        uint32_t cp = r[0] + (*seed >> 8) % (r[1] - r[0] + 1);
        if (cp == '\n') cp = ' ';
        if (cp < 0x80) out[o++] = (char)cp;
        else if (cp < 0x800) { out[o++] = (char)(0xC0 | (cp >> 6)); out[o++] = (char)(0x80 | (cp & 63)); }
        else if (cp < 0x10000) {
            out[o++] = (char)(0xE0 | (cp >> 12));
            out[o++] = (char)(0x80 | ((cp >> 6) & 63));
            out[o++] = (char)(0x80 | (cp & 63));
        } else {
            out[o++] = (char)(0xF0 | (cp >> 18));
            out[o++] = (char)(0x80 | ((cp >> 12) & 63));
            out[o++] = (char)(0x80 | ((cp >> 6) & 63));
            out[o++] = (char)(0x80 | (cp & 63));
        }
    }
    return o;
}

START_TEST(test_roundtrip_random)
{
    tkm_train_options o;
    tkm_train_options_init(&o);
    o.vocab_size = 500;
    o.byte_fallback = 1;
    o.allow_whitespace_only_pieces = 1;
    tkm_model *m = train(&o, 5000);
    tkm_encoder *e;
    ck_assert_int_eq(tkm_encoder_new(m, &e), 0);
    unsigned seed = 20261122u, start = seed;
    char buf[256];
    for (int k = 0; k < 20000; k++) {
        size_t n = random_utf8(&seed, buf, sizeof buf);
        const int32_t *ids;
        size_t ni;
        ck_assert_int_eq(tkm_encode(e, buf, n, &ids, &ni), 0);
        char *text;
        size_t tl;
        ck_assert_int_eq(tkm_decode(m, ids, ni, &text, &tl), 0);
        if (!(tl == n && memcmp(text, buf, n) == 0)) {
            fprintf(stderr, "input  (%zu):", n);
            for (size_t i = 0; i < n; i++) fprintf(stderr, " %02x", (unsigned char)buf[i]);
            fprintf(stderr, "\noutput (%zu):", tl);
            for (size_t i = 0; i < tl; i++) fprintf(stderr, " %02x", (unsigned char)text[i]);
            fprintf(stderr, "\n");
        }
        ck_assert_msg(tl == n && memcmp(text, buf, n) == 0, "round trip %d failed (seed %u)", k, start);
        tkm_free(text);
    }
    tkm_encoder_free(e);
    tkm_model_free(m);
}
END_TEST

START_TEST(test_errors)
{
    tkm_train_options o;
    tkm_train_options_init(&o);
    tkm_trainer *t;
    tkm_model *m = NULL;
    ck_assert_int_eq(tkm_trainer_new(&o, &t), 0);
    ck_assert_int_eq(tkm_trainer_train(t, &m), TKM_EEMPTY);
    ck_assert_ptr_null(m);
    tkm_trainer_free(t);

    o.vocab_size = 20; /* fewer than 3 specials + characters */
    ck_assert_int_eq(tkm_trainer_new(&o, &t), 0);
    add_corpus(t, 100, 1);
    ck_assert_int_eq(tkm_trainer_train(t, &m), TKM_EVOCAB);
    ck_assert_ptr_nonnull(strstr(tkm_last_error(), "smaller than the required pieces"));
    tkm_trainer_free(t);

    o.vocab_size = 100000; /* more pieces than the corpus can give */
    ck_assert_int_eq(tkm_trainer_new(&o, &t), 0);
    add_corpus(t, 100, 1);
    ck_assert_int_eq(tkm_trainer_train(t, &m), TKM_EVOCAB);
    tkm_trainer_free(t);

    o.hard_vocab_limit = 0; /* ... unless a smaller model is acceptable */
    ck_assert_int_eq(tkm_trainer_new(&o, &t), 0);
    add_corpus(t, 100, 1);
    ck_assert_int_eq(tkm_trainer_train(t, &m), 0);
    ck_assert_int_lt(tkm_model_size(m), 100000);
    ck_assert_int_gt(tkm_model_size(m), 50);
    tkm_model_free(m);
    tkm_trainer_free(t);

    tkm_train_options_init(&o);
    o.model_type = (tkm_model_type)99;
    ck_assert_int_eq(tkm_trainer_new(&o, &t), TKM_ENOTSUP);
    o.model_type = TKM_MODEL_BPE;
    o.use_all_vocab = 1; /* char and word models only */
    ck_assert_int_eq(tkm_trainer_new(&o, &t), TKM_ENOTSUP);
    tkm_train_options_init(&o);
    o.normalization_rule_name = "nfkd"; /* not one of sentencepiece's trainer rules */
    ck_assert_int_eq(tkm_trainer_new(&o, &t), TKM_EINVAL);
    tkm_train_options_init(&o);
    o.input_tsv = 1;
    ck_assert_int_eq(tkm_trainer_new(&o, &t), 0);
    ck_assert_int_eq(tkm_trainer_add_line(t, "a b", 3), TKM_EFORMAT);     /* no tab */
    ck_assert_int_eq(tkm_trainer_add_line(t, "a\t0", 3), TKM_EFORMAT);   /* count < 1 */
    ck_assert_int_eq(tkm_trainer_add_line(t, "a\t1\t2", 5), TKM_EFORMAT); /* two tabs */
    tkm_trainer_free(t);
    tkm_train_options_init(&o);
    o.character_coverage = 1.5f;
    ck_assert_int_eq(tkm_trainer_new(&o, &t), TKM_EINVAL);
    tkm_train_options_init(&o);
    o.bos_id = 0; /* collides with unk */
    ck_assert_int_eq(tkm_trainer_new(&o, &t), 0);
    add_corpus(t, 100, 1);
    ck_assert_int_eq(tkm_trainer_train(t, &m), TKM_EINVAL);
    tkm_trainer_free(t);
}
END_TEST

START_TEST(test_unigram)
{
    tkm_train_options o;
    tkm_train_options_init(&o);
    o.model_type = TKM_MODEL_UNIGRAM;
    o.vocab_size = 450;
    o.byte_fallback = 1;
    o.threads = 1;
    tkm_model *a = train(&o, 4000);
    o.threads = 2;
    tkm_model *b = train(&o, 4000);
    ck_assert_int_eq(tkm_model_kind(a), TKM_MODEL_UNIGRAM);
    ck_assert_int_eq(tkm_model_size(a), 450);
    size_t la, lb;
    const uint8_t *pa = tkm_model_bytes(a, &la), *pb = tkm_model_bytes(b, &lb);
    ck_assert_msg(la == lb && memcmp(pa, pb, la) == 0, "Unigram model differs between 1 and 2 threads");
    /* specials and bytes first, then pieces by decreasing score */
    ck_assert_int_eq(tkm_model_piece_type(a, 0), TKM_PIECE_UNKNOWN);
    ck_assert_int_eq(tkm_model_piece_type(a, 3), TKM_PIECE_BYTE);
    for (int id = 260; id < 450; id++) {
        ck_assert_int_eq(tkm_model_piece_type(a, id), TKM_PIECE_NORMAL);
        ck_assert(tkm_model_score(a, id) <= tkm_model_score(a, id - 1) || id == 259);
        ck_assert(tkm_model_score(a, id) < 0);
    }
    /* a frequent word of the corpus is one piece */
    ck_assert_int_ge(tkm_model_piece_id(a, "\xE2\x96\x81the", 6), 0);
    tkm_encoder *e;
    ck_assert_int_eq(tkm_encoder_new(a, &e), 0);
    unsigned seed = 77;
    char buf[256];
    for (int k = 0; k < 3000; k++) {
        size_t n = random_utf8(&seed, buf, sizeof buf);
        const int32_t *ids;
        size_t ni;
        ck_assert_int_eq(tkm_encode(e, buf, n, &ids, &ni), 0);
        char *text;
        size_t tl;
        ck_assert_int_eq(tkm_decode(a, ids, ni, &text, &tl), 0);
        ck_assert_msg(tl == n && memcmp(text, buf, n) == 0, "Unigram round trip %d failed (seed 77)", k);
        tkm_free(text);
    }
    tkm_encoder_free(e);
    tkm_model_free(a);
    tkm_model_free(b);
}
END_TEST

/* Trains o on add_corpus(6000 lines, seed 7); the stats go to st when it
 * is not NULL. */
static tkm_model *train_corpus7(const tkm_train_options *o, tkm_train_stats *st)
{
    tkm_trainer *t;
    ck_assert_int_eq(tkm_trainer_new(o, &t), 0);
    add_corpus(t, 6000, 7);
    tkm_model *m = NULL;
    int rc = tkm_trainer_train(t, &m);
    ck_assert_msg(rc == 0, "train: %s", tkm_last_error());
    if (st) tkm_trainer_stats(t, st);
    tkm_trainer_free(t);
    return m;
}

/* Seed counting is exact and bounded by passes over hash groups: forcing
 * many small passes (TKM_SEED_TABLE_MAX) must give the same model bytes as
 * one pass, with 1 and 2 threads; and counting must not favour the words
 * counted last (Japanese runs sort after Latin words: the lossy counter that
 * this replaced lost Latin seeds). */
static tkm_model *train_uni(int threads, const char *table_max, tkm_train_stats *st)
{
    tkm_train_options o;
    tkm_train_options_init(&o);
    o.model_type = TKM_MODEL_UNIGRAM;
    o.vocab_size = 450;
    o.byte_fallback = 1;
    o.threads = threads;
    if (table_max) setenv("TKM_SEED_TABLE_MAX", table_max, 1);
    else unsetenv("TKM_SEED_TABLE_MAX");
    tkm_model *m = train_corpus7(&o, st);
    unsetenv("TKM_SEED_TABLE_MAX");
    return m;
}

/* The lattice cache is bounded (TKM_LATTICE_CACHE_MAX nodes): words left
 * out are found again with the trie at every pass, node for node the
 * filtered lattice, so a tiny cache gives the same model bytes, with 1 and
 * 2 threads (which split the cache differently). */
START_TEST(test_unigram_lattice_budget)
{
    tkm_train_stats s;
    tkm_model *a = train_uni(2, NULL, &s);
    setenv("TKM_LATTICE_CACHE_MAX", "3000", 1);
    tkm_model *b = train_uni(1, NULL, &s);
    tkm_model *c = train_uni(2, NULL, &s);
    unsetenv("TKM_LATTICE_CACHE_MAX");
    size_t la, lb, lc;
    const uint8_t *pa = tkm_model_bytes(a, &la), *pb = tkm_model_bytes(b, &lb), *pc = tkm_model_bytes(c, &lc);
    ck_assert_msg(la == lb && memcmp(pa, pb, la) == 0, "Unigram model differs with a small lattice cache (1 thread)");
    ck_assert_msg(la == lc && memcmp(pa, pc, la) == 0, "Unigram model differs with a small lattice cache (2 threads)");
    tkm_model_free(a);
    tkm_model_free(b);
    tkm_model_free(c);
}
END_TEST

START_TEST(test_unigram_seed_passes)
{
    tkm_train_stats s1, s2, s3;
    tkm_model *a = train_uni(1, NULL, &s1);
    tkm_model *b = train_uni(1, "1000", &s2);
    tkm_model *c = train_uni(2, "1000", &s3);
    ck_assert_int_eq(s1.seed_passes, 1);
    ck_assert_msg(s2.seed_passes > 2, "forced small seed tables: %d passes", s2.seed_passes);
    ck_assert_int_eq(s2.seed_passes, s3.seed_passes);
    ck_assert(s1.seeds > 100 && s1.seeds == s2.seeds && s2.seeds == s3.seeds);
    ck_assert_msg(s1.seed_candidates > 1000, "candidates %llu", (unsigned long long)s1.seed_candidates);
    size_t la, lb, lc;
    const uint8_t *pa = tkm_model_bytes(a, &la), *pb = tkm_model_bytes(b, &lb), *pc = tkm_model_bytes(c, &lc);
    ck_assert_msg(la == lb && memcmp(pa, pb, la) == 0, "Unigram model differs between 1 and %d seed passes",
                  s2.seed_passes);
    ck_assert_msg(la == lc && memcmp(pa, pc, la) == 0, "Unigram model differs between 1 and 2 threads");
    /* the frequent words of both scripts are single pieces */
    static const char *const want[] = {"\xE2\x96\x81the", "\xE2\x96\x81quick", "\xE2\x96\x81tokenizer",
                                       "\xE2\x96\x81\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"};
    for (size_t k = 0; k < sizeof want / sizeof *want; k++)
        ck_assert_msg(tkm_model_piece_id(a, want[k], strlen(want[k])) >= 0, "%s is not a piece", want[k]);
    /* the passes after the first read the other groups' occurrences back
     * from runs on disk: tiny buffers (many chunks, 3 threads) and no runs
     * at all (every pass reads the words) give the same model */
    tkm_train_stats s4, s5;
    setenv("TKM_SEED_RUN_BUFFER", "1", 1);
    tkm_model *d = train_uni(3, "1000", &s4);
    setenv("TKM_SEED_RUN_BUFFER", "0", 1);
    tkm_model *e = train_uni(2, "1000", &s5);
    unsetenv("TKM_SEED_RUN_BUFFER");
    ck_assert_int_eq(s4.seed_passes, s2.seed_passes);
    ck_assert_int_eq(s5.seed_passes, s2.seed_passes);
    size_t ld, le;
    const uint8_t *pd = tkm_model_bytes(d, &ld), *pe = tkm_model_bytes(e, &le);
    ck_assert_msg(la == ld && memcmp(pa, pd, la) == 0, "Unigram model differs with tiny seed run buffers");
    ck_assert_msg(la == le && memcmp(pa, pe, la) == 0, "Unigram model differs without seed runs");
    tkm_model_free(a);
    tkm_model_free(b);
    tkm_model_free(c);
    tkm_model_free(d);
    tkm_model_free(e);
}
END_TEST

/* The score floor (make_seeds): with many more candidate substrings than
 * seeds, a sampled guess at the seed_size-th best score lets counting skip
 * the substrings the sketch bounds below it; it is checked afterwards and
 * counting starts again without it when too few candidates reach it. The
 * seeds, and the model bytes, must be those of counting without a floor:
 * with the floor found from the sample (1 and 3 threads), a floor set by
 * hand (TKM_SEED_FLOOR) with many small passes, tiny run buffers or none,
 * and a floor too high (the fallback). */
static tkm_model *train_floor(int threads, const char *floor, const char *table_max, const char *run_buf)
{
    tkm_train_options o;
    tkm_train_options_init(&o);
    o.model_type = TKM_MODEL_UNIGRAM;
    o.vocab_size = 100;
    o.seed_size = 150; /* the corpus has about 30 times as many candidates */
    o.threads = threads;
    if (floor) setenv("TKM_SEED_FLOOR", floor, 1);
    if (table_max) setenv("TKM_SEED_TABLE_MAX", table_max, 1);
    if (run_buf) setenv("TKM_SEED_RUN_BUFFER", run_buf, 1);
    tkm_model *m = train_corpus7(&o, NULL);
    unsetenv("TKM_SEED_FLOOR");
    unsetenv("TKM_SEED_TABLE_MAX");
    unsetenv("TKM_SEED_RUN_BUFFER");
    return m;
}

START_TEST(test_unigram_seed_floor)
{
    tkm_model *ref = train_floor(2, "0", NULL, NULL);
    struct { int threads; const char *floor, *table_max, *run_buf, *what; } c[] = {
        {1, NULL, NULL, NULL, "the sampled floor, 1 thread"},
        {3, NULL, NULL, NULL, "the sampled floor, 3 threads"},
        {3, "6", "400", "1", "floor 6, small passes, tiny run buffers"},
        {2, "6", "400", "0", "floor 6, small passes, no runs"},
        {2, "1000000000", NULL, NULL, "a floor too high (counted again without it)"},
    };
    size_t la;
    const uint8_t *pa = tkm_model_bytes(ref, &la);
    for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
        tkm_model *m = train_floor(c[k].threads, c[k].floor, c[k].table_max, c[k].run_buf);
        size_t lb;
        const uint8_t *pb = tkm_model_bytes(m, &lb);
        ck_assert_msg(la == lb && memcmp(pa, pb, la) == 0, "Unigram model differs with %s", c[k].what);
        tkm_model_free(m);
    }
    tkm_model_free(ref);
}
END_TEST

/* The seed runs go to $TMPDIR: when it cannot be written, training fails
 * with an error that names it, and no model comes back. */
START_TEST(test_unigram_seed_runs_tmpdir)
{
    const char *old = getenv("TMPDIR");
    char *keep = old ? strdup(old) : NULL;
    setenv("TMPDIR", "/nonexistent/tokenmill-tmp", 1);
    setenv("TKM_SEED_TABLE_MAX", "1000", 1);
    tkm_train_options o;
    tkm_train_options_init(&o);
    o.model_type = TKM_MODEL_UNIGRAM;
    o.vocab_size = 450;
    tkm_trainer *t;
    ck_assert_int_eq(tkm_trainer_new(&o, &t), 0);
    add_corpus(t, 2000, 7);
    tkm_model *m = NULL;
    int rc = tkm_trainer_train(t, &m);
    unsetenv("TKM_SEED_TABLE_MAX");
    if (keep) setenv("TMPDIR", keep, 1);
    else unsetenv("TMPDIR");
    free(keep);
    ck_assert_int_eq(rc, TKM_EIO);
    ck_assert(m == NULL);
    ck_assert_msg(strstr(tkm_last_error(), "/nonexistent/tokenmill-tmp") != NULL, "error: %s", tkm_last_error());
    tkm_trainer_free(t);
}
END_TEST


/* The one-pass pre-tokenizer must emit exactly what normalize + the general
 * cutter emit: the same pre-tokens with the same counts, and the same
 * statistics, on random bytes (ASCII, spaces, digits, U+2581, kana, Han,
 * emoji, Latin-1 letters, invalid bytes, NUL) under each cutting option. */
typedef struct { const char *s; uint32_t n; int64_t c; } kv_t;
static int kv_cmp(const void *x, const void *y)
{
    const kv_t *a = x, *b = y;
    size_t n = a->n < b->n ? a->n : b->n;
    int c = memcmp(a->s, b->s, n);
    return c ? c : (a->n > b->n) - (a->n < b->n);
}
static kv_t *kv_list(const tkmi_counts *c)
{
    kv_t *v = malloc((c->n + 1) * sizeof *v);
    size_t k = 0;
    tkmi_citer it;
    tkmi_centry e;
    tkmi_counts_iter(c, 0, 1, &it);
    while (tkmi_counts_next(&it, &e)) v[k++] = (kv_t){e.key, (uint32_t)e.len, e.count};
    qsort(v, k, sizeof *v, kv_cmp);
    return v;
}

/* Normalizes s with a charsmap built for rule (lib/charsmap_build.c) and the
 * given whitespace options, as the trainer and encoder do. */
static char *norm_with(const uint8_t *blob, size_t blen, const char *s, int dummy, int squeeze)
{
    tkm_model m;
    memset(&m, 0, sizeof m);
    uint32_t ts;
    memcpy(&ts, blob, 4);
    m.charsmap = blob;
    m.charsmap_len = blen;
    uint32_t *units = malloc(ts ? ts : 4); /* aligned, as the model loader copies it */
    memcpy(units, blob + 4, ts);
    m.darts = units;
    m.darts_units = ts / 4;
    m.norm_strings = (const char *)blob + 4 + ts;
    m.norm_strings_len = blen - 4 - ts;
    m.escape_ws = 1;
    m.add_dummy_prefix = dummy;
    m.remove_extra_ws = squeeze;
    char *out = NULL;
    size_t ol = 0, oc = 0;
    ck_assert_int_eq(tkmi_normalize(&m, s, strlen(s), &out, &ol, &oc), 0);
    char *r = malloc(ol + 1);
    memcpy(r, out, ol);
    r[ol] = 0;
    tkmi_free(out);
    free(units);
    return r;
}

START_TEST(test_charsmap)
{
    static const struct { const char *rule, *in, *want; } c[] = {
        {"nmt_nfkc", "  Hello   World \xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\xA3", "\xE2\x96\x81Hello\xE2\x96\x81World\xE2\x96\x81" "ABC"},
        {"nmt_nfkc", "e\xCC\x81", "\xE2\x96\x81\xC3\xA9"},                          /* e + U+0301 -> é */
        {"nmt_nfkc", "\xE3\x84\xB1\xE3\x85\x8F", "\xE2\x96\x81\xEA\xB0\x80"},          /* compatibility jamo -> 가 */
        {"nmt_nfkc", "\xEF\xBD\xB6\xEF\xBE\x9E", "\xE2\x96\x81\xE3\x82\xAC"},          /* ｶﾞ -> ガ */
        {"nmt_nfkc", "a\tb\x01" "c", "\xE2\x96\x81" "a\xE2\x96\x81" "bc"},          /* tab -> space, U+0001 removed */
        {"nmt_nfkc", "\xEF\xBD\x9E", "\xE2\x96\x81\xEF\xBD\x9E"},                     /* U+FF5E kept */
        {"nfkc", "\xEF\xBD\x9E", "\xE2\x96\x81~"},                                    /* ... but not by nfkc */
        {"nfkc", "a\tb", "\xE2\x96\x81" "a\tb"},
        {"nfkc_cf", "ABC \xEF\xAC\x81", "\xE2\x96\x81" "abc\xE2\x96\x81" "fi"},      /* case folded, ﬁ -> fi */
        {"nmt_nfkc_cf", "Stra\xC3\x9F" "e\t\xE2\x91\xA0", "\xE2\x96\x81stra\xC3\x9F" "e\xE2\x96\x81" "1"}, /* simple folding: ß stays */
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        uint8_t *blob;
        size_t blen;
        ck_assert_int_eq(tkmi_charsmap_build(c[i].rule, NULL, &blob, &blen), 0);
        char *got = norm_with(blob, blen, c[i].in, 1, 1);
        ck_assert_msg(!strcmp(got, c[i].want), "%s(%s) = %s, want %s", c[i].rule, c[i].in, got, c[i].want);
        free(got);
        if (i == 0) { /* the same map byte for byte when built again */
            uint8_t *b2;
            size_t l2;
            ck_assert_int_eq(tkmi_charsmap_build(c[i].rule, NULL, &b2, &l2), 0);
            ck_assert(l2 == blen && !memcmp(blob, b2, blen));
            tkmi_free(b2);
        }
        tkmi_free(blob);
    }
    uint8_t *blob = NULL;
    size_t blen = 0;
    ck_assert_int_eq(tkmi_charsmap_build("identity", NULL, &blob, &blen), 0);
    ck_assert_ptr_null(blob);
    ck_assert_int_eq(tkmi_charsmap_build("nfkd", NULL, &blob, &blen), TKM_EINVAL);
    /* rule TSVs: sentencepiece's syntax; errors name the file and line */
    char dir[] = "/tmp/tkm-charsmap.XXXXXX", path[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/r.tsv", dir);
    FILE *f = fopen(path, "w");
    fputs("41\t61 62\nU+0063 U+0064\t78\t# cd => x\n200D\t\n", f);
    fclose(f);
    ck_assert_int_eq(tkmi_charsmap_build(NULL, path, &blob, &blen), 0);
    char *got = norm_with(blob, blen, "Acd\xE2\x80\x8D" "c", 0, 0);
    ck_assert_str_eq(got, "abxc");
    free(got);
    tkmi_free(blob);
    f = fopen(path, "w");
    fputs("41\t61\n\t62\n", f);
    fclose(f);
    ck_assert_int_eq(tkmi_charsmap_build(NULL, path, &blob, &blen), TKM_EFORMAT);
    ck_assert_msg(strstr(tkm_last_error(), "r.tsv:2") != NULL, "%s", tkm_last_error());
    f = fopen(path, "w");
    fputs("D800\t61\n", f);
    fclose(f);
    ck_assert_int_eq(tkmi_charsmap_build(NULL, path, &blob, &blen), TKM_EFORMAT);
    unlink(path);
    rmdir(dir);
}
END_TEST

/* The count table (trainer/pretok_count.c) against a plain array: keys of
 * 8..300 bytes (one- and two-byte lengths) through several growths, two
 * tables merged (absorb), a copy walked in the same order, walks in parts,
 * key order, a record longer than a chunk among small ones. */
static size_t ct_key(char *buf, unsigned i)
{
    size_t len = 8 + (i * 2654435761u >> 7) % 293;
    snprintf(buf, 9, "%08x", i);
    for (size_t j = 8; j < len; j++) buf[j] = (char)('a' + (i + j) % 26);
    return len;
}
static void ct_add(tkmi_counts *c, unsigned i, int64_t n)
{
    char buf[320];
    size_t len = ct_key(buf, i);
    ck_assert_int_eq(tkmi_counts_add(c, buf, len, tkmi_hash_bytes(buf, len), n), 0);
}
START_TEST(test_count_table)
{
    enum { N = 60000 };
    int64_t *want = calloc(N, sizeof *want), *got = calloc(N, sizeof *got);
    tkmi_counts a, b, cp;
    ck_assert_int_eq(tkmi_counts_init(&a, 16), 0);
    ck_assert_int_eq(tkmi_counts_init(&b, 16), 0);
    for (unsigned r = 0; r < 3; r++)
        for (unsigned i = 0; i < N; i++) {
            if (i % 3 != 2) { ct_add(&a, i, i + 1); want[i] += i + 1; }
            if (i % 3 != 0 && r < 2) { ct_add(&b, i, 5); want[i] += 5; }
        }
    ck_assert_uint_eq(b.n, N - N / 3);
    ck_assert_int_eq(tkmi_counts_absorb(&a, &b), 0);
    ck_assert_ptr_null(b.s);
    ck_assert_uint_eq(a.n, N);
    tkmi_citer it;
    tkmi_centry e;
    tkmi_counts_iter(&a, 0, 1, &it);
    size_t seen = 0;
    while (tkmi_counts_next(&it, &e)) {
        char buf[320];
        unsigned i = (unsigned)strtoul((char[9]){e.key[0], e.key[1], e.key[2], e.key[3], e.key[4], e.key[5], e.key[6], e.key[7], 0}, NULL, 16);
        ck_assert_uint_lt(i, N);
        ck_assert_uint_eq(e.len, ct_key(buf, i));
        ck_assert_mem_eq(e.key, buf, e.len);
        ck_assert_int_eq(got[i], 0);
        got[i] = e.count;
        seen++;
    }
    ck_assert_uint_eq(seen, N);
    for (unsigned i = 0; i < N; i++) ck_assert_int_eq(got[i], want[i]);
    /* parts cover every entry once */
    for (int parts = 2; parts <= 5; parts++) {
        size_t n = 0;
        int64_t sum = 0, all = 0;
        for (int p = 0; p < parts; p++) {
            tkmi_counts_iter(&a, p, parts, &it);
            while (tkmi_counts_next(&it, &e)) n++, sum += e.count;
        }
        for (unsigned i = 0; i < N; i++) all += want[i];
        ck_assert_uint_eq(n, N);
        ck_assert_int_eq(sum, all);
    }
    /* a record longer than a chunk, then small ones after it */
    size_t big = TKMI_CHUNK + 100;
    char *k = malloc(big);
    memset(k, 'x', big);
    ck_assert_int_eq(tkmi_counts_add(&a, k, big, tkmi_hash_bytes(k, big), 7), 0);
    ck_assert_int_eq(tkmi_counts_add(&a, k, big, tkmi_hash_bytes(k, big), 7), 0);
    for (unsigned i = N; i < N + 1000; i++) ct_add(&a, i, 1);
    ck_assert_int_eq(tkmi_counts_add(&a, k, big, tkmi_hash_bytes(k, big), 1), 0);
    ck_assert_uint_eq(a.n, N + 1001);
    ck_assert_int_eq(tkmi_counts_copy(&a, &cp), 0);
    tkmi_citer ic;
    tkmi_centry f;
    tkmi_counts_iter(&a, 0, 1, &it);
    tkmi_counts_iter(&cp, 0, 1, &ic);
    int found = 0;
    while (tkmi_counts_next(&it, &e)) {
        ck_assert(tkmi_counts_next(&ic, &f));
        ck_assert_uint_eq(e.len, f.len);
        ck_assert_int_eq(e.count, f.count);
        ck_assert_mem_eq(e.key, f.key, e.len);
        if (e.len == big) { found = 1; ck_assert_int_eq(e.count, 15); }
    }
    ck_assert(!tkmi_counts_next(&ic, &f));
    ck_assert(found);
    /* key order; a count set to 0 leaves the walks */
    uint64_t *idx;
    ck_assert_int_eq(tkmi_counts_sorted(&cp, &idx), 0);
    for (size_t i = 1; i < cp.n; i++) {
        tkmi_counts_get(&cp, idx[i - 1], &e);
        tkmi_counts_get(&cp, idx[i], &f);
        ck_assert_int_lt(tkmi_key_cmp(e.key, e.len, f.key, f.len), 0);
    }
    tkmi_counts_set(&cp, idx[0], 0);
    free(idx);
    seen = 0;
    tkmi_counts_iter(&cp, 0, 1, &ic);
    while (tkmi_counts_next(&ic, &f)) seen++;
    ck_assert_uint_eq(seen, N + 1000);
    ck_assert_uint_ge(tkmi_counts_bytes(&a), a.cap * 8 + big);
    tkmi_counts_free(&a);
    tkmi_counts_free(&cp);
    free(k);
    free(want);
    free(got);
}
END_TEST

START_TEST(test_pretok_fast_equals_generic)
{
    static const char *atoms[] = {"a", "Z", "q", " ", "  ", "7", "42", "\xE2\x96\x81", "\xE3\x81\x82", "\xE3\x82\xAB",
                                  "\xE3\x83\xBC", "\xE6\x97\xA5", "\xF0\x9F\x98\x80", "\xC3\xA9", "\xFF", "\x80",
                                  "\xE3\x81", "\x00", ".", "\xD9\xA3", "\xEF\xBC\x91", "\xCE\xA9", "\t",
                                  "Hello", "wORLDs", "[", "`", "@", "{", "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"};
    int na = (int)(sizeof atoms / sizeof *atoms);
    /* nerdstash's kind of user-defined symbols (U+2581 runs, tabs, spaces)
     * and some that overlap the atoms or hold a space */
    static const char *users[] = {"\xE2\x96\x81\xE2\x96\x81", "\t", "\t\t", "\xE3\x80\x80", "aZ", "a q", "7\xE3\x81\x82", "Z",
                                  "qq.q", "\xE2\x96\x81q", "\xC3\xA9\xC3\xA9"}; /* 4 bytes and more: the prefix filter */
    /* and symbols none of which starts with an ASCII letter (as nerdstash's):
     * letter runs are then found 8 bytes at a time by the one-pass path */
    static const char *users2[] = {"\xE2\x96\x81\xE2\x96\x81", "\t", "\xE3\x80\x80", "7\xE3\x81\x82", "\xE2\x96\x81q", "[`@{"};
    for (int variant = 0; variant < 96; variant++) { /* 64..95: users2 */
        tkm_train_options o;
        tkm_train_options_init(&o);
        const char **us = variant >= 64 ? users2 : users;
        size_t nus = variant >= 64 ? sizeof users2 / sizeof *users2 : sizeof users / sizeof *users;
        int with_users = (variant & 32) || variant >= 64;
        if (with_users) {
            o.user_defined_symbols = us;
            o.n_user_defined = (int)nus;
        }
        o.split_digits = variant & 1;
        o.add_dummy_prefix = (variant >> 1) & 1;
        o.allow_whitespace_only_pieces = (variant >> 2) & 1;
        o.split_by_number = (variant >> 3) & 1;
        o.split_by_unicode_script = (variant >> 4) & 1;
        tkm_trainer *t;
        ck_assert_int_eq(tkm_trainer_new(&o, &t), 0);
        ck_assert_msg(tkmi_pretok_fast_ok(t), "variant %d should take the one-pass path", variant);
        ck_assert_int_eq(t->letters_plain, variant < 32 || variant >= 64);
        tkmi_worker wf, wg;
        memset(&wf, 0, sizeof wf);
        memset(&wg, 0, sizeof wg);
        wf.inc = wg.inc = 1;
        ck_assert_int_eq(tkmi_counts_init(&wf.counts, 64), 0);
        ck_assert_int_eq(tkmi_counts_init(&wg.counts, 64), 0);
        ck_assert_int_eq(tkmi_pretok_hot(&wf), 0); /* and the hot table in front of one */
        unsigned seed = 1234u + (unsigned)variant;
        for (int line = 0; line < 3000; line++) {
            char buf[4096]; /* 39 atoms of 52 bytes at most */
            size_t n = 0;
            seed = seed * 1103515245u + 12345u;
            int k = (int)((seed >> 16) % 40);
            for (int j = 0; j < k; j++) {
                seed = seed * 1103515245u + 12345u;
                int ai = (int)((seed >> 16) % (unsigned)na);
                size_t l = ai == 17 ? 1 : strlen(atoms[ai]); /* "\x00" has length 1 */
                memcpy(buf + n, atoms[ai], l);
                n += l;
            }
            ck_assert_int_eq(tkmi_pretok_line(t, &wf, buf, n), 0);
            int lp = t->letters_plain; /* the generic path finds letter runs a byte at a time */
            t->letters_plain = 0;
            ck_assert_int_eq(tkmi_pretok_line_generic(t, &wg, buf, n), 0);
            t->letters_plain = lp;
            if (line % 1000 == 999) ck_assert_int_eq(tkmi_pretok_drain(&wf), 0); /* as before a spill */
        }
        ck_assert_int_eq(tkmi_pretok_drain(&wf), 0);
        ck_assert_uint_eq(wf.counts.n, wg.counts.n);
        ck_assert_uint_eq(wf.st.tokens, wg.st.tokens);
        ck_assert_uint_eq(wf.st.invalid, wg.st.invalid);
        ck_assert_uint_eq(wf.st.nul, wg.st.nul);
        ck_assert_uint_eq(wf.st.bytes, wg.st.bytes);
        ck_assert_uint_eq(wf.st.lines, wg.st.lines);
        ck_assert_uint_gt(wf.st.invalid, 0);
        ck_assert_uint_gt(wf.st.nul, 0);
        kv_t *a = kv_list(&wf.counts), *b = kv_list(&wg.counts);
        for (size_t i = 0; i < wf.counts.n; i++)
            ck_assert_msg(kv_cmp(&a[i], &b[i]) == 0 && a[i].c == b[i].c, "variant %d: pre-token %zu differs", variant, i);
        /* both paths share the symbol lookup: a symbol (as it is in the
         * normalized text: no ' ') never ends up inside a pre-token */
        for (size_t i = 0; with_users && i < wf.counts.n; i++)
            for (size_t u = 0; u < nus; u++)
                if (!strchr(us[u], ' '))
                    ck_assert_msg(!memmem(a[i].s, a[i].n, us[u], strlen(us[u])), "variant %d: symbol %zu inside a pre-token", variant,
                                  u);
        free(a);
        free(b);
        tkmi_counts_free(&wf.counts);
        tkmi_counts_free(&wg.counts);
        tkmi_free(wf.norm);
        tkmi_free(wg.norm);
        tkmi_free(wf.hot);
        tkm_trainer_free(t);
    }
}
END_TEST

/* tkmi_uwords_build: the entries cut at characters outside req ('X'),
 * sorted in memcmp order (a prefix first), equal ones merged, counts past
 * 32 bits and words past 16 MB (the sort's escapes) exact; checked against
 * a plain qsort of the segments; the table is empty afterwards. Loop 1:
 * through the Unigram budget's threshold sample at tau 50: an entry counted
 * fewer times only when tkmi_mb_keep keeps it, and then counted 50 times;
 * the ones left out and sampled are tallied. */
typedef struct { const char *s; size_t len; int64_t cnt; } uw_seg;
static int uw_cmp(const void *a, const void *b)
{
    const uw_seg *x = a, *y = b;
    return tkmi_key_cmp(x->s, x->len, y->s, y->len);
}
START_TEST(test_uwords)
{
    enum { N = 20000 };
    tkmi_uw_sample smp = {.tau = _i ? 50 : 0};
    size_t LONG = ((size_t)1 << 24) + 5;
    tkmi_cpmap req = {0};
    for (int c = 1; c < 128; c++) ck_assert_int_eq(tkmi_cpmap_add(&req, (uint32_t)c, 1), 0);
    for (int c = 1; c < 128; c++) req.sym[tkmi_cpmap_slot(&req, (uint32_t)c)] = c == 'X' ? -1 : c;
    tkmi_counts c;
    ck_assert_int_eq(tkmi_counts_init(&c, 16), 0);
    char **keys = calloc(N + 8, sizeof *keys);
    size_t *lens = calloc(N + 8, sizeof *lens);
    int64_t *cnts = calloc(N + 8, sizeof *cnts);
    size_t nk = 0;
    for (unsigned i = 0; i < N; i++) {
        char buf[320];
        size_t len = ct_key(buf, i % 7 == 3 ? i / 7 : i); /* some keys again, cut elsewhere */
        if (i % 5 == 1) buf[(i / 5) % len] = 'X';
        if (i % 7 == 3) buf[len / 3] = 'X';
        if (i % 11 == 0 && len > 8) len = 1 + i % 8; /* short words (prefix only) */
        keys[nk] = malloc(len);
        memcpy(keys[nk], buf, len);
        lens[nk] = len;
        cnts[nk++] = i % 13 == 0 ? ((int64_t)1 << 32) + i : (int64_t)(i % 97 + 1);
    }
    const char *fixed[] = {"zz", "zzXzz", "abcdefghijk", "abcdefghij", "abcdefghi"};
    /* "zz": + 2 from "zzXzz" makes exactly the escape value */
    int64_t fcnt[] = {(int64_t)UINT32_MAX - 2, 1, 1, 5000000000LL, 2};
    for (int k = 0; k < 5; k++) {
        keys[nk] = strdup(fixed[k]);
        lens[nk] = strlen(fixed[k]);
        cnts[nk++] = fcnt[k];
    }
    keys[nk] = malloc(LONG + 2); /* a word over 16 MB, a cut, "b" */
    memset(keys[nk], 'q', LONG);
    memcpy(keys[nk] + LONG, "Xb", 2);
    lens[nk] = LONG + 2;
    cnts[nk++] = 7;
    for (size_t k = 0; k < nk; k++)
        ck_assert_int_eq(tkmi_counts_add(&c, keys[k], lens[k], tkmi_hash_bytes(keys[k], lens[k]), cnts[k]), 0);
    /* the expected words */
    uw_seg *sg = malloc(((size_t)N * 4 + 64) * sizeof *sg);
    size_t ns = 0;
    tkmi_citer it;
    tkmi_centry e;
    tkmi_counts_iter(&c, 0, 1, &it);
    uint64_t n_left = 0, occ_left = 0, n_sampled = 0;
    while (tkmi_counts_next(&it, &e)) {
        size_t st = 0;
        int64_t cnt = e.count;
        if (smp.tau && cnt < smp.tau) {
            if (!tkmi_mb_keep(tkmi_hash_bytes(e.key, e.len), cnt, smp.tau)) {
                n_left++;
                occ_left += (uint64_t)cnt;
                continue;
            }
            n_sampled++;
            cnt = smp.tau;
        }
        for (size_t j = 0; j <= e.len; j++)
            if (j == e.len || e.key[j] == 'X') {
                if (j > st) sg[ns++] = (uw_seg){e.key + st, j - st, cnt};
                st = j + 1;
            }
    }
    qsort(sg, ns, sizeof *sg, uw_cmp);
    size_t m = 0;
    for (size_t j = 0; j < ns; j++) {
        if (m && !uw_cmp(&sg[m - 1], &sg[j])) sg[m - 1].cnt += sg[j].cnt;
        else sg[m++] = sg[j];
    }
    /* copies: the table's keys go with it */
    for (size_t j = 0; j < m; j++) {
        char *q = malloc(sg[j].len);
        memcpy(q, sg[j].s, sg[j].len);
        sg[j].s = q;
    }
    tkmi_uwords w;
    if (smp.tau) { /* counts 1..97 below 2^32: about a third kept */
        ck_assert_uint_gt(n_left, N / 8);
        ck_assert_uint_gt(n_sampled, N / 8);
    }
    ck_assert_int_eq(tkmi_uwords_build(&w, &c, &req, smp.tau ? &smp : NULL), 0);
    ck_assert_uint_eq(smp.left_unique, n_left);
    ck_assert_uint_eq(smp.left_occ, occ_left);
    ck_assert_uint_eq(smp.sampled, n_sampled);
    ck_assert_ptr_null(c.s);
    ck_assert_uint_eq(c.nch, 0);
    ck_assert_uint_eq(w.n, m);
    size_t nbig = 0, nlong = 0, bytes = 0;
    for (size_t j = 0; j < m; j++) {
        bytes += sg[j].len;
        ck_assert_uint_eq(tkmi_uw_len(&w, j), sg[j].len);
        ck_assert_mem_eq(tkmi_uw_s(&w, j), sg[j].s, sg[j].len);
        ck_assert_int_eq(tkmi_uw_cnt(&w, j), sg[j].cnt);
        nbig += sg[j].cnt >= (int64_t)UINT32_MAX;
        nlong += sg[j].len >= ((size_t)1 << 24) - 1;
        free((void *)sg[j].s);
    }
    ck_assert_uint_eq(w.nbig, nbig);
    ck_assert_uint_gt(nbig, 2);
    ck_assert_uint_le(nlong, 1); /* (counted 7 times: sampled or not) */
    ck_assert_uint_eq(w.nlg, nlong);
    ck_assert_uint_eq(w.bytes, bytes);
    ck_assert_uint_eq(tkmi_uwords_bytes(&w), w.arena_bytes + m * 12 + (nbig + nlong) * sizeof(tkmi_uwesc));
    tkmi_uwords_free(&w);
    for (size_t k = 0; k < nk; k++) free(keys[k]);
    free(keys);
    free(lens);
    free(cnts);
    free(sg);
    tkmi_counts_free(&c);
    tkmi_cpmap_free(&req);
}
END_TEST

/* The Unigram budget's threshold sample (vocab_common.c): tau is the
 * smallest (exact to 1024, then powers of two) whose expected estimate
 * (a pre-token counted c < tau times at c / tau of its bytes) fits the
 * budget, with what is expected to be kept in the stats; tkmi_mb_keep keeps
 * about c / tau of the pre-tokens counted c < tau times and all others. */
START_TEST(test_mb_sample)
{
    tkm_train_options o;
    tkm_train_options_init(&o);
    o.model_type = TKM_MODEL_UNIGRAM;
    tkm_trainer *t;
    ck_assert_int_eq(tkm_trainer_new(&o, &t), 0);
    tkmi_mb_hist *h = calloc(1, sizeof *h);
    h->model = TKM_MODEL_UNIGRAM;
    char key[32];
    /* 1000 x 20 bytes counted once (60 bytes each), 100 x 10 counted 3
     * times (50), 10 x 5 counted 2000 times (45): 65450 bytes in all */
    memset(key, 'a', sizeof key);
    for (int i = 0; i < 1000; i++) tkmi_mb_add(h, key, 20, 1);
    for (int i = 0; i < 100; i++) tkmi_mb_add(h, key, 10, 3);
    for (int i = 0; i < 10; i++) tkmi_mb_add(h, key, 5, 2000);
    ck_assert_double_eq_tol(h->all, 65450, 1e-6);
    uint64_t kept;
    const struct { uint64_t budget; int64_t tau; double est; } cases[] = {
        {70000, 0, 65450},                                 /* fits: no sample */
        {40000, 2, 30000 + 5000 + 450},                    /* half the ones counted once */
        {25000, 4, 15000 + 3750 + 450},                    /* 25450 at tau 3 is over */
        {530, 938, 75000.0 / 938 + 450},                   /* 937: 530.04 */
        {515, 2048, 75000.0 / 2048 + 450 * 2000.0 / 2048}, /* 1024: 523.2; then powers of two */
        {300, 4096, 75000.0 / 4096 + 450 * 2000.0 / 4096},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        int64_t tau = tkmi_mb_decide_sample(t, h, cases[k].budget, &kept);
        ck_assert_int_eq(tau, cases[k].tau);
        ck_assert_int_eq(t->stats.merge_drop_below, cases[k].tau);
        ck_assert_uint_eq(t->stats.merge_bytes_estimate, (uint64_t)cases[k].est);
        if (tau == 4) ck_assert_uint_eq(kept, 250 + 75 + 10);
    }
    /* the keep rule: all at or over tau, about c / tau below, by the hash */
    size_t n1 = 0, n3 = 0;
    for (uint64_t i = 0; i < 100000; i++) {
        uint64_t hsh = tkmi_hash_u64(i);
        ck_assert(tkmi_mb_keep(hsh, 4, 4) && tkmi_mb_keep(hsh, 9, 4));
        ck_assert_int_eq(tkmi_mb_keep(hsh, 1, 4), tkmi_mb_keep(hsh, 1, 4));
        n1 += tkmi_mb_keep(hsh, 1, 4);
        n3 += tkmi_mb_keep(hsh, 3, 4);
        if (tkmi_mb_keep(hsh, 1, 4)) ck_assert(tkmi_mb_keep(hsh, 3, 4)); /* nested: a draw under 1 is under 3 */
    }
    ck_assert(n1 > 24000 && n1 < 26000);
    ck_assert(n3 > 74000 && n3 < 76000);
    free(h);
    tkm_trainer_free(t);
}
END_TEST

static Suite *trainer_suite(void)
{
    Suite *s = suite_create("trainer");
    TCase *core = tcase_create("core");
    tcase_set_timeout(core, 60);
    tcase_add_test(core, test_layout);
    tcase_add_test(core, test_errors);
    tcase_add_test(core, test_pretok_fast_equals_generic);
    tcase_add_test(core, test_charsmap);
    tcase_add_test(core, test_count_table);
    tcase_add_loop_test(core, test_uwords, 0, 2);
    tcase_add_test(core, test_mb_sample);
    suite_add_tcase(s, core);
    TCase *det = tcase_create("determinism");
    tcase_set_timeout(det, 60);
    tcase_add_test(det, test_determinism_threads);
    suite_add_tcase(s, det);
    TCase *rt = tcase_create("roundtrip");
    tcase_set_timeout(rt, 60);
    tcase_add_test(rt, test_roundtrip_random);
    tcase_add_test(rt, test_unigram);
    tcase_add_test(rt, test_unigram_seed_passes);
    tcase_add_test(rt, test_unigram_seed_floor);
    tcase_add_test(rt, test_unigram_seed_runs_tmpdir);
    tcase_add_test(rt, test_unigram_lattice_budget);
    suite_add_tcase(s, rt);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(trainer_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
