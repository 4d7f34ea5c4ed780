/* rank_bpe.c - rank-based BPE on one word (lib/rank_bpe.h): HF's BPE model
 * and tiktoken (lowest rank first, leftmost among equal ranks), with byte
 * fallback and unknown fusing, over the merge table of a struct tkmi_front. */
#include "heap.h"
#include "rank_bpe.h"

static int rheap_before(const void *ctx, const struct tkmi_rheap *a, const struct tkmi_rheap *b)
{
    (void)ctx;
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}
TKMI_HEAP_DEFINE(rheap, struct tkmi_rheap, const void *, rheap_before)

static int push_ids(int32_t **ids, size_t *nids, size_t *idcap, const int32_t *v, size_t k)
{
    if (*nids + k > *idcap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)ids, idcap, *nids + k, sizeof **ids));
    memcpy(*ids + *nids, v, k * sizeof *v);
    *nids += k;
    return 0;
}

void tkmi_rank_scratch_free(tkmi_rank_scratch *s)
{
    tkmi_free(s->sy);
    tkmi_free(s->hp);
    memset(s, 0, sizeof *s);
}

static int sym_add(tkmi_rank_scratch *s, size_t *n, int32_t id, uint32_t len)
{
    if (*n == s->sycap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&s->sy, &s->sycap, *n + 1, sizeof *s->sy));
    s->sy[*n] = (struct tkmi_rsym){(int32_t)*n - 1, -1, len, id};
    if (*n) s->sy[*n - 1].next = (int32_t)*n;
    ++*n;
    return 0;
}

static int pair_push(tkmi_rank_scratch *s, const struct tkmi_front *f, int32_t pos)
{
    const struct tkmi_rsym *a = &s->sy[pos];
    if (a->next < 0) return 0;
    const tkmi_pairslot *r = tkmi_pairmap_get(&f->merges, a->id, s->sy[a->next].id);
    return r ? rheap_push(NULL, &s->hp, &s->hn, &s->hcap, (struct tkmi_rheap){r->aux, pos, r->id}) : 0;
}

/* HF's BPE::merge_word + Word::merge_all (tiktoken's byte_pair_merge is
 * the same with rank = rank of the merged token). Appends ids. */
int tkmi_rank_word(tkmi_rank_scratch *s, const struct tkmi_front *f, const char *w, size_t n, int32_t **ids,
                   size_t *nids, size_t *idcap)
{
    if (f->ignore_merges) {
        int32_t id = tkmi_strmap_get(&f->vocab, w, n);
        if (id >= 0) return push_ids(ids, nids, idcap, &id, 1);
    }
    size_t ns = 0;
    int32_t unk = -1;
    uint32_t unk_len = 0;
    for (size_t i = 0; i < n;) {
        size_t k = f->byte_level ? 1 : (size_t)tkmi_utf8_lead_len((uint8_t)w[i]);
        if (k > n - i) k = n - i;
        int32_t id = f->byte_level ? f->byte_sym[(uint8_t)w[i]] : tkmi_strmap_get(&f->vocab, w + i, k);
        if (id >= 0) {
            if (unk >= 0) {
                TKM_FORWARD_IF_ERROR(sym_add(s, &ns, unk, unk_len));
                unk = -1;
            }
            TKM_FORWARD_IF_ERROR(sym_add(s, &ns, id, (uint32_t)k));
        } else {
            int all = f->byte_fallback;
            for (size_t j = 0; all && j < k; j++) all = f->fb_byte[(uint8_t)w[i + j]] >= 0;
            if (all) {
                for (size_t j = 0; j < k; j++) TKM_FORWARD_IF_ERROR(sym_add(s, &ns, f->fb_byte[(uint8_t)w[i + j]], 1));
            } else if (f->unk_id >= 0) {
                if (unk >= 0 && f->fuse_unk) unk_len += (uint32_t)k;
                else {
                    if (unk >= 0) TKM_FORWARD_IF_ERROR(sym_add(s, &ns, unk, unk_len));
                    unk = f->unk_id;
                    unk_len = (uint32_t)k;
                }
            } /* else HF drops the character */
        }
        i += k;
    }
    if (unk >= 0) TKM_FORWARD_IF_ERROR(sym_add(s, &ns, unk, unk_len));
    s->hn = 0;
    for (size_t i = 0; i + 1 < ns; i++) TKM_FORWARD_IF_ERROR(pair_push(s, f, (int32_t)i));
    while (s->hn) {
        struct tkmi_rheap top = rheap_pop(NULL, s->hp, &s->hn);
        struct tkmi_rsym *a = &s->sy[top.pos];
        if (a->len == 0 || a->next < 0) continue;
        struct tkmi_rsym *b = &s->sy[a->next];
        const tkmi_pairslot *r = tkmi_pairmap_get(&f->merges, a->id, b->id);
        if (!r || r->id != top.id) continue; /* expired entry */
        a->id = top.id;
        a->len += b->len;
        b->len = 0;
        a->next = b->next;
        if (a->next >= 0) s->sy[a->next].prev = top.pos;
        if (a->prev >= 0) TKM_FORWARD_IF_ERROR(pair_push(s, f, a->prev));
        TKM_FORWARD_IF_ERROR(pair_push(s, f, top.pos));
    }
    for (int32_t i = ns ? 0 : -1; i >= 0; i = s->sy[i].next) TKM_FORWARD_IF_ERROR(push_ids(ids, nids, idcap, &s->sy[i].id, 1));
    return 0;
}

