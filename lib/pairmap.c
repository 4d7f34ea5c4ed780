/* pairmap.c - the (left id, right id) -> (aux, id) map of the BPE encoders
 * (lib/pairmap.h): grows at half full by rehashing into twice the slots. */
#include "pairmap.h"
#include "rehash.h"

static int grow(tkmi_pairmap *pm)
{
    size_t cap = pm->cap ? pm->cap * 2 : 1024;
    TKMI_RESIZE(tkmi_pairslot, s, s->key, tkmi_hash_u64(s->key), pm->slots, pm->cap, cap,
                tkmi_calloc(cap, sizeof *pm->slots), "merge table");
    return 0;
}

int tkmi_pairmap_init(tkmi_pairmap *pm, size_t cap)
{
    size_t c = 1024;
    while (c < cap) c <<= 1;
    pm->n = 0;
    pm->cap = c;
    pm->slots = tkmi_calloc(c, sizeof *pm->slots);
    if (!pm->slots) pm->cap = 0;
    TKM_RETURN_ERROR_IF(!pm->slots, TKM_ENOMEM, "out of memory (merge table)");
    return 0;
}

int tkmi_pairmap_put(tkmi_pairmap *pm, int32_t l, int32_t r, uint32_t aux, int32_t id, int replace)
{
    if ((pm->n + 1) * 2 > pm->cap) TKM_FORWARD_IF_ERROR(grow(pm));
    uint64_t k = tkmi_pair_key(l, r);
    size_t mask = pm->cap - 1, i = tkmi_hash_u64(k) & mask;
    while (pm->slots[i].key && pm->slots[i].key != k) i = (i + 1) & mask;
    if (pm->slots[i].key && !replace) return 0;
    if (!pm->slots[i].key) pm->n++;
    pm->slots[i] = (tkmi_pairslot){k, aux, id};
    return 0;
}

void tkmi_pairmap_free(tkmi_pairmap *pm)
{
    tkmi_free(pm->slots);
    pm->slots = NULL;
    pm->cap = pm->n = 0;
}
