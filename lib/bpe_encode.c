/* bpe_encode.c - BPE encoder with ids identical to libsentencepiece's
 * bpe::Model::Encode + SentencePieceProcessor post-processing.
 *
 * sentencepiece merges over the whole normalized line: the adjacent pair
 * whose concatenation is a piece with the highest score wins, ties to the
 * leftmost. We get the same result much faster by cutting the line into
 * chunks that no piece can span (before a U+2581 whose preceding character
 * never precedes U+2581 inside any piece) and caching each chunk's pieces:
 * merges in disjoint chunks commute, so the result is unchanged.
 *
 *   "▁the▁cat▁sat"  ->  "▁the" | "▁cat" | "▁sat"   (cache hits after warm-up)
 */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>

#include "front.h"
#include "model_internal.h"

typedef struct { int32_t prev, next; uint32_t start, len; int32_t id; uint8_t freeze; } sym_t;
typedef struct { float score; int32_t left, right; uint32_t size; int32_t id; } pair_t;
typedef struct { int32_t id; uint32_t len; } tok_t; /* raw piece: id + byte length */
typedef struct { uint32_t start, len, left_len; } rev_t;

#define CACHE_MAX_KEY 96
#define CACHE_MAX_ENTRIES (1u << 17)

struct tkm_encoder {
    const tkm_model *m;
    char *norm; size_t norm_len, norm_cap;
    int32_t *ids; size_t n_ids, ids_cap;
    sym_t *syms; size_t syms_cap;
    pair_t *heap; size_t heap_n, heap_cap;
    tok_t *toks; size_t n_toks, toks_cap;
    rev_t *revs; size_t n_revs, revs_cap;
    /* chunk cache: open addressing (one struct per slot), keys and values
     * in arenas; cleared whole when full */
    struct cslot { uint64_t hash; uint32_t koff, klen, voff, vlen; } *cache;
    size_t c_cap, c_n;
    char *c_keys; size_t c_keys_n, c_keys_cap;
    tok_t *c_vals; size_t c_vals_n, c_vals_cap;
    /* final_id[id]: sentencepiece's PieceToId(piece(id)) (reserved pieces
     * shadow normal ones with the same string); ascii_id[b]: same for 1 byte */
    int32_t *final_id;
    int32_t ascii_id[128];
    /* merge table: (id of left piece, id of right piece) -> id of the
     * concatenation, for every way to split a piece into two pieces; the
     * string lookup of sentencepiece becomes one integer probe */
    struct mslot { uint64_t key; int32_t val; } *merges;
    size_t m_cap;
    /* Unigram: trie of NORMAL/USER_DEFINED/UNUSED pieces, sentencepiece's
     * min/max NORMAL scores, and the best-path table */
    tkmi_ptrie ut;
    float u_min, u_max;
    struct bpn { int32_t id; float score; int32_t starts_at; } *best;
    size_t best_cap;
    /* code points that precede U+2581 inside some piece (sorted) */
    uint32_t *ws_prev; size_t n_ws_prev;
    int split_ok;
    /* tokenizers read from tokenizer.json / tiktoken files (lib/front.h) */
    tkmi_fstate *fs;
};

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Collects the characters X with "X▁" inside a piece; chunking before a ▁
 * preceded by such an X is unsafe. */
static int scan_ws_prev(tkm_encoder *e)
{
    const tkm_model *m = e->m;
    size_t cap = 0;
    e->split_ok = m->escape_ws && !m->treat_ws_suffix;
    for (int id = 0; id < m->n; id++) {
        int t = m->type[id];
        if (!(t == TKM_PIECE_NORMAL || t == TKM_PIECE_USER_DEFINED || t == TKM_PIECE_UNUSED)) continue;
        const uint8_t *p = (const uint8_t *)tkmi_piece(m, id);
        size_t n = m->plen[id], i = 0;
        int32_t prev = -2;
        while (i < n) {
            int mb;
            int32_t cp = tkmi_utf8_decode(p + i, n - i, &mb);
            if (cp == (int32_t)TKMI_WS_CP && prev != -2 && prev != (int32_t)TKMI_WS_CP) {
                TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&e->ws_prev, &cap, e->n_ws_prev + 1, sizeof(uint32_t)));
                e->ws_prev[e->n_ws_prev++] = (uint32_t)prev; /* -1 (invalid byte) maps to 0xFFFFFFFF */
            }
            prev = cp;
            i += (size_t)mb;
        }
    }
    if (e->n_ws_prev) {
        qsort(e->ws_prev, e->n_ws_prev, sizeof(uint32_t), cmp_u32);
        size_t k = 1;
        for (size_t i = 1; i < e->n_ws_prev; i++)
            if (e->ws_prev[i] != e->ws_prev[k - 1]) e->ws_prev[k++] = e->ws_prev[i];
        e->n_ws_prev = k;
    }
    return 0;
}

