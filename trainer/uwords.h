/* uwords.h - the Unigram trainer's words (uwords.c): the pre-tokens cut at
 * characters outside the vocabulary, sorted (memcmp order, a prefix first),
 * equal ones merged, in 12 bytes a word plus its bytes:
 *
 *   arena  the words' bytes back to back, in word order (a walk over the
 *          words reads it forward), 8 zero bytes after the last
 *   off    [n + 1]: word i is arena[off[i], off[i + 1])
 *   cnt    [n]: word i's count, or TKMI_UW_BIG: the count is in big
 *          (sorted by word), for counts that do not fit 32 bits
 *
 * Built from the count table chunk by chunk (tkmi_counts_drain), so the
 * table and the words are never both whole in memory. Internal. */
#ifndef TKM_UWORDS_H
#define TKM_UWORDS_H

#include <stddef.h>
#include <stdint.h>

#include "trainer_internal.h"

#define TKMI_UW_BIG UINT32_MAX
typedef struct { uint64_t i; int64_t cnt; } tkmi_uwbig;
typedef struct {
    char *arena;
    uint64_t *off;
    uint32_t *cnt;
    tkmi_uwbig *big;
    size_t n, nbig;
} tkmi_uwords;

/* words from the entries of counts (which it frees as it reads them: on
 * return, success or not, counts is empty), cut at the characters whose
 * sym in req is negative */
int tkmi_uwords_build(tkmi_uwords *w, tkmi_counts *counts, tkmi_cpmap *req);
void tkmi_uwords_free(tkmi_uwords *w);
/* bytes held (arena, off, cnt, big) */
uint64_t tkmi_uwords_bytes(const tkmi_uwords *w);
int64_t tkmi_uwords_big(const tkmi_uwords *w, size_t i);

static inline const char *tkmi_uw_s(const tkmi_uwords *w, size_t i) { return w->arena + w->off[i]; }
static inline size_t tkmi_uw_len(const tkmi_uwords *w, size_t i) { return (size_t)(w->off[i + 1] - w->off[i]); }
static inline int64_t tkmi_uw_cnt(const tkmi_uwords *w, size_t i)
{
    uint32_t c = w->cnt[i];
    return c != TKMI_UW_BIG ? (int64_t)c : tkmi_uwords_big(w, i);
}

#endif
