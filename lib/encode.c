/* encode.c - the public encoder (tkm_encoder_new, tkm_encode): picks the
 * kind of encoder a model needs (lib/encoder.h) and hands lines to it. */
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
