/* check_lib.c - unit suite for lib/: UTF-8, maps, trie, model reading (also
 * of broken files), the BPE encoder's merge order and post-processing, the
 * decoder's rules, and streamed input. */
#include <check.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "skip.h"
#include "json.h"
#include "model_internal.h"
#include "pairmap.h"
#include "parallel.h"
#include "tokenmill.h"

/* ---- JSON reader ---------------------------------------------------------- */
START_TEST(test_json)
{
    const char *txt = "{\"a\": [1, -2.5e1, true, false, null], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\\\"\","
                      " \"e\": {}, \"z\": [], \"a\": 7, \"big\": 9007199254740993}";
    tkmi_json_doc *d;
    ck_assert_int_eq(tkmi_json_parse(txt, strlen(txt), "t.json", &d), 0);
    const tkmi_json *r = tkmi_json_root(d);
    ck_assert_int_eq(r->type, TKMI_JSON_OBJECT);
    ck_assert_uint_eq(r->len, 6);
    const tkmi_json *a = tkmi_json_get(r, "a"); /* first of the duplicate keys */
    ck_assert_int_eq(a->type, TKMI_JSON_ARRAY);
    ck_assert_uint_eq(a->len, 5);
    int64_t x;
    ck_assert(tkmi_json_int(tkmi_json_at(a, 0), 0, 10, &x) && x == 1);
    ck_assert(tkmi_json_int(tkmi_json_at(a, 1), -100, 100, &x) && x == -25);
    ck_assert(!tkmi_json_int(tkmi_json_at(a, 1), 0, 100, &x));
    ck_assert_int_eq(tkmi_json_at(a, 2)->type, TKMI_JSON_TRUE);
    ck_assert_int_eq(tkmi_json_at(a, 4)->type, TKMI_JSON_NULL);
    ck_assert_ptr_null(tkmi_json_at(a, 5));
    const tkmi_json *s = tkmi_json_get(r, "s");
    ck_assert_uint_eq(s->len, 1 + 2 + 4 + 2);
    ck_assert_str_eq(tkmi_json_str(s), "x\xc3\xa9\xf0\x9f\x98\x80\n\"");
    ck_assert_uint_eq(tkmi_json_get(r, "e")->len, 0);
    ck_assert_str_eq(tkmi_json_str(tkmi_json_key(r, 4)), "a");
    ck_assert(!tkmi_json_int(tkmi_json_get(r, "big"), INT64_MIN, INT64_MAX, &x));
    ck_assert_ptr_null(tkmi_json_get(r, "missing"));
    tkmi_json_free(d);

    /* every proper prefix of a valid document is an error, never a crash */
    size_t n = strlen(txt);
    for (size_t k = 0; k < n; k++) {
        ck_assert_int_eq(tkmi_json_parse(txt, k, "t.json", &d), TKM_EFORMAT);
        ck_assert_ptr_null(d);
    }
    /* errors name the file, offset, line and column */
    const char *bad = "{\n  \"k\" 1}";
    ck_assert_int_eq(tkmi_json_parse(bad, strlen(bad), "bad.json", &d), TKM_EFORMAT);
    ck_assert_ptr_nonnull(strstr(tkm_last_error(), "bad.json: offset 8 (line 2, column 7): expected ':'"));
    const char *bads[] = { "[1,]", "{\"a\":1,}", "01", "\"\\ud800\"", "\"\\udc00x\"", "\"a\x01\"",
                           "\"\xff\"", "[1] 2", "tru", "-", "1.", "1e", "\"\\q\"", "" };
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
        ck_assert_msg(tkmi_json_parse(bads[i], strlen(bads[i]), "b", &d) == TKM_EFORMAT, "%s", bads[i]);
    /* nesting: 512 levels fine, 513 refused */
    char deep[1100];
    for (int depth = 512; depth <= 513; depth++) {
        memset(deep, '[', (size_t)depth);
        memset(deep + depth, ']', (size_t)depth);
        int rc = tkmi_json_parse(deep, 2 * (size_t)depth, "d", &d);
        ck_assert_int_eq(rc, depth == 512 ? 0 : TKM_EFORMAT);
        tkmi_json_free(d);
    }
    /* a large array crosses arena blocks */
    size_t cap = 2000000, m = 0;
    char *big = malloc(cap);
    big[m++] = '[';
    for (int i = 0; i < 100000; i++)
        m += (size_t)sprintf(big + m, "%s\"p%d\"", i ? "," : "", i);
    big[m++] = ']';
    ck_assert_int_eq(tkmi_json_parse(big, m, "big", &d), 0);
    ck_assert_uint_eq(tkmi_json_root(d)->len, 100000);
    ck_assert_str_eq(tkmi_json_str(tkmi_json_at(tkmi_json_root(d), 99999)), "p99999");
    tkmi_json_free(d);
    free(big);
}
END_TEST

