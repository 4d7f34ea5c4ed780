/* check_analyze.c - unit suite for analyze/: piece categories on hand-picked
 * pieces, corpus specs (file, directory, glob), compression counts on a small
 * text against a direct count, thread-count independence, unused pieces, and
 * the documented category counts of the reference models when present. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model_internal.h"
#include "skip.h"
#include "tokenmill.h"
#include "tokenmill_analyze.h"

static int cat(const char *s) { return tkm_analyze_piece_category(s, strlen(s), TKM_PIECE_NORMAL); }

START_TEST(test_categories)
{
    ck_assert_int_eq(cat("\xE2\x96\x81the"), TKM_CAT_LATIN); /* ▁the */
    ck_assert_int_eq(cat("the"), TKM_CAT_LATIN);
    ck_assert_int_eq(cat("AB"), TKM_CAT_LATIN);
    ck_assert_int_eq(cat("a"), TKM_CAT_OTHER);                     /* one letter */
    ck_assert_int_eq(cat("\xE2\x96\x81" "a"), TKM_CAT_OTHER);      /* ▁ not counted */
    ck_assert_int_eq(cat("\xE2\x96\x81"), TKM_CAT_OTHER);          /* lone ▁ */
    ck_assert_int_eq(cat("caf\xC3\xA9"), TKM_CAT_OTHER);           /* café: é is not ASCII */
    ck_assert_int_eq(cat("\xEF\xBC\xA1\xEF\xBC\xA2"), TKM_CAT_OTHER); /* full-width ＡＢ */
    ck_assert_int_eq(cat("the1"), TKM_CAT_OTHER);
    ck_assert_int_eq(cat("\xE6\x9D\xB1\xE4\xBA\xAC"), TKM_CAT_JA_MULTI);  /* 東京 */
    ck_assert_int_eq(cat("\xE2\x96\x81\xE6\x9D\xB1\xE4\xBA\xAC"), TKM_CAT_JA_MULTI); /* ▁東京 */
    ck_assert_int_eq(cat("\xE6\x9D\xB1"), TKM_CAT_JA_SINGLE);    /* 東 */
    ck_assert_int_eq(cat("\xE2\x96\x81\xE6\x9D\xB1"), TKM_CAT_JA_SINGLE); /* ▁東 */
    ck_assert_int_eq(cat("\xE3\x81\xAE"), TKM_CAT_JA_SINGLE);    /* の */
    ck_assert_int_eq(cat("\xE3\x83\xB3"), TKM_CAT_JA_SINGLE);    /* ン */
    ck_assert_int_eq(cat("\xE3\x81\xA6\xE3\x81\x84"), TKM_CAT_JA_MULTI); /* てい */
    ck_assert_int_eq(cat("\xE8\x89\xB2\xE3\x80\x85"), TKM_CAT_JA_MULTI); /* 色々: 々 is Han */
    ck_assert_int_eq(cat("\xE3\x83\xAA\xE3\x83\xBC"), TKM_CAT_OTHER);    /* リー: ー is Common */
    ck_assert_int_eq(cat("\xE3\x80\x82"), TKM_CAT_OTHER);        /* 。 */
    ck_assert_int_eq(cat("\xE6\x9D\xB1x"), TKM_CAT_OTHER);        /* mixed */
    ck_assert_int_eq(cat("\xFF\xFE"), TKM_CAT_OTHER);             /* invalid UTF-8 */
    ck_assert_int_eq(tkm_analyze_piece_category("<0x41>", 6, TKM_PIECE_BYTE), TKM_CAT_BYTE);
    ck_assert_int_eq(tkm_analyze_piece_category("<s>", 3, TKM_PIECE_CONTROL), TKM_CAT_SPECIAL);
    ck_assert_int_eq(tkm_analyze_piece_category("<unk>", 5, TKM_PIECE_UNKNOWN), TKM_CAT_SPECIAL);
    ck_assert_int_eq(tkm_analyze_piece_category("Title", 5, TKM_PIECE_USER_DEFINED), TKM_CAT_LATIN);
    ck_assert_str_eq(tkm_analyze_category_name(TKM_CAT_JA_MULTI), "japanese_multi");
}
END_TEST

