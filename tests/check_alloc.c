/* check_alloc.c - allocation-failure sweeps: for each operation (loading a
 * .model, tokenizer.json and tiktoken file, encoding and decoding, training
 * BPE and Unigram, saving and exporting, reading a teacher), make allocation
 * 1, 2, 3, ... fail in turn (tkmi_alloc_fail_at) until a run needs no more.
 * Every failed run must return TKM_ENOMEM, free every block it took (the
 * hook counts them), and leave no file behind; a run that absorbs the
 * failure must still give the reference result. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tkm_internal.h"
#include "../softemb/eval_internal.h"
#include "tokenmill_analyze.h"
#include "tokenmill_softemb.h"
#include "tmpfiles.h"

/* ---- fixtures: a corpus, models trained and files written without the hook ---- */

static const char *const words[] = { "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "tokenizer",
                                     "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "\xe6\x9d\xb1\xe4\xba\xac", "12345",
                                     "na\xc3\xafve", "caf\xc3\xa9", "  indent", "end.", "again,", "x" };
#define NW (int)(sizeof words / sizeof *words)
#define NLINES 60
static char lines[NLINES][256];
static size_t line_len[NLINES];

static void make_corpus(void)
{
    unsigned seed = 7;
    for (int i = 0; i < NLINES; i++) {
        size_t o = 0;
        int k = 2 + (int)(seed % 8);
        for (int j = 0; j < k; j++) {
            seed = seed * 1103515245u + 12345u;
            o += (size_t)snprintf(lines[i] + o, sizeof lines[i] - o, j ? " %s" : "%s", words[(seed >> 16) % NW]);
        }
        line_len[i] = o;
    }
}

static tkm_train_options topts(tkm_model_type type, int threads)
{
    tkm_train_options o;
    tkm_train_options_init(&o);
    o.model_type = type;
    o.vocab_size = 300;
    o.byte_fallback = 1;
    o.hard_vocab_limit = 0;
    o.threads = threads;
    o.seed_size = 2000;
    return o;
}

/* Trains on the corpus; returns the code, *out only on success. */
static int train(const tkm_train_options *o, tkm_model **out)
{
    *out = NULL;
    tkm_trainer *t = NULL;
    int rc = tkm_trainer_new(o, &t);
    for (int i = 0; rc == 0 && i < NLINES; i++) rc = tkm_trainer_add_line(t, lines[i], line_len[i]);
    if (rc == 0) rc = tkm_trainer_train(t, out);
    tkm_trainer_free(t);
    return rc;
}

static tkm_model *ref_bpe, *ref_uni, *ref_hf, *ref_tt;
static char model_path[512], uni_path[512], json_path[512], tt_path[512], npy_path[512];

static void setup(void)
{
    setup_dir();
    make_corpus();
    tkm_train_options o = topts(TKM_MODEL_BPE, 1);
    ck_assert_msg(train(&o, &ref_bpe) == 0, "train: %s", tkm_last_error());
    o = topts(TKM_MODEL_UNIGRAM, 1);
    ck_assert_msg(train(&o, &ref_uni) == 0, "train: %s", tkm_last_error());
    snprintf(model_path, sizeof model_path, "%s", tpath("bpe.model"));
    snprintf(uni_path, sizeof uni_path, "%s", tpath("uni.model"));
    snprintf(json_path, sizeof json_path, "%s", tpath("bpe.json"));
    snprintf(tt_path, sizeof tt_path, "%s", tpath("small.tiktoken"));
    snprintf(npy_path, sizeof npy_path, "%s", tpath("teacher.npy"));
    ck_assert_int_eq(tkm_model_save(ref_bpe, model_path), 0);
    ck_assert_int_eq(tkm_model_save(ref_uni, uni_path), 0);
    ck_assert_int_eq(tkm_model_export_hf_json(ref_bpe, json_path), 0);
    ck_assert_int_eq(tkm_model_load_hf_json(json_path, &ref_hf), 0);
    /* tiktoken: the 256 bytes, then "th", "the", " t" */
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    FILE *f = fopen(tt_path, "w");
    ck_assert_ptr_nonnull(f);
    for (int b = 0; b < 256; b++) fprintf(f, "%c%c== %d\n", b64[b >> 2], b64[(b & 3) << 4], b);
    fprintf(f, "dGg= 256\ndGhl 257\nIHQ= 258\n");
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(tkm_model_load_tiktoken(tt_path, TKM_TIKTOKEN_R50K, &ref_tt), 0);
    /* a teacher: a 300 x 4 float32 .npy with the BPE model as vocabulary */
    char hdr[128];
    int hl = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (300, 4), }");
    while ((10 + hl + 1) % 64) hdr[hl++] = ' ';
    hdr[hl++] = '\n';
    static unsigned char npy[10 + 128 + 1200 * 4];
    unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)hl, 0 };
    memcpy(npy, pre, 10);
    memcpy(npy + 10, hdr, (size_t)hl);
    for (int i = 0; i < 1200; i++) {
        float v = (float)(i % 17) * 0.125f;
        memcpy(npy + 10 + hl + 4 * i, &v, 4);
    }
    write_bytes(npy_path, npy, 10 + (size_t)hl + 1200 * 4);
}

