/* charword_encode.c - sentencepiece's char and word models (char_model.cc,
 * word_model.cc): the line cut into characters (user-defined symbols first)
 * or into words (a new word at each U+2581), each looked up as a piece
 * (NORMAL, USER_DEFINED; UNUSED and absent ones are unknown). */
#include "encoder.h"

static int charword_create(const tkm_model *m, void **state)
{
    *state = (void *)(uintptr_t)m; /* nothing to build: the state is the model */
    return 0;
}

static void charword_destroy(void *state) { (void)state; }

static int charword_pieces(void *state, const char *s, size_t n, tkmi_toks *out)
{
    const tkm_model *m = state;
    size_t pos = 0;
    while (pos < n) {
        size_t k = 0;
        if (m->model_type == TKM_MODEL_CHAR) {
            if (m->has_user) k = tkmi_ptrie_longest(&m->user, s + pos, n - pos);
            if (!k) k = (size_t)tkmi_utf8_lead_len((uint8_t)s[pos]);
        } else {
            k = (size_t)tkmi_utf8_lead_len((uint8_t)s[pos]);
            while (pos + k < n && !(n - pos - k >= 3 && !memcmp(s + pos + k, TKMI_WS, 3)))
                k += (size_t)tkmi_utf8_lead_len((uint8_t)s[pos + k]);
        }
        if (k > n - pos) k = n - pos;
        int32_t id = tkmi_strmap_get(&m->pieces, s + pos, k);
        if (id < 0 || m->type[id] == TKM_PIECE_UNUSED) id = m->unk_id;
        TKM_FORWARD_IF_ERROR(tkmi_toks_push(out, id, (uint32_t)k));
        pos += k;
    }
    return 0;
}

const tkmi_encoder_kind tkmi_charword_kind = {"char/word", charword_create, charword_pieces, NULL, charword_destroy};
