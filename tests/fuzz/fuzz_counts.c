/* fuzz_counts.c - libFuzzer target: count files (.tkc, trainer/count_file.c),
 * gzip or plain. A file the reader accepts must re-encode, and its re-encoded
 * copy must read back and re-encode to the same bytes (the format has one
 * canonical encoding of a set of counts); damaged files must only be errors,
 * also to the k-way merge. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int reencode(const char *in, const char *out)
{
    tkm_train_options o;
    tkm_train_options_init(&o);
    tkm_trainer *t = NULL;
    int rc = tkm_trainer_new(&o, &t);
    FUZZ_CHECK(rc == 0, "trainer_new: %s", tkm_last_error());
    rc = tkm_trainer_add_counts(t, in);
    if (rc == 0) rc = tkm_trainer_write_counts(t, out);
    tkm_trainer_free(t);
    return rc;
}

static uint8_t *slurp(const char *p, size_t *n)
{
    FILE *f = fopen(p, "rb");
    FUZZ_CHECK(f != NULL, "cannot open %s", p);
    uint8_t *b = NULL;
    size_t cap = 0, len = 0, k;
    do {
        if (len == cap) {
            cap = cap ? 2 * cap : 65536;
            b = realloc(b, cap);
            FUZZ_CHECK(b != NULL, "out of memory");
        }
        k = fread(b + len, 1, cap - len, f);
        len += k;
    } while (k > 0);
    fclose(f);
    *n = len;
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = fuzz_path("in.tkc");
    fuzz_write(in, data, size);
    char a[700], b[700];
    snprintf(a, sizeof a, "%s", fuzz_path("a.tkc"));
    snprintf(b, sizeof b, "%s", fuzz_path("b.tkc"));
    unlink(a);
    /* the k-way merge reads the same bytes through its own checks (the
     * first file's options are what the others are held to) */
    const char *two[2] = {in, in};
    char mp[700];
    snprintf(mp, sizeof mp, "%s", fuzz_path("m.tkc"));
    unlink(mp);
    if (tkm_counts_merge(two, 2, mp, NULL) < 0) FUZZ_CHECK(access(mp, F_OK) != 0, "merge output left after an error");
    if (reencode(in, a) < 0) {
        FUZZ_CHECK(access(a, F_OK) != 0, "output left after an error");
        return 0;
    }
    int rc = reencode(a, b);
    FUZZ_CHECK(rc == 0, "re-encoded file does not read back: %s", tkm_last_error());
    size_t na, nb;
    uint8_t *pa = slurp(a, &na), *pb = slurp(b, &nb);
    FUZZ_CHECK(na == nb && memcmp(pa, pb, na) == 0, "re-encoding is not stable (%zu vs %zu bytes)", na, nb);
    free(pa);
    free(pb);
    return 0;
}