/* ---- helpers: build small models with the library's protobuf writer ---- */
typedef struct { const char *piece; float score; int type; } P;

/* The protobuf bytes of a BPE model with these pieces (caller frees pb->p). */
static void model_pb(tkmi_pb *out, const P *ps, int n, int byte_fallback, int dummy, int remove_ws)
{
    tkmi_pb pb = {0};
    for (int i = 0; i < n; i++) {
        tkmi_pb sub = {0};
        tkmi_pb_str(&sub, 1, ps[i].piece);
        tkmi_pb_float(&sub, 2, ps[i].score);
        if (ps[i].type != TKM_PIECE_NORMAL) tkmi_pb_int(&sub, 3, ps[i].type);
        tkmi_pb_bytes(&pb, 1, sub.p, sub.n);
        free(sub.p);
    }
    tkmi_pb ts = {0};
    tkmi_pb_int(&ts, 3, TKM_MODEL_BPE);
    tkmi_pb_int(&ts, 35, byte_fallback);
    tkmi_pb_bytes(&pb, 2, ts.p, ts.n);
    tkmi_pb ns = {0};
    tkmi_pb_str(&ns, 1, "identity");
    tkmi_pb_int(&ns, 3, dummy);
    tkmi_pb_int(&ns, 4, remove_ws);
    tkmi_pb_bytes(&pb, 3, ns.p, ns.n);
    free(ts.p);
    free(ns.p);
    *out = pb;
}

static tkm_model *make_model(const P *ps, int n, int byte_fallback, int dummy, int remove_ws)
{
    tkmi_pb pb;
    model_pb(&pb, ps, n, byte_fallback, dummy, remove_ws);
    tkm_model *m = NULL;
    int rc = tkm_model_load_mem(pb.p, pb.n, "test", &m);
    ck_assert_msg(rc == 0, "load: %s", tkm_last_error());
    free(pb.p);
    return m;
}

static void encode_str(tkm_model *m, const char *s, size_t len, char *out, size_t cap)
{
    tkm_encoder *e;
    ck_assert_int_eq(tkm_encoder_new(m, &e), 0);
    const int32_t *ids;
    size_t n;
    ck_assert_int_eq(tkm_encode(e, s, len, &ids, &n), 0);
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < n; i++) o += (size_t)snprintf(out + o, cap - o, i ? " %d" : "%d", ids[i]);
    tkm_encoder_free(e);
}

static const P abc[] = {
    {"<unk>", 0, TKM_PIECE_UNKNOWN}, {"<s>", 0, TKM_PIECE_CONTROL}, {"</s>", 0, TKM_PIECE_CONTROL},
    {"ab", -1, 1}, {"bc", -0.5f, 1}, {"a", -3, 1}, {"b", -4, 1}, {"c", -5, 1}, {"\xE2\x96\x81", -6, 1},
    {"\xE2\x96\x81" "a", -2, 1}, {"cc", -1, 1},
};

/* lib/parallel.c: every job runs once, and the message of the lowest failed
 * job (set on its own thread) comes back to the caller. */
