/* unigram_encode.c - sentencepiece's Unigram encoder (unigram_model.cc
 * EncodeOptimized) with identical ids: the best path through the lattice of
 * pieces found with the piece trie (lib/ptrie.c), summed in double as the C++
 * does. Used for .model files and for the words of a Unigram tokenizer.json. */
#include <float.h>

#include "encoder.h"

typedef struct {
    const tkm_model *m;
    tkmi_ptrie trie; /* NORMAL, USER_DEFINED and UNUSED pieces */
    float min_score, max_score; /* sentencepiece's min/max NORMAL scores */
    struct bpn { int32_t id; float score; int32_t starts_at; } *best;
    size_t best_cap;
} unigram_enc;

static void unigram_destroy(void *state)
{
    unigram_enc *u = state;
    tkmi_ptrie_free(&u->trie);
    tkmi_free(u->best);
    tkmi_free(u);
}

static int unigram_create(const tkm_model *m, void **state)
{
    unigram_enc *u = tkmi_calloc(1, sizeof *u);
    TKM_RETURN_ERROR_IF(!u, TKM_ENOMEM, "out of memory");
    u->m = m;
    *state = u;
    u->min_score = FLT_MAX;
    u->max_score = FLT_MIN; /* sentencepiece starts from FLT_MIN, the smallest positive float */
    for (int i = 0; i < m->n; i++)
        if (m->type[i] == TKM_PIECE_NORMAL) {
            if (m->score[i] < u->min_score) u->min_score = m->score[i];
            if (m->score[i] > u->max_score) u->max_score = m->score[i];
        }
    /* the lattice's candidates: normal, user-defined and unused pieces */
    return tkmi_ptrie_build_model(&u->trie, m,
                                  1u << TKM_PIECE_NORMAL | 1u << TKM_PIECE_USER_DEFINED | 1u << TKM_PIECE_UNUSED);
}

/* sentencepiece's EncodeOptimized: best path ending at each byte position;
 * a candidate replaces the current one only if strictly better, and
 * candidates arrive by increasing start, then increasing length. */
static int unigram_pieces(void *state, const char *s, size_t n, tkmi_toks *out)
{
    unigram_enc *u = state;
    const tkm_model *m = u->m;
    if (n + 1 > u->best_cap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&u->best, &u->best_cap, n + 1, sizeof *u->best));
    struct bpn *best = u->best;
    for (size_t i = 0; i <= n; i++) best[i] = (struct bpn){-1, 0.0f, -1};
    const float unk_score = u->min_score - 10.0f;
    size_t start = 0;
    while (start < n) {
        const float till = best[start].score;
        int has_single = 0;
        size_t mblen = (size_t)tkmi_utf8_lead_len((uint8_t)s[start]);
        if (mblen > n - start) mblen = n - start;
        int32_t node = 0;
        for (size_t k = start; k < n; k++) {
            node = tkmi_ptrie_child(&u->trie, node, (uint8_t)s[k]);
            if (node < 0) break;
            int32_t id = u->trie.id[node];
            if (id < 0) continue;
            int t = m->type[id];
            if (t == TKM_PIECE_UNUSED) continue;
            size_t length = k + 1 - start;
            struct bpn *tg = &best[k + 1];
            /* As in C++: `cond ? (size_t * float - 0.1) : float` has type double,
             * so the sum and the comparison are done in double and the best
             * score is stored back as float; ties depend on it. */
            double sc = t == TKM_PIECE_USER_DEFINED ? (double)((float)length * u->max_score) - 0.1 : (double)m->score[id];
            double cand = sc + (double)till;
            if (tg->starts_at == -1 || cand > (double)tg->score) *tg = (struct bpn){id, (float)cand, (int32_t)start};
            if (length == mblen) has_single = 1;
        }
        if (!has_single) {
            struct bpn *tg = &best[start + mblen];
            float cand = unk_score + till;
            if (tg->starts_at == -1 || cand > tg->score) *tg = (struct bpn){m->unk_id, cand, (int32_t)start};
        }
        start += mblen;
    }
    /* backtrack, then emit in order */
    size_t cnt = 0;
    for (size_t end = n; end > 0; end = (size_t)best[end].starts_at) cnt++;
    if (out->n + cnt > out->cap)
        TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&out->v, &out->cap, out->n + cnt, sizeof *out->v));
    size_t k = out->n + cnt;
    for (size_t end = n; end > 0; end = (size_t)best[end].starts_at)
        out->v[--k] = (tkmi_tok){best[end].id, (uint32_t)(end - (size_t)best[end].starts_at)};
    out->n += cnt;
    return 0;
}

const tkmi_encoder_kind tkmi_unigram_kind = {"unigram", unigram_create, unigram_pieces, NULL, unigram_destroy};