static inline uint64_t mkey(int32_t l, int32_t r) { return ((uint64_t)(uint32_t)l << 32 | (uint32_t)r) + 1; }

static int32_t merge_get(const tkm_encoder *e, int32_t l, int32_t r)
{
    uint64_t k = mkey(l, r);
    size_t mask = e->m_cap - 1, i = tkmi_hash_u64(k) & mask;
    for (;;) {
        const struct mslot *s = &e->merges[i];
        if (s->key == k) return s->val;
        if (!s->key) return -1;
        i = (i + 1) & mask;
    }
}

static int build_merges(tkm_encoder *e)
{
    const tkm_model *m = e->m;
    size_t cap = 1024;
    while (cap < (size_t)m->n * 8) cap <<= 1;
    for (;;) {
        e->merges = tkmi_calloc(cap, sizeof *e->merges);
        TKM_RETURN_ERROR_IF(!e->merges, TKM_ENOMEM, "out of memory (merge table)");
        e->m_cap = cap;
        size_t n = 0;
        int full = 0;
        for (int id = 0; id < m->n && !full; id++) {
            int t = m->type[id];
            if (!(t == TKM_PIECE_NORMAL || t == TKM_PIECE_USER_DEFINED || t == TKM_PIECE_UNUSED)) continue;
            const char *p = tkmi_piece(m, id);
            size_t len = m->plen[id];
            for (size_t k = (size_t)tkmi_utf8_lead_len((uint8_t)p[0]); k < len;
                 k += (size_t)tkmi_utf8_lead_len((uint8_t)p[k])) {
                int32_t l = tkmi_strmap_get(&m->pieces, p, k), r;
                if (l < 0 || (r = tkmi_strmap_get(&m->pieces, p + k, len - k)) < 0) continue;
                uint64_t key = mkey(l, r);
                size_t i = tkmi_hash_u64(key) & (cap - 1);
                while (e->merges[i].key && e->merges[i].key != key) i = (i + 1) & (cap - 1);
                if (!e->merges[i].key) {
                    if (++n * 2 > cap) { full = 1; break; }
                    e->merges[i] = (struct mslot){key, id};
                }
            }
        }
        if (!full) return 0;
        tkmi_free(e->merges);
        cap <<= 1;
    }
}

static int unigram_init(tkm_encoder *e)
{
    const tkm_model *m = e->m;
    const char **strs = tkmi_malloc((size_t)m->n * sizeof *strs);
    uint32_t *lens = tkmi_malloc((size_t)m->n * sizeof *lens);
    int32_t *ids = tkmi_malloc((size_t)m->n * sizeof *ids);
    int rc = 0;
    if (!strs || !lens || !ids) rc = tkmi_error(TKM_ENOMEM, "out of memory");
    size_t k = 0;
    e->u_min = FLT_MAX;
    e->u_max = FLT_MIN; /* sentencepiece starts from FLT_MIN, the smallest positive float */
    for (int i = 0; rc == 0 && i < m->n; i++) {
        int t = m->type[i];
        if (t == TKM_PIECE_NORMAL) {
            if (m->score[i] < e->u_min) e->u_min = m->score[i];
            if (m->score[i] > e->u_max) e->u_max = m->score[i];
        }
        if (!(t == TKM_PIECE_NORMAL || t == TKM_PIECE_USER_DEFINED || t == TKM_PIECE_UNUSED)) continue;
        strs[k] = tkmi_piece(m, i);
        lens[k] = m->plen[i];
        ids[k++] = i;
    }
    if (rc == 0) rc = tkmi_ptrie_build(&e->ut, strs, lens, ids, k);
    tkmi_free(strs);
    tkmi_free(lens);
    tkmi_free(ids);
    return rc;
}

/* sentencepiece's EncodeOptimized: best path ending at each byte position;
 * a candidate replaces the current one only if strictly better, and
 * candidates arrive by increasing start, then increasing length. */