static void teardown(void)
{
    tkm_model_free(ref_bpe);
    tkm_model_free(ref_uni);
    tkm_model_free(ref_hf);
    tkm_model_free(ref_tt);
    teardown_dir();
}

/* Files in tdir whose names start with prefix. */
static int count_files(const char *prefix)
{
    DIR *d = opendir(tdir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) n++;
    closedir(d);
    return n;
}

/* ---- the sweep ---- */

/* An operation: 0 when it worked and its result was right, a negative code
 * when it failed (everything it took freed), or 1 when it "worked" but gave a
 * wrong result (the message says what). */
typedef int (*op_fn)(const void *ctx, char *why, size_t whylen);

static void sweep(const char *name, op_fn op, const void *ctx, int deterministic)
{
    char why[256];
    why[0] = 0;
    /* once without failures: the number of allocations, and lazy statics made */
    tkmi_alloc_fail_at(0);
    int rc = op(ctx, why, sizeof why);
    long total = tkmi_alloc_count(), live = tkmi_alloc_live();
    tkmi_alloc_hook_off();
    ck_assert_msg(rc == 0, "%s: fails without injected failures (%d): %s %s", name, rc, why, tkm_last_error());
    ck_assert_msg(live == 0, "%s: %ld blocks not freed without injected failures", name, live);
    ck_assert_msg(total > 0, "%s: no allocation seen", name);
    long absorbed = 0;
    for (long n = 1;; n++) {
        why[0] = 0;
        tkmi_alloc_fail_at(n);
        rc = op(ctx, why, sizeof why);
        long failed = tkmi_alloc_failed(), count = tkmi_alloc_count();
        live = tkmi_alloc_live();
        tkmi_alloc_hook_off();
        ck_assert_msg(live == 0, "%s: allocation %ld of %ld failed: %ld blocks not freed (rc %d: %s)", name, n, count,
                      live, rc, tkm_last_error());
        ck_assert_msg(rc != 1, "%s: allocation %ld failed: wrong result: %s", name, n, why);
        if (!failed) {
            ck_assert_msg(rc == 0, "%s: run %ld failed without an injected failure: %s", name, n, tkm_last_error());
            if (deterministic)
                ck_assert_msg(n == total + 1, "%s: %ld allocations, but %ld without the hook", name, n - 1, total);
            break;
        }
        ck_assert_msg(rc == 0 || rc == TKM_ENOMEM, "%s: allocation %ld of %ld failed: returned %d (%s), not TKM_ENOMEM",
                      name, n, count, rc, tkm_last_error());
        if (rc == 0) absorbed++;
        ck_assert_msg(n < 10000000, "%s: sweep does not end", name);
    }
    printf("alloc sweep: %-40s %6ld allocations, each failed once: ENOMEM or the same result (%ld absorbed)\n", name,
           total, absorbed);
}

/* ---- operations ---- */

static int same_model(const tkm_model *a, const tkm_model *b, char *why, size_t wl)
{
    size_t la, lb;
    const uint8_t *pa = tkm_model_bytes(a, &la), *pb = tkm_model_bytes(b, &lb);
    if (la == lb && !memcmp(pa, pb, la)) return 0;
    snprintf(why, wl, "model bytes differ (%zu vs %zu)", la, lb);
    return 1;
}

static int op_load_model(const void *ctx, char *why, size_t wl)
{
    (void)ctx;
    tkm_model *m;
    int rc = tkm_model_load(model_path, &m);
    if (rc < 0) return m ? (snprintf(why, wl, "model left"), 1) : rc;
    rc = same_model(m, ref_bpe, why, wl);
    tkm_model_free(m);
    return rc;
}

static int op_load_hf(const void *ctx, char *why, size_t wl)
{
    (void)ctx;
    tkm_model *m;
    int rc = tkm_model_load_hf_json(json_path, &m);
    if (rc < 0) return m ? (snprintf(why, wl, "model left"), 1) : rc;
    if (tkm_model_size(m) != tkm_model_size(ref_hf)) rc = (snprintf(why, wl, "size differs"), 1);
    tkm_model_free(m);
    return rc;
}