/* ---- a small BPE model built with the library's protobuf writer ---- */
typedef struct { const char *piece; float score; int type; } P;
static const P toy[] = {
    {"<unk>", 0, TKM_PIECE_UNKNOWN}, {"<s>", 0, TKM_PIECE_CONTROL}, {"</s>", 0, TKM_PIECE_CONTROL},
    {"th", -1, 1}, {"the", -2, 1}, {"\xE2\x96\x81the", -3, 1}, {"\xE2\x96\x81", -4, 1},
    {"t", -5, 1}, {"h", -6, 1}, {"e", -7, 1}, {"c", -8, 1}, {"a", -9, 1}, {"\xE2\x96\x81" "c", -10, 1},
    {"at", -11, 1}, {"\xE2\x96\x81" "cat", -12, 1}, {"\xE6\x9D\xB1\xE4\xBA\xAC", -13, 1},
    {"\xE6\x9D\xB1", -14, 1}, {"\xE4\xBA\xAC", -15, 1}, {"zz", -16, 1}};

static void add_piece(tkmi_pb *pb, const char *piece, float score, int type)
{
    tkmi_pb sub = {0};
    tkmi_pb_str(&sub, 1, piece);
    tkmi_pb_float(&sub, 2, score);
    if (type != TKM_PIECE_NORMAL) tkmi_pb_int(&sub, 3, type);
    tkmi_pb_bytes(pb, 1, sub.p, sub.n);
    free(sub.p);
}

/* <unk> <s> </s>, the 256 byte pieces (byte fallback), then toy[3..] */
static tkm_model *toy_model(void)
{
    tkmi_pb pb = {0};
    for (size_t i = 0; i < sizeof toy / sizeof *toy; i++) {
        if (i == 3)
            for (int b = 0; b < 256; b++) {
                char bp[8];
                snprintf(bp, sizeof bp, "<0x%02X>", b);
                add_piece(&pb, bp, 0, TKM_PIECE_BYTE);
            }
        add_piece(&pb, toy[i].piece, toy[i].score, toy[i].type);
    }
    tkmi_pb ts = {0};
    tkmi_pb_int(&ts, 3, TKM_MODEL_BPE);
    tkmi_pb_int(&ts, 35, 1);
    tkmi_pb_bytes(&pb, 2, ts.p, ts.n);
    tkmi_pb ns = {0};
    tkmi_pb_str(&ns, 1, "identity");
    tkmi_pb_int(&ns, 3, 1);
    tkmi_pb_int(&ns, 4, 1);
    tkmi_pb_bytes(&pb, 3, ns.p, ns.n);
    tkm_model *m = NULL;
    ck_assert_msg(tkm_model_load_mem(pb.p, pb.n, "toy", &m) == 0, "load: %s", tkm_last_error());
    free(ts.p);
    free(ns.p);
    free(pb.p);
    return m;
}

static char tmpdir[64];
static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}
static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/check_analyze.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}
static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
}

static const char *text_a = "the cat\n\xE6\x9D\xB1\xE4\xBA\xAC the\n";
static const char *text_b = "A caf\xC3\xA9  \tthe\n\n";