static int unigram_line(tkm_encoder *e, const char *s, size_t n)
{
    const tkm_model *m = e->m;
    if (n + 1 > e->best_cap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&e->best, &e->best_cap, n + 1, sizeof *e->best));
    struct bpn *best = e->best;
    for (size_t i = 0; i <= n; i++) best[i] = (struct bpn){-1, 0.0f, -1};
    const float unk_score = e->u_min - 10.0f;
    size_t start = 0;
    while (start < n) {
        const float till = best[start].score;
        int has_single = 0;
        size_t mblen = (size_t)tkmi_utf8_lead_len((uint8_t)s[start]);
        if (mblen > n - start) mblen = n - start;
        int32_t node = 0;
        for (size_t k = start; k < n; k++) {
            node = tkmi_ptrie_child(&e->ut, node, (uint8_t)s[k]);
            if (node < 0) break;
            int32_t id = e->ut.id[node];
            if (id < 0) continue;
            int t = m->type[id];
            if (t == TKM_PIECE_UNUSED) continue;
            size_t length = k + 1 - start;
            struct bpn *tg = &best[k + 1];
            /* As in C++: `cond ? (size_t * float - 0.1) : float` has type double,
             * so the sum and the comparison are done in double and the best
             * score is stored back as float; ties depend on it. */
            double sc = t == TKM_PIECE_USER_DEFINED ? (double)((float)length * e->u_max) - 0.1 : (double)m->score[id];
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
    if (e->n_toks + cnt > e->toks_cap)
        TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&e->toks, &e->toks_cap, e->n_toks + cnt, sizeof(tok_t)));
    size_t k = e->n_toks + cnt;
    for (size_t end = n; end > 0; end = (size_t)best[end].starts_at)
        e->toks[--k] = (tok_t){best[end].id, (uint32_t)(end - (size_t)best[end].starts_at)};
    e->n_toks += cnt;
    return 0;
}

/* sentencepiece's char and word models (char_model.cc, word_model.cc): the
 * line cut into characters (user-defined symbols first) or into words (a
 * new word at each U+2581), each looked up as a piece (NORMAL, USER_DEFINED;
 * UNUSED and absent ones are unknown). */
static int push_tok(tkm_encoder *e, int32_t id, uint32_t len);
static int charword_line(tkm_encoder *e, const char *s, size_t n)
{
    const tkm_model *m = e->m;
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
        TKM_FORWARD_IF_ERROR(push_tok(e, id, (uint32_t)k));
        pos += k;
    }
    return 0;
}

int tkm_encoder_new(const tkm_model *m, tkm_encoder **out)
{
    *out = NULL;
    TKM_RETURN_ERROR_IF(m->model_type != TKM_MODEL_BPE && m->model_type != TKM_MODEL_UNIGRAM &&
                            m->model_type != TKM_MODEL_CHAR && m->model_type != TKM_MODEL_WORD,
                        TKM_ENOTSUP, "%s: model type %d is not supported by the encoder", m->name, m->model_type);
    tkm_encoder *e = tkmi_calloc(1, sizeof *e);
    TKM_RETURN_ERROR_IF(!e, TKM_ENOMEM, "out of memory");
    e->m = m;
    e->c_cap = 1u << 18;
    e->cache = tkmi_calloc(e->c_cap, sizeof *e->cache);
    e->final_id = tkmi_malloc((size_t)m->n * sizeof *e->final_id);
    int rc = (!e->cache || !e->final_id)
                 ? tkmi_error(TKM_ENOMEM, "out of memory") : scan_ws_prev(e);
    if (rc == 0) {
        for (int i = 0; i < m->n; i++) e->final_id[i] = tkmi_piece_to_id(m, tkmi_piece(m, i), m->plen[i]);
        for (int b = 0; b < 128; b++) {
            char c = (char)b;
            e->ascii_id[b] = tkmi_strmap_get(&m->pieces, &c, 1);
        }
        if (m->front) {
            rc = tkmi_fstate_new(m, &e->fs);
            if (rc == 0 && m->front->word == TKMI_WORD_UNIGRAM) rc = unigram_init(e);
        } else {
            rc = m->model_type == TKM_MODEL_BPE ? build_merges(e) : m->model_type == TKM_MODEL_UNIGRAM ? unigram_init(e) : 0;
        }
    }
    if (rc < 0) { tkm_encoder_free(e); return rc; }
    *out = e;
    return 0;
}

