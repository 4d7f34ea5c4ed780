/* check_softemb_io.c - unit suite for the teacher readers and writers of
 * softemb/teacher.c: hand-built GGUF / safetensors / .npy files (every dtype,
 * v2, alignment, tensor choice), every-prefix truncation and seeded random
 * corruption (errors, never crashes), half-precision conversion of all 65536
 * values, and piece decoding for each vocabulary style. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tokenmill.h"
#include "tokenmill_softemb.h"
#include "tmpfiles.h"

/* ---- files (helpers in tmpfiles.h) -------------------------------------------------- */

static void wtext(const char *path, const char *s) { write_bytes(path, s, strlen(s)); }

/* A growable little-endian byte builder for hand-made files. */
typedef struct {
    unsigned char *p;
    size_t n, cap;
} bb;

static void bput(bb *b, const void *s, size_t k)
{
    if (b->n + k > b->cap) {
        b->cap = (b->n + k) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    memcpy(b->p + b->n, s, k);
    b->n += k;
}

static void b8(bb *b, unsigned v) { unsigned char c = (unsigned char)v; bput(b, &c, 1); }
static void b16(bb *b, unsigned v) { b8(b, v & 255); b8(b, (v >> 8) & 255); }
static void b32(bb *b, uint32_t v) { b16(b, v & 0xFFFF); b16(b, v >> 16); }
static void b64(bb *b, uint64_t v) { b32(b, (uint32_t)v); b32(b, (uint32_t)(v >> 32)); }
static void bstr(bb *b, const char *s) { b64(b, strlen(s)); bput(b, s, strlen(s)); }
static void bpad(bb *b, size_t align) { while (b->n % align) b8(b, 0); }
static void bf32(bb *b, float f) { uint32_t u; memcpy(&u, &f, 4); b32(b, u); }

static uint64_t rs = 20261123;
static uint32_t rnd(void)
{
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rs >> 33);
}

static int load(const char *path, const char *vocab, const char *tensor, tkm_teacher **t)
{
    tkm_teacher_opts o = { .tensor = tensor, .vocab = vocab };
    *t = NULL;
    int rc = tkm_teacher_load(path, &o, t);
    if (rc < 0)
        ck_assert_ptr_null(*t);
    return rc;
}

static void expect_bytes(const tkm_teacher *t, size_t row, const char *want, size_t wn, tkm_row_kind kind)
{
    size_t n;
    const unsigned char *b = tkm_teacher_bytes(t, row, &n);
    ck_assert_msg(n == wn && memcmp(b, want, wn) == 0, "row %zu (%s): %zu bytes '%.*s', want %zu '%.*s'", row,
                  tkm_teacher_piece(t, row), n, (int)n, (const char *)b, wn, (int)wn, want);
    ck_assert_msg(tkm_teacher_row_kind(t, row) == kind, "row %zu (%s): kind %d, want %d", row,
                  tkm_teacher_piece(t, row), (int)tkm_teacher_row_kind(t, row), (int)kind);
}
#define EXPECT(t, row, lit, kind) expect_bytes(t, row, lit, sizeof(lit) - 1, kind)

/* A GGUF v3 (or v2) file: metadata as given by the caller (nkv entries already
 * in kv), tensors: "other.weight" [3] F32 then token_embd.weight [dim, rows] of
 * ggml type ty with data. Alignment `align` (written as general.alignment when
 * not 32). */
static void gguf_file(bb *out, unsigned version, const bb *kv, uint64_t nkv, size_t align, uint32_t ty, uint64_t dim,
                      uint64_t rows, const void *data, size_t dn)
{
    memset(out, 0, sizeof(*out));
    bput(out, "GGUF", 4);
    b32(out, version);
    b64(out, 2);
    b64(out, nkv + (align != 32));
    if (kv)
        bput(out, kv->p, kv->n);
    if (align != 32) {
        bstr(out, "general.alignment");
        b32(out, 4);
        b32(out, (uint32_t)align);
    }
    bstr(out, "other.weight");
    b32(out, 1);
    b64(out, 3);
    b32(out, 0);
    b64(out, 0);
    bstr(out, "token_embd.weight");
    b32(out, 2);
    b64(out, dim);
    b64(out, rows);
    b32(out, ty);
    b64(out, align); /* after other.weight's 12 bytes, aligned */
    bpad(out, align);
    for (int i = 0; i < 3; i++)
        bf32(out, 7.0f);
    bpad(out, align);
    bput(out, data, dn);
}

static void kv_tokens(bb *kv, const char *const *tok, size_t n, const char *model, const int32_t *types)
{
    bstr(kv, "tokenizer.ggml.tokens");
    b32(kv, 9);
    b32(kv, 8);
    b64(kv, n);
    for (size_t i = 0; i < n; i++)
        bstr(kv, tok[i]);
    if (model) {
        bstr(kv, "tokenizer.ggml.model");
        b32(kv, 8);
        bstr(kv, model);
    }
    if (types) {
        bstr(kv, "tokenizer.ggml.token_type");
        b32(kv, 9);
        b32(kv, 5);
        b64(kv, n);
        for (size_t i = 0; i < n; i++)
            b32(kv, (uint32_t)types[i]);
    }
}

/* ---- half precision ------------------------------------------------------------- */