static int op_load_tiktoken(const void *ctx, char *why, size_t wl)
{
    (void)ctx;
    tkm_model *m;
    int rc = tkm_model_load_tiktoken(tt_path, TKM_TIKTOKEN_R50K, &m);
    if (rc < 0) return m ? (snprintf(why, wl, "model left"), 1) : rc;
    if (tkm_model_size(m) != 259) rc = (snprintf(why, wl, "size %d", tkm_model_size(m)), 1);
    tkm_model_free(m);
    return rc;
}

/* Encodes and decodes every corpus line (plus one with an unknown
 * character) with a fresh encoder and compares with ids/text taken from a
 * run without failures; a failed encode or decode is retried once. */
typedef struct {
    const tkm_model *m;
    int32_t *ids[NLINES + 1];
    size_t n[NLINES + 1];
    char *text[NLINES + 1];
    size_t tl[NLINES + 1];
} enc_ctx;

static const char extra_line[] = "unknown \xe2\x98\x83 snowman \xff and the fox";

static int op_encode(const void *ctxp, char *why, size_t wl)
{
    enc_ctx *c = (enc_ctx *)ctxp;
    tkm_encoder *e;
    int rc = tkm_encoder_new(c->m, &e);
    if (rc < 0) return rc;
    for (int i = 0; i <= NLINES && rc == 0; i++) {
        const char *s = i < NLINES ? lines[i] : extra_line;
        size_t sl = i < NLINES ? line_len[i] : sizeof extra_line - 1;
        const int32_t *ids;
        size_t n;
        rc = tkm_encode(e, s, sl, &ids, &n);
        /* an encoder whose call failed must still work: the same line again
         * (the next allocations succeed) must give the reference ids */
        if (rc == TKM_ENOMEM) rc = tkm_encode(e, s, sl, &ids, &n);
        if (rc < 0) break;
        char *out = NULL;
        size_t ol;
        rc = tkm_decode(c->m, ids, n, &out, &ol);
        if (rc == TKM_ENOMEM) rc = tkm_decode(c->m, ids, n, &out, &ol);
        if (rc < 0) break;
        if (!c->ids[i]) { /* the reference run (hook armed, nothing fails) */
            c->ids[i] = malloc((n + 1) * sizeof *ids);
            memcpy(c->ids[i], ids, n * sizeof *ids);
            c->n[i] = n;
            c->text[i] = malloc(ol + 1);
            memcpy(c->text[i], out, ol);
            c->tl[i] = ol;
        } else if (n != c->n[i] || memcmp(ids, c->ids[i], n * sizeof *ids)) {
            rc = (snprintf(why, wl, "line %d: ids differ", i), 1);
        } else if (ol != c->tl[i] || memcmp(out, c->text[i], ol)) {
            rc = (snprintf(why, wl, "line %d: decoded text differs", i), 1);
        }
        tkm_free(out);
    }
    tkm_encoder_free(e);
    return rc;
}

static void sweep_encode(const char *name, const tkm_model *m)
{
    enc_ctx c;
    memset(&c, 0, sizeof c);
    c.m = m;
    sweep(name, op_encode, &c, 1);
    for (int i = 0; i <= NLINES; i++) {
        free(c.ids[i]);
        free(c.text[i]);
    }
}

typedef struct {
    tkm_model_type type;
    int threads;
    const tkm_model *ref;
} train_ctx;

static int op_train(const void *ctxp, char *why, size_t wl)
{
    const train_ctx *c = ctxp;
    tkm_train_options o = topts(c->type, c->threads);
    tkm_model *m;
    int rc = train(&o, &m);
    if (rc < 0) return m ? (snprintf(why, wl, "model left"), 1) : rc;
    rc = same_model(m, c->ref, why, wl);
    tkm_model_free(m);
    return rc;
}

/* --balance-method weights (a search over merge loops on copies of the
 * kept counts), and retraining a BPE and a Unigram model from one counting
 * pass, which must give the models of separate runs */
static tkm_train_options wopts(void)
{
    tkm_train_options o = topts(TKM_MODEL_BPE, 1);
    o.balance_latin = 0.3f;
    o.balance_japanese = 0.1f;
    o.balance_method = TKM_BALANCE_WEIGHTS;
    return o;
}

static int op_train_weights(const void *ctxp, char *why, size_t wl)
{
    tkm_train_options o = wopts();
    tkm_model *m;
    int rc = train(&o, &m);
    if (rc < 0) return m ? (snprintf(why, wl, "model left"), 1) : rc;
    rc = same_model(m, ctxp, why, wl);
    tkm_model_free(m);
    return rc;
}

