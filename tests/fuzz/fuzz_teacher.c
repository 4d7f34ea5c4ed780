/* fuzz_teacher.c - libFuzzer targets for the softemb teacher readers, built
 * once per format (-DFUZZ_GGUF, -DFUZZ_SAFETENSORS, -DFUZZ_NPY): inputs of
 * another format are skipped so each target stays on its parser. GGUF brings
 * its own vocabulary; safetensors and .npy get a two-piece vocab.txt. Every
 * row of a loaded teacher is read back. */
#include "fuzz_common.h"
#include "tokenmill_softemb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *vocab;
    tkm_teacher_opts o = { NULL, NULL };
#if defined(FUZZ_GGUF)
    if (size < 4 || memcmp(data, "GGUF", 4)) return 0;
    const char *p = fuzz_path("fuzz.gguf");
#elif defined(FUZZ_SAFETENSORS)
    if (size < 9 || data[8] != '{') return 0;
    const char *p = fuzz_path("fuzz.safetensors");
#elif defined(FUZZ_NPY)
    if (size < 6 || memcmp(data, "\x93NUMPY", 6)) return 0;
    const char *p = fuzz_path("fuzz.npy");
#else
#error "define FUZZ_GGUF, FUZZ_SAFETENSORS or FUZZ_NPY"
#endif
#if !defined(FUZZ_GGUF)
    if (!vocab) {
        vocab = strdup(fuzz_path("vocab.txt"));
        fuzz_write(vocab, "\xe2\x96\x81the\n<0x41>\n", 10);
    }
    o.vocab = vocab;
#endif
    fuzz_write(p, data, size);
    tkm_teacher *t = NULL;
    if (tkm_teacher_load(p, &o, &t) < 0) {
        FUZZ_CHECK(t == NULL, "failed load left a teacher");
        return 0;
    }
    size_t rows = tkm_teacher_rows(t), dim = tkm_teacher_dim(t);
    const float *mat = tkm_teacher_matrix(t);
    FUZZ_CHECK(rows > 0 && dim > 0 && mat, "empty teacher %zu x %zu", rows, dim);
    volatile float sink = 0;
    for (size_t r = 0; r < rows; r++) {
        size_t len;
        const unsigned char *b = tkm_teacher_bytes(t, r, &len);
        for (size_t i = 0; i < len; i++) sink += b[i];
        const char *pc = tkm_teacher_piece(t, r);
        if (pc) sink += (float)strlen(pc);
        FUZZ_CHECK(tkm_teacher_row_kind(t, r) <= TKM_ROW_UNUSED, "row kind");
        sink += mat[r * dim] + mat[r * dim + dim - 1];
    }
    (void)tkm_teacher_format(t);
    (void)tkm_teacher_vocab_style(t);
    tkm_teacher_free(t);
    return 0;
}
