/* fuzz_util.h - for the round-trip and trainer targets: training a small
 * model in memory, and turning fuzz bytes into valid UTF-8 text. */
#ifndef TKM_FUZZ_UTIL_H
#define TKM_FUZZ_UTIL_H

#include "fuzz_common.h"

/* Length of the valid UTF-8 character at s (strict: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0. */
static size_t fuzz_utf8_char(const unsigned char *s, size_t n)
{
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t k;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) k = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) k = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) k = 4, cp = c & 0x07;
    else return 0;
    if (n < k) return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return k;
}

/* Trains a model on lines (NUL-free corpus text, '\n'-separated) with the
 * options given; returns NULL (and the code in *rc) on failure. */
static tkm_model *fuzz_train(const tkm_train_options *o, const char *text, size_t len, int *rc)
{
    tkm_trainer *t = NULL;
    tkm_model *m = NULL;
    *rc = tkm_trainer_new(o, &t);
    for (size_t i = 0; *rc == 0 && i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - text) : len;
        *rc = tkm_trainer_add_line(t, text + i, e - i);
        i = e + 1;
    }
    if (*rc == 0) *rc = tkm_trainer_train(t, &m);
    tkm_trainer_free(t);
    return *rc == 0 ? m : NULL;
}

/* Encodes text, decodes the ids and requires the same bytes back. */
static void fuzz_roundtrip(const tkm_model *m, tkm_encoder *e, const char *text, size_t len, const char *what)
{
    const int32_t *ids;
    size_t k;
    int rc = tkm_encode(e, text, len, &ids, &k);
    FUZZ_CHECK(rc == 0, "%s: encode failed: %s", what, tkm_last_error());
    char *out = NULL;
    size_t ol = 0;
    rc = tkm_decode(m, ids, k, &out, &ol);
    FUZZ_CHECK(rc == 0, "%s: decode failed: %s", what, tkm_last_error());
    if (ol != len || memcmp(out, text, len)) {
        fprintf(stderr, "%s: round trip differs\n  in  (%zu):", what, len);
        for (size_t i = 0; i < len; i++) fprintf(stderr, " %02x", (unsigned char)text[i]);
        fprintf(stderr, "\n  out (%zu):", ol);
        for (size_t i = 0; i < ol; i++) fprintf(stderr, " %02x", (unsigned char)out[i]);
        fprintf(stderr, "\n  ids:");
        for (size_t i = 0; i < k; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
        abort();
    }
    tkm_free(out);
}

#endif