static int op_retrain(const void *ctxp, char *why, size_t wl)
{
    (void)ctxp;
    tkm_train_options o = topts(TKM_MODEL_BPE, 1);
    tkm_trainer *t = NULL;
    tkm_model *m = NULL;
    int rc = tkm_trainer_new(&o, &t);
    for (int i = 0; rc == 0 && i < NLINES; i++) rc = tkm_trainer_add_line(t, lines[i], line_len[i]);
    if (rc == 0) rc = tkm_trainer_finish_counting(t);
    for (int k = 0; rc == 0 && k < 2; k++) {
        o.model_type = k ? TKM_MODEL_UNIGRAM : TKM_MODEL_BPE;
        rc = tkm_trainer_retrain(t, &o, &m, NULL);
        if (rc < 0 && m) rc = (snprintf(why, wl, "model left"), 1);
        if (rc == 0) rc = same_model(m, k ? ref_uni : ref_bpe, why, wl);
        tkm_model_free(m);
        m = NULL;
    }
    tkm_trainer_free(t);
    return rc;
}

/* tkm_trainer_retrain_many: budget points forked from one shared merge
 * prefix (and a Unigram point on its own) must give the models of
 * separate runs, or ENOMEM with nothing left */
#define NMANY 5
static tkm_model *ref_many[NMANY];
static void many_opts(tkm_train_options po[NMANY])
{
    tkm_train_options o = topts(TKM_MODEL_BPE, 1);
    o.byte_fallback = 0;
    for (int i = 0; i < NMANY; i++) po[i] = o;
    po[1].balance_latin = 0.1f; /* blocks latin after 30 pieces */
    po[1].balance_japanese = 0.02f;
    po[2].balance_latin = 0.05f;
    po[3].balance_japanese = 0.003f; /* blocks japanese at once */
    po[4].model_type = TKM_MODEL_UNIGRAM;
}

static int many_run(int threads, tkm_model **m, tkm_train_stats *st)
{
    tkm_train_options o = topts(TKM_MODEL_BPE, 1), po[NMANY];
    o.byte_fallback = 0;
    many_opts(po);
    tkm_trainer *t = NULL;
    int rcs[NMANY];
    int rc = tkm_trainer_new(&o, &t);
    for (int i = 0; rc == 0 && i < NLINES; i++) rc = tkm_trainer_add_line(t, lines[i], line_len[i]);
    if (rc == 0) rc = tkm_trainer_finish_counting(t);
    if (rc == 0) rc = tkm_trainer_retrain_many(t, NMANY, po, m, st, rcs, threads);
    tkm_trainer_free(t);
    return rc;
}

static int op_retrain_many(const void *ctxp, char *why, size_t wl)
{
    tkm_model *m[NMANY] = {0};
    int rc = many_run(*(const int *)ctxp, m, NULL);
    for (int i = 0; rc == 0 && i < NMANY; i++) rc = same_model(m[i], ref_many[i], why, wl);
    for (int i = 0; i < NMANY; i++) tkm_model_free(m[i]);
    return rc;
}

/* Writes the model (or its tokenizer.json) to tdir/out.*: on failure no
 * out.* may exist, on success the file is whole. */
static int op_save(const void *ctxp, char *why, size_t wl)
{
    int json = *(const int *)ctxp;
    const char *p = tpath(json ? "out.json" : "out.model");
    int rc = json ? tkm_model_export_hf_json(ref_bpe, p) : tkm_model_save(ref_bpe, p);
    int files = count_files("out.");
    if (rc < 0) {
        if (files) rc = (snprintf(why, wl, "%d out.* files left after a failed write", files), 1);
        return rc;
    }
    if (files != 1) return snprintf(why, wl, "%d out.* files after a write", files), 1;
    if (!json) {
        size_t len, rl;
        unsigned char *data = read_all(p, &len); /* plain malloc: not counted, never failed */
        const uint8_t *ref = tkm_model_bytes(ref_bpe, &rl);
        if (len != rl || memcmp(data, ref, len)) rc = (snprintf(why, wl, "saved bytes differ"), 1);
        free(data);
    }
    unlink(p);
    return rc;
}

/* Count files and the MPI record path (trainer/count_file.c): the corpus
 * counted into a count file, that merged into another, trained on, and its
 * counts partitioned, chunked and added back: the model must be ref_bpe's,
 * and a failure must leave no temp file. */
