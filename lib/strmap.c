/* strmap.c - open-addressing hash map from byte strings to int32, used for
 * piece lookup (encoder, model) and symbol interning (trainer). Slots are
 * stored as an array of structs so that a probe costs one cache line. */
#include "rehash.h"
#include "tkm_internal.h"

int tkmi_strmap_init(tkmi_strmap *m, size_t expect)
{
    memset(m, 0, sizeof *m);
    size_t cap = 16;
    while (cap < expect * 2) cap <<= 1;
    m->slots = tkmi_calloc_touched(cap, sizeof *m->slots);
    TKM_RETURN_ERROR_IF(!m->slots, TKM_ENOMEM, "out of memory (hash map of %zu)", cap);
    m->cap = cap;
    return 0;
}

void tkmi_strmap_free(tkmi_strmap *m)
{
    tkmi_free(m->slots);
    memset(m, 0, sizeof *m);
}

int32_t tkmi_strmap_get(const tkmi_strmap *m, const char *k, size_t len)
{
    if (!m->cap) return -1;
    uint64_t h = tkmi_hash_bytes(k, len);
    size_t mask = m->cap - 1, i = h & mask;
    for (;;) {
        const tkmi_strslot *s = &m->slots[i];
        if (!s->key) return -1;
        if (s->hash == h && s->len == len && memcmp(s->key, k, len) == 0) return s->val;
        i = (i + 1) & mask;
    }
}

static int strmap_rehash(tkmi_strmap *m)
{
    size_t nc = m->cap ? m->cap * 2 : 16;
    TKMI_RESIZE(tkmi_strslot, s, s->key, s->hash, m->slots, m->cap, nc, tkmi_calloc_touched(nc, sizeof *m->slots),
                "hash map");
    return 0;
}

int tkmi_strmap_put(tkmi_strmap *m, const char *k, size_t len, int32_t v)
{
    if ((m->n + 1) * 2 > m->cap) TKM_FORWARD_IF_ERROR(strmap_rehash(m));
    uint64_t h = tkmi_hash_bytes(k, len);
    size_t mask = m->cap - 1, i = h & mask;
    while (m->slots[i].key) {
        tkmi_strslot *s = &m->slots[i];
        if (s->hash == h && s->len == len && memcmp(s->key, k, len) == 0) return 0;
        i = (i + 1) & mask;
    }
    /* Empty keys need a non-NULL pointer to mark the slot used. */
    m->slots[i] = (tkmi_strslot){h, k ? k : "", (uint32_t)len, v};
    m->n++;
    return 1;
}
