/* rehash.h - the one resize of the library's open-addressing tables
 * (linear probing, a power-of-two number of slots), as statement templates:
 *
 *   TKMI_RESIZE(T, s, used, hash, slots, cap, new_cap, alloc, what);
 *
 * resizes the table held in the lvalues (slots, cap) of T to new_cap slots:
 * `alloc` (an expression) gives them zeroed, the entries move over
 * (TKMI_REHASH), the old slots are freed. When alloc gives NULL the table is
 * unchanged and the enclosing function returns TKM_ENOMEM ("out of memory
 * (WHAT of N)"), as TKM_RETURN_ERROR_IF does.
 *
 *   TKMI_REHASH(T, s, used, hash, to, to_cap, from, from_cap);
 *
 * moves every used slot of from[0..from_cap) into to[0..to_cap) (zeroed),
 * each to the first empty slot from its hash & (to_cap - 1).
 *
 * In both, s names a `const T *` to a slot inside the two expressions: `used`
 * is true when *s holds an entry, `hash` is its 64-bit hash (a stored one, or
 * computed from the key). Expanded in place, they compile to the loop
 * written by hand. Users: lib/strmap.c, lib/pairmap.c, the trainer's pair
 * table (trainer/bpe_train.c) and Unigram seed table (trainer/unigram_train.c);
 * the count table (trainer/pretok_count.c) keeps only a tag of each hash and
 * rehashes from its records instead. */
#ifndef TKM_REHASH_H
#define TKM_REHASH_H

#include "tkm_internal.h"

#define TKMI_REHASH(T, s, used, hash, to, to_cap, from, from_cap)                              \
    do {                                                                                      \
        const size_t tkmi_mask_ = (size_t)(to_cap) - 1, tkmi_n_ = (size_t)(from_cap);         \
        for (size_t tkmi_i_ = 0; tkmi_i_ < tkmi_n_; tkmi_i_++) {                             \
            const T *s = &(from)[tkmi_i_];                                                    \
            if (!(used)) continue;                                                            \
            size_t tkmi_j_ = (size_t)(hash) & tkmi_mask_;                                     \
            for (s = &(to)[tkmi_j_]; used; s = &(to)[tkmi_j_])                                \
                tkmi_j_ = (tkmi_j_ + 1) & tkmi_mask_;                                         \
            (to)[tkmi_j_] = (from)[tkmi_i_];                                                  \
        }                                                                                     \
    } while (0)

#define TKMI_RESIZE(T, s, used, hash, slots, cap, new_cap, alloc, what)                        \
    do {                                                                                      \
        const size_t tkmi_nc_ = (new_cap);                                                    \
        T *tkmi_ns_ = (alloc);                                                                \
        TKM_RETURN_ERROR_IF(!tkmi_ns_, TKM_ENOMEM, "out of memory (%s of %zu)", (what), tkmi_nc_); \
        TKMI_REHASH(T, s, used, hash, tkmi_ns_, tkmi_nc_, slots, cap);                        \
        tkmi_free(slots);                                                                     \
        (slots) = tkmi_ns_;                                                                   \
        (cap) = tkmi_nc_;                                                                     \
    } while (0)

#endif
