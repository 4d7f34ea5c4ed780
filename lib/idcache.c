/* idcache.c - byte string -> value array cache (lib/idcache.h). */
#include "idcache.h"

int tkmi_idcache_init(tkmi_idcache *c, size_t slots, size_t max_n, size_t max_key, size_t esize)
{
    memset(c, 0, sizeof *c);
    c->slots = tkmi_calloc(slots, sizeof *c->slots);
    TKM_RETURN_ERROR_IF(!c->slots, TKM_ENOMEM, "out of memory (cache)");
    c->cap = slots;
    c->max_n = max_n;
    c->max_key = max_key;
    c->esize = esize;
    return 0;
}

void tkmi_idcache_free(tkmi_idcache *c)
{
    tkmi_free(c->slots);
    tkmi_free(c->keys);
    tkmi_free(c->vals);
    memset(c, 0, sizeof *c);
}

int tkmi_idcache_put(tkmi_idcache *c, const char *key, size_t len, const tkmi_idprobe *pr, const void *vals,
                     size_t vn)
{
    size_t i = pr->slot;
    if (c->n + 1 > c->max_n) {
        memset(c->slots, 0, c->cap * sizeof *c->slots);
        c->n = c->keys_n = c->vals_n = 0;
        i = pr->hash & (c->cap - 1);
    }
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&c->keys, &c->keys_cap, c->keys_n + len, 1));
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&c->vals, &c->vals_cap, (c->vals_n + vn) * c->esize, 1));
    memcpy(c->keys + c->keys_n, key, len);
    if (vn) memcpy(c->vals + c->vals_n * c->esize, vals, vn * c->esize);
    c->slots[i] = (tkmi_idslot){pr->hash, (uint32_t)c->keys_n, (uint32_t)len, (uint32_t)c->vals_n, (uint32_t)vn};
    c->keys_n += len;
    c->vals_n += vn;
    c->n++;
    return 0;
}