void tkm_encoder_free(tkm_encoder *e)
{
    if (!e) return;
    tkmi_free(e->norm);
    tkmi_free(e->ids);
    tkmi_free(e->syms);
    tkmi_free(e->heap);
    tkmi_free(e->toks);
    tkmi_free(e->revs);
    tkmi_free(e->cache);
    tkmi_free(e->c_keys);
    tkmi_free(e->c_vals);
    tkmi_free(e->ws_prev);
    tkmi_free(e->final_id);
    tkmi_free(e->merges);
    tkmi_ptrie_free(&e->ut);
    tkmi_free(e->best);
    tkmi_fstate_free(e->fs);
    tkmi_free(e);
}

/* ---- max-heap of candidate pairs: higher score first, then leftmost ---- */
static inline int pair_before(const pair_t *a, const pair_t *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int heap_push(tkm_encoder *e, pair_t p)
{
    if (e->heap_n == e->heap_cap)
        TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&e->heap, &e->heap_cap, e->heap_n + 1, sizeof(pair_t)));
    size_t i = e->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pair_before(&p, &e->heap[parent])) break;
        e->heap[i] = e->heap[parent];
        i = parent;
    }
    e->heap[i] = p;
    return 0;
}

static pair_t heap_pop(tkm_encoder *e)
{
    pair_t top = e->heap[0];
    pair_t last = e->heap[--e->heap_n];
    size_t i = 0, n = e->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pair_before(&e->heap[c + 1], &e->heap[c])) c++;
        if (!pair_before(&e->heap[c], &last)) break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (n) e->heap[i] = last;
    return top;
}

static int maybe_add_pair(tkm_encoder *e, const char *text, int32_t left, int32_t right)
{
    if (left < 0 || right < 0) return 0;
    sym_t *l = &e->syms[left], *r = &e->syms[right];
    if (l->freeze || r->freeze) return 0;
    uint32_t size = l->len + r->len;
    /* sym.id is the symbol's id in the normal-piece map (-1: not a piece) */
    int32_t id = (l->id >= 0 && r->id >= 0) ? merge_get(e, l->id, r->id)
                                            : tkmi_strmap_get(&e->m->pieces, text + l->start, size);
    if (id < 0) return 0;
    pair_t p = {e->m->score[id], left, right, size, id};
    TKM_FORWARD_IF_ERROR(heap_push(e, p));
    if (TKMI_UNLIKELY(e->m->type[id] == TKM_PIECE_UNUSED)) {
        TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&e->revs, &e->revs_cap, e->n_revs + 1, sizeof(rev_t)));
        e->revs[e->n_revs++] = (rev_t){l->start, size, l->len};
    }
    return 0;
}

static int push_tok(tkm_encoder *e, int32_t id, uint32_t len)
{
    if (e->n_toks == e->toks_cap)
        TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&e->toks, &e->toks_cap, e->n_toks + 1, sizeof(tok_t)));
    e->toks[e->n_toks++] = (tok_t){id, len};
    return 0;
}

/* sentencepiece's resegment(): an UNUSED piece is split back into the two
 * symbols it was last built from, recursively. */
static int resegment(tkm_encoder *e, const char *text, uint32_t start, uint32_t len, int depth)
{
    int id = tkmi_piece_to_id(e->m, text + start, len);
    if (id < 0 || e->m->type[id] != TKM_PIECE_UNUSED || depth > 64) return push_tok(e, id, len);
    for (size_t k = e->n_revs; k-- > 0;) {
        rev_t *r = &e->revs[k];
        if (r->len == len && memcmp(text + r->start, text + start, len) == 0) {
            uint32_t ll = r->left_len;
            TKM_FORWARD_IF_ERROR(resegment(e, text, start, ll, depth + 1));
            return resegment(e, text, start + ll, len - ll, depth + 1);
        }
    }
    return push_tok(e, id, len);
}