/* f16 bits -> value, by arithmetic (independent of the library's bit tricks) */
static double half_value(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

START_TEST(test_f16_every_value)
{
    /* a [256, 256] F16 tensor holding all 65536 bit patterns */
    bb d = {0};
    for (unsigned h = 0; h < 65536; h++)
        b16(&d, h);
    const char *tok[1] = { "x" };
    bb kv = {0}, f;
    kv_tokens(&kv, tok, 1, "llama", NULL);
    gguf_file(&f, 3, &kv, 2, 32, 1, 256, 256, d.p, d.n);
    write_bytes(tpath("h.gguf"), f.p, f.n);
    tkm_teacher *t;
    ck_assert_int_eq(load(tpath("h.gguf"), NULL, NULL, &t), 0);
    ck_assert_uint_eq(tkm_teacher_rows(t), 256);
    ck_assert_int_eq(tkm_teacher_row_kind(t, 1), TKM_ROW_UNUSED); /* padding row */
    const float *m = tkm_teacher_matrix(t);
    static float fin[65536];
    size_t nf = 0;
    for (unsigned h = 0; h < 65536; h++) {
        double want = half_value((uint16_t)h);
        if (isnan(want)) {
            ck_assert_msg(isnan(m[h]), "half %04x: %g, want NaN", h, (double)m[h]);
            continue;
        }
        ck_assert_msg((double)m[h] == want && !signbit(m[h]) == !signbit(want), "half %04x: %a, want %a", h,
                      (double)m[h], want);
        fin[nf++] = m[h];
    }
    tkm_teacher_free(t);
    /* writing every finite half back as F16 gives the same bit patterns */
    ck_assert_int_eq(tkm_emb_write_gguf(tpath("w.gguf"), nf, 1, fin, NULL, NULL, NULL, TKM_DTYPE_F16), 0);
    size_t n;
    unsigned char *w = read_all(tpath("w.gguf"), &n);
    ck_assert_uint_ge(n, nf * 2);
    const unsigned char *p = w + n - nf * 2;
    for (size_t i = 0, h = 0; i < nf; i++, h++) {
        while (isnan(half_value((uint16_t)h)))
            h++;
        ck_assert_msg((unsigned)(p[2 * i] | p[2 * i + 1] << 8) == h, "finite half %04zx written as %04x", h,
                      (unsigned)(p[2 * i] | p[2 * i + 1] << 8));
    }
    free(w);
    /* rounding: seeded random floats round to the nearest half, ties to even */
    enum { N = 20000 };
    static float x[N];
    for (int i = 0; i < N; i++) {
        uint32_t u = rnd();
        int e = (int)(u % 40) - 28; /* 2^-28 .. 2^11: subnormal halves to overflow */
        if (i % 4 == 0) { /* exact ties between two neighbouring halves */
            uint16_t h = (uint16_t)(rnd() % 0x7BFE);
            x[i] = (float)((half_value(h) + half_value((uint16_t)(h + 1))) / 2);
        } else {
            x[i] = ldexpf((float)(rnd() % 1000000) / 1000000.0f + 1.0f, e) * (u & 1 ? -1.0f : 1.0f);
        }
    }
    ck_assert_int_eq(tkm_emb_write_gguf(tpath("r.gguf"), N, 1, x, NULL, NULL, NULL, TKM_DTYPE_F16), 0);
    w = read_all(tpath("r.gguf"), &n);
    p = w + n - N * 2;
    for (int i = 0; i < N; i++) {
        uint16_t got = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
        double ax = fabs((double)x[i]);
        unsigned lo = 0, hi = 0x7BFF; /* the largest half <= ax, by bisection */
        while (lo < hi) {
            unsigned mid = (lo + hi + 1) / 2;
            if (half_value((uint16_t)mid) <= ax)
                lo = mid;
            else
                hi = mid - 1;
        }
        /* then the nearer of it and the next one (65536 = infinity's place), ties even */
        double dl = ax - half_value((uint16_t)lo), dh = (lo == 0x7BFF ? 65536.0 : half_value((uint16_t)(lo + 1))) - ax;
        uint16_t bh = (uint16_t)(dl < dh ? lo : dh < dl ? lo + 1 : (lo & 1 ? lo + 1 : lo));
        if (x[i] < 0)
            bh |= 0x8000;
        ck_assert_msg(got == bh, "f16(%a) = %04x, want %04x", (double)x[i], got, bh);
    }
    free(w);
    free(d.p);
    free(kv.p);
    free(f.p);
}
END_TEST

START_TEST(test_bf16_rounding)
{
    enum { N = 4096 };
    float x[N];
    for (int i = 0; i < N; i++) {
        uint32_t u = rnd() ^ rnd() << 16;
        if (i % 3 == 0)
            u = (u & 0xFFFF0000u) | 0x8000u; /* exact tie */
        u &= 0xBFFFFFFFu; /* |x| < 2: rounding up never reaches infinity */
        memcpy(&x[i], &u, 4);
    }
    ck_assert_int_eq(tkm_emb_write_gguf(tpath("b.gguf"), N, 1, x, NULL, NULL, NULL, TKM_DTYPE_BF16), 0);
    size_t n;
    unsigned char *w = read_all(tpath("b.gguf"), &n);
    const unsigned char *p = w + n - N * 2;
    for (int i = 0; i < N; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        uint32_t lo = u >> 16, hi = lo + 1;
        float flo, fhi;
        uint32_t blo = lo << 16, bhi = hi << 16;
        memcpy(&flo, &blo, 4);
        memcpy(&fhi, &bhi, 4);
        double dl = fabs((double)x[i] - flo), dh = fabs((double)fhi - x[i]);
        uint32_t want = dl < dh ? lo : dh < dl ? hi : (lo & 1 ? hi : lo);
        uint32_t got = (uint32_t)(p[2 * i] | p[2 * i + 1] << 8);
        ck_assert_msg(got == (want & 0xFFFF), "bf16(%a) = %04x, want %04x", (double)x[i], got, want);
    }
    free(w);
    /* and it reads back as those values */
    tkm_teacher *t;
    ck_assert_int_eq(load(tpath("b.gguf"), NULL, NULL, &t), TKM_EINVAL); /* no vocabulary anywhere */
    wtext(tpath("vocab.txt"), "a\n");
    ck_assert_int_eq(load(tpath("b.gguf"), NULL, NULL, &t), 0);
    ck_assert_str_eq(tkm_teacher_vocab_style(t), "plain");
    for (int i = 0; i < N; i++)
        ck_assert_msg(fabs(tkm_teacher_matrix(t)[i] - x[i]) <= fabs(x[i]) / 256 + 0x1p-133, "%d: %a read as %a", i, (double)x[i],
                      (double)tkm_teacher_matrix(t)[i]);
    tkm_teacher_free(t);
}
END_TEST

/* ---- GGUF ----------------------------------------------------------------------- */

START_TEST(test_gguf_v2_alignment_every_kv_type)
{
    /* metadata of every value type, arrays of strings and of arrays, alignment 64 */
    bb kv = {0};
    uint64_t nkv = 0;
    static const struct { uint32_t ty; int size; } sc[] = { {0, 1}, {1, 1}, {2, 2}, {3, 2}, {4, 4}, {5, 4}, {6, 4},
                                                           {7, 1}, {10, 8}, {11, 8}, {12, 8} };
    for (size_t i = 0; i < sizeof(sc) / sizeof(sc[0]); i++, nkv++) {
        char key[32];
        snprintf(key, sizeof(key), "test.scalar%zu", i);
        bstr(&kv, key);
        b32(&kv, sc[i].ty);
        for (int k = 0; k < sc[i].size; k++)
            b8(&kv, 0xA5);
    }
    bstr(&kv, "test.strings");
    b32(&kv, 9);
    b32(&kv, 8);
    b64(&kv, 2);
    bstr(&kv, "tokenizer.ggml.tokens"); /* a value that looks like a key */
    bstr(&kv, "");
    bstr(&kv, "test.nested");
    b32(&kv, 9);
    b32(&kv, 9);
    b64(&kv, 2);
    for (int k = 0; k < 2; k++) {
        b32(&kv, 4);
        b64(&kv, 3);
        b32(&kv, 1), b32(&kv, 2), b32(&kv, 3);
    }
    nkv += 2;
    const char *tok[3] = { "<s>", "\xe2\x96\x81hi", "<0x0A>" };
    const int32_t ty[3] = { 3, 1, 6 };
    kv_tokens(&kv, tok, 3, "llama", ty);
    nkv += 3;
    float m[3 * 2] = { 1, 2, 3, 4, 5, 6 };
    bb f;
    gguf_file(&f, 2, &kv, nkv, 64, 0, 2, 3, m, sizeof(m));
    write_bytes(tpath("v2.gguf"), f.p, f.n);
    tkm_teacher *t;
    ck_assert_int_eq(load(tpath("v2.gguf"), NULL, NULL, &t), 0);
    ck_assert_uint_eq(tkm_teacher_rows(t), 3);
    ck_assert_uint_eq(tkm_teacher_dim(t), 2);
    ck_assert(memcmp(tkm_teacher_matrix(t), m, sizeof(m)) == 0);
    EXPECT(t, 0, "<s>", TKM_ROW_SPECIAL);
    EXPECT(t, 1, " hi", TKM_ROW_NORMAL);
    EXPECT(t, 2, "\n", TKM_ROW_NORMAL);
    tkm_teacher_free(t);
    /* the other tensor by name: 1-D is refused; a missing name is named */
    ck_assert_int_eq(load(tpath("v2.gguf"), NULL, "other.weight", &t), TKM_EFORMAT);
    ck_assert_ptr_nonnull(strstr(tkm_last_error(), "1 dimensions"));
    ck_assert_int_eq(load(tpath("v2.gguf"), NULL, "output.weight", &t), TKM_EFORMAT);
    ck_assert_ptr_nonnull(strstr(tkm_last_error(), "no tensor named output.weight"));
    /* version 1 and a bad alignment */
    f.p[4] = 1;
    write_bytes(tpath("v1.gguf"), f.p, f.n);
    ck_assert_int_eq(load(tpath("v1.gguf"), NULL, NULL, &t), TKM_ENOTSUP);
    free(f.p);
    gguf_file(&f, 3, &kv, nkv, 48, 0, 2, 3, m, sizeof(m));
    write_bytes(tpath("a48.gguf"), f.p, f.n);
    ck_assert_int_eq(load(tpath("a48.gguf"), NULL, NULL, &t), TKM_EFORMAT);
    ck_assert_ptr_nonnull(strstr(tkm_last_error(), "alignment"));
    free(f.p);
    /* Q8_0: two rows of 32, scales 0.25 and -2 */
    unsigned char q[2 * 34];
    for (int r = 0; r < 2; r++) {
        q[r * 34] = 0x00;
        q[r * 34 + 1] = r ? 0xC0 : 0x34;
        for (int i = 0; i < 32; i++)
            q[r * 34 + 2 + i] = (unsigned char)(int8_t)(r ? 127 - 8 * i : -128 + 3 * i);
    }
    const char *tq[2] = { "a", "b" };
    bb kq = {0};
    kv_tokens(&kq, tq, 2, "bert", NULL);
    gguf_file(&f, 3, &kq, 2, 32, 8, 32, 2, q, sizeof(q));
    write_bytes(tpath("q8.gguf"), f.p, f.n);
    ck_assert_int_eq(load(tpath("q8.gguf"), NULL, NULL, &t), 0);
    for (int i = 0; i < 32; i++) {
        ck_assert(tkm_teacher_matrix(t)[i] == 0.25f * (float)(-128 + 3 * i));
        ck_assert(tkm_teacher_matrix(t)[32 + i] == -2.0f * (float)(127 - 8 * i));
    }
    ck_assert_str_eq(tkm_teacher_vocab_style(t), "wordpiece");
    EXPECT(t, 0, " a", TKM_ROW_NORMAL);
    tkm_teacher_free(t);
    free(f.p);
    /* unsupported types name the type and the tensor */
    static const uint32_t bad[] = { 2, 3, 6, 7, 9, 10, 12, 14, 24, 31, 99 };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gguf_file(&f, 3, &kq, 2, 32, bad[i], 32, 2, q, sizeof(q));
        write_bytes(tpath("bad.gguf"), f.p, f.n);
        ck_assert_int_eq(load(tpath("bad.gguf"), NULL, NULL, &t), TKM_ENOTSUP);
        char want[64];
        snprintf(want, sizeof(want), "unsupported tensor type %u (token_embd.weight)", bad[i]);
        ck_assert_msg(strstr(tkm_last_error(), want), "%s", tkm_last_error());
        free(f.p);
    }
    /* Q8_0 with a row length that is not a multiple of 32 */
    gguf_file(&f, 3, &kq, 2, 32, 8, 17, 4, q, sizeof(q));
    write_bytes(tpath("q8b.gguf"), f.p, f.n);
    ck_assert_int_eq(load(tpath("q8b.gguf"), NULL, NULL, &t), TKM_EFORMAT);
    free(f.p);
    free(kv.p);
    free(kq.p);
}
END_TEST