static int op_counts(const void *ctxp, char *why, size_t wl)
{
    (void)ctxp;
    const char *cp = tpath("c.tkc");
    char c[512], m[512];
    snprintf(c, sizeof c, "%s", cp);
    snprintf(m, sizeof m, "%s", tpath("m.tkc"));
    unlink(c);
    unlink(m);
    tkm_train_options o = topts(TKM_MODEL_BPE, 1);
    tkm_trainer *t = NULL, *t2 = NULL;
    tkm_model *mod = NULL;
    int rc = tkm_trainer_new(&o, &t);
    for (int i = 0; rc == 0 && i < NLINES; i++) rc = tkm_trainer_add_line(t, lines[i], line_len[i]);
    if (rc == 0) rc = tkm_trainer_write_counts(t, c);
    tkm_trainer_free(t);
    t = NULL;
    const char *in[1] = {c};
    if (rc == 0) rc = tkm_counts_merge(in, 1, m, NULL);
    /* through partitions and records, as two MPI ranks would */
    uint64_t st[6];
    if (rc == 0) rc = tkm_trainer_new(&o, &t);
    if (rc == 0) rc = tkm_trainer_add_counts(t, m);
    if (rc == 0) rc = tkm_trainer_partition(t, 2, st);
    if (rc == 0) rc = tkm_trainer_new(&o, &t2);
    for (int part = 0; rc == 0 && part < 2; part++)
        for (;;) {
            const void *b;
            size_t len;
            if ((rc = tkm_trainer_part_chunk(t, part, 256, &b, &len)) < 0 || len == 0) break;
            if ((rc = tkm_trainer_add_records(t2, b, len)) < 0) break;
        }
    if (rc == 0) rc = tkm_trainer_add_input_stats(t2, st);
    if (rc == 0) rc = tkm_trainer_train(t2, &mod);
    tkm_trainer_free(t);
    tkm_trainer_free(t2);
    int left = count_files("c.tkc.tmp") + count_files("m.tkc.tmp");
    if (left) {
        tkm_model_free(mod);
        return snprintf(why, wl, "%d temp files left (rc %d)", left, rc), 1;
    }
    if (rc < 0) return mod ? (snprintf(why, wl, "model left"), 1) : rc;
    rc = same_model(mod, ref_bpe, why, wl);
    tkm_model_free(mod);
    unlink(c);
    unlink(m);
    return rc;
}

static int op_teacher(const void *ctxp, char *why, size_t wl)
{
    (void)ctxp;
    tkm_teacher_opts o = { NULL, model_path };
    tkm_teacher *t;
    int rc = tkm_teacher_load(npy_path, &o, &t);
    if (rc < 0) return t ? (snprintf(why, wl, "teacher left"), 1) : rc;
    if (tkm_teacher_rows(t) != 300 || tkm_teacher_dim(t) != 4) rc = (snprintf(why, wl, "shape differs"), 1);
    tkm_teacher_free(t);
    return rc;
}

static int op_vocab_stats(const void *ctxp, char *why, size_t wl)
{
    (void)ctxp;
    (void)why;
    (void)wl;
    tkm_analyze_vocab v;
    int rc = tkm_analyze_vocab_stats(ref_bpe, &v);
    if (rc == 0) tkm_analyze_vocab_clear(&v);
    return rc;
}

/* Counts tokens of a corpus file with both models (threads from ctx). */
static int op_compression(const void *ctxp, char *why, size_t wl)
{
    static tkm_analyze_counts ref[2];
    static int have_ref;
    int threads = *(const int *)ctxp;
    const tkm_model *models[2] = { ref_bpe, ref_uni };
    const char *files[1] = { tpath("corpus.txt") };
    tkm_analyze_counts c[2];
    int rc = tkm_analyze_compression(models, 2, files, 1, threads, c, NULL);
    if (rc < 0) return rc;
    if (!have_ref) {
        memcpy(ref, c, sizeof c);
        have_ref = 1;
    } else if (memcmp(ref, c, sizeof c)) {
        return snprintf(why, wl, "counts differ"), 1;
    }
    return 0;
}

/* A tiny soft-embedding run on the .npy teacher: train 3 steps, save the
 * encoder (no file may be left on failure), load it back, predict. */
static int op_softemb(const void *ctxp, char *why, size_t wl)
{
    static float ref[4 * 4];
    static int have_ref;
    const tkm_teacher *t = ctxp;
    uint8_t split[300];
    int rc = tkm_se_split(t, 0.1, 1, split);
    if (rc < 0) return rc;
    tkm_se_options o;
    tkm_se_options_default(&o, 4);
    o.layers = 1, o.heads = 2, o.width = 8, o.max_bytes = 12, o.ngram_buckets = 64, o.batch = 16;
    o.steps = 3, o.warmup = 1, o.threads = 1, o.device = -1, o.log_every = 0;
    tkm_se_encoder *e = NULL, *back = NULL;
    rc = tkm_se_train(t, split, &o, NULL, &e);
    if (rc < 0) return e ? (snprintf(why, wl, "encoder left"), 1) : rc;
    const char *p = tpath("enc.tkse");
    rc = tkm_se_save(e, p, 1);
    tkm_se_free(e);
    int files = count_files("enc.");
    if (rc < 0) return files ? (snprintf(why, wl, "%d enc.* files left after a failed save", files), 1) : rc;
    rc = tkm_se_load(p, &back);
    unlink(p);
    if (rc < 0) return back ? (snprintf(why, wl, "encoder left"), 1) : rc;
    static const unsigned char *const bytes[4] = { (const unsigned char *)"the", (const unsigned char *)" fox",
                                                   (const unsigned char *)"x", (const unsigned char *)"\xe6\x97\xa5" };
    static const size_t lens[4] = { 3, 4, 1, 3 };
    float out[4 * 4];
    rc = tkm_se_predict(back, bytes, lens, 4, 1, out);
    tkm_se_free(back);
    if (rc < 0) return rc;
    if (!have_ref) {
        memcpy(ref, out, sizeof out);
        have_ref = 1;
    } else if (memcmp(ref, out, sizeof out)) {
        return snprintf(why, wl, "predictions differ"), 1;
    }
    return 0;
}