typedef struct { int id, ran, rc; } pjob;
static void *pjob_main(void *p)
{
    pjob *j = p;
    j->ran++;
    j->rc = (j->id == 2 || j->id == 3) ? tkmi_error(TKM_EINVAL, "job %d failed", j->id) : 0;
    return NULL;
}
START_TEST(test_parallel)
{
    pjob jobs[5];
    for (int i = 0; i < 5; i++) jobs[i] = (pjob){i, 0, 0};
    tkmi_error(0, "before");
    tkmi_par_jobs(jobs, 5, sizeof *jobs, offsetof(pjob, rc), pjob_main);
    for (int i = 0; i < 5; i++) ck_assert_int_eq(jobs[i].ran, 1);
    ck_assert_str_eq(tkm_last_error(), "job 2 failed");
    ck_assert_int_ge(tkmi_thread_count(0, 0), 1);
    ck_assert_int_eq(tkmi_thread_count(500, 0), TKMI_MAX_THREADS);
    ck_assert_int_eq(tkmi_thread_count(3, 2), 2);
    /* pairmap: first value kept unless replace; grows past its start size */
    tkmi_pairmap pm = {0};
    for (int32_t i = 0; i < 5000; i++) ck_assert_int_eq(tkmi_pairmap_put(&pm, i, i + 1, (uint32_t)i, i * 2, 0), 0);
    ck_assert_int_eq(tkmi_pairmap_put(&pm, 7, 8, 99, 99, 0), 0);
    ck_assert_int_eq(tkmi_pairmap_get(&pm, 7, 8)->id, 14);
    ck_assert_int_eq(tkmi_pairmap_put(&pm, 7, 8, 99, 99, 1), 0);
    ck_assert_int_eq(tkmi_pairmap_get(&pm, 7, 8)->id, 99);
    ck_assert_int_eq((int)tkmi_pairmap_get(&pm, 4999, 5000)->aux, 4999);
    ck_assert_ptr_null(tkmi_pairmap_get(&pm, 8, 7));
    tkmi_pairmap_free(&pm);
}
END_TEST

START_TEST(test_utf8)
{
    int mb;
    ck_assert_int_eq(tkmi_utf8_decode((const uint8_t *)"A", 1, &mb), 'A');
    ck_assert_int_eq(tkmi_utf8_decode((const uint8_t *)"\xC3\xA9", 2, &mb), 0xE9);
    ck_assert_int_eq(mb, 2);
    ck_assert_int_eq(tkmi_utf8_decode((const uint8_t *)"\xF0\x9F\x98\x80", 4, &mb), 0x1F600);
    ck_assert_int_eq(tkmi_utf8_decode((const uint8_t *)"\xC0\x80", 2, &mb), -1);     /* overlong */
    ck_assert_int_eq(mb, 1);
    ck_assert_int_eq(tkmi_utf8_decode((const uint8_t *)"\xED\xA0\x80", 3, &mb), -1); /* surrogate */
    ck_assert_int_eq(tkmi_utf8_decode((const uint8_t *)"\xF4\x90\x80\x80", 4, &mb), -1);
    ck_assert_int_eq(tkmi_utf8_decode((const uint8_t *)"\xE3\x81", 2, &mb), -1);     /* truncated */
    char b[4];
    ck_assert_int_eq(tkmi_utf8_encode(0x2581, b), 3);
    ck_assert(memcmp(b, TKMI_WS, 3) == 0);
    ck_assert_int_eq(tkmi_script(0x3042), tkmi_script(0x6F22)); /* hiragana counts as Han */
    ck_assert_int_eq(tkmi_script(0x30FC), tkmi_script(0x6F22));
    ck_assert_int_ne(tkmi_script('a'), tkmi_script(0x6F22));
}
END_TEST

START_TEST(test_strmap_trie)
{
    tkmi_strmap m;
    ck_assert_int_eq(tkmi_strmap_init(&m, 4), 0);
    static char keys[5000][8];
    for (int i = 0; i < 5000; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        ck_assert_int_eq(tkmi_strmap_put(&m, keys[i], strlen(keys[i]), i), 1);
    }
    ck_assert_int_eq(tkmi_strmap_put(&m, "k7", 2, 99), 0);
    for (int i = 0; i < 5000; i++) ck_assert_int_eq(tkmi_strmap_get(&m, keys[i], strlen(keys[i])), i);
    ck_assert_int_eq(tkmi_strmap_get(&m, "k5000", 5), -1);
    tkmi_strmap_free(&m);
    tkmi_ptrie t;
    const char *strs[] = {"abcd", "ab"};
    const uint32_t lens[] = {4, 2};
    const int32_t ids[] = {0, 1};
    ck_assert_int_eq(tkmi_ptrie_build(&t, strs, lens, ids, 2), 0);
    ck_assert_uint_eq(tkmi_ptrie_longest(&t, "abcx", 4), 2);
    ck_assert_uint_eq(tkmi_ptrie_longest(&t, "abcdx", 5), 4);
    ck_assert_uint_eq(tkmi_ptrie_longest(&t, "a", 1), 0);
    ck_assert_uint_eq(tkmi_ptrie_longest(&t, "xab", 3), 0);
    tkmi_ptrie_free(&t);
}
END_TEST

