/* fuzz_model.c - libFuzzer target: a sentencepiece .model (protobuf) from
 * memory; when it loads, encode/decode fixed texts, vocabulary statistics and
 * the tokenizer.json export. */
#include "fuzz_common.h"
#include "tokenmill_analyze.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tkm_model *m = NULL;
    if (tkm_model_load_mem(data, size, "fuzz.model", &m) < 0) {
        FUZZ_CHECK(m == NULL, "failed load left a model");
        return 0;
    }
    size_t bl;
    const uint8_t *b = tkm_model_bytes(m, &bl);
    FUZZ_CHECK(b != NULL, "no bytes");
    fuzz_exercise_model(m, NULL, 0);
    tkm_analyze_vocab v;
    if (tkm_analyze_vocab_stats(m, &v) == 0) tkm_analyze_vocab_clear(&v);
    if (size < 4096) {
        /* export writes PATH.tmp.PID and renames: the file may or may not be made */
        const char *p = fuzz_path("export.json");
        if (tkm_model_export_hf_json_flags(m, p, TKM_EXPORT_UNIGRAM_TIES) == 0) {
            tkm_model *h = NULL;
            if (tkm_model_load_hf_json(p, &h) == 0) tkm_model_free(h);
        }
        unlink(p);
    }
    tkm_model_free(m);
    return 0;
}
