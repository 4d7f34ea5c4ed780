/* splice.c - `softemb splice`: a llama.cpp model (GGUF) given a new
 * vocabulary. token_embd (and an untied output.weight) get one row per new
 * piece: the old row, byte for byte, where the piece was in the old
 * vocabulary, else a row predicted by a softemb encoder; the tokenizer
 * metadata becomes the new model's; every other tensor and pair is copied. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../lib/fileio.h"
#include "../lib/hf_pipeline.h"
#include "../lib/model_internal.h"
#include "../lib/tkm_internal.h"
#include "gguf_internal.h"
#include "tokenmill_softemb.h"

/* ---- the output: PATH.tmp.PID, buffered, renamed at the end ---------------------------- */

typedef struct {
    tkmi_outfile f; /* lib/fileio.c: PATH.tmp.PID, or PATH in place by the special-file rule */
    int open;
    unsigned char *buf;
    size_t n, cap;
    uint64_t written;
} wout;

static int w_flush(wout *w)
{
    TKM_FORWARD_IF_ERROR(tkmi_out_write(&w->f, w->buf, w->n));
    w->n = 0;
    return 0;
}

static int w_put(wout *w, const void *p, size_t n)
{
    const unsigned char *s = p;
    w->written += n;
    while (n) {
        if (w->n == w->cap)
            TKM_FORWARD_IF_ERROR(w_flush(w));
        size_t k = w->cap - w->n < n ? w->cap - w->n : n;
        memcpy(w->buf + w->n, s, k);
        w->n += k;
        s += k;
        n -= k;
    }
    return 0;
}

static int w_pad(wout *w, size_t align)
{
    static const unsigned char zeros[64] = {0};
    size_t k = (size_t)((align - w->written % align) % align);
    while (k) {
        size_t c = k < sizeof(zeros) ? k : sizeof(zeros);
        TKM_FORWARD_IF_ERROR(w_put(w, zeros, c));
        k -= c;
    }
    return 0;
}

static int w_open(wout *w, const char *path)
{
    memset(w, 0, sizeof(*w));
    w->cap = 1 << 20;
    w->buf = tkmi_malloc(w->cap);
    TKM_RETURN_ERROR_IF(!w->buf, TKM_ENOMEM, "out of memory writing %s", path);
    TKM_FORWARD_IF_ERROR(tkmi_out_open(&w->f, path));
    w->open = 1;
    return 0;
}

/* Commits (rc == 0) or removes the temp file; frees w. */
static int w_close(wout *w, int rc)
{
    if (w->open) {
        if (rc == 0)
            rc = w_flush(w);
        if (rc == 0)
            rc = tkmi_out_commit(&w->f);
        else
            tkmi_out_abort(&w->f);
    }
    tkmi_free(w->buf);
    return rc;
}

/* ---- helpers ------------------------------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static int key_is(const tkmi_gguf_kv *kv, const char *s)
{
    size_t k = strlen(s);
    return kv->klen == k && !memcmp(kv->key, s, k);
}

static int key_starts(const tkmi_gguf_kv *kv, const char *s)
{
    size_t k = strlen(s);
    return kv->klen >= k && !memcmp(kv->key, s, k);
}

static int supported_row_type(uint32_t t) { return t == 0 || t == 1 || t == 30 || t == 8; }

/* ---- splice ---------------------------------------------------------------------------------- */

typedef struct {
    tkmi_gguf g;
    const uint8_t *map; /* the input, mapped (lib/fileio.c) */
    size_t mapn;
    tkm_teacher *teacher;
    tkmi_strmap by_piece, by_bytes;
    int32_t *src;       /* new id -> old row, or -1 */
    int32_t *pred_at;   /* new id -> row of pred, or -1 */
    float *pred, *opred, *mean, *omean, *rowf;
    unsigned char *rowb, *kvs;
    const unsigned char **bp;
    size_t *bl;
    unsigned char *bytes;
} splice_state;

static void state_free(splice_state *s)
{
    tkmi_gguf_free(&s->g);
    tkmi_unmap_file(s->map, s->mapn);
    tkm_teacher_free(s->teacher);
    tkmi_strmap_free(&s->by_piece);
    tkmi_strmap_free(&s->by_bytes);
    tkmi_free(s->src);
    tkmi_free(s->pred_at);
    tkmi_free(s->pred);
    tkmi_free(s->opred);
    tkmi_free(s->mean);
    tkmi_free(s->omean);
    tkmi_free(s->rowf);
    tkmi_free(s->rowb);
    tkmi_free(s->kvs);
    tkmi_free(s->bp);
    tkmi_free(s->bl);
    tkmi_free(s->bytes);
}