/* Evaluation on the .npy teacher: the split, every baseline's predictions
 * for the test rows (one thread and two) and their metrics. ngram-ridge runs
 * through the internal entry point with 64 buckets and two penalties: its
 * default 4097 x 4097 Cholesky takes seconds, too long to repeat per
 * allocation. */
typedef struct {
    const tkm_teacher *t;
    tkmi_se_view v;
    int threads;
    double ref[TKM_BASE_COUNT][3];
    int have_ref;
} eval_ctx;

static int op_eval(const void *ctxp, char *why, size_t wl)
{
    eval_ctx *c = (eval_ctx *)ctxp;
    uint8_t split[300];
    int rc = tkm_se_split(c->t, 0.2, 5, split);
    if (rc < 0) return rc;
    uint32_t rows[300];
    size_t n = 0;
    for (uint32_t r = 0; r < 300; r++)
        if (split[r] == 1) rows[n++] = r;
    if (n == 0) return snprintf(why, wl, "no test rows"), 1;
    float pred[300 * 4];
    for (int b = 0; b < TKM_BASE_COUNT && rc >= 0; b++) {
        static const double lambdas[2] = { 0.1, 10 };
        static const tkmi_se_base_opts small = { 64, lambdas, 2 };
        if (b == TKM_BASE_NGRAM_RIDGE)
            rc = tkmi_se_baseline_view(&c->v, split, TKM_BASE_NGRAM_RIDGE, rows, n, c->threads, &small, NULL, pred);
        else
            rc = tkm_se_baseline_predict(c->t, split, (tkm_se_baseline)b, rows, n, c->threads, pred);
        if (rc < 0) break;
        tkm_se_metrics m;
        rc = tkm_se_metrics_compute(c->t, pred, rows, n, c->threads, &m);
        if (rc < 0) break;
        double got[3] = { m.top1_cos, m.mrr_cos, m.rel_l2 };
        if (!c->have_ref) memcpy(c->ref[b], got, sizeof got);
        else if (memcmp(c->ref[b], got, sizeof got)) rc = (snprintf(why, wl, "baseline %d: metrics differ", b), 1);
    }
    if (rc >= 0) c->have_ref = 1;
    return rc < 0 || rc == 1 ? rc : 0;
}

START_TEST(test_load) { sweep("load .model", op_load_model, NULL, 1); }
END_TEST
START_TEST(test_load_hf) { sweep("load tokenizer.json", op_load_hf, NULL, 1); }
END_TEST
START_TEST(test_load_tiktoken) { sweep("load tiktoken", op_load_tiktoken, NULL, 1); }
END_TEST
START_TEST(test_encode)
{
    sweep_encode("encode+decode BPE", ref_bpe);
    sweep_encode("encode+decode Unigram", ref_uni);
    sweep_encode("encode+decode tokenizer.json", ref_hf);
    sweep_encode("encode+decode tiktoken", ref_tt);
}
END_TEST
START_TEST(test_train_bpe)
{
    train_ctx c = { TKM_MODEL_BPE, 1, ref_bpe };
    sweep("train BPE", op_train, &c, 1);
}
END_TEST
START_TEST(test_train_unigram)
{
    train_ctx c = { TKM_MODEL_UNIGRAM, 1, ref_uni };
    sweep("train Unigram", op_train, &c, 1);
}
END_TEST
/* with two counting threads the numbering varies from run to run: a failure
 * lands in a worker as often as in the driver */
