/* bpe_encode.c - sentencepiece's BPE encoder (bpe_model.cc Encode) with
 * identical ids; post-processing is lib/encoder.c's.
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
#include <stdlib.h>

#include "encoder.h"
#include "heap.h"
#include "idcache.h"
#include "pairmap.h"

typedef struct { int32_t prev, next; uint32_t start, len; int32_t id; uint8_t freeze; } sym_t;
typedef struct { float score; int32_t left, right; uint32_t size; int32_t id; } pair_t;
typedef struct { uint32_t start, len, left_len; } rev_t;

#define CACHE_MAX_KEY 96
#define CACHE_MAX_ENTRIES (1u << 17)

typedef struct {
    const tkm_model *m;
    sym_t *syms; size_t syms_cap;
    pair_t *heap; size_t heap_n, heap_cap;
    rev_t *revs; size_t n_revs, revs_cap;
    tkmi_idcache cache; /* chunk -> its pieces (tkmi_tok) */
    /* final_id[id]: sentencepiece's PieceToId(piece(id)) (reserved pieces
     * shadow normal ones with the same string); ascii_id[b]: same for 1 byte */
    int32_t *final_id;
    int32_t ascii_id[128];
    /* merge table: (id of left piece, id of right piece) -> id of the
     * concatenation, for every way to split a piece into two pieces; the
     * string lookup of sentencepiece becomes one integer probe */
    tkmi_pairmap merges;
    /* code points that precede U+2581 inside some piece (sorted) */
    uint32_t *ws_prev; size_t n_ws_prev;
    int split_ok;
} bpe_enc;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Collects the characters X with "X▁" inside a piece; chunking before a ▁
 * preceded by such an X is unsafe. */
static int scan_ws_prev(bpe_enc *e)
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

static int build_merges(bpe_enc *e)
{
    const tkm_model *m = e->m;
    TKM_FORWARD_IF_ERROR(tkmi_pairmap_init(&e->merges, (size_t)m->n * 8));
    for (int id = 0; id < m->n; id++) {
        int t = m->type[id];
        if (!(t == TKM_PIECE_NORMAL || t == TKM_PIECE_USER_DEFINED || t == TKM_PIECE_UNUSED)) continue;
        const char *p = tkmi_piece(m, id);
        size_t len = m->plen[id];
        for (size_t k = (size_t)tkmi_utf8_lead_len((uint8_t)p[0]); k < len;
             k += (size_t)tkmi_utf8_lead_len((uint8_t)p[k])) {
            int32_t l = tkmi_strmap_get(&m->pieces, p, k), r;
            if (l < 0 || (r = tkmi_strmap_get(&m->pieces, p + k, len - k)) < 0) continue;
            TKM_FORWARD_IF_ERROR(tkmi_pairmap_put(&e->merges, l, r, 0, id, 0)); /* the first split found wins */
        }
    }
    return 0;
}

static void bpe_destroy(void *state)
{
    bpe_enc *e = state;
    tkmi_free(e->syms);
    tkmi_free(e->heap);
    tkmi_free(e->revs);
    tkmi_idcache_free(&e->cache);
    tkmi_free(e->ws_prev);
    tkmi_free(e->final_id);
    tkmi_pairmap_free(&e->merges);
    tkmi_free(e);
}

static int bpe_create(const tkm_model *m, void **state)
{
    bpe_enc *e = tkmi_calloc(1, sizeof *e);
    TKM_RETURN_ERROR_IF(!e, TKM_ENOMEM, "out of memory");
    *state = e;
    e->m = m;
    TKM_FORWARD_IF_ERROR(tkmi_idcache_init(&e->cache, 1u << 18, CACHE_MAX_ENTRIES, CACHE_MAX_KEY, sizeof(tkmi_tok)));
    e->final_id = tkmi_malloc((size_t)m->n * sizeof *e->final_id);
    TKM_RETURN_ERROR_IF(!e->final_id, TKM_ENOMEM, "out of memory");
    TKM_FORWARD_IF_ERROR(scan_ws_prev(e));
    for (int i = 0; i < m->n; i++) e->final_id[i] = tkmi_piece_to_id(m, tkmi_piece(m, i), m->plen[i]);
    for (int b = 0; b < 128; b++) {
        char c = (char)b;
        e->ascii_id[b] = tkmi_strmap_get(&m->pieces, &c, 1);
    }
    return build_merges(e);
}

