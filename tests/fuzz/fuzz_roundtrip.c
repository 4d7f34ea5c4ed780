/* fuzz_roundtrip.c - libFuzzer target: decode(encode(x)) == x for valid UTF-8
 * without a literal U+2581 (the whitespace marker, which decodes to a space),
 * on eight models trained at start-up from a small built-in corpus: BPE and
 * Unigram, with and without byte fallback, with and without the dummy
 * prefix. The first input byte picks the model; the rest becomes the text:
 * invalid UTF-8 and U+2581 are dropped, and for models without byte
 * fallback so is every character the model has no piece for (those become
 * the unknown piece, whose surface cannot round-trip). */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const char corpus[] =
    "The quick brown fox jumps over the lazy dog.\n"
    "  Leading spaces, double  spaces and a tab\there.\n"
    "Numbers 12345 and 3.14159, dates 2026-12-04.\n"
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe6\x96\x87\xe7\xab\xa0\xe3\x81\xa7\xe3\x81\x99\xe3\x80\x82\n"
    "\xe6\x97\xa5\xe6\x9c\xac\xe3\x81\xae\xe6\x9c\xac\xe3\x82\x92\xe8\xaa\xad\xe3\x82\x80\xe3\x80\x82\n"
    "Caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 \xc3\x9c" "ber stra\xc3\x9f" "e.\n"
    "the the the quick quick brown fox fox fox over over lazy dog dog\n"
    "emoji \xf0\x9f\x98\x80 and symbols <>&\"' {}[]()!?;:\n"
    "Mixed\xe6\x97\xa5\xe6\x9c\xac" "text123\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88 again\n";

static tkm_model *models[8];
static tkm_encoder *encoders[8];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    for (int i = 0; i < 8; i++) {
        tkm_train_options o;
        tkm_train_options_init(&o);
        o.model_type = (i & 1) ? TKM_MODEL_UNIGRAM : TKM_MODEL_BPE;
        o.byte_fallback = (i >> 1) & 1;
        o.add_dummy_prefix = (i >> 2) & 1;
        o.vocab_size = 150 + (o.byte_fallback ? 256 : 0);
        o.hard_vocab_limit = 0;
        o.character_coverage = 0.98f; /* some characters stay out of the vocabulary */
        int rc;
        models[i] = fuzz_train(&o, corpus, sizeof corpus - 1, &rc);
        FUZZ_CHECK(models[i], "training model %d: %s", i, tkm_last_error());
        FUZZ_CHECK(tkm_encoder_new(models[i], &encoders[i]) == 0, "encoder %d: %s", i, tkm_last_error());
    }
    return 0;
}

/* A space is the piece U+2581 (identity normalization escapes it). */
static int char_known(const tkm_model *m, const char *c, size_t k)
{
    int id = (k == 1 && c[0] == ' ') ? tkm_model_piece_id(m, "\xe2\x96\x81", 3) : tkm_model_piece_id(m, c, k);
    if (id < 0) return 0;
    tkm_piece_type ty = tkm_model_piece_type(m, id);
    return ty == TKM_PIECE_NORMAL || ty == TKM_PIECE_USER_DEFINED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int which = data[0] & 7;
    const tkm_model *m = models[which];
    int bf = (which >> 1) & 1;
    char *text = malloc(size);
    if (!text) abort();
    size_t n = 0;
    for (size_t i = 1; i < size;) {
        size_t k = fuzz_utf8_char(data + i, size - i);
        if (k == 0) {
            i++;
            continue;
        }
        int meta = k == 3 && !memcmp(data + i, "\xe2\x96\x81", 3);
        if (!meta && (bf || char_known(m, (const char *)data + i, k))) {
            memcpy(text + n, data + i, k);
            n += k;
        }
        i += k;
    }
    static const char *const names[8] = { "bpe", "unigram", "bpe+bytes", "unigram+bytes", "bpe+prefix",
                                          "unigram+prefix", "bpe+bytes+prefix", "unigram+bytes+prefix" };
    fuzz_roundtrip(m, encoders[which], text, n, names[which]);
    free(text);
    return 0;
}
