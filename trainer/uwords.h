/* uwords.h - the Unigram trainer's words (uwords.c): the pre-tokens cut at
 * characters outside the vocabulary, sorted (memcmp order, a prefix first),
 * equal ones merged, in 12 bytes a word plus its bytes:
 *
 *   arena  the words' bytes, in the count table's record order (as they
 *          were cut), 8 zero bytes after the last
 *   ol     [n]: word i's offset in the arena << 24 | its length
 *          (TKMI_UW_LONG: 16 MiB or more, the length is in lg)
 *   cnt    [n]: word i's count (TKMI_UW_BIG: it does not fit 32 bits and
 *          is in big)
 *   big, lg  the escapes, by word index
 *
 * Built from the count table chunk by chunk (tkmi_counts_drain), so the
 * table and the words are never both whole in memory. Internal. */
#ifndef TKM_UWORDS_H
#define TKM_UWORDS_H

#include <stddef.h>
#include <stdint.h>

#include "trainer_internal.h"

#define TKMI_UW_BIG UINT32_MAX
#define TKMI_UW_LEN_BITS 24
#define TKMI_UW_LONG ((1u << TKMI_UW_LEN_BITS) - 1)
typedef struct { uint64_t i; int64_t v; } tkmi_uwesc;
typedef struct {
    char *arena;
    uint64_t *ol;
    uint32_t *cnt;
    tkmi_uwesc *big, *lg;
    size_t n, nbig, nlg;
    uint64_t arena_bytes; /* bytes of the arena (the 8 after them included) */
    uint64_t bytes;       /* the words' lengths summed */
} tkmi_uwords;

/* The Unigram budget's threshold sample (vocab_common.c): with tau > 0,
 * an entry counted c < tau times is a word only when tkmi_mb_keep keeps
 * it, and then counted tau times; the entries left out and those sampled
 * are added up here. */
typedef struct {
    int64_t tau;
    uint64_t left_unique, left_occ, sampled;
} tkmi_uw_sample;
/* words from the entries of counts (smp: through its sample; NULL: all),
 * cut at the characters whose sym in req is negative; frees the table as
 * it reads it: on return, success or not, counts is empty */
int tkmi_uwords_build(tkmi_uwords *w, tkmi_counts *counts, tkmi_cpmap *req, tkmi_uw_sample *smp);
/* the bytes a pre-token of len bytes is expected to take at the words'
 * peak (the Unigram budget's estimate, vocab_common.c) */
double tkmi_uwords_peak(size_t len);
void tkmi_uwords_free(tkmi_uwords *w);
/* bytes held (arena, ol, cnt and the escapes) */
uint64_t tkmi_uwords_bytes(const tkmi_uwords *w);
/* the escaped value of word i in e[0 .. n) */
int64_t tkmi_uwords_esc(const tkmi_uwesc *e, size_t n, size_t i);

static inline uint64_t tkmi_uw_off(const tkmi_uwords *w, size_t i) { return w->ol[i] >> TKMI_UW_LEN_BITS; }
static inline const char *tkmi_uw_s(const tkmi_uwords *w, size_t i) { return w->arena + tkmi_uw_off(w, i); }
static inline size_t tkmi_uw_len(const tkmi_uwords *w, size_t i)
{
    uint32_t l = (uint32_t)w->ol[i] & TKMI_UW_LONG;
    return l != TKMI_UW_LONG ? l : (size_t)tkmi_uwords_esc(w->lg, w->nlg, i);
}
static inline int64_t tkmi_uw_cnt(const tkmi_uwords *w, size_t i)
{
    uint32_t c = w->cnt[i];
    return c != TKMI_UW_BIG ? (int64_t)c : tkmi_uwords_esc(w->big, w->nbig, i);
}

#endif
