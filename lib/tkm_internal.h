/* tkm_internal.h - helpers shared by libtokenmill's modules (lib/, trainer/):
 * error raising, allocation, growable buffers, hashing, UTF-8 and scripts.
 * Not installed; nothing here is part of the public API. */
#ifndef TKM_INTERNAL_H
#define TKM_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tokenmill.h"

#if defined(__GNUC__)
#define TKMI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define TKMI_LIKELY(x) __builtin_expect(!!(x), 1)
#define TKMI_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define TKMI_PRINTF(a, b)
#define TKMI_LIKELY(x) (x)
#define TKMI_UNLIKELY(x) (x)
#endif

/* ---- errors (zstd's error_private.h style) ---- */
/* Records a formatted message for tkm_last_error() and returns code. */
int tkmi_error(int code, const char *fmt, ...) TKMI_PRINTF(2, 3);
#define TKM_RETURN_ERROR_IF(cond, code, ...) \
    do { if (TKMI_UNLIKELY(cond)) return tkmi_error((code), __VA_ARGS__); } while (0)
#define TKM_FORWARD_IF_ERROR(expr) \
    do { int tkmi_rc_ = (expr); if (tkmi_rc_ < 0) return tkmi_rc_; } while (0)

/* ---- allocation: all heap use goes through here ---- */
void *tkmi_malloc(size_t n);
void *tkmi_calloc(size_t n, size_t size);
void *tkmi_calloc_touched(size_t n, size_t size); /* for tables probed before written */
void *tkmi_realloc(void *p, size_t n);
void tkmi_free(void *p);
char *tkmi_strdup(const char *s);
/* Test hook (tests/check_alloc.c): from now on number the allocations made
 * through the wrappers above and make number n return NULL (n <= 0: none);
 * count the blocks allocated minus those freed meanwhile. Not thread-safe
 * against running library calls: arm and read it between them. */
void tkmi_alloc_fail_at(long n);
void tkmi_alloc_hook_off(void);
long tkmi_alloc_count(void);  /* allocations numbered since armed */
long tkmi_alloc_failed(void); /* how many were made to fail (0 or 1) */
long tkmi_alloc_live(void);   /* allocated minus freed since armed */
/* Grows *p (element size es) so that it holds at least need elements. */
int tkmi_grow(void **p, size_t *cap, size_t need, size_t es);

/* ---- hashing ---- */
static inline uint64_t tkmi_hash_bytes(const void *data, size_t len)
{
    /* FNV-1a folded 8 bytes at a time with a multiply-xorshift finish:
     * fast, good enough for open addressing with power-of-two tables. */
    const uint8_t *p = (const uint8_t *)data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (len * 0xff51afd7ed558ccdull), v = 0;
    size_t all = len;
    while (len >= 8) {
        memcpy(&v, p, 8);
        h = (h ^ v) * 0x100000001b3ull;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    /* the last 1..7 bytes as a little-endian word, zero above: loaded in
     * whole (overlapping) words rather than a byte at a time */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (len && all >= 8) {
        memcpy(&v, p + len - 8, 8);
        v >>= 64 - 8 * len;
    } else if (len >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + len - 4, 4);
        v = lo | (uint64_t)hi << (8 * (len - 4));
    } else if (len) { /* p may be NULL when len is 0 */
        v = (uint64_t)p[0] | (uint64_t)p[len / 2] << (8 * (len / 2)) | (uint64_t)p[len - 1] << (8 * (len - 1));
    } else {
        v = 0;
    }
#else
    (void)all;
    v = 0;
    if (len) memcpy(&v, p, len);
#endif
    h = (h ^ v) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 32;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 29;
    return h;
}
/* The first 8 bytes of s[0..n) as a big-endian number, padded with zeros.
 * Keys ordered by it and then by tkmi_key_pfx_cmp are in memcmp's order, a
 * prefix first (padded prefixes that differ past the shorter key's end
 * differ by a byte of the longer one against a 0); most comparisons of a
 * sort end at the prefix. */
static inline uint64_t tkmi_key_pfx8(const void *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++) v = v << 8 | (i < n ? p[i] : 0);
    return v;
}
static inline int tkmi_key_pfx_cmp(uint64_t pa, const char *a, size_t la, uint64_t pb, const char *b, size_t lb)
{
    if (pa != pb) return pa < pb ? -1 : 1;
    size_t n = la < lb ? la : lb;
    int c = n > 8 ? memcmp(a + 8, b + 8, n - 8) : 0;
    return c ? c : (la < lb ? -1 : la > lb);
}