START_TEST(test_files)
{
    write_file("b.txt", text_b);
    write_file("a.txt", text_a);
    write_file(".hidden", "x\n");
    char spec[256], **files;
    int n;
    ck_assert_int_eq(tkm_analyze_files(tmpdir, &files, &n), 0);
    ck_assert_int_eq(n, 2);
    ck_assert_ptr_nonnull(strstr(files[0], "/a.txt"));
    ck_assert_ptr_nonnull(strstr(files[1], "/b.txt"));
    tkm_analyze_files_free(files, n);
    snprintf(spec, sizeof spec, "%s/b*", tmpdir);
    ck_assert_int_eq(tkm_analyze_files(spec, &files, &n), 0);
    ck_assert_int_eq(n, 1);
    tkm_analyze_files_free(files, n);
    snprintf(spec, sizeof spec, "%s/a.txt", tmpdir);
    ck_assert_int_eq(tkm_analyze_files(spec, &files, &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(files[0], spec);
    tkm_analyze_files_free(files, n);
    snprintf(spec, sizeof spec, "%s/nothing*", tmpdir);
    ck_assert_int_eq(tkm_analyze_files(spec, &files, &n), TKM_EIO);
    ck_assert_ptr_nonnull(strstr(tkm_last_error(), "nothing*"));
}
END_TEST

/* The counts equal a direct count: encode every line, sum. */
START_TEST(test_compression_counts)
{
    write_file("a.txt", text_a);
    write_file("b.txt", text_b);
    tkm_model *m = toy_model();
    tkm_encoder *e;
    ck_assert_int_eq(tkm_encoder_new(m, &e), 0);
    uint64_t tokens = 0, bytes = 0, byte_tok = 0, unk_tok = 0;
    const char *texts[] = {"the cat", "\xE6\x9D\xB1\xE4\xBA\xAC the", "A caf\xC3\xA9  \tthe", ""};
    for (int i = 0; i < 4; i++) {
        const int32_t *ids;
        size_t k;
        ck_assert_int_eq(tkm_encode(e, texts[i], strlen(texts[i]), &ids, &k), 0);
        tokens += k;
        bytes += strlen(texts[i]);
        for (size_t j = 0; j < k; j++) {
            byte_tok += tkm_model_piece_type(m, ids[j]) == TKM_PIECE_BYTE;
            unk_tok += tkm_model_piece_type(m, ids[j]) == TKM_PIECE_UNKNOWN;
        }
    }
    tkm_encoder_free(e);
    char fa[256], fb[256];
    snprintf(fa, sizeof fa, "%s/a.txt", tmpdir);
    snprintf(fb, sizeof fb, "%s/b.txt", tmpdir);
    const char *files[] = {fa, fb};
    const tkm_model *models[] = {m, m};
    for (int threads = 1; threads <= 3; threads++) {
        tkm_analyze_counts c[2];
        uint8_t *u0 = calloc((size_t)tkm_model_size(m), 1), *u1 = calloc((size_t)tkm_model_size(m), 1);
        uint8_t *used[] = {u0, u1};
        ck_assert_int_eq(tkm_analyze_compression(models, 2, files, 2, threads, c, used), 0);
        for (int k = 0; k < 2; k++) {
            ck_assert_uint_eq(c[k].lines, 4);
            ck_assert_uint_eq(c[k].bytes, bytes);
            ck_assert_uint_eq(c[k].chars, bytes - 1 - 4 /* é: 2 bytes, 東京: 6 bytes */);
            ck_assert_uint_eq(c[k].words, 7);
            ck_assert_uint_eq(c[k].tokens, tokens);
            ck_assert_uint_eq(c[k].byte_tokens, byte_tok);
            ck_assert_uint_eq(c[k].unk_tokens, unk_tok);
        }
        ck_assert_uint_gt(byte_tok, 0);
        ck_assert_int_eq(memcmp(u0, u1, (size_t)tkm_model_size(m)), 0);
        ck_assert_int_eq(u0[tkm_model_piece_id(m, "\xE2\x96\x81the", 6)], 1);
        ck_assert_int_eq(u0[tkm_model_piece_id(m, "zz", 2)], 0);
        int unused[TKM_CAT_COUNT];
        tkm_analyze_unused(m, u0, unused);
        /* never produced: zz (latin), th, the, t, h, e, c, a, ▁c, at, 東, 京 ... */
        ck_assert_int_ge(unused[TKM_CAT_LATIN], 1);
        ck_assert_int_eq(unused[TKM_CAT_SPECIAL], 0);
        ck_assert_int_eq(unused[TKM_CAT_JA_MULTI], 0); /* 東京 was used */
        ck_assert_int_eq(unused[TKM_CAT_JA_SINGLE], 2);
        free(u0);
        free(u1);
    }
    /* errors name the file */
    const char *missing[] = {"/nonexistent/x.txt"};
    tkm_analyze_counts c1;
    ck_assert_int_lt(tkm_analyze_compression(models, 1, missing, 1, 2, &c1, NULL), 0);
    ck_assert_ptr_nonnull(strstr(tkm_last_error(), "/nonexistent/x.txt"));
    tkm_model_free(m);
}
END_TEST

START_TEST(test_vocab_toy)
{
    tkm_model *m = toy_model();
    tkm_analyze_vocab v;
    ck_assert_int_eq(tkm_analyze_vocab_stats(m, &v), 0);
    ck_assert_int_eq(v.pieces, 3 + 256 + 16);
    ck_assert_int_eq(v.category[TKM_CAT_SPECIAL], 3);
    ck_assert_int_eq(v.category[TKM_CAT_BYTE], 256);
    ck_assert_int_eq(v.category[TKM_CAT_LATIN], 6); /* th the ▁the at ▁cat zz */
    ck_assert_int_eq(v.category[TKM_CAT_OTHER], 7); /* ▁ t h e c a ▁c */
    ck_assert_int_eq(v.category[TKM_CAT_JA_MULTI], 1);
    ck_assert_int_eq(v.category[TKM_CAT_JA_SINGLE], 2);
    ck_assert_int_eq(v.len_chars[1], 8);  /* ▁ t h e c a 東 京 */
    ck_assert_int_eq(v.len_bytes[3], 4);  /* the ▁ 東 京 */
    ck_assert_str_eq(v.scripts[0].name, "Latin");
    tkm_analyze_vocab_clear(&v);
    tkm_model_free(m);
}
END_TEST

#define REFMODEL(name) fixture_path("TKM_REFMODELS", "../shared/reference-models", name)

/* The counts documented in tokenmill-analyze(1). main adds the tests only
 * when the model exists. */
static void check_ref(const char *name, int latin, int jm, int js, int other, int special, int byte)
{
    const char *path = REFMODEL(name);
    tkm_model *m;
    ck_assert_int_eq(tkm_model_load(path, &m), 0);
    tkm_analyze_vocab v;
    ck_assert_int_eq(tkm_analyze_vocab_stats(m, &v), 0);
    ck_assert_int_eq(v.category[TKM_CAT_LATIN], latin);
    ck_assert_int_eq(v.category[TKM_CAT_JA_MULTI], jm);
    ck_assert_int_eq(v.category[TKM_CAT_JA_SINGLE], js);
    ck_assert_int_eq(v.category[TKM_CAT_OTHER], other);
    ck_assert_int_eq(v.category[TKM_CAT_SPECIAL], special);
    ck_assert_int_eq(v.category[TKM_CAT_BYTE], byte);
    tkm_analyze_vocab_clear(&v);
    tkm_model_free(m);
}

START_TEST(test_reference_counts_nerdstash)
{
    /* published: 28586 / 18123 / 9626 / 9200 (other incl. special + byte) */
    check_ref("nerdstash.model", 28586, 18123, 9626, 8940, 4, 256);
}
END_TEST

START_TEST(test_reference_counts_llama)
{
    /* published: 23964 / 0 / 836 / 7224 (the post's row sums to 32024) */
    check_ref("llama.model", 23964, 0, 836, 6941, 3, 256);
}
END_TEST

static Suite *analyze_suite(void)
{
    Suite *s = suite_create("analyze");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_categories);
    tcase_add_test(tc, test_files);
    tcase_add_test(tc, test_compression_counts);
    tcase_add_test(tc, test_vocab_toy);
    suite_add_tcase(s, tc);
    TCase *tp = tcase_create("parity");
    tcase_set_timeout(tp, 60);
    ADD_TEST_IF_FILE(tp, test_reference_counts_nerdstash, REFMODEL("nerdstash.model"));
    ADD_TEST_IF_FILE(tp, test_reference_counts_llama, REFMODEL("llama.model"));
    suite_add_tcase(s, tp);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(analyze_suite());
    srunner_run_all(sr, CK_NORMAL);
    skip_report("check_analyze");
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
