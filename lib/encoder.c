/* encoder.c - the encoder object (lib/encoder.h) and sentencepiece's
 * encoding of one line: normalize, the kind's pieces, then post-processing
 * as SentencePieceProcessor::PopulateSentencePieceText. */
#include "encoder.h"

int tkmi_encoder_open(const tkm_model *m, const tkmi_encoder_kind *kind, tkm_encoder **out)
{
    *out = NULL;
    tkm_encoder *e = tkmi_calloc(1, sizeof *e);
    TKM_RETURN_ERROR_IF(!e, TKM_ENOMEM, "out of memory");
    e->m = m;
    e->kind = kind;
    int rc = kind->create(m, &e->state);
    if (rc < 0) { tkmi_encoder_close(e); return rc; }
    *out = e;
    return 0;
}

void tkmi_encoder_close(tkm_encoder *e)
{
    if (!e) return;
    if (e->state) e->kind->destroy(e->state);
    tkmi_free(e->norm);
    tkmi_free(e->toks.v);
    tkmi_free(e->ids);
    tkmi_free(e);
}

static int push_id(tkm_encoder *e, int32_t id)
{
    if (e->n_ids == e->ids_cap)
        TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&e->ids, &e->ids_cap, e->n_ids + 1, sizeof(int32_t)));
    e->ids[e->n_ids++] = id;
    return 0;
}

int tkmi_encoder_line(tkm_encoder *e, const char *text, size_t len, const int32_t **ids, size_t *n)
{
    if (e->kind->encode) return e->kind->encode(e->state, text, len, ids, n);
    const tkm_model *m = e->m;
    e->norm_len = 0;
    e->n_ids = 0;
    e->toks.n = 0;
    *ids = e->ids;
    *n = 0;
    TKM_FORWARD_IF_ERROR(tkmi_normalize(m, text, len, &e->norm, &e->norm_len, &e->norm_cap));
    const char *s = e->norm;
    if (e->norm_len == 0) return 0;
    TKM_FORWARD_IF_ERROR(e->kind->pieces(e->state, s, e->norm_len, &e->toks));
    /* Post-processing as SentencePieceProcessor::PopulateSentencePieceText:
     * unknown pieces become bytes with byte fallback, else runs of unknown
     * pieces collapse into one unk. */
    size_t off = 0;
    int prev_unk = 0;
    for (size_t i = 0; i < e->toks.n; i++) {
        int32_t id = e->toks.v[i].id;
        uint32_t tl = e->toks.v[i].len;
        int is_unk = m->type[id] == TKM_PIECE_UNKNOWN;
        if (m->type[id] == TKM_PIECE_CONTROL) {
            TKM_FORWARD_IF_ERROR(push_id(e, id));
        } else if (is_unk && m->byte_fallback) {
            for (uint32_t k = 0; k < tl; k++) TKM_FORWARD_IF_ERROR(push_id(e, m->byte_id[(uint8_t)s[off + k]]));
        } else if (!(is_unk && prev_unk)) {
            TKM_FORWARD_IF_ERROR(push_id(e, id));
        }
        prev_unk = is_unk;
        off += tl;
    }
    *ids = e->ids;
    *n = e->n_ids;
    return 0;
}
