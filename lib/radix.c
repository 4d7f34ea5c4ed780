/* radix.c - sorts by 128-bit keys: a stable least-significant-byte-first
 * radix sort (the byte positions where every key agrees skipped), and
 * tkmi_rsort, which sorts items in a comparator's order by keys that
 * follow it (Unigram seeds by score and string, the piece trie's strings,
 * the pieces ranked for pruning): the keys sorted, the items put in their
 * order, and the runs of equal keys (a longer common prefix) settled by
 * the comparator. */
#include <stdlib.h>

#include "tkm_internal.h"

tkmi_rkey *tkmi_rkey_sort(tkmi_rkey *a, tkmi_rkey *b, size_t n)
{
    if (n < 2) return a;
    size_t(*h)[256] = tkmi_calloc(16, sizeof *h);
    if (!h) return NULL;
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < 8; d++) {
            h[d][(a[i].lo >> (8 * d)) & 0xFF]++;
            h[8 + d][(a[i].hi >> (8 * d)) & 0xFF]++;
        }
    for (int d = 0; d < 16; d++) {
        size_t *c = h[d], sum = 0;
        int one = 0;
        for (int v = 0; v < 256; v++) one |= c[v] == n;
        if (one) continue; /* every key has the same byte here */
        for (int v = 0; v < 256; v++) {
            size_t x = c[v];
            c[v] = sum;
            sum += x;
        }
        for (size_t i = 0; i < n; i++) {
            uint64_t k = d < 8 ? a[i].lo : a[i].hi;
            b[c[(k >> (8 * (d & 7))) & 0xFF]++] = a[i];
        }
        tkmi_rkey *t = a;
        a = b;
        b = t;
    }
    tkmi_free(h);
    return a;
}

void tkmi_rsort(void *base, size_t n, size_t size, void (*key)(const void *item, tkmi_rkey *k),
                int (*cmp)(const void *, const void *))
{
    if (n < 2) return;
    tkmi_rkey *a = tkmi_malloc(n * sizeof *a), *b = a ? tkmi_malloc(n * sizeof *b) : NULL, *r = NULL;
    char *items = base, *tmp = NULL;
    if (b) {
        for (size_t i = 0; i < n; i++) {
            key(items + i * size, &a[i]);
            a[i].i = i;
        }
        r = tkmi_rkey_sort(a, b, n);
        /* the items in key order: into the other key array when they fit */
        tmp = !r ? NULL : size <= sizeof *a ? (char *)(r == a ? b : a) : tkmi_malloc(n * size);
    }
    if (!tmp) { /* out of memory: the comparator alone */
        tkmi_free(a);
        tkmi_free(b);
        qsort(base, n, size, cmp);
        return;
    }
    for (size_t i = 0; i < n; i++) memcpy(tmp + i * size, items + r[i].i * size, size);
    memcpy(items, tmp, n * size);
    if ((void *)tmp != (void *)a && (void *)tmp != (void *)b) tkmi_free(tmp);
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && r[j].hi == r[i].hi && r[j].lo == r[i].lo;) j++;
        if (j - i > 1) qsort(items + i * size, j - i, size, cmp);
    }
    tkmi_free(a);
    tkmi_free(b);
}