/* Every proper prefix of a file is an error (TKM_EFORMAT, or TKM_ENOTSUP /
 * TKM_EINVAL where the cut falls inside the magic), and then random byte
 * corruption never crashes or reads out of bounds (run it under valgrind or
 * ASan to see the latter). */
static void truncate_and_corrupt(const char *name, const unsigned char *all, size_t n, const char *vocab_path)
{
    char vbuf[512], *vocab = NULL; /* tpath's buffers rotate: keep a copy */
    if (vocab_path) {
        snprintf(vbuf, sizeof(vbuf), "%s", vocab_path);
        vocab = vbuf;
    }
    for (size_t k = 0; k < n; k++) {
        write_bytes(tpath(name), all, k);
        tkm_teacher *t;
        int rc = load(tpath(name), vocab, NULL, &t);
        ck_assert_msg(rc == TKM_EFORMAT || (k < 12 && rc < 0), "%s prefix %zu: rc %d (%s)", name, k, rc,
                      tkm_last_error());
        if (k > 0 && rc == TKM_EFORMAT)
            ck_assert_msg(strstr(tkm_last_error(), name), "%s prefix %zu: error does not name the file: %s", name, k,
                          tkm_last_error());
    }
    unsigned char *c = malloc(n);
    ck_assert_ptr_nonnull(c);
    int ok = 0;
    uint64_t seed = rs;
    for (int it = 0; it < 1500; it++) {
        memcpy(c, all, n);
        int flips = 1 + (int)(rnd() % 4);
        for (int k = 0; k < flips; k++) {
            size_t at = rnd() % n;
            c[at] = (unsigned char)(rnd() % 3 == 0 ? 0xFF : rnd());
        }
        write_bytes(tpath(name), c, n);
        tkm_teacher *t;
        int rc = load(tpath(name), vocab, NULL, &t);
        ck_assert_msg(rc == 0 || rc == TKM_EFORMAT || rc == TKM_ENOTSUP || rc == TKM_EINVAL,
                      "%s corruption %d (seed %llu): rc %d", name, it, (unsigned long long)seed, rc);
        if (rc == 0) {
            ok++;
            size_t len;
            for (size_t r = 0; r < tkm_teacher_rows(t); r++)
                (void)tkm_teacher_bytes(t, r, &len);
            tkm_teacher_free(t);
        }
    }
    ck_assert_int_gt(ok, 0); /* some flips only touch values */
    free(c);
}

