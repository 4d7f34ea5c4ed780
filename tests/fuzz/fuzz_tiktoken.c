/* fuzz_tiktoken.c - libFuzzer target: a tiktoken rank file; the first byte
 * picks the pre-tokenization pattern (r50k, cl100k, o200k), the rest is the
 * file. When it loads, encode/decode fixed texts. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int pattern = TKM_TIKTOKEN_R50K + data[0] % 3;
    const char *p = fuzz_path("fuzz.tiktoken");
    fuzz_write(p, data + 1, size - 1);
    tkm_model *m = NULL;
    if (tkm_model_load_tiktoken(p, pattern, &m) == 0) {
        fuzz_exercise_model(m, NULL, 0);
        tkm_model_free(m);
    } else {
        FUZZ_CHECK(m == NULL, "failed load left a model");
    }
    return 0;
}