START_TEST(test_bpe_merge_order)
{
    tkm_model *m = make_model(abc, 11, 0, 0, 0);
    char out[256];
    encode_str(m, "abc", 3, out, sizeof out);
    ck_assert_str_eq(out, "5 4"); /* bc (-0.5) beats ab (-1) */
    encode_str(m, "ab", 2, out, sizeof out);
    ck_assert_str_eq(out, "3");
    encode_str(m, "ccc", 3, out, sizeof out);
    ck_assert_str_eq(out, "10 7"); /* equal scores: leftmost first */
    encode_str(m, " a", 2, out, sizeof out);
    ck_assert_str_eq(out, "9");
    encode_str(m, "axyzb", 5, out, sizeof out);
    ck_assert_str_eq(out, "5 0 6"); /* a run of unknowns is one <unk> */
    encode_str(m, "", 0, out, sizeof out);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(tkm_model_piece_id(m, "bc", 2), 4);
    ck_assert_int_eq(tkm_model_piece_id(m, "zz", 2), -1);
    tkm_model_free(m);
}
END_TEST

static P byte_ps[300];
static char byte_names[256][8];

/* <unk> <s> </s>, the 256 byte pieces <0x00>..<0xFF> (ids 3..258), then
 * ▁ h i hi ▁hi (259..263); returns the count. */
static int byte_pieces(void)
{
    P *ps = byte_ps;
    char (*names)[8] = byte_names;
    int n = 0;
    ps[n++] = (P){"<unk>", 0, TKM_PIECE_UNKNOWN};
    ps[n++] = (P){"<s>", 0, TKM_PIECE_CONTROL};
    ps[n++] = (P){"</s>", 0, TKM_PIECE_CONTROL};
    for (int i = 0; i < 256; i++) {
        snprintf(names[i], sizeof names[i], "<0x%02X>", i);
        ps[n++] = (P){names[i], 0, TKM_PIECE_BYTE};
    }
    ps[n++] = (P){"\xE2\x96\x81", -1, 1}; /* 259 */
    ps[n++] = (P){"h", -2, 1};             /* 260 */
    ps[n++] = (P){"i", -3, 1};             /* 261 */
    ps[n++] = (P){"hi", -0.5f, 1};         /* 262 */
    ps[n++] = (P){"\xE2\x96\x81hi", -0.2f, 1}; /* 263 */
    return n;
}

static tkm_model *byte_model(int dummy)
{
    int n = byte_pieces();
    return make_model(byte_ps, n, 1, dummy, 0);
}

/* A BYTE piece is exactly <0xHH> with two uppercase hex digits, as
 * sentencepiece writes it. <0x-8> used to pass sscanf("%2X") and index
 * byte_id[] with 0xFFFFFFF8 (a write gigabytes out of bounds); <0x A> and
 * <0x0a> were taken as 0x0A. */
START_TEST(test_byte_piece_spelling)
{
    const char *bad[] = {"<0x-8>", "<0x A>", "<0x0a>", "<0x+8>", "<0xG0>", "<0x 8>", "<0x8>>", "<0X0A>"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int n = byte_pieces();
        byte_ps[3 + 0x0A] = (P){bad[k], 0, TKM_PIECE_BYTE};
        tkmi_pb pb;
        model_pb(&pb, byte_ps, n, 1, 0, 0);
        tkm_model *m = NULL;
        int rc = tkm_model_load_mem(pb.p, pb.n, "bad.model", &m);
        ck_assert_msg(rc == TKM_EFORMAT, "%s: rc %d", bad[k], rc);
        ck_assert_ptr_null(m);
        ck_assert_msg(strstr(tkm_last_error(), "bad.model: byte piece 13") != NULL, "%s: %s", bad[k], tkm_last_error());
        ck_assert_msg(strstr(tkm_last_error(), bad[k]) != NULL, "%s: %s", bad[k], tkm_last_error());
        free(pb.p);
    }
    tkm_model *m = byte_model(0); /* the right spelling still loads */
    ck_assert_int_eq(tkm_model_piece_id(m, "<0x0A>", 6), 3 + 0x0A);
    tkm_model_free(m);
}
END_TEST

