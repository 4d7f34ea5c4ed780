/* idcache.h - a cache from short byte strings to arrays of fixed-size values
 * (lib/idcache.c): the chunk cache of the BPE encoder and the word cache of
 * the HF pipeline. Open addressing, keys and values in arenas, emptied whole
 * when full, so its memory stays bounded. */
#ifndef TKM_IDCACHE_H
#define TKM_IDCACHE_H

#include "tkm_internal.h"

typedef struct { uint64_t hash; uint32_t koff, klen, voff, vlen; } tkmi_idslot;
typedef struct {
    tkmi_idslot *slots;
    size_t cap, n, max_n, max_key, esize;
    char *keys; size_t keys_n, keys_cap;
    char *vals; size_t vals_n, vals_cap; /* vals_n in values, vals_cap in bytes */
} tkmi_idcache;
/* Where a lookup ended: the key's hash and the free slot a put fills. */
typedef struct { uint64_t hash; size_t slot; } tkmi_idprobe;

/* slots: a power of two; at most max_n entries (then it is emptied), keys of
 * at most max_key bytes (longer ones are never cached), values of esize bytes. */
int tkmi_idcache_init(tkmi_idcache *c, size_t slots, size_t max_n, size_t max_key, size_t esize);
void tkmi_idcache_free(tkmi_idcache *c);
/* The values cached for key (count in *vn), or NULL (then *pr says where). */
static inline const void *tkmi_idcache_get(const tkmi_idcache *c, const char *key, size_t len, uint32_t *vn,
                                           tkmi_idprobe *pr)
{
    uint64_t h = tkmi_hash_bytes(key, len);
    size_t mask = c->cap - 1, i = h & mask;
    while (c->slots[i].klen) {
        const tkmi_idslot *s = &c->slots[i];
        if (s->hash == h && s->klen == len && memcmp(c->keys + s->koff, key, len) == 0) {
            *vn = s->vlen;
            return c->vals + (size_t)s->voff * c->esize;
        }
        i = (i + 1) & mask;
    }
    *pr = (tkmi_idprobe){h, i};
    return NULL;
}
/* Adds key -> vals[0..vn) after a get that missed with probe pr. */
int tkmi_idcache_put(tkmi_idcache *c, const char *key, size_t len, const tkmi_idprobe *pr, const void *vals,
                     size_t vn);

#endif
