/* rehash.h - the one rehash loop of the library's open-addressing tables
 * (linear probing, a power-of-two number of slots), as a statement template:
 *
 *   TKMI_REHASH(T, s, used, hash, to, to_cap, from, from_cap);
 *
 * moves every used slot of from[0..from_cap) into to[0..to_cap) (empty:
 * zeroed; to_cap a power of two), each to the first empty slot from its hash
 * & (to_cap - 1). s names a `const T *` to a slot inside the two expressions:
 * `used` is true when *s holds an entry, `hash` is its 64-bit hash (a stored
 * one, or computed from the key). The table's owner allocates `to` and frees
 * `from`. Expanded in place, it compiles to the loop written by hand.
 * Users: lib/strmap.c, lib/pairmap.c, the trainer's count table
 * (trainer/pretok_count.c), pair table (trainer/bpe_train.c) and Unigram
 * seed table (trainer/unigram_train.c). */
#ifndef TKM_REHASH_H
#define TKM_REHASH_H

#include <stddef.h>

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

#endif
