/* pairmap.h - (left id, right id) -> (aux, id) hash map (lib/pairmap.c): the
 * merge tables of the sentencepiece BPE encoder (aux unused) and of rank BPE
 * (aux = rank). Open addressing, one 16-byte slot per probe. */
#ifndef TKM_PAIRMAP_H
#define TKM_PAIRMAP_H

#include "tkm_internal.h"

typedef struct { uint64_t key; uint32_t aux; int32_t id; } tkmi_pairslot; /* key 0: empty */
typedef struct {
    tkmi_pairslot *slots;
    size_t cap, n;
} tkmi_pairmap;

static inline uint64_t tkmi_pair_key(int32_t l, int32_t r) { return ((uint64_t)(uint32_t)l << 32 | (uint32_t)r) + 1; }

/* Starts empty with at least cap slots (a power of two is taken). */
int tkmi_pairmap_init(tkmi_pairmap *pm, size_t cap);
/* Adds (l, r) -> (aux, id); an existing pair keeps its value unless replace. */
int tkmi_pairmap_put(tkmi_pairmap *pm, int32_t l, int32_t r, uint32_t aux, int32_t id, int replace);
void tkmi_pairmap_free(tkmi_pairmap *pm);
static inline const tkmi_pairslot *tkmi_pairmap_get(const tkmi_pairmap *pm, int32_t l, int32_t r)
{
    if (!pm->cap) return NULL;
    uint64_t k = tkmi_pair_key(l, r);
    size_t mask = pm->cap - 1, i = tkmi_hash_u64(k) & mask;
    for (;;) {
        const tkmi_pairslot *s = &pm->slots[i];
        if (s->key == k) return s;
        if (!s->key) return NULL;
        i = (i + 1) & mask;
    }
}

#endif