START_TEST(test_byte_fallback_and_decode)
{
    tkm_model *m = byte_model(0);
    char out[256];
    encode_str(m, "hi\xC3\xA9", 4, out, sizeof out);
    ck_assert_str_eq(out, "262 198 172"); /* é = C3 A9 -> bytes */
    encode_str(m, "h\xFF", 2, out, sizeof out);
    ck_assert_str_eq(out, "260 242 194 192"); /* invalid byte -> U+FFFD = EF BF BD */
    encode_str(m, "h\0i", 3, out, sizeof out);
    ck_assert_str_eq(out, "260 3 261");
    int32_t ids[] = {1, 263, 198, 172, 0, 2, 195, 259, 260};
    char *text;
    size_t tl;
    ck_assert_int_eq(tkm_decode(m, ids, 9, &text, &tl), 0);
    /* " hi" é " ⁇ " (</s> vanishes) 0xC0 alone -> U+FFFD, then " h" */
    ck_assert_str_eq(text, " hi\xC3\xA9 \xE2\x81\x87 \xEF\xBF\xBD h");
    tkm_free(text);
    int32_t bad[] = {5, 9999};
    ck_assert_int_eq(tkm_decode(m, bad, 2, &text, &tl), TKM_ERANGE);
    tkm_model_free(m);
    m = byte_model(1); /* add_dummy_prefix: leading ▁ added on encode, stripped on decode */
    encode_str(m, "hi", 2, out, sizeof out);
    ck_assert_str_eq(out, "263");
    int32_t ids2[] = {1, 263, 263};
    ck_assert_int_eq(tkm_decode(m, ids2, 3, &text, &tl), 0);
    ck_assert_str_eq(text, "hi hi");
    tkm_free(text);
    tkm_model_free(m);
}
END_TEST

START_TEST(test_model_prefixes_fail_cleanly)
{
    tkm_model *m = byte_model(0);
    size_t len;
    const uint8_t *raw = tkm_model_bytes(m, &len);
    uint8_t *copy = malloc(len);
    memcpy(copy, raw, len);
    int loaded = 0;
    for (size_t cut = 0; cut < len; cut++) {
        tkm_model *x = NULL;
        int rc = tkm_model_load_mem(copy, cut, "cut", &x);
        if (rc == 0) {
            /* a cut that still parses lost its specs: it must say so */
            loaded++;
            ck_assert_msg(tkm_model_warning(x) && strstr(tkm_model_warning(x), "cut has no ") &&
                              strstr(tkm_model_warning(x), "probably truncated"),
                          "prefix %zu loads without a warning", cut);
            tkm_model_free(x);
        }
        else ck_assert_msg(rc == TKM_EFORMAT, "prefix %zu: rc %d (%s)", cut, rc, tkm_last_error());
    }
    /* valid models remain only when the cut falls after <unk>, <s> or </s>
     * (before any byte piece) or right before the normalizer spec */
    ck_assert_int_le(loaded, 4);
    ck_assert_int_ge(loaded, 1);
    ck_assert_ptr_null(tkm_model_warning(m)); /* the whole file is fine */
    unsigned seed = 12345;
    for (int k = 0; k < 2000; k++) {
        uint8_t *f = malloc(len);
        memcpy(f, copy, len);
        seed = seed * 1103515245u + 12345u;
        f[(seed >> 8) % len] ^= (uint8_t)(1u << ((seed >> 4) & 7));
        tkm_model *x = NULL;
        int rc = tkm_model_load_mem(f, len, "flip", &x);
        ck_assert_msg(rc == 0 || rc == TKM_EFORMAT, "flip %d (seed 12345): rc %d", k, rc);
        if (rc == 0) {
            tkm_encoder *e;
            if (tkm_encoder_new(x, &e) == 0) {
                const int32_t *ids;
                size_t n;
                ck_assert_int_eq(tkm_encode(e, "hi there\xC3\xA9", 10, &ids, &n), 0);
                tkm_encoder_free(e);
            }
            tkm_model_free(x);
        }
        free(f);
    }
    free(copy);
    tkm_model_free(m);
}
END_TEST