/* lib/radix.c: sorts a[0..n) by (hi, lo), ascending and stable, with b
 * (n keys) as scratch; returns the one of a and b that holds the result,
 * or NULL when out of memory (a is then unchanged) */
typedef struct { uint64_t hi, lo; size_t i; } tkmi_rkey;
tkmi_rkey *tkmi_rkey_sort(tkmi_rkey *a, tkmi_rkey *b, size_t n);
/* sorts base[0..n) (items of `size` bytes) in cmp's order, as a stable
 * sort would, where key() gives each item a key (hi, lo; i is set here)
 * such that a smaller key means cmp < 0, equal keys leaving the order to
 * cmp: the keys radix-sorted, then cmp within runs of equal keys (qsort
 * alone when out of memory) */
void tkmi_rsort(void *base, size_t n, size_t size, void (*key)(const void *item, tkmi_rkey *k),
                int (*cmp)(const void *, const void *));

static inline uint64_t tkmi_hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* splitmix64: a small deterministic generator (state advanced in place) */
static inline uint64_t tkmi_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- string -> int map (open addressing; keys point into caller storage
 * or an internal arena) ---- */
typedef struct {
    uint64_t hash;
    const char *key; /* NULL: empty slot */
    uint32_t len;
    int32_t val;
} tkmi_strslot;      /* one cache-friendly slot: a probe touches one line */
typedef struct {
    tkmi_strslot *slots;
    size_t cap, n;
} tkmi_strmap;
int tkmi_strmap_init(tkmi_strmap *m, size_t expect);
void tkmi_strmap_free(tkmi_strmap *m);
/* Value for key, or -1. */
int32_t tkmi_strmap_get(const tkmi_strmap *m, const char *k, size_t len);
/* Inserts key (pointer stored, not copied). Returns 1 if inserted, 0 if the
 * key existed (value untouched), <0 on error. */
int tkmi_strmap_put(tkmi_strmap *m, const char *k, size_t len, int32_t v);

/* ---- UTF-8 ---- */
#define TKMI_WS "\xE2\x96\x81" /* U+2581 LOWER ONE EIGHTH BLOCK */
#define TKMI_WS_CP 0x2581u
/* Length of the UTF-8 sequence starting with byte c (1..4; 1 for invalid
 * leads), as sentencepiece's OneCharLen. */
static inline int tkmi_utf8_lead_len(uint8_t c)
{
    static const uint8_t t[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return t[c >> 4];
}
/* Strict decode of one code point (no surrogates, no overlongs, <= 0x10FFFF).
 * Sets *mblen; returns the code point or -1 if invalid (then *mblen = 1). */
int32_t tkmi_utf8_decode(const uint8_t *s, size_t len, int *mblen);
/* the characters of s (the bytes that are not continuation bytes, 10xxxxxx),
 * 8 bytes at a time */
static inline size_t tkmi_utf8_chars(const uint8_t *s, size_t n)
{
    size_t ns = n, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        ns -= (size_t)__builtin_popcountll(x & ~(x << 1) & 0x8080808080808080ull);
    }
    for (; i < n; i++) ns -= (s[i] & 0xC0) == 0x80;
    return ns;
}
/* Encodes cp; returns bytes written (1..4). */
int tkmi_utf8_encode(uint32_t cp, char *out);

/* ---- scripts (sentencepiece's rules, ICU data) ---- */
enum { TKMI_SCRIPT_ANY = -1 };
/* Script code as sentencepiece's trainer sees it: ICU UScriptCode, with
 * Hiragana, Katakana and U+30FC mapped to Han. */
int tkmi_script(uint32_t cp);
const uint8_t *tkmi_script_bmp(void); /* tkmi_script of every BMP code point */
static inline int tkmi_is_decimal_digit(uint32_t c)
{
    return (c >= 0x30 && c <= 0x39) || (c >= 0xff10 && c <= 0xff19);
}

/* ---- language classes for balancing (trainer --balance) ----
 * latin: only Latin-script letters, >= 2 characters; japanese: only Han,
 * Hiragana, Katakana or U+30FC, any length; other: the rest. A leading
 * U+2581 is allowed and not counted. Specials and bytes are other. */
enum { TKMI_CLASS_LATIN = 0, TKMI_CLASS_JAPANESE = 1, TKMI_CLASS_OTHER = 2, TKMI_N_CLASSES = 3 };
int tkmi_balance_class(const char *piece, size_t len);

/* ---- time ---- */
double tkmi_now(void);

#endif
