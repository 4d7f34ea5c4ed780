/* fuzz_splice.c - libFuzzer target: `softemb splice` on hostile GGUF files.
 * The whole-file reader (softemb/gguf.c) parses the input in memory and every
 * pair and tensor it accepts is walked; then the input is spliced with a
 * small BPE model and a 32-wide encoder (both made once, at the first call):
 * a failure must leave no output file, a success a GGUF the reader accepts
 * with one row per new piece. */
#include "fuzz_util.h"
#include "../../softemb/gguf_internal.h"
#include "tokenmill_softemb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tkm_model *model;
static tkm_se_encoder *enc;

static void setup(void)
{
    tkm_train_options o;
    tkm_train_options_init(&o);
    o.vocab_size = 40;
    o.hard_vocab_limit = 0;
    static const char text[] = "the cat sat on the mat\nthe dog ate the hat\nan owl saw the cow\n";
    int rc;
    model = fuzz_train(&o, text, sizeof(text) - 1, &rc);
    FUZZ_CHECK(model, "training the vocabulary failed: %s", tkm_last_error());
    /* a teacher: 8 rows x 32 (.npy) with a vocab.txt */
    const char *vp = fuzz_path("vocab.txt"), *np = fuzz_path("teacher.npy");
    static const char vocab[] = "\xe2\x96\x81the\ncat\nsat\n\xe2\x96\x81on\nmat\ndog\nowl\ncow\n";
    fuzz_write(vp, vocab, sizeof(vocab) - 1);
    char h[128];
    int hl = snprintf(h, sizeof h, "{'descr': '<f4', 'fortran_order': False, 'shape': (8, 32), }");
    unsigned char buf[10 + 128 + 8 * 32 * 4];
    size_t pad = (64 - (10 + (size_t)hl + 1) % 64) % 64, n = 0;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(hl + pad + 1);
    buf[9] = 0;
    n = 10;
    memcpy(buf + n, h, (size_t)hl);
    n += (size_t)hl;
    memset(buf + n, ' ', pad);
    n += pad;
    buf[n++] = '\n';
    for (int i = 0; i < 8 * 32; i++) {
        float f = (float)((i * 37) % 101) / 50.0f - 1.0f;
        memcpy(buf + n, &f, 4);
        n += 4;
    }
    fuzz_write(np, buf, n);
    tkm_teacher_opts to = { NULL, vp };
    tkm_teacher *t = NULL;
    FUZZ_CHECK(tkm_teacher_load(np, &to, &t) == 0, "teacher: %s", tkm_last_error());
    uint8_t split[8] = {0};
    tkm_se_options so;
    tkm_se_options_default(&so, 32);
    so.layers = 1;
    so.width = 16;
    so.heads = 2;
    so.ngram_buckets = 64;
    so.steps = 1;
    so.batch = 8;
    so.threads = 1;
    so.log_every = 0;
    FUZZ_CHECK(tkm_se_train(t, split, &so, NULL, &enc) == 0, "encoder: %s", tkm_last_error());
    tkm_teacher_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4 || memcmp(data, "GGUF", 4))
        return 0;
    if (!model)
        setup();
    tkmi_gguf g;
    if (tkmi_gguf_parse(data, size, "fuzz.gguf", &g) == 0) {
        volatile int64_t sink = 0;
        for (size_t i = 0; i < g.nkv; i++) {
            FUZZ_CHECK(g.kv[i].start < g.kv[i].val && g.kv[i].val <= g.kv[i].end && g.kv[i].end <= size, "pair bounds");
            sink += tkmi_gguf_int(&g, &g.kv[i]);
        }
        for (size_t i = 0; i < g.nt; i++) {
            FUZZ_CHECK(g.data + g.t[i].off + g.t[i].nbytes <= size, "tensor beyond the file");
            if (g.t[i].nbytes)
                sink += data[g.data + g.t[i].off + g.t[i].nbytes - 1];
        }
        tkmi_gguf_free(&g);
    }
    const char *in = fuzz_path("in.gguf"), *out = fuzz_path("out.gguf");
    fuzz_write(in, data, size);
    unlink(out);
    tkm_se_splice_opts o = { enc, enc, 1 };
    tkm_se_splice_stats st;
    int rc = tkm_se_splice(in, model, &o, out, &st);
    if (rc < 0) {
        FUZZ_CHECK(access(out, F_OK) != 0, "a failed splice left %s", out);
        return 0;
    }
    FILE *f = fopen(out, "rb");
    FUZZ_CHECK(f, "no output");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    FUZZ_CHECK(b && fread(b, 1, (size_t)n, f) == (size_t)n, "read back");
    fclose(f);
    FUZZ_CHECK(tkmi_gguf_parse(b, (size_t)n, out, &g) == 0, "the splice does not parse: %s", tkm_last_error());
    const tkmi_gguf_tensor *te = tkmi_gguf_tensor_find(&g, "token_embd.weight");
    FUZZ_CHECK(te && te->ne[1] == (uint64_t)tkm_model_size(model) && st.rows == (size_t)tkm_model_size(model),
               "token_embd rows");
    tkmi_gguf_free(&g);
    free(b);
    return 0;
}