/* Runs sentencepiece's BPE on text[0..len) and appends raw pieces to toks. */
static int bpe_chunk(tkm_encoder *e, const char *text, size_t len)
{
    const tkm_model *m = e->m;
    if (len > e->syms_cap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&e->syms, &e->syms_cap, len, sizeof(sym_t)));
    int32_t n = 0;
    size_t pos = 0;
    while (pos < len) {
        size_t k = 0;
        uint8_t freeze = 0;
        if (m->has_user) {
            k = tkmi_ptrie_longest(&m->user, text + pos, len - pos);
            freeze = k > 0;
        }
        if (!k) {
            k = (size_t)tkmi_utf8_lead_len((uint8_t)text[pos]);
            if (k > len - pos) k = len - pos;
        }
        int32_t sid = -1;
        if (!freeze) {
            uint8_t c0 = (uint8_t)text[pos];
            sid = (k == 1 && c0 < 128) ? e->ascii_id[c0] : tkmi_strmap_get(&m->pieces, text + pos, k);
        }
        e->syms[n] = (sym_t){n - 1, -1, (uint32_t)pos, (uint32_t)k, sid, freeze};
        if (n > 0) e->syms[n - 1].next = n;
        n++;
        pos += k;
    }
    e->heap_n = 0;
    e->n_revs = 0;
    for (int32_t i = 1; i < n; i++) TKM_FORWARD_IF_ERROR(maybe_add_pair(e, text, i - 1, i));
    while (e->heap_n) {
        pair_t top = heap_pop(e);
        sym_t *l = &e->syms[top.left], *r = &e->syms[top.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != top.size) continue;
        l->len += r->len;
        l->id = top.id;
        l->next = r->next;
        if (r->next >= 0) e->syms[r->next].prev = top.left;
        r->len = 0;
        TKM_FORWARD_IF_ERROR(maybe_add_pair(e, text, l->prev, top.left));
        TKM_FORWARD_IF_ERROR(maybe_add_pair(e, text, top.left, l->next));
    }
    for (int32_t i = 0; i >= 0 && i < n; i = e->syms[i].next) {
        sym_t *s = &e->syms[i];
        if (TKMI_UNLIKELY(m->has_unused)) {
            TKM_FORWARD_IF_ERROR(resegment(e, text, s->start, s->len, 0));
        } else {
            int32_t id = s->id >= 0 ? e->final_id[s->id] : tkmi_piece_to_id(m, text + s->start, s->len);
            TKM_FORWARD_IF_ERROR(push_tok(e, id, s->len));
        }
    }
    return 0;
}

static void cache_clear(tkm_encoder *e)
{
    memset(e->cache, 0, e->c_cap * sizeof *e->cache);
    e->c_n = 0;
    e->c_keys_n = 0;
    e->c_vals_n = 0;
}

/* Encodes a chunk through the cache. */
static int encode_chunk(tkm_encoder *e, const char *text, size_t len)
{
    if (len > CACHE_MAX_KEY) return bpe_chunk(e, text, len);
    uint64_t h = tkmi_hash_bytes(text, len);
    size_t mask = e->c_cap - 1, i = h & mask;
    while (e->cache[i].klen) {
        const struct cslot *c = &e->cache[i];
        if (c->hash == h && c->klen == len && memcmp(e->c_keys + c->koff, text, len) == 0) {
            uint32_t vn = c->vlen;
            if (e->n_toks + vn > e->toks_cap)
                TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&e->toks, &e->toks_cap, e->n_toks + vn, sizeof(tok_t)));
            memcpy(e->toks + e->n_toks, e->c_vals + c->voff, vn * sizeof(tok_t));
            e->n_toks += vn;
            return 0;
        }
        i = (i + 1) & mask;
    }
    size_t before = e->n_toks;
    TKM_FORWARD_IF_ERROR(bpe_chunk(e, text, len));
    size_t vn = e->n_toks - before;
    if (e->c_n + 1 > CACHE_MAX_ENTRIES) {
        cache_clear(e);
        i = h & mask;
    }
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&e->c_keys, &e->c_keys_cap, e->c_keys_n + len, 1));
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&e->c_vals, &e->c_vals_cap, e->c_vals_n + vn, sizeof(tok_t)));
    memcpy(e->c_keys + e->c_keys_n, text, len);
    memcpy(e->c_vals + e->c_vals_n, e->toks + before, vn * sizeof(tok_t));
    e->cache[i] = (struct cslot){h, (uint32_t)e->c_keys_n, (uint32_t)len, (uint32_t)e->c_vals_n, (uint32_t)vn};
    e->c_keys_n += len;
    e->c_vals_n += vn;
    e->c_n++;
    return 0;
}

static int ws_prev_unsafe(const tkm_encoder *e, uint32_t cp)
{
    size_t lo = 0, hi = e->n_ws_prev;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (e->ws_prev[mid] < cp) lo = mid + 1;
        else hi = mid;
    }
    return lo < e->n_ws_prev && e->ws_prev[lo] == cp;
}