START_TEST(test_gguf_truncation_and_corruption)
{
    const char *tok[4] = { "<unk>", "\xe2\x96\x81the", "<0x41>", "\xc4\xa0x" };
    const int32_t ty[4] = { 2, 1, 6, 4 };
    bb kv = {0}, f;
    kv_tokens(&kv, tok, 4, "llama", ty);
    float m[4 * 3];
    for (int i = 0; i < 12; i++)
        m[i] = (float)i / 4;
    gguf_file(&f, 3, &kv, 3, 32, 0, 3, 4, m, sizeof(m));
    write_bytes(tpath("g.gguf"), f.p, f.n);
    tkm_teacher *t;
    ck_assert_int_eq(load(tpath("g.gguf"), NULL, NULL, &t), 0);
    tkm_teacher_free(t);
    truncate_and_corrupt("g.gguf", f.p, f.n, NULL);
    free(kv.p);
    free(f.p);
}
END_TEST

/* ---- safetensors ---------------------------------------------------------------- */

static void st_file(bb *out, const char *header, const void *data, size_t dn)
{
    memset(out, 0, sizeof(*out));
    b64(out, strlen(header));
    bput(out, header, strlen(header));
    bput(out, data, dn);
}

START_TEST(test_safetensors)
{
    /* BF16 [3, 2] after an F32 tensor, exact values */
    uint16_t v[6] = { 0x3F80, 0xC000, 0x3E80, 0x0000, 0x8000, 0x4780 };
    const float want[6] = { 1, -2, 0.25f, 0, -0.0f, 65536 };
    unsigned char d[8 + 12];
    memset(d, 0, 8);
    memcpy(d + 8, v, 12);
    const char *h = "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"model.embed_tokens.weight\":{\"dtype\":\"BF16\",\"shape\":[3,2],\"data_offsets\":[8,20]},"
                    "\"__metadata__\":{\"format\":\"pt\"}}";
    bb f;
    st_file(&f, h, d, sizeof(d));
    write_bytes(tpath("m.safetensors"), f.p, f.n);
    wtext(tpath("vocab.txt"), "x\ny\n");
    tkm_teacher *t;
    ck_assert_int_eq(load(tpath("m.safetensors"), NULL, NULL, &t), 0);
    ck_assert_str_eq(tkm_teacher_format(t), "safetensors");
    for (int i = 0; i < 6; i++)
        ck_assert(tkm_teacher_matrix(t)[i] == want[i] && !signbit(tkm_teacher_matrix(t)[i]) == !signbit(want[i]));
    EXPECT(t, 1, "y", TKM_ROW_NORMAL);
    EXPECT(t, 2, "", TKM_ROW_UNUSED); /* a padding row */
    tkm_teacher_free(t);
    truncate_and_corrupt("m.safetensors", f.p, f.n, tpath("vocab.txt"));
    free(f.p);
    /* other dtypes are named */
    static const char *const dts[] = { "F64", "I32", "I8", "U8", "F8_E4M3", "BOOL" };
    for (size_t i = 0; i < sizeof(dts) / sizeof(dts[0]); i++) {
        char hh[256];
        snprintf(hh, sizeof(hh), "{\"emb.word_embeddings.weight\":{\"dtype\":\"%s\",\"shape\":[3,2],\"data_offsets\":[0,12]}}",
                 dts[i]);
        st_file(&f, hh, d, 12);
        write_bytes(tpath("m.safetensors"), f.p, f.n);
        ck_assert_int_eq(load(tpath("m.safetensors"), NULL, NULL, &t), TKM_ENOTSUP);
        ck_assert_msg(strstr(tkm_last_error(), dts[i]), "%s", tkm_last_error());
        free(f.p);
    }
    /* two candidates: both named, and --tensor picks one */
    h = "{\"a.embed_tokens.weight\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[0,8]},"
        "\"b.word_embeddings.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,24]}}";
    float m6[6] = { 1, 2, 3, 4, 5, 6 };
    st_file(&f, h, m6, sizeof(m6));
    write_bytes(tpath("m.safetensors"), f.p, f.n);
    ck_assert_int_lt(load(tpath("m.safetensors"), NULL, NULL, &t), 0);
    ck_assert_ptr_nonnull(strstr(tkm_last_error(), "a.embed_tokens.weight"));
    ck_assert_ptr_nonnull(strstr(tkm_last_error(), "b.word_embeddings.weight"));
    ck_assert_int_eq(load(tpath("m.safetensors"), NULL, "b.word_embeddings.weight", &t), 0);
    ck_assert_uint_eq(tkm_teacher_dim(t), 2);
    ck_assert(tkm_teacher_matrix(t)[3] == 6.0f);
    tkm_teacher_free(t);
    free(f.p);
    /* no candidate; offsets that disagree with the shape; a JSON error */
    h = "{\"lm_head.weight\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[0,8]}}";
    st_file(&f, h, m6, 8);
    write_bytes(tpath("m.safetensors"), f.p, f.n);
    ck_assert_int_eq(load(tpath("m.safetensors"), NULL, NULL, &t), TKM_EFORMAT);
    ck_assert_ptr_nonnull(strstr(tkm_last_error(), "--tensor"));
    free(f.p);
    h = "{\"x.embed_tokens.weight\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[0,12]}}";
    st_file(&f, h, m6, 12);
    write_bytes(tpath("m.safetensors"), f.p, f.n);
    ck_assert_int_eq(load(tpath("m.safetensors"), NULL, NULL, &t), TKM_EFORMAT);
    ck_assert_ptr_nonnull(strstr(tkm_last_error(), "data_offsets"));
    free(f.p);
    h = "{\"x.embed_tokens.weight\":{\"dtype\" \"F32\"}}";
    st_file(&f, h, m6, 8);
    write_bytes(tpath("m.safetensors"), f.p, f.n);
    ck_assert_int_eq(load(tpath("m.safetensors"), NULL, NULL, &t), TKM_EFORMAT);
    ck_assert_msg(strstr(tkm_last_error(), "m.safetensors") && strstr(tkm_last_error(), "offset"), "%s",
                  tkm_last_error());
    free(f.p);
}
END_TEST

