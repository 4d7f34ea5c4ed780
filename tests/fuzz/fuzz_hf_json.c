/* fuzz_hf_json.c - libFuzzer target: a Hugging Face tokenizer.json; when it
 * loads, encode/decode fixed texts. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_path("tokenizer.json");
    fuzz_write(p, data, size);
    tkm_model *m = NULL;
    if (tkm_model_load_hf_json(p, &m) == 0) {
        fuzz_exercise_model(m, NULL, 0);
        tkm_model_free(m);
    } else {
        FUZZ_CHECK(m == NULL, "failed load left a model");
    }
    return 0;
}