/* Start of the character that ends at p (p > 0) in valid UTF-8. */
static size_t char_start_before(const char *s, size_t p)
{
    size_t q = p - 1;
    while (q > 0 && ((uint8_t)s[q] & 0xC0) == 0x80 && p - q < 4) q--;
    return q;
}

static int push_id(tkm_encoder *e, int32_t id)
{
    if (e->n_ids == e->ids_cap)
        TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&e->ids, &e->ids_cap, e->n_ids + 1, sizeof(int32_t)));
    e->ids[e->n_ids++] = id;
    return 0;
}

int tkm_encode(tkm_encoder *e, const char *text, size_t len, const int32_t **ids, size_t *n)
{
    if (e->fs) return tkmi_front_encode(e, e->fs, text, len, ids, n);
    return tkmi_encode_word(e, text, len, ids, n);
}

/* sentencepiece's encoding of one line (for tokenizers read from
 * tokenizer.json: of one pre-tokenized word, the model normalizing nothing). */
int tkmi_encode_word(tkm_encoder *e, const char *text, size_t len, const int32_t **ids, size_t *n)
{
    const tkm_model *m = e->m;
    e->norm_len = 0;
    e->n_ids = 0;
    e->n_toks = 0;
    *ids = e->ids;
    *n = 0;
    TKM_FORWARD_IF_ERROR(tkmi_normalize(m, text, len, &e->norm, &e->norm_len, &e->norm_cap));
    const char *s = e->norm;
    size_t L = e->norm_len;
    if (L == 0) return 0;
    if (m->model_type == TKM_MODEL_UNIGRAM) {
        TKM_FORWARD_IF_ERROR(unigram_line(e, s, L));
    } else if (m->model_type == TKM_MODEL_CHAR || m->model_type == TKM_MODEL_WORD) {
        TKM_FORWARD_IF_ERROR(charword_line(e, s, L));
    } else if (!e->split_ok) {
        TKM_FORWARD_IF_ERROR(bpe_chunk(e, s, L));
    } else {
        size_t start = 0, p = 0;
        while (p + 3 <= L) {
            const char *hit = memchr(s + p, 0xE2, L - p - 2);
            if (!hit) break;
            p = (size_t)(hit - s);
            if ((uint8_t)s[p + 1] == 0x96 && (uint8_t)s[p + 2] == 0x81 && p > start) {
                size_t q = char_start_before(s, p);
                int mb;
                int32_t cp = tkmi_utf8_decode((const uint8_t *)s + q, p - q, &mb);
                if (cp != (int32_t)TKMI_WS_CP && !ws_prev_unsafe(e, (uint32_t)cp)) {
                    TKM_FORWARD_IF_ERROR(encode_chunk(e, s + start, p - start));
                    start = p;
                }
            }
            p += 1;
        }
        TKM_FORWARD_IF_ERROR(encode_chunk(e, s + start, L - start));
    }
    /* Post-processing as SentencePieceProcessor::PopulateSentencePieceText:
     * unknown pieces become bytes with byte fallback, else runs of unknown
     * pieces collapse into one unk. */
    size_t off = 0;
    int prev_unk = 0;
    for (size_t i = 0; i < e->n_toks; i++) {
        int32_t id = e->toks[i].id;
        uint32_t tl = e->toks[i].len;
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

/* sentencepiece's Encode(text, &pieces) joined by spaces, as its self-test
 * data holds it: a piece's text is its span of the normalized line (a run
 * of unknown characters is one piece, its characters), byte pieces are
 * <0xXX>. */
int tkm_encode_pieces(tkm_encoder *e, const char *text, size_t len, char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    const tkm_model *m = e->m;
    TKM_RETURN_ERROR_IF(e->fs, TKM_ENOTSUP, "%s: pieces of a tokenizer.json model are not sentencepiece's", m->name);
    const int32_t *ids;
    size_t n;
    TKM_FORWARD_IF_ERROR(tkmi_encode_word(e, text, len, &ids, &n));
    const char *s = e->norm;
    size_t cap = e->norm_len * 7 + e->n_toks + 1, o = 0, off = 0;
    char *buf = tkmi_malloc(cap);
    TKM_RETURN_ERROR_IF(!buf, TKM_ENOMEM, "out of memory");
    int prev_unk = 0;
    for (size_t i = 0; i < e->n_toks; i++) {
        int32_t id = e->toks[i].id;
        uint32_t tl = e->toks[i].len;
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