#define NERDSTASH_V2 fixture_path("TKM_REFMODELS", "../shared/reference-models", "nerdstash_v2.model")
START_TEST(test_reference_nerdstash)
{
    const char *path = NERDSTASH_V2; /* main adds this test only when it exists */
    tkm_model *m;
    ck_assert_msg(tkm_model_load(path, &m) == 0, "%s", tkm_last_error());
    ck_assert_int_eq(tkm_model_size(m), 65535);
    ck_assert_int_eq(tkm_model_kind(m), TKM_MODEL_BPE);
    char out[512];
    const char *s = "The quick brown fox jumps over the goblin.";
    encode_str(m, s, strlen(s), out, sizeof out);
    /* the value documented with the reference models (spm_encode) */
    ck_assert_str_eq(out, "541 1939 6573 22820 22734 712 336 34477 49230");
    tkm_model_free(m);
}
END_TEST

/* A trainer_spec that promises more pieces than the file has is reported,
 * unless hard_vocab_limit is false (a Unigram model may then stop short);
 * more pieces than vocab_size (a vocabulary extended by hand) is fine. */
START_TEST(test_model_vocab_size_warning)
{
    static const struct { int vocab, hard, warn; } cases[] = {
        {9, -1, 1}, {9, 1, 1}, {9, 0, 0}, {8, -1, 0}, {5, -1, 0}, {0, -1, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tkmi_pb pb = {0};
        const char *pieces[] = {"<unk>", "a", "b", "c", "ab", "bc", "abc", "\xE2\x96\x81"};
        for (int i = 0; i < 8; i++) {
            tkmi_pb sub = {0};
            tkmi_pb_str(&sub, 1, pieces[i]);
            tkmi_pb_float(&sub, 2, (float)-i);
            if (i == 0) tkmi_pb_int(&sub, 3, TKM_PIECE_UNKNOWN);
            tkmi_pb_bytes(&pb, 1, sub.p, sub.n);
            free(sub.p);
        }
        tkmi_pb ts = {0}, ns = {0};
        tkmi_pb_int(&ts, 3, TKM_MODEL_BPE);
        if (cases[k].vocab) tkmi_pb_int(&ts, 4, cases[k].vocab);
        if (cases[k].hard >= 0) tkmi_pb_int(&ts, 33, cases[k].hard);
        tkmi_pb_bytes(&pb, 2, ts.p, ts.n);
        tkmi_pb_str(&ns, 1, "identity");
        tkmi_pb_bytes(&pb, 3, ns.p, ns.n);
        tkm_model *m = NULL;
        ck_assert_msg(tkm_model_load_mem(pb.p, pb.n, "v.model", &m) == 0, "%s", tkm_last_error());
        const char *w = tkm_model_warning(m);
        if (cases[k].warn)
            ck_assert_msg(w && strstr(w, "v.model has 8 pieces but its trainer_spec says vocab_size 9"), "case %zu: %s",
                          k, w ? w : "(none)");
        else
            ck_assert_msg(w == NULL, "case %zu: %s", k, w);
        tkm_model_free(m);
        free(ts.p);
        free(ns.p);
        free(pb.p);
    }
}
END_TEST

/* A precompiled charsmap (a Darts double-array trie, then NUL-terminated
 * replacements) mapping "A" to "b": root offset 1, so 'A' is unit 1^0x41 =
 * 64 (label 'A', has a leaf, offset 1), whose value unit 65 points at
 * replacement 0. Placed after a normalizer name of `pad` bytes, the trie
 * starts at any alignment inside the protobuf bytes. */
static tkm_model *charsmap_model(int pad)
{
    uint32_t units[66] = {0};
    units[0] = 1u << 10;
    units[64] = (1u << 10) | (1u << 8) | 0x41;
    units[65] = 0x80000000u;
    uint8_t cm[4 + sizeof units + 2];
    uint32_t tsize = sizeof units;
    memcpy(cm, &tsize, 4);
    memcpy(cm + 4, units, sizeof units);
    memcpy(cm + 4 + sizeof units, "b", 2);
    tkmi_pb pb = {0};
    const char *pieces[] = {"<unk>", "b", "A"};
    for (int i = 0; i < 3; i++) {
        tkmi_pb sub = {0};
        tkmi_pb_str(&sub, 1, pieces[i]);
        tkmi_pb_float(&sub, 2, -1);
        if (i == 0) tkmi_pb_int(&sub, 3, TKM_PIECE_UNKNOWN);
        tkmi_pb_bytes(&pb, 1, sub.p, sub.n);
        free(sub.p);
    }
    tkmi_pb ts = {0};
    tkmi_pb_int(&ts, 3, TKM_MODEL_BPE);
    tkmi_pb_bytes(&pb, 2, ts.p, ts.n);
    tkmi_pb ns = {0};
    char name[8] = "xxxxxxx";
    name[pad] = 0;
    tkmi_pb_str(&ns, 1, name);
    tkmi_pb_bytes(&ns, 2, cm, sizeof cm);
    tkmi_pb_int(&ns, 3, 0);
    tkmi_pb_bytes(&pb, 3, ns.p, ns.n);
    tkm_model *m = NULL;
    ck_assert_msg(tkm_model_load_mem(pb.p, pb.n, "charsmap", &m) == 0, "%s", tkm_last_error());
    free(ts.p);
    free(ns.p);
    free(pb.p);
    return m;
}

/* The charsmap trie is read as uint32 units: they must be aligned whatever
 * the trie's offset in the file (F5: misaligned loads, UB that UBSan
 * reports and strict-alignment CPUs fault on). */
START_TEST(test_charsmap_alignment)
{
    for (int pad = 1; pad <= 4; pad++) {
        tkm_model *m = charsmap_model(pad);
        ck_assert_ptr_nonnull(m->darts);
        ck_assert_msg((uintptr_t)m->darts % sizeof(uint32_t) == 0, "pad %d: trie at %p", pad, (void *)m->darts);
        char out[64];
        encode_str(m, "AbA", 3, out, sizeof out);
        ck_assert_str_eq(out, "1 1 1"); /* A -> b by the charsmap */
        tkm_model_free(m);
    }
}
END_TEST

/* A tiktoken rank file: the 256 single bytes (rank = byte), then `tail`
 * as written (no newline added). */
static int load_tiktoken_with(const char *tail, tkm_model **m)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char path[] = "/tmp/tkm-check-tiktoken-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "wb");
    for (int b = 0; b < 256; b++)
        fprintf(f, "%c%c== %d\n", b64[b >> 2], b64[(b & 3) << 4], b);
    fputs(tail, f);
    fclose(f);
    int rc = tkm_model_load_tiktoken(path, TKM_TIKTOKEN_CL100K, m);
    unlink(path);
    return rc;
}

