/* heap.h - the one binary heap, as a template: TKMI_HEAP_DEFINE(name, T, C,
 * before) defines static functions over an array of T, ordered by
 * before(ctx, a, b) (1 when a is popped first; ctx of type C, for orders that
 * need more than the entries):
 *   int  name_push(C ctx, T **h, size_t *n, size_t *cap, T x)   (grows h)
 *   T    name_pop(C ctx, T *h, size_t *n)                        (n > 0)
 *   void name_heapify(C ctx, T *h, size_t n)                     (any order in)
 * T must be one type name (typedef a pointer type first: the template
 * declares two T in one declaration).
 * Users: the BPE encoders (lib/bpe_encode.c, lib/rank_bpe.c), the BPE trainer,
 * the k-way merges of spill runs (trainer/count_spill.c) and count files
 * (trainer/count_file.c). */
#ifndef TKM_HEAP_H
#define TKM_HEAP_H

#include "tkm_internal.h"

#define TKMI_HEAP_DEFINE(name, T, C, before)                                                          \
    static inline void name##_sift_down(C ctx, T *h, size_t n, size_t i, T x)                        \
    {                                                                                                 \
        for (;;) {                                                                                    \
            size_t c = 2 * i + 1;                                                                     \
            if (c >= n) break;                                                                        \
            if (c + 1 < n && before(ctx, &h[c + 1], &h[c])) c++;                                      \
            if (!before(ctx, &h[c], &x)) break;                                                       \
            h[i] = h[c];                                                                              \
            i = c;                                                                                    \
        }                                                                                             \
        h[i] = x;                                                                                     \
    }                                                                                                 \
    static inline int name##_push(C ctx, T **hp, size_t *n, size_t *cap, T x)                        \
    {                                                                                                 \
        if (*n == *cap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)hp, cap, *n + 1, sizeof(T)));         \
        T *h = *hp;                                                                                   \
        size_t i = (*n)++;                                                                            \
        while (i > 0) {                                                                               \
            size_t par = (i - 1) / 2;                                                                 \
            if (!before(ctx, &x, &h[par])) break;                                                     \
            h[i] = h[par];                                                                            \
            i = par;                                                                                  \
        }                                                                                             \
        h[i] = x;                                                                                     \
        return 0;                                                                                     \
    }                                                                                                 \
    static inline T name##_pop(C ctx, T *h, size_t *n)                                               \
    {                                                                                                 \
        T top = h[0], last = h[--*n];                                                                 \
        if (*n) name##_sift_down(ctx, h, *n, 0, last);                                                \
        return top;                                                                                   \
    }                                                                                                 \
    static inline void name##_heapify(C ctx, T *h, size_t n)                                         \
    {                                                                                                 \
        for (size_t i = n / 2; i-- > 0;) name##_sift_down(ctx, h, n, i, h[i]);                        \
    }

#endif