START_TEST(test_train_threads)
{
    train_ctx c = { TKM_MODEL_BPE, 2, ref_bpe };
    sweep("train BPE, 2 threads", op_train, &c, 0);
    train_ctx u = { TKM_MODEL_UNIGRAM, 2, ref_uni };
    sweep("train Unigram, 2 threads", op_train, &u, 0);
}
END_TEST
START_TEST(test_counts)
{
    sweep("count file, merge, partitions, train", op_counts, NULL, 1);
}
END_TEST
START_TEST(test_train_weights)
{
    tkm_train_options o = wopts();
    tkm_model *ref = NULL;
    ck_assert_msg(train(&o, &ref) == 0, "train: %s", tkm_last_error());
    sweep("train BPE, balance-method weights", op_train_weights, ref, 1);
    tkm_model_free(ref);
}
END_TEST
START_TEST(test_retrain) { sweep("finish counting, retrain BPE and Unigram", op_retrain, NULL, 1); }
END_TEST
START_TEST(test_retrain_many)
{
    /* the references: separate runs from one counting */
    tkm_train_options o = topts(TKM_MODEL_BPE, 1), po[NMANY];
    o.byte_fallback = 0;
    many_opts(po);
    tkm_trainer *t = NULL;
    ck_assert_int_eq(tkm_trainer_new(&o, &t), 0);
    for (int i = 0; i < NLINES; i++) ck_assert_int_eq(tkm_trainer_add_line(t, lines[i], line_len[i]), 0);
    ck_assert_int_eq(tkm_trainer_finish_counting(t), 0);
    tkm_train_stats ref_st[NMANY];
    for (int i = 0; i < NMANY; i++)
        ck_assert_msg(tkm_trainer_retrain(t, &po[i], &ref_many[i], &ref_st[i]) == 0, "retrain %d: %s", i, tkm_last_error());
    tkm_trainer_free(t);
    /* the shared runs: the same models and stats with 1 and 2 threads, the
     * budget points forked from the trunk */
    for (int threads = 1; threads <= 2; threads++) {
        tkm_model *m[NMANY] = {0};
        tkm_train_stats st[NMANY];
        ck_assert_msg(many_run(threads, m, st) == 0, "retrain_many: %s", tkm_last_error());
        for (int i = 0; i < NMANY; i++) {
            char why[128] = "";
            ck_assert_msg(same_model(m[i], ref_many[i], why, sizeof why) == 0, "point %d, %d threads: %s", i, threads, why);
            ck_assert_int_eq(st[i].merges, ref_st[i].merges);
            for (int k = 0; k < 3; k++) {
                ck_assert_int_eq(st[i].class_pieces[k], ref_st[i].class_pieces[k]);
                ck_assert_int_eq(st[i].class_target[k], ref_st[i].class_target[k]);
                ck_assert_int_eq(st[i].balance_short[k], ref_st[i].balance_short[k]);
                ck_assert_int_eq(st[i].balance_gained[k], ref_st[i].balance_gained[k]);
            }
            tkm_model_free(m[i]);
        }
        for (int i = 1; i <= 3; i++)
            ck_assert_msg(st[i].merges_shared > 0 && st[i].merges_shared < st[i].merges, "point %d: %d of %d merges shared",
                          i, st[i].merges_shared, st[i].merges);
        ck_assert_int_eq(st[0].merges_shared, 0);
        ck_assert_int_eq(st[4].merges_shared, 0);
    }
    int threads = 1;
    sweep("retrain many points, shared merge prefix", op_retrain_many, &threads, 1);
    for (int i = 0; i < NMANY; i++) tkm_model_free(ref_many[i]);
}
END_TEST
START_TEST(test_save)
{
    int json = 0;
    sweep("save .model", op_save, &json, 1);
    json = 1;
    sweep("export tokenizer.json", op_save, &json, 1);
}
END_TEST
START_TEST(test_teacher) { sweep("load teacher (.npy + .model)", op_teacher, NULL, 1); }
END_TEST
START_TEST(test_vocab_stats) { sweep("analyze vocabulary", op_vocab_stats, NULL, 1); }
END_TEST