/* Ranks are parsed inside the file's bytes (the buffer is not
 * NUL-terminated): strtol used to run past its end when the last line had
 * no newline, and past the newline of "HI= \n" (it skips whitespace);
 * ASan saw both. A rank is decimal digits only. */
START_TEST(test_tiktoken_ranks)
{
    tkm_model *m = NULL;
    ck_assert_int_eq(load_tiktoken_with("", &m), 0);
    ck_assert_int_eq(tkm_model_size(m), 256);
    tkm_model_free(m);
    ck_assert_int_eq(load_tiktoken_with("SEk= 300", &m), 0); /* last line without newline */
    ck_assert_int_eq(tkm_model_size(m), 301);
    tkm_model_free(m);
    const char *bad[] = {"SEk= \n", "SEk= ", "SEk=  300\n", "SEk= +300", "SEk= -1", "SEk= 3x", "SEk= 4194304",
                         "SEk= 99999999999999999999"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        m = NULL;
        int rc = load_tiktoken_with(bad[k], &m);
        ck_assert_msg(rc == TKM_EFORMAT, "\"%s\": rc %d", bad[k], rc);
        ck_assert_ptr_null(m);
        ck_assert_msg(strstr(tkm_last_error(), ": line 257 (offset 2194): expected") != NULL, "\"%s\": %s", bad[k],
                      tkm_last_error());
    }
}
END_TEST

/* A tokenizer.json whose added tokens come after the BPE vocabulary (ids past
 * vocab): the reader's per-id tables were sized before the added tokens grew
 * the id range (heap overflow under ASan on nerdstash's transformers export). */