static int map_input(splice_state *s, const char *path)
{
    TKM_FORWARD_IF_ERROR(tkmi_map_file(path, &s->map, &s->mapn));
    TKM_RETURN_ERROR_IF(s->mapn < 24, TKM_EFORMAT, "%s: truncated at offset %zu (reading the header)", path, s->mapn);
    return 0;
}

/* Writes one spliced matrix (ne = [dim, new rows]) of type `type`: row i is
 * old row src[i] (raw bytes) where src[i] >= 0, else pred row pred_at[i]
 * (pred != NULL), else the mean row. */
static int write_matrix(splice_state *s, wout *w, const tkmi_gguf_tensor *t, size_t rows, size_t dim,
                        const float *pred, const float *mean)
{
    size_t rb = t->nbytes / (size_t)t->ne[1];
    const unsigned char *old = s->g.p + s->g.data + t->off;
    for (size_t i = 0; i < rows; i++) {
        if (s->src[i] >= 0) {
            TKM_FORWARD_IF_ERROR(w_put(w, old + (size_t)s->src[i] * rb, rb));
            continue;
        }
        const float *x = pred && s->pred_at[i] >= 0 ? pred + (size_t)s->pred_at[i] * dim : mean;
        TKM_FORWARD_IF_ERROR(tkmi_se_row_from_float(t->type, x, dim, s->rowb));
        TKM_FORWARD_IF_ERROR(w_put(w, s->rowb, rb));
    }
    return 0;
}

/* The mean of the old rows of t whose teacher kind is NORMAL, in float,
 * summed in double in row order. */
static int mean_rows(splice_state *s, const tkmi_gguf_tensor *t, size_t dim, float *out)
{
    size_t rb = t->nbytes / (size_t)t->ne[1], used = 0;
    double *acc = tkmi_calloc(dim, sizeof(double));
    TKM_RETURN_ERROR_IF(!acc, TKM_ENOMEM, "out of memory");
    for (size_t r = 0; r < (size_t)t->ne[1]; r++) {
        if (tkm_teacher_row_kind(s->teacher, r) != TKM_ROW_NORMAL)
            continue;
        tkmi_se_row_to_float(t->type, s->g.p + s->g.data + t->off + r * rb, dim, s->rowf);
        for (size_t d = 0; d < dim; d++)
            acc[d] += s->rowf[d];
        used++;
    }
    for (size_t d = 0; d < dim; d++)
        out[d] = used ? (float)(acc[d] / (double)used) : 0.0f;
    tkmi_free(acc);
    return 0;
}

static int check_matrix(const tkmi_gguf *g, const tkmi_gguf_tensor *t, const char *name, uint64_t dim, uint64_t rows)
{
    TKM_RETURN_ERROR_IF(t->ndim != 2 || t->ne[0] == 0 || t->ne[1] == 0, TKM_EFORMAT,
                        "%s: tensor %s is not a non-empty 2-D matrix", g->path, name);
    TKM_RETURN_ERROR_IF(dim && (t->ne[0] != dim || t->ne[1] != rows), TKM_EFORMAT,
                        "%s: tensor %s is [%llu, %llu], token_embd.weight [%llu, %llu]", g->path, name,
                        (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], (unsigned long long)dim,
                        (unsigned long long)rows);
    TKM_RETURN_ERROR_IF(!supported_row_type(t->type), TKM_ENOTSUP,
                        "%s: tensor %s is %s; splice writes rows of F32, F16, BF16 and Q8_0 matrices (convert it, "
                        "e.g. llama-quantize --token-embedding-type f16 --output-tensor-type f16)",
                        g->path, name, tkmi_ggml_type_name(t->type));
    return 0;
}

