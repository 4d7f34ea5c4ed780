/* fuzz_common.h - shared helpers of the libFuzzer targets in tests/fuzz:
 * the loaders take paths, so each input is written to one scratch file in a
 * per-process directory (under $TMPDIR, /dev/shm when it exists), and a few
 * fixed texts exercise the encoder and decoder of whatever model loaded. */
#ifndef TKM_FUZZ_COMMON_H
#define TKM_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tokenmill.h"

/* Stops the run with a message libFuzzer reports as a crash (an abort). */
#define FUZZ_CHECK(cond, ...)                                                                         \
    do {                                                                                              \
        if (!(cond)) {                                                                                \
            fprintf(stderr, "fuzz check failed: %s (%s:%d): ", #cond, __FILE__, __LINE__);            \
            fprintf(stderr, __VA_ARGS__);                                                             \
            fprintf(stderr, "\n");                                                                    \
            abort();                                                                                  \
        }                                                                                             \
    } while (0)

static char fuzz_dir[512];

static void fuzz_rmdir(void)
{
    char cmd[600];
    if (!fuzz_dir[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir);
}

/* fuzz_dir/name, created on first use and removed at exit. */
static const char *fuzz_path(const char *name)
{
    static char buf[4][700];
    static int k;
    if (!fuzz_dir[0]) {
        const char *t = getenv("TMPDIR");
        if (!t || !*t) t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/tkm-fuzz.XXXXXX", t);
        if (!mkdtemp(fuzz_dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_rmdir);
    }
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", fuzz_dir, name);
    return buf[k];
}

static void fuzz_write(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

/* Texts every loaded model encodes: ASCII, whitespace runs, Japanese, digits,
 * invalid UTF-8, NUL, a literal U+2581, byte-fallback candidates. */
#define FUZZ_TEXT(s) { s, sizeof(s) - 1 }
static const struct {
    const char *s;
    size_t n;
} fuzz_texts[] = {
    FUZZ_TEXT("Hello world, this is a test."),
    FUZZ_TEXT("  leading and  double  spaces \t tab\r\n"),
    FUZZ_TEXT("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe6\x96\x87\xe7\xab\xa0\xe3\x80\x82 12345 3.14"),
    FUZZ_TEXT("\xff\xfe invalid \xc3 utf8 \xe2\x82"),
    FUZZ_TEXT("nul\0byte"),
    FUZZ_TEXT("\xe2\x96\x81meta \xe2\x96\x81\xe2\x96\x81"),
    FUZZ_TEXT("<0x41> <unk> <s> </s> \xf0\x9f\x98\x80 emoji"),
    FUZZ_TEXT(""),
};

/* Encodes the fixed texts and extra (may be NULL), decodes what came out, and
 * checks ids are in range and the encoder is deterministic (a second encode
 * of the same text, after another text filled the cache, gives the same ids). */
static void fuzz_exercise_model(const tkm_model *m, const char *extra, size_t extra_len)
{
    int n = tkm_model_size(m);
    FUZZ_CHECK(n > 0, "model with %d pieces", n);
    for (int id = -1; id <= n; id++) {
        size_t len;
        (void)tkm_model_piece(m, id, &len);
        (void)tkm_model_score(m, id);
        (void)tkm_model_piece_type(m, id);
    }
    tkm_encoder *e = NULL;
    if (tkm_encoder_new(m, &e) < 0) return; /* e.g. a Unigram-only feature not supported */
    size_t nt = sizeof fuzz_texts / sizeof fuzz_texts[0];
    for (size_t i = 0; i <= nt; i++) {
        const char *t = i < nt ? fuzz_texts[i].s : extra;
        size_t tl = i < nt ? fuzz_texts[i].n : extra_len;
        if (!t) continue;
        const int32_t *ids;
        size_t k;
        if (tkm_encode(e, t, tl, &ids, &k) < 0) continue;
        int32_t *copy = malloc((k ? k : 1) * sizeof *copy);
        if (!copy) abort();
        memcpy(copy, ids, k * sizeof *copy);
        for (size_t j = 0; j < k; j++) FUZZ_CHECK(copy[j] >= 0 && copy[j] < n, "id %d of %d", copy[j], n);
        char *out = NULL;
        size_t ol;
        if (tkm_decode(m, copy, k, &out, &ol) == 0) {
            FUZZ_CHECK(out && out[ol] == 0, "decode output not NUL-terminated");
            tkm_free(out);
        }
        /* another text in between, then the same one again */
        size_t k2;
        (void)tkm_encode(e, fuzz_texts[(i + 1) % nt].s, fuzz_texts[(i + 1) % nt].n, &ids, &k2);
        if (tkm_encode(e, t, tl, &ids, &k2) == 0) {
            FUZZ_CHECK(k2 == k && !memcmp(ids, copy, k * sizeof *copy), "second encode differs");
        }
        free(copy);
    }
    tkm_encoder_free(e);
}

#endif