/* ---- max-heap of candidate pairs: higher score first, then leftmost ---- */
static inline int pair_before(const void *ctx, const pair_t *a, const pair_t *b)
{
    (void)ctx;
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}
TKMI_HEAP_DEFINE(pheap, pair_t, const void *, pair_before)

static inline int32_t merge_get(const bpe_enc *e, int32_t l, int32_t r)
{
    const tkmi_pairslot *s = tkmi_pairmap_get(&e->merges, l, r);
    return s ? s->id : -1;
}

static int maybe_add_pair(bpe_enc *e, const char *text, int32_t left, int32_t right)
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
    TKM_FORWARD_IF_ERROR(pheap_push(NULL, &e->heap, &e->heap_n, &e->heap_cap, p));
    if (TKMI_UNLIKELY(e->m->type[id] == TKM_PIECE_UNUSED)) {
        TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&e->revs, &e->revs_cap, e->n_revs + 1, sizeof(rev_t)));
        e->revs[e->n_revs++] = (rev_t){l->start, size, l->len};
    }
    return 0;
}

/* sentencepiece's resegment(): an UNUSED piece is split back into the two
 * symbols it was last built from, recursively. */
static int resegment(bpe_enc *e, tkmi_toks *out, const char *text, uint32_t start, uint32_t len, int depth)
{
    int id = tkmi_piece_to_id(e->m, text + start, len);
    if (id < 0 || e->m->type[id] != TKM_PIECE_UNUSED || depth > 64) return tkmi_toks_push(out, id, len);
    for (size_t k = e->n_revs; k-- > 0;) {
        rev_t *r = &e->revs[k];
        if (r->len == len && memcmp(text + r->start, text + start, len) == 0) {
            uint32_t ll = r->left_len;
            TKM_FORWARD_IF_ERROR(resegment(e, out, text, start, ll, depth + 1));
            return resegment(e, out, text, start + ll, len - ll, depth + 1);
        }
    }
    return tkmi_toks_push(out, id, len);
}

/* Runs sentencepiece's BPE on text[0..len) and appends raw pieces to toks. */
static int bpe_chunk(bpe_enc *e, const char *text, size_t len, tkmi_toks *out)
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
        pair_t top = pheap_pop(NULL, e->heap, &e->heap_n);
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
            TKM_FORWARD_IF_ERROR(resegment(e, out, text, s->start, s->len, 0));
        } else {
            int32_t id = s->id >= 0 ? e->final_id[s->id] : tkmi_piece_to_id(m, text + s->start, s->len);
            TKM_FORWARD_IF_ERROR(tkmi_toks_push(out, id, s->len));
        }
    }
    return 0;
}

/* Encodes a chunk through the cache. */
static int encode_chunk(bpe_enc *e, const char *text, size_t len, tkmi_toks *out)
{
    if (len > CACHE_MAX_KEY) return bpe_chunk(e, text, len, out);
    uint32_t vn;
    tkmi_idprobe pr;
    const tkmi_tok *hit = tkmi_idcache_get(&e->cache, text, len, &vn, &pr);
    if (hit) {
        if (out->n + vn > out->cap)
            TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&out->v, &out->cap, out->n + vn, sizeof *out->v));
        memcpy(out->v + out->n, hit, vn * sizeof *hit);
        out->n += vn;
        return 0;
    }
    size_t before = out->n;
    TKM_FORWARD_IF_ERROR(bpe_chunk(e, text, len, out));
    return tkmi_idcache_put(&e->cache, text, len, &pr, out->v + before, out->n - before);
}

static int ws_prev_unsafe(const bpe_enc *e, uint32_t cp)
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

/* The pieces of a normalized line: cut into chunks where that is safe. */
static int bpe_pieces(void *state, const char *s, size_t L, tkmi_toks *out)
{
    bpe_enc *e = state;
    if (!e->split_ok) return bpe_chunk(e, s, L, out);
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
                TKM_FORWARD_IF_ERROR(encode_chunk(e, s + start, p - start, out));
                start = p;
            }
        }
        p += 1;
    }
    return encode_chunk(e, s + start, L - start, out);
}

const tkmi_encoder_kind tkmi_bpe_kind = {"bpe", bpe_create, bpe_pieces, NULL, bpe_destroy};