/* ---- npy ------------------------------------------------------------------------ */

static void npy_file(bb *out, int major, const char *dict, const void *data, size_t dn)
{
    memset(out, 0, sizeof(*out));
    bput(out, "\x93NUMPY", 6);
    b8(out, (unsigned)major);
    b8(out, 0);
    size_t pre = major == 1 ? 10 : 12, hl = strlen(dict) + 1;
    size_t pad = (64 - (pre + hl) % 64) % 64;
    if (major == 1)
        b16(out, (unsigned)(hl + pad));
    else
        b32(out, (uint32_t)(hl + pad));
    bput(out, dict, strlen(dict));
    for (size_t i = 0; i < pad; i++)
        b8(out, ' ');
    b8(out, '\n');
    bput(out, data, dn);
}

START_TEST(test_npy)
{
    wtext(tpath("v.txt"), "a\nb\n");
    uint16_t h[4] = { 0x3C00, 0x4000, 0xC400, 0x0001 };
    bb f;
    npy_file(&f, 2, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }", h, sizeof(h));
    write_bytes(tpath("h.npy"), f.p, f.n);
    tkm_teacher *t;
    ck_assert_int_eq(load(tpath("h.npy"), tpath("v.txt"), NULL, &t), 0);
    ck_assert_str_eq(tkm_teacher_format(t), "npy");
    ck_assert(tkm_teacher_matrix(t)[2] == -4.0f && tkm_teacher_matrix(t)[3] == 0x1p-24f);
    tkm_teacher_free(t);
    truncate_and_corrupt("h.npy", f.p, f.n, tpath("v.txt"));
    free(f.p);
    /* key order and spacing are free; our writer's file reads back bit for bit */
    float m[6] = { 1.5f, -0.0f, 3e-39f, 1e30f, -7, 0.1f };
    npy_file(&f, 1, "{'shape':(3,2),'fortran_order':False,'descr':'<f4'}", m, sizeof(m));
    write_bytes(tpath("o.npy"), f.p, f.n);
    wtext(tpath("v3.txt"), "a\nb\nc\n");
    ck_assert_int_eq(load(tpath("o.npy"), tpath("v3.txt"), NULL, &t), 0);
    ck_assert(memcmp(tkm_teacher_matrix(t), m, sizeof(m)) == 0);
    ck_assert_int_eq(tkm_emb_write_npy(tpath("w.npy"), 3, 2, tkm_teacher_matrix(t)), 0);
    tkm_teacher_free(t);
    free(f.p);
    ck_assert_int_eq(load(tpath("w.npy"), tpath("v3.txt"), NULL, &t), 0);
    ck_assert(memcmp(tkm_teacher_matrix(t), m, sizeof(m)) == 0);
    tkm_teacher_free(t);
    size_t n;
    unsigned char *w = read_all(tpath("w.npy"), &n);
    ck_assert_uint_eq((n - sizeof(m)) % 64, 0); /* data aligned to 64 as numpy does */
    ck_assert(w[6] == 1 && w[n - sizeof(m) - 1] == '\n');
    free(w);
    /* refused: other dtypes, Fortran order, not 2-D, a descr without quotes */
    static const struct { const char *dict; int rc; } bad[] = {
        { "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", TKM_ENOTSUP },
        { "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 2), }", TKM_ENOTSUP },
        { "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }", TKM_ENOTSUP },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", TKM_EFORMAT },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 2), }", TKM_EFORMAT },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 2), }", TKM_EFORMAT },
        { "{'fortran_order': False, 'shape': (3, 2), 'descr': <f4}", TKM_ENOTSUP },
        { "{'descr': '<f4', 'shape': (3, 2), }", TKM_EFORMAT },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        npy_file(&f, 1, bad[i].dict, m, sizeof(m));
        write_bytes(tpath("b.npy"), f.p, f.n);
        ck_assert_msg(load(tpath("b.npy"), tpath("v3.txt"), NULL, &t) == bad[i].rc, "%s: %s", bad[i].dict,
                      tkm_last_error());
        free(f.p);
    }
    /* writers: a directory that does not exist is an error and leaves nothing */
    ck_assert_int_eq(tkm_emb_write_npy(tpath("no/such/dir.npy"), 3, 2, m), TKM_EIO);
    ck_assert_int_eq(tkm_emb_write_gguf(tpath("no/such.gguf"), 3, 2, m, NULL, NULL, NULL, TKM_DTYPE_F32), TKM_EIO);
    ck_assert_int_eq(tkm_emb_write_npy(tpath("e.npy"), 0, 2, m), TKM_EINVAL);
    ck_assert_int_ne(access(tpath("e.npy"), F_OK), 0);
}
END_TEST

