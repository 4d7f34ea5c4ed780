/* strmap.c - open-addressing hash map from byte strings to int32, used for
 * piece lookup (encoder, model) and symbol interning (trainer). */
#include "tkm_internal.h"

int tkmi_strmap_init(tkmi_strmap *m, size_t expect)
{
    memset(m, 0, sizeof *m);
    size_t cap = 16;
    while (cap < expect * 2) cap <<= 1;
    m->keys = tkmi_calloc(cap, sizeof *m->keys);
    m->lens = tkmi_calloc(cap, sizeof *m->lens);
    m->vals = tkmi_calloc(cap, sizeof *m->vals);
    m->hashes = tkmi_calloc(cap, sizeof *m->hashes);
    m->cap = cap;
    if (!m->keys || !m->lens || !m->vals || !m->hashes) {
        tkmi_strmap_free(m);
        return tkmi_error(TKM_ENOMEM, "out of memory (hash map of %zu)", cap);
    }
    return 0;
}

void tkmi_strmap_free(tkmi_strmap *m)
{
    tkmi_free(m->keys);
    tkmi_free(m->lens);
    tkmi_free(m->vals);
    tkmi_free(m->hashes);
    memset(m, 0, sizeof *m);
}

int32_t tkmi_strmap_get(const tkmi_strmap *m, const char *k, size_t len)
{
    if (!m->cap) return -1;
    uint64_t h = tkmi_hash_bytes(k, len);
    size_t mask = m->cap - 1, i = h & mask;
    while (m->keys[i]) {
        if (m->hashes[i] == h && m->lens[i] == len && memcmp(m->keys[i], k, len) == 0)
            return m->vals[i];
        i = (i + 1) & mask;
    }
    return -1;
}

static int strmap_rehash(tkmi_strmap *m)
{
    tkmi_strmap n;
    TKM_FORWARD_IF_ERROR(tkmi_strmap_init(&n, m->cap));
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = m->hashes[i] & (n.cap - 1);
        while (n.keys[j]) j = (j + 1) & (n.cap - 1);
        n.keys[j] = m->keys[i];
        n.lens[j] = m->lens[i];
        n.vals[j] = m->vals[i];
        n.hashes[j] = m->hashes[i];
    }
    n.n = m->n;
    tkmi_strmap_free(m);
    *m = n;
    return 0;
}

int tkmi_strmap_put(tkmi_strmap *m, const char *k, size_t len, int32_t v)
{
    if ((m->n + 1) * 2 > m->cap) TKM_FORWARD_IF_ERROR(strmap_rehash(m));
    uint64_t h = tkmi_hash_bytes(k, len);
    size_t mask = m->cap - 1, i = h & mask;
    while (m->keys[i]) {
        if (m->hashes[i] == h && m->lens[i] == len && memcmp(m->keys[i], k, len) == 0) return 0;
        i = (i + 1) & mask;
    }
    /* Empty keys need a non-NULL pointer to mark the slot used. */
    m->keys[i] = k ? k : "";
    m->lens[i] = (uint32_t)len;
    m->vals[i] = v;
    m->hashes[i] = h;
    m->n++;
    return 1;
}