START_TEST(test_hf_added_after_vocab)
{
    char path[] = "/tmp/tkm-check-hf-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *js = "{\"added_tokens\":[{\"id\":6,\"content\":\"<s>\",\"special\":true},"
                     "{\"id\":40,\"content\":\"<pad>\",\"special\":true}],"
                     "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"c\":3,\"abc\":4,\"<unk>\":5},"
                     "\"merges\":[\"a b\",\"ab c\"],\"unk_token\":\"<unk>\"}}";
    ck_assert_int_eq(write(fd, js, strlen(js)), (ssize_t)strlen(js));
    close(fd);
    tkm_model *m = NULL;
    int rc = tkm_model_load_hf_json(path, &m);
    unlink(path);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, tkm_last_error());
    ck_assert_int_eq(tkm_model_size(m), 41);
    tkm_encoder *e = NULL;
    ck_assert_int_eq(tkm_encoder_new(m, &e), 0);
    const int32_t *ids;
    size_t n;
    ck_assert_int_eq(tkm_encode(e, "abc<pad>", 8, &ids, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(ids[0], 4);
    ck_assert_int_eq(ids[1], 40);
    tkm_encoder_free(e);
    tkm_model_free(m);
}
END_TEST

START_TEST(test_reader)
{
    char path[] = "/tmp/tkm-check-reader-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "wb");
    size_t big = 3u << 20;
    char *line = malloc(big);
    memset(line, 'q', big);
    fputs("first\n\n", f);
    fwrite(line, 1, big, f);
    fputs("\nlast without newline", f);
    fclose(f);
    for (int gz = 0; gz < 2; gz++) {
        char gzpath[64];
        const char *p = path;
        if (gz) {
            snprintf(gzpath, sizeof gzpath, "%s.gz", path);
            gzFile g = gzopen(gzpath, "wb");
            gzputs(g, "first\n\n");
            gzwrite(g, line, (unsigned)big);
            gzputs(g, "\nlast without newline");
            gzclose(g);
            p = gzpath;
        }
        tkm_reader *r;
        ck_assert_int_eq(tkm_reader_open(p, &r), 0);
        const char *s;
        size_t n;
        ck_assert_int_eq(tkm_reader_next(r, &s, &n), 1);
        ck_assert(n == 5 && memcmp(s, "first", 5) == 0);
        ck_assert_int_eq(tkm_reader_next(r, &s, &n), 1);
        ck_assert_uint_eq(n, 0);
        ck_assert_int_eq(tkm_reader_next(r, &s, &n), 1);
        ck_assert_uint_eq(n, big);
        ck_assert(s[0] == 'q' && s[big - 1] == 'q');
        ck_assert_int_eq(tkm_reader_next(r, &s, &n), 1);
        ck_assert(n == 20 && memcmp(s, "last without newline", 20) == 0);
        ck_assert_int_eq(tkm_reader_next(r, &s, &n), 0);
        ck_assert_uint_eq(tkm_reader_lineno(r), 4);
        tkm_reader_close(r);
        if (gz) unlink(gzpath);
    }
    tkm_reader *r;
    ck_assert_int_eq(tkm_reader_open("/nonexistent/file.txt", &r), TKM_EIO);
    ck_assert_ptr_nonnull(strstr(tkm_last_error(), "/nonexistent/file.txt"));
    free(line);
    unlink(path);
}
END_TEST

static Suite *lib_suite(void)
{
    Suite *s = suite_create("lib");
    TCase *core = tcase_create("core");
    tcase_add_test(core, test_utf8);
    tcase_add_test(core, test_parallel);
    tcase_add_test(core, test_strmap_trie);
    tcase_add_test(core, test_json);
    suite_add_tcase(s, core);
    TCase *enc = tcase_create("encode");
    tcase_add_test(enc, test_bpe_merge_order);
    tcase_add_test(enc, test_byte_fallback_and_decode);
    ADD_TEST_IF_FILE(enc, test_reference_nerdstash, NERDSTASH_V2);
    tcase_add_test(enc, test_charsmap_alignment);
    suite_add_tcase(s, enc);
    TCase *lim = tcase_create("limits");
    tcase_set_timeout(lim, 60);
    tcase_add_test(lim, test_model_prefixes_fail_cleanly);
    tcase_add_test(lim, test_byte_piece_spelling);
    tcase_add_test(lim, test_tiktoken_ranks);
    tcase_add_test(lim, test_model_vocab_size_warning);
    tcase_add_test(lim, test_reader);
    tcase_add_test(lim, test_hf_added_after_vocab);
    suite_add_tcase(s, lim);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(lib_suite());
    srunner_run_all(sr, CK_NORMAL);
    skip_report("check_lib");
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