/* ---- vocabularies and decoding ------------------------------------------------------- */

/* GPT-2's bytes_to_unicode, written out independently: the code point that
 * spells byte b. */
static unsigned gpt2_char(unsigned b)
{
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
        return b;
    /* the others in byte order from U+0100: 0x00-0x20 (33), 0x7F-0xA0 (34), 0xAD */
    return b <= 0x20 ? 0x100 + b : b <= 0xA0 ? 0x100 + 33 + (b - 0x7F) : 0x100 + 67;
}

static size_t utf8_put(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 63));
        return 2;
    }
    out[0] = (char)(0xE0 | cp >> 12);
    out[1] = (char)(0x80 | ((cp >> 6) & 63));
    out[2] = (char)(0x80 | (cp & 63));
    return 3;
}

START_TEST(test_byte_level)
{
    /* 256 single-byte pieces in a byte-level GGUF, then special, user-defined
     * (raw text) and multi-byte pieces */
    const char *tok[262];
    static char s[256][4];
    for (unsigned b = 0; b < 256; b++) {
        size_t k = utf8_put(gpt2_char(b), s[b]);
        s[b][k] = 0;
        tok[b] = s[b];
    }
    tok[256] = "<|endoftext|>";
    tok[257] = "  four  "; /* user-defined: raw */
    tok[258] = "\xc4\xa0the"; /* Ġthe */
    tok[259] = "\xc4\xa0\xc4\xa0"; /* ĠĠ */
    tok[260] = "\xc3\xa6\xc4\xb9\xc2\xa5"; /* æĹ¥ = E6 97 A5 = U+65E5 */
    tok[261] = "";
    int32_t ty[262];
    for (int i = 0; i < 262; i++)
        ty[i] = 1;
    ty[256] = 3;
    ty[257] = 4;
    bb kv = {0}, f;
    kv_tokens(&kv, tok, 262, "gpt2", ty);
    static float m[262];
    gguf_file(&f, 3, &kv, 3, 32, 0, 1, 262, m, sizeof(m));
    write_bytes(tpath("bl.gguf"), f.p, f.n);
    tkm_teacher *t;
    ck_assert_int_eq(load(tpath("bl.gguf"), NULL, NULL, &t), 0);
    ck_assert_str_eq(tkm_teacher_vocab_style(t), "byte-level");
    for (unsigned b = 0; b < 256; b++) {
        char want = (char)b;
        expect_bytes(t, b, &want, 1, TKM_ROW_NORMAL);
    }
    EXPECT(t, 256, "<|endoftext|>", TKM_ROW_SPECIAL);
    EXPECT(t, 257, "  four  ", TKM_ROW_NORMAL);
    EXPECT(t, 258, " the", TKM_ROW_NORMAL);
    EXPECT(t, 259, "  ", TKM_ROW_NORMAL);
    EXPECT(t, 260, "\xe6\x97\xa5", TKM_ROW_NORMAL);
    EXPECT(t, 261, "", TKM_ROW_UNUSED);
    tkm_teacher_free(t);
    free(f.p);
    /* our writer keeps the raw piece raw (USER_DEFINED) through a round trip */
    static float mm[262];
    const char *tok2[4] = { "\xc4\xa0the", "  four  ", "<|endoftext|>", "\xc3\xa6\xc4\xb9\xc2\xa5" };
    const tkm_row_kind k2[4] = { TKM_ROW_NORMAL, TKM_ROW_NORMAL, TKM_ROW_SPECIAL, TKM_ROW_NORMAL };
    for (int withkinds = 0; withkinds < 2; withkinds++) {
        ck_assert_int_eq(tkm_emb_write_gguf(tpath("w.gguf"), 4, 1, mm, tok2, "byte-level", withkinds ? k2 : NULL,
                                            TKM_DTYPE_F32), 0);
        ck_assert_int_eq(load(tpath("w.gguf"), NULL, NULL, &t), 0);
        EXPECT(t, 0, " the", TKM_ROW_NORMAL);
        EXPECT(t, 1, "  four  ", TKM_ROW_NORMAL);
        EXPECT(t, 3, "\xe6\x97\xa5", TKM_ROW_NORMAL);
        ck_assert_int_eq(tkm_teacher_row_kind(t, 2), withkinds ? TKM_ROW_SPECIAL : TKM_ROW_NORMAL);
        tkm_teacher_free(t);
    }
    /* a normal piece outside the alphabet is refused, naming it */
    tok[257] = "\xc3\xa6\xc2\x97"; /* U+0097 */
    ty[257] = 1;
    free(kv.p);
    memset(&kv, 0, sizeof(kv));
    kv_tokens(&kv, tok, 262, "gpt2", ty);
    gguf_file(&f, 3, &kv, 3, 32, 0, 1, 262, m, sizeof(m));
    write_bytes(tpath("bl.gguf"), f.p, f.n);
    ck_assert_int_eq(load(tpath("bl.gguf"), NULL, NULL, &t), TKM_EFORMAT);
    ck_assert_msg(strstr(tkm_last_error(), "piece 257") && strstr(tkm_last_error(), "byte-level alphabet"), "%s",
                  tkm_last_error());
    free(f.p);
    free(kv.p);
    /* tokenizer.json: added tokens (special or not) are raw text */
    const char *tj = "{\"added_tokens\":[{\"id\":0,\"content\":\"<|endoftext|>\",\"special\":true},"
                     "{\"id\":4,\"content\":\"  \",\"special\":false},{\"id\":5,\"content\":\"h\\u00e9\",\"special\":false}],"
                     "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\"},{\"type\":\"ByteLevel\"}]},"
                     "\"model\":{\"type\":\"BPE\",\"vocab\":{\"<|endoftext|>\":0,\"\\u0120a\":1,\"\\u00c3\\u00a9\":2,\"\\u010a\":3},"
                     "\"merges\":[]}}";
    write_bytes(tpath("tokenizer.json"), tj, strlen(tj));
    float z[8] = {0};
    ck_assert_int_eq(tkm_emb_write_npy(tpath("z.npy"), 8, 1, z), 0);
    ck_assert_int_eq(load(tpath("z.npy"), NULL, NULL, &t), 0); /* tokenizer.json found beside it */
    ck_assert_str_eq(tkm_teacher_vocab_style(t), "byte-level");
    EXPECT(t, 0, "<|endoftext|>", TKM_ROW_SPECIAL);
    EXPECT(t, 1, " a", TKM_ROW_NORMAL);
    EXPECT(t, 2, "\xc3\xa9", TKM_ROW_NORMAL);
    EXPECT(t, 3, "\n", TKM_ROW_NORMAL);
    EXPECT(t, 4, "  ", TKM_ROW_NORMAL);
    EXPECT(t, 5, "h\xc3\xa9", TKM_ROW_NORMAL);
    EXPECT(t, 6, "", TKM_ROW_UNUSED);
    tkm_teacher_free(t);
}
END_TEST

