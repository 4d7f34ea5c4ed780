/* encode.c - the public encoder (tkm_encoder_new, tkm_encode): picks the
 * kind of encoder a model needs (lib/encoder.h) and hands lines to it. */
#include <stdio.h>

#include "encoder.h"

int tkm_encoder_new(const tkm_model *m, tkm_encoder **out)
{
    *out = NULL;
    TKM_RETURN_ERROR_IF(m->model_type != TKM_MODEL_BPE && m->model_type != TKM_MODEL_UNIGRAM &&
                            m->model_type != TKM_MODEL_CHAR && m->model_type != TKM_MODEL_WORD,
                        TKM_ENOTSUP, "%s: model type %d is not supported by the encoder", m->name, m->model_type);
    const tkmi_encoder_kind *kind = m->front                            ? &tkmi_hf_kind
                                    : m->model_type == TKM_MODEL_BPE     ? &tkmi_bpe_kind
                                    : m->model_type == TKM_MODEL_UNIGRAM ? &tkmi_unigram_kind
                                                                         : &tkmi_charword_kind;
    return tkmi_encoder_open(m, kind, out);
}

void tkm_encoder_free(tkm_encoder *e) { tkmi_encoder_close(e); }

int tkm_encode(tkm_encoder *e, const char *text, size_t len, const int32_t **ids, size_t *n)
{
    return tkmi_encoder_line(e, text, len, ids, n);
}

/* sentencepiece's Encode(text, &pieces) joined by spaces, as its self-test
 * data holds it: a piece's text is its span of the normalized line (a run
 * of unknown characters is one piece, its characters), byte pieces are
 * <0xXX>. */
int tkm_encode_pieces(tkm_encoder *e, const char *text, size_t len, char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    const tkm_model *m = e->m;
    TKM_RETURN_ERROR_IF(e->kind->encode, TKM_ENOTSUP, "%s: pieces of a tokenizer.json model are not sentencepiece's",
                        m->name);
    const int32_t *ids;
    size_t n;
    TKM_FORWARD_IF_ERROR(tkmi_encoder_line(e, text, len, &ids, &n));
    const char *s = e->norm;
    size_t cap = e->norm_len * 7 + e->toks.n + 1, o = 0, off = 0;
    char *buf = tkmi_malloc(cap);
    TKM_RETURN_ERROR_IF(!buf, TKM_ENOMEM, "out of memory");
    int prev_unk = 0;
    for (size_t i = 0; i < e->toks.n; i++) {
        int32_t id = e->toks.v[i].id;
        uint32_t tl = e->toks.v[i].len;
        int is_unk = m->type[id] == TKM_PIECE_UNKNOWN;
        if (is_unk && m->byte_fallback) {
            for (uint32_t k = 0; k < tl; k++) {
                if (o) buf[o++] = ' ';
                o += (size_t)snprintf(buf + o, cap - o, "<0x%02X>", (uint8_t)s[off + k]);
            }
        } else {
            if (o && !(is_unk && prev_unk)) buf[o++] = ' ';
            memcpy(buf + o, s + off, tl);
            o += tl;
        }
        prev_unk = is_unk;
        off += tl;
    }
    buf[o] = 0;
    *out = buf;
    *outlen = o;
    return 0;
}
