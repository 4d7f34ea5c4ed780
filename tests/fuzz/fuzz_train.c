/* fuzz_train.c - libFuzzer target: the trainer on tiny corpora. Three option
 * bytes (model type, byte fallback, normalizer switches, digit/script
 * splitting, vocabulary size, piece length, coverage, a user-defined
 * symbol, whitespace as suffix, pieces across words), then the corpus ('\n'-separated lines). A trained model must
 * serialize and load again, train to the same bytes with two threads, and
 * with byte fallback and no whitespace folding give every valid UTF-8 line
 * without U+2581 back from decode(encode(line)) (when spaces have a piece). */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3 || size > 4096) return 0;
    unsigned f = data[0], g = data[1], h = data[2];
    const char *text = (const char *)data + 3;
    size_t len = size - 3;
    tkm_train_options o;
    tkm_train_options_init(&o);
    o.model_type = (f & 1) ? TKM_MODEL_UNIGRAM : TKM_MODEL_BPE;
    o.byte_fallback = (f >> 1) & 1;
    o.add_dummy_prefix = (f >> 2) & 1;
    o.remove_extra_whitespaces = (f >> 3) & 1;
    o.split_digits = (f >> 4) & 1;
    o.split_by_unicode_script = !((f >> 5) & 1);
    o.allow_whitespace_only_pieces = (f >> 6) & 1;
    static const char *const uds[] = { "<tag>" };
    if ((f >> 7) & 1) {
        o.user_defined_symbols = uds;
        o.n_user_defined = 1;
    }
    o.vocab_size = 8 + (int)g + (o.byte_fallback ? 256 : 0);
    o.hard_vocab_limit = 0;
    o.max_piece_length = 1 + (int)(h & 15);
    static const float cov[4] = { 1.0f, 0.9995f, 0.98f, 0.5f };
    o.character_coverage = cov[(h >> 4) & 3];
    o.treat_whitespace_as_suffix = (h >> 6) & 1;
    o.split_by_whitespace = !((h >> 7) & 1);
    o.seed_size = 1000;
    int rc;
    tkm_model *m = fuzz_train(&o, text, len, &rc);
    if (!m) {
        FUZZ_CHECK(rc == TKM_EEMPTY || rc == TKM_EVOCAB || rc == TKM_EINVAL, "training failed with %d: %s", rc,
                   tkm_last_error());
        return 0;
    }
    size_t bl;
    const uint8_t *bytes = tkm_model_bytes(m, &bl);
    tkm_model *back = NULL;
    FUZZ_CHECK(tkm_model_load_mem(bytes, bl, "trained", &back) == 0, "trained model does not load: %s",
               tkm_last_error());
    FUZZ_CHECK(tkm_model_size(back) == tkm_model_size(m), "size changed");

    o.threads = 2;
    tkm_model *m2 = fuzz_train(&o, text, len, &rc);
    FUZZ_CHECK(m2, "second training failed: %s", tkm_last_error());
    size_t bl2;
    const uint8_t *bytes2 = tkm_model_bytes(m2, &bl2);
    FUZZ_CHECK(bl2 == bl && !memcmp(bytes, bytes2, bl), "1 and 2 threads give different models");
    tkm_model_free(m2);

    tkm_encoder *e = NULL;
    FUZZ_CHECK(tkm_encoder_new(back, &e) == 0, "encoder: %s", tkm_last_error());
    /* Without a U+2581 piece (a low --character-coverage can drop it when
     * spaces are rare; spm_train does the same at its minimum, 0.98) a space
     * is byte-fallback bytes E2 96 81, which decode as U+2581, not as a space,
     * in sentencepiece too: such lines (and, with the dummy prefix, every
     * line) cannot round-trip. */
    int space_piece = tkm_model_piece_id(back, "\xe2\x96\x81", 3) >= 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        int ok = o.byte_fallback && !o.remove_extra_whitespaces &&
                 (space_piece || (!o.add_dummy_prefix && !memchr(text + i, ' ', end - i)));
        for (size_t j = i; ok && j < end;) {
            size_t k = fuzz_utf8_char((const unsigned char *)text + j, end - j);
            if (k == 0 || (k == 3 && !memcmp(text + j, "\xe2\x96\x81", 3))) ok = 0;
            j += k;
        }
        if (ok)
            fuzz_roundtrip(back, e, text + i, end - i, "trained");
        else {
            const int32_t *ids;
            size_t k;
            FUZZ_CHECK(tkm_encode(e, text + i, end - i, &ids, &k) == 0, "encode: %s", tkm_last_error());
        }
        i = end + 1;
    }
    tkm_encoder_free(e);
    tkm_model_free(back);
    tkm_model_free(m);
    return 0;
}