START_TEST(test_sentencepiece_wordpiece_plain)
{
    float z[16] = {0};
    ck_assert_int_eq(tkm_emb_write_npy(tpath("z.npy"), 16, 1, z), 0);
    /* sentencepiece-style tokenizer.json (Unigram, array vocabulary) */
    const char *tj = "{\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true}],"
                     "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\"},"
                     "\"model\":{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[[\"<unk>\",0],[\"\\u2581the\",-1.5],"
                     "[\"a\\u2581\\u2581b\",-2],[\"<0x41>\",0],[\"<0xZZ>\",0],[\"<0x4>\",0],[\"\\u2581\",-3],[\"\",0]]}}";
    write_bytes(tpath("u.json"), tj, strlen(tj));
    tkm_teacher *t;
    ck_assert_int_eq(load(tpath("z.npy"), tpath("u.json"), NULL, &t), 0);
    ck_assert_str_eq(tkm_teacher_vocab_style(t), "sentencepiece");
    EXPECT(t, 0, "<unk>", TKM_ROW_SPECIAL);
    EXPECT(t, 1, " the", TKM_ROW_NORMAL);
    EXPECT(t, 2, "a  b", TKM_ROW_NORMAL);
    EXPECT(t, 3, "A", TKM_ROW_NORMAL);
    EXPECT(t, 4, "<0xZZ>", TKM_ROW_NORMAL); /* not a byte piece: its own text */
    EXPECT(t, 5, "<0x4>", TKM_ROW_NORMAL);
    EXPECT(t, 6, " ", TKM_ROW_NORMAL);
    EXPECT(t, 7, "", TKM_ROW_UNUSED);
    ck_assert_str_eq(tkm_teacher_piece(t, 1), "\xe2\x96\x81the");
    EXPECT(t, 8, "", TKM_ROW_UNUSED); /* 16 rows, 8 entries: padding */
    ck_assert_ptr_null(tkm_teacher_piece(t, 16));
    tkm_teacher_free(t);
    /* WordPiece tokenizer.json: specials from added_tokens, [unusedN], ## */
    tj = "{\"added_tokens\":[{\"id\":0,\"content\":\"[PAD]\",\"special\":true},{\"id\":3,\"content\":\"[CLS]\",\"special\":true}],"
         "\"model\":{\"type\":\"WordPiece\",\"continuing_subword_prefix\":\"##\",\"vocab\":{\"[PAD]\":0,\"[unused0]\":1,"
         "\"[unused12]\":2,\"[CLS]\":3,\"the\":4,\"##s\":5,\"##\":6,\"[unusedX]\":7,\"\\u00e9t\\u00e9\":8}}}";
    write_bytes(tpath("w.json"), tj, strlen(tj));
    ck_assert_int_eq(load(tpath("z.npy"), tpath("w.json"), NULL, &t), 0);
    ck_assert_str_eq(tkm_teacher_vocab_style(t), "wordpiece");
    EXPECT(t, 0, " [PAD]", TKM_ROW_SPECIAL);
    EXPECT(t, 1, " [unused0]", TKM_ROW_UNUSED);
    EXPECT(t, 2, " [unused12]", TKM_ROW_UNUSED);
    EXPECT(t, 3, " [CLS]", TKM_ROW_SPECIAL);
    EXPECT(t, 4, " the", TKM_ROW_NORMAL);
    EXPECT(t, 5, "s", TKM_ROW_NORMAL);
    EXPECT(t, 6, "", TKM_ROW_UNUSED); /* "##" alone decodes to nothing */
    EXPECT(t, 7, " [unusedX]", TKM_ROW_NORMAL);
    EXPECT(t, 8, " \xc3\xa9t\xc3\xa9", TKM_ROW_NORMAL);
    tkm_teacher_free(t);
    /* vocab.txt: WordPiece by ##, CRLF line ends, an empty line */
    wtext(tpath("v.txt"), "[PAD]\r\n[UNK]\r\nthe\r\n##ing\r\n\r\n[MASK]\r\n");
    ck_assert_int_eq(load(tpath("z.npy"), tpath("v.txt"), NULL, &t), 0);
    ck_assert_str_eq(tkm_teacher_vocab_style(t), "wordpiece");
    EXPECT(t, 1, " [UNK]", TKM_ROW_SPECIAL);
    EXPECT(t, 3, "ing", TKM_ROW_NORMAL);
    EXPECT(t, 4, " ", TKM_ROW_UNUSED); /* an empty line is no token */
    EXPECT(t, 5, " [MASK]", TKM_ROW_SPECIAL);
    tkm_teacher_free(t);
    /* plain lines: bytes as they are (no final newline needed) */
    wtext(tpath("p.txt"), "the\n cat\n\xe6\x97\xa5#\n##x y");
    ck_assert_int_eq(load(tpath("z.npy"), tpath("p.txt"), NULL, &t), 0);
    ck_assert_str_eq(tkm_teacher_vocab_style(t), "wordpiece"); /* "##x y" makes it WordPiece */
    tkm_teacher_free(t);
    wtext(tpath("p.txt"), "the\n cat\n\xe6\x97\xa5#\nx y");
    ck_assert_int_eq(load(tpath("z.npy"), tpath("p.txt"), NULL, &t), 0);
    ck_assert_str_eq(tkm_teacher_vocab_style(t), "plain");
    EXPECT(t, 0, "the", TKM_ROW_NORMAL);
    EXPECT(t, 1, " cat", TKM_ROW_NORMAL);
    EXPECT(t, 2, "\xe6\x97\xa5#", TKM_ROW_NORMAL);
    EXPECT(t, 3, "x y", TKM_ROW_NORMAL);
    EXPECT(t, 4, "", TKM_ROW_UNUSED);
    tkm_teacher_free(t);
    /* invalid UTF-8 in a line is named with its line */
    wtext(tpath("p.txt"), "a\nb\xff\n");
    ck_assert_int_eq(load(tpath("z.npy"), tpath("p.txt"), NULL, &t), TKM_EFORMAT);
    ck_assert_ptr_nonnull(strstr(tkm_last_error(), "line 2"));
    /* more entries than rows, and an id beyond the rows, are refused before allocating */
    tj = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":60000000}}}";
    write_bytes(tpath("big.json"), tj, strlen(tj));
    ck_assert_int_eq(load(tpath("z.npy"), tpath("big.json"), NULL, &t), TKM_EFORMAT);
    ck_assert_ptr_nonnull(strstr(tkm_last_error(), "only 16 rows"));
    /* a vocabulary file that is missing */
    ck_assert_int_eq(load(tpath("z.npy"), tpath("none.txt"), NULL, &t), TKM_EIO);
    ck_assert_ptr_nonnull(strstr(tkm_last_error(), "none.txt"));
}
END_TEST

static Suite *softemb_io_suite(void)
{
    Suite *s = suite_create("softemb_io");
    TCase *c = tcase_create("formats");
    tcase_add_checked_fixture(c, setup_dir, teardown_dir);
    tcase_add_test(c, test_f16_every_value);
    tcase_add_test(c, test_bf16_rounding);
    tcase_add_test(c, test_gguf_v2_alignment_every_kv_type);
    tcase_add_test(c, test_safetensors);
    tcase_add_test(c, test_npy);
    tcase_set_timeout(c, 120);
    suite_add_tcase(s, c);
    TCase *l = tcase_create("limits");
    tcase_add_checked_fixture(l, setup_dir, teardown_dir);
    tcase_add_test(l, test_gguf_truncation_and_corruption);
    tcase_set_timeout(l, 120);
    suite_add_tcase(s, l);
    TCase *d = tcase_create("decoding");
    tcase_add_checked_fixture(d, setup_dir, teardown_dir);
    tcase_add_test(d, test_byte_level);
    tcase_add_test(d, test_sentencepiece_wordpiece_plain);
    suite_add_tcase(s, d);
    return s;
}

int main(void)
{
    printf("random seed %llu\n", (unsigned long long)rs);
    SRunner *sr = srunner_create(softemb_io_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