int tkm_se_splice(const char *gguf_in, const tkm_model *vocab, const tkm_se_splice_opts *o, const char *out,
                  tkm_se_splice_stats *st)
{
    TKM_RETURN_ERROR_IF(!gguf_in || !vocab || !o || !o->encoder || !out, TKM_EINVAL,
                        "splice: the input GGUF, the new vocabulary, an encoder and an output are needed");
    tkm_se_splice_stats stats;
    memset(&stats, 0, sizeof(stats));
    splice_state s;
    memset(&s, 0, sizeof(s));
    wout w;
    memset(&w, 0, sizeof(w));
    int rc;
#define CHECK(expr) \
    do {            \
        if ((rc = (expr)) < 0) \
            goto done; \
    } while (0)
#define FAIL(code, ...) \
    do { \
        rc = tkmi_error(code, __VA_ARGS__); \
        goto done; \
    } while (0)
    CHECK(map_input(&s, gguf_in));
    CHECK(tkmi_gguf_parse(s.map, s.mapn, gguf_in, &s.g));
    const tkmi_gguf *g = &s.g;
    const tkmi_gguf_tensor *te = tkmi_gguf_tensor_find(g, "token_embd.weight");
    const tkmi_gguf_tensor *to = tkmi_gguf_tensor_find(g, "output.weight");
    if (!te)
        FAIL(TKM_EFORMAT, "%s: no tensor token_embd.weight (not a llama.cpp model?)", gguf_in);
    CHECK(check_matrix(g, te, "token_embd.weight", 0, 0));
    size_t D = (size_t)te->ne[0], old_rows = (size_t)te->ne[1];
    if (to)
        CHECK(check_matrix(g, to, "output.weight", te->ne[0], te->ne[1]));
    const tkmi_gguf_kv *ktok = tkmi_gguf_find(g, "tokenizer.ggml.tokens");
    if (!ktok || ktok->type != TKMI_GGUF_ARR || rd32(g->p + ktok->val) != TKMI_GGUF_STR)
        FAIL(TKM_EFORMAT, "%s: no tokenizer.ggml.tokens (an array of strings): the old vocabulary is needed", gguf_in);
    /* the new vocabulary: sentencepiece BPE or Unigram as llama.cpp's SPM/UGM */
    if (vocab->front && vocab->front->byte_level)
        FAIL(TKM_ENOTSUP, "%s: a byte-level tokenizer (GPT-2 style) is not spliced: llama.cpp's BPE tokenizer needs "
                          "merges and a pre-tokenizer name; give a sentencepiece-style vocabulary (.model)",
             vocab->name ? vocab->name : "the new vocabulary");
    size_t n = (size_t)tkm_model_size(vocab);
    uint64_t tok_nkv;
    size_t kvs_len;
    CHECK(tkmi_se_gguf_tokenizer_kvs(vocab->name ? vocab->name : out, vocab, &s.kvs, &kvs_len, &tok_nkv));
    tkm_se_info ei, oi;
    tkm_se_get_info(o->encoder, &ei);
    if ((size_t)ei.out_dim != D)
        FAIL(TKM_EINVAL, "%s: token_embd.weight is %zu wide, the encoder predicts %d", gguf_in, D, ei.out_dim);
    if (o->output_encoder) {
        tkm_se_get_info(o->output_encoder, &oi);
        if ((size_t)oi.out_dim != D)
            FAIL(TKM_EINVAL, "%s: output.weight is %zu wide, the output encoder predicts %d", gguf_in, D, oi.out_dim);
    }
    /* the old vocabulary decoded to bytes (and the teacher fingerprint) */
    tkm_teacher_opts topt = { "token_embd.weight", NULL };
    CHECK(tkm_teacher_load(gguf_in, &topt, &s.teacher));
    stats.encoder_matches = tkm_se_teacher_hash(s.teacher) == ei.teacher_hash;
    if (o->output_encoder) {
        tkm_teacher_opts oo = { "output.weight", NULL };
        tkm_teacher *ot = NULL;
        if (to && tkm_teacher_load(gguf_in, &oo, &ot) == 0)
            stats.output_encoder_matches = tkm_se_teacher_hash(ot) == oi.teacher_hash;
        tkm_teacher_free(ot);
    }
    {
        uint64_t cnt = rd64(g->p + ktok->val + 4);
        if (cnt > old_rows)
            FAIL(TKM_EFORMAT, "%s: %llu tokens but token_embd.weight has %zu rows", gguf_in, (unsigned long long)cnt,
                 old_rows);
        CHECK(tkmi_strmap_init(&s.by_piece, (size_t)cnt));
        size_t off = ktok->val + 12;
        for (uint64_t i = 0; i < cnt; i++) {
            uint64_t k = rd64(g->p + off);
            /* lengths were checked by the parser; the first of equal strings wins */
            if (k < UINT32_MAX)
                CHECK(tkmi_strmap_put(&s.by_piece, (const char *)g->p + off + 8, (size_t)k, (int32_t)i));
            off += 8 + (size_t)k;
        }
    }
    CHECK(tkmi_strmap_init(&s.by_bytes, old_rows));
    for (size_t r = 0; r < old_rows; r++) {
        size_t bl;
        const unsigned char *b = tkm_teacher_bytes(s.teacher, r, &bl);
        if (tkm_teacher_row_kind(s.teacher, r) == TKM_ROW_NORMAL && bl && bl < UINT32_MAX)
            CHECK(tkmi_strmap_put(&s.by_bytes, (const char *)b, bl, (int32_t)r));
    }
    /* old special ids, by role */
    static const char *const role_keys[4] = { "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.bos_token_id",
                                              "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id" };
    int64_t old_role[4];
    int new_role[4] = { tkm_model_unk_id(vocab), tkm_model_bos_id(vocab), tkm_model_eos_id(vocab),
                        tkm_model_pad_id(vocab) };
    for (int k = 0; k < 4; k++) {
        const tkmi_gguf_kv *kv = tkmi_gguf_find(g, role_keys[k]);
        old_role[k] = kv ? tkmi_gguf_int(g, kv) : -1;
        if (old_role[k] >= (int64_t)old_rows)
            old_role[k] = -1;
    }
    /* the row of each new piece */
    s.src = tkmi_malloc((n + 1) * sizeof(int32_t));
    s.pred_at = tkmi_malloc((n + 1) * sizeof(int32_t));
    s.bp = tkmi_malloc((n + 1) * sizeof(*s.bp));
    s.bl = tkmi_malloc((n + 1) * sizeof(size_t));
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k;
        tkm_model_piece(vocab, (int)i, &k);
        total += k;
    }
    s.bytes = tkmi_malloc(total + 1);
    s.rowf = tkmi_malloc(D * sizeof(float));
    s.rowb = tkmi_malloc(tkmi_ggml_nbytes(8, D) > 4 * D ? tkmi_ggml_nbytes(8, D) : 4 * D);
    s.mean = tkmi_malloc(D * sizeof(float));
    s.omean = tkmi_malloc(D * sizeof(float));
    if (!s.src || !s.pred_at || !s.bp || !s.bl || !s.bytes || !s.rowf || !s.rowb || !s.mean || !s.omean)
        FAIL(TKM_ENOMEM, "out of memory splicing %s", gguf_in);
    size_t npred = 0, boff = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k;
        const char *p = tkm_model_piece(vocab, (int)i, &k);
        tkm_piece_type ty = tkm_model_piece_type(vocab, (int)i);
        int32_t src = -1;
        for (int r = 0; r < 4 && src < 0; r++)
            if (new_role[r] == (int)i && old_role[r] >= 0) {
                src = (int32_t)old_role[r];
                stats.by_role++;
            }
        if (src < 0 && (src = tkmi_strmap_get(&s.by_piece, p, k)) >= 0)
            stats.by_piece++;
        int special = ty == TKM_PIECE_CONTROL || ty == TKM_PIECE_UNKNOWN || ty == TKM_PIECE_UNUSED;
        s.pred_at[i] = -1;
        if (src < 0 && !special) {
            size_t nb = tkm_se_sp_piece_bytes(p, k, ty == TKM_PIECE_BYTE, s.bytes + boff);
            if ((src = nb ? tkmi_strmap_get(&s.by_bytes, (const char *)s.bytes + boff, nb) : -1) >= 0) {
                stats.by_bytes++;
            } else {
                s.bp[npred] = s.bytes + boff;
                s.bl[npred] = nb;
                s.pred_at[i] = (int32_t)npred++;
                boff += nb;
            }
        }
        if (src < 0 && special)
            stats.filled++;
        s.src[i] = src;
    }
    stats.predicted = npred;
    if (npred > SIZE_MAX / sizeof(float) / D)
        FAIL(TKM_ENOMEM, "out of memory splicing %s", gguf_in);
    s.pred = tkmi_malloc(npred * D * sizeof(float) + 1);
    s.opred = o->output_encoder && to ? tkmi_malloc(npred * D * sizeof(float) + 1) : NULL;
    if (!s.pred || (o->output_encoder && to && !s.opred))
        FAIL(TKM_ENOMEM, "out of memory for %zu predicted rows", npred);
    CHECK(tkm_se_predict(o->encoder, s.bp, s.bl, npred, o->threads, s.pred));
    if (s.opred)
        CHECK(tkm_se_predict(o->output_encoder, s.bp, s.bl, npred, o->threads, s.opred));
    for (size_t i = 0; i < npred * D; i++)
        if (!isfinite(s.pred[i]) || (s.opred && !isfinite(s.opred[i])))
            FAIL(TKM_ERANGE, "%s: the encoder predicted a value that is not finite", gguf_in);
    CHECK(mean_rows(&s, te, D, s.mean));
    if (to)
        CHECK(mean_rows(&s, to, D, s.omean));
    stats.old_rows = old_rows;
    stats.rows = n;
    stats.dim = D;
    stats.output = to != NULL;
    stats.output_predicted = s.opred ? npred : 0;

    /* ---- the header: pairs (tokenizer ones replaced), tensor descriptions ---- */
    const tkmi_gguf_kv *karch = tkmi_gguf_find(g, "general.architecture");
    char vs_key[256] = "";
    if (karch && karch->type == TKMI_GGUF_STR) {
        size_t al = (size_t)(karch->end - karch->val - 8);
        if (al < 200)
            snprintf(vs_key, sizeof(vs_key), "%.*s.vocab_size", (int)al, (const char *)g->p + karch->val + 8);
    }
    uint64_t nkv = tok_nkv;
    for (size_t i = 0; i < g->nkv; i++)
        nkv += !(key_starts(&g->kv[i], "tokenizer.ggml.") || key_is(&g->kv[i], "tokenizer.huggingface.json"));
    CHECK(w_open(&w, out));
    unsigned char h[24 + 8];
    memcpy(h, "GGUF", 4);
    put32(h + 4, g->version);
    put64(h + 8, g->nt);
    put64(h + 16, nkv);
    CHECK(w_put(&w, h, 24));
    int tok_done = 0;
    for (size_t i = 0; i < g->nkv; i++) {
        const tkmi_gguf_kv *kv = &g->kv[i];
        if (key_starts(kv, "tokenizer.ggml.") || key_is(kv, "tokenizer.huggingface.json")) {
            if (!tok_done)
                CHECK(w_put(&w, s.kvs, kvs_len));
            tok_done = 1;
            continue;
        }
        if (vs_key[0] && key_is(kv, vs_key) && tkmi_gguf_int(g, kv) >= 0) {
            /* the architecture's vocab_size: the new size, in its own type */
            size_t vl = kv->end - kv->val;
            if ((vl == 4 && n > INT32_MAX) || (vl == 2 && n > INT16_MAX) || (vl == 1 && n > INT8_MAX))
                FAIL(TKM_EINVAL, "%s: %s cannot hold %zu", gguf_in, vs_key, n);
            CHECK(w_put(&w, g->p + kv->start, kv->val - kv->start));
            put64(h, n);
            CHECK(w_put(&w, h, vl));
            continue;
        }
        CHECK(w_put(&w, g->p + kv->start, kv->end - kv->start));
    }
    if (!tok_done)
        CHECK(w_put(&w, s.kvs, kvs_len));
    uint64_t doff = 0;
    size_t *nbytes = tkmi_malloc((g->nt + 1) * sizeof(size_t));
    if (!nbytes)
        FAIL(TKM_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->nt && rc == 0; i++) {
        const tkmi_gguf_tensor *t = &g->t[i];
        int spliced = t == te || t == to;
        nbytes[i] = spliced ? t->nbytes / (size_t)t->ne[1] * n : t->nbytes;
        put64(h, t->nlen);
        rc = w_put(&w, h, 8);
        if (rc == 0)
            rc = w_put(&w, t->name, t->nlen);
        put32(h, t->ndim);
        if (rc == 0)
            rc = w_put(&w, h, 4);
        for (uint32_t d = 0; d < t->ndim && rc == 0; d++) {
            put64(h, d == 1 && spliced ? n : t->ne[d]);
            rc = w_put(&w, h, 8);
        }
        put32(h, t->type);
        put64(h + 4, doff);
        if (rc == 0)
            rc = w_put(&w, h, 12);
        doff += nbytes[i];
        doff = (doff + g->align - 1) / g->align * g->align;
    }
    /* ---- the data: every tensor at its aligned offset ---- */
    for (size_t i = 0; i < g->nt && rc == 0; i++) {
        const tkmi_gguf_tensor *t = &g->t[i];
        rc = w_pad(&w, g->align);
        if (rc == 0 && t == te)
            rc = write_matrix(&s, &w, t, n, D, s.pred, s.mean);
        else if (rc == 0 && t == to)
            rc = write_matrix(&s, &w, t, n, D, s.opred, s.omean);
        else if (rc == 0)
            rc = w_put(&w, g->p + g->data + t->off, t->nbytes);
    }
    if (rc == 0)
        rc = w_pad(&w, g->align);
    tkmi_free(nbytes);
done:
    rc = w_close(&w, rc);
    state_free(&s);
    if (rc == 0 && st)
        *st = stats;
    return rc;
#undef CHECK
#undef FAIL
}