START_TEST(test_compression)
{
    FILE *f = fopen(tpath("corpus.txt"), "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < NLINES; i++) fprintf(f, "%s\n", lines[i]);
    ck_assert_int_eq(fclose(f), 0);
    int threads = 1;
    sweep("analyze compression", op_compression, &threads, 1);
    threads = 2;
    sweep("analyze compression, 2 threads", op_compression, &threads, 0);
}
END_TEST
START_TEST(test_softemb)
{
    tkm_teacher_opts o = { NULL, model_path };
    tkm_teacher *t;
    ck_assert_int_eq(tkm_teacher_load(npy_path, &o, &t), 0);
    sweep("softemb train+save+load+predict", op_softemb, t, 1);
    tkm_teacher_free(t);
}
END_TEST

START_TEST(test_eval)
{
    tkm_teacher_opts o = { NULL, model_path };
    tkm_teacher *t;
    ck_assert_int_eq(tkm_teacher_load(npy_path, &o, &t), 0);
    eval_ctx c;
    memset(&c, 0, sizeof c);
    c.t = t;
    /* the view ridge needs, in plain memory */
    const unsigned char **bytes = malloc(300 * sizeof *bytes);
    size_t *lens = malloc(300 * sizeof *lens);
    uint8_t *kinds = malloc(300);
    ck_assert_uint_eq(tkm_teacher_rows(t), 300);
    for (size_t r = 0; r < 300; r++) {
        bytes[r] = tkm_teacher_bytes(t, r, &lens[r]);
        kinds[r] = (uint8_t)tkm_teacher_row_kind(t, r);
    }
    c.v = (tkmi_se_view){ 300, tkm_teacher_dim(t), tkm_teacher_matrix(t), bytes, lens, kinds };
    c.threads = 1;
    sweep("softemb eval (split, baselines, metrics)", op_eval, &c, 1);
    c.threads = 2;
    sweep("softemb eval, 2 threads", op_eval, &c, 0);
    free(bytes);
    free(lens);
    free(kinds);
    tkm_teacher_free(t);
}
END_TEST

/* A model file from ../shared (when present): load it, encode and decode
 * every corpus line, compare with the first run's ids. */
typedef struct {
    const char *path;
    int32_t *ids;
    size_t n, cap;
    int have_ref;
} file_ctx;

static int op_file_model(const void *ctxp, char *why, size_t wl)
{
    file_ctx *c = (file_ctx *)ctxp;
    tkm_model *m;
    int rc = tkm_model_load(c->path, &m);
    if (rc < 0) return m ? (snprintf(why, wl, "model left"), 1) : rc;
    tkm_encoder *e;
    rc = tkm_encoder_new(m, &e);
    size_t pos = 0;
    for (int i = 0; rc == 0 && i < NLINES; i++) {
        const int32_t *ids;
        size_t n;
        rc = tkm_encode(e, lines[i], line_len[i], &ids, &n);
        char *out = NULL;
        size_t ol;
        if (rc == 0) rc = tkm_decode(m, ids, n, &out, &ol);
        tkm_free(out);
        if (rc < 0) break;
        if (!c->have_ref) {
            if (pos + n + 1 > c->cap) {
                c->cap = 2 * (pos + n + 1);
                c->ids = realloc(c->ids, c->cap * sizeof *c->ids);
            }
            memcpy(c->ids + pos, ids, n * sizeof *ids);
            c->ids[pos + n] = -1;
        } else if (pos + n + 1 > c->n || memcmp(c->ids + pos, ids, n * sizeof *ids) || c->ids[pos + n] != -1) {
            rc = (snprintf(why, wl, "line %d: ids differ", i), 1);
        }
        pos += n + 1;
    }
    if (rc == 0 && !c->have_ref) {
        c->n = pos;
        c->have_ref = 1;
    }
    tkm_encoder_free(e);
    tkm_model_free(m);
    return rc;
}

START_TEST(test_reference)
{
    const char *src = getenv("TKM_SRCDIR") ? getenv("TKM_SRCDIR") : ".";
    static const char *const files[] = { "reference-models/llama.model", "repro/F5_spm_nmt_nfkc_unigram.model" };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[1024], name[128];
        snprintf(path, sizeof path, "%s/../shared/%s", src, files[i]);
        snprintf(name, sizeof name, "load+encode %s", strrchr(files[i], '/') + 1);
        if (access(path, R_OK) != 0) {
            printf("alloc sweep: %-40s SKIPPED: %s not present\n", name, path);
            continue;
        }
        file_ctx c = { path, NULL, 0, 0, 0 };
        sweep(name, op_file_model, &c, 1);
        free(c.ids);
    }
}
END_TEST

/* one case per test, so CK_RUN_CASE=train_bpe runs one sweep */
static void add(Suite *s, const char *name, const TTest *test)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test);
    suite_add_tcase(s, tc);
}

static Suite *alloc_suite(void)
{
    Suite *s = suite_create("alloc");
    add(s, "load", test_load);
    add(s, "load_hf", test_load_hf);
    add(s, "load_tiktoken", test_load_tiktoken);
    add(s, "encode", test_encode);
    add(s, "train_bpe", test_train_bpe);
    add(s, "train_unigram", test_train_unigram);
    add(s, "train_threads", test_train_threads);
    add(s, "train_weights", test_train_weights);
    add(s, "retrain", test_retrain);
    add(s, "retrain_many", test_retrain_many);
    add(s, "save", test_save);
    add(s, "counts", test_counts);
    add(s, "teacher", test_teacher);
    add(s, "vocab_stats", test_vocab_stats);
    add(s, "compression", test_compression);
    add(s, "softemb", test_softemb);
    add(s, "eval", test_eval);
    add(s, "reference", test_reference);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(alloc_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
