/* normalize.c - sentencepiece's Normalizer: identity or precompiled charsmap
 * (a Darts double-array trie over UTF-8 prefixes), dummy prefix, extra
 * whitespace removal, ' ' -> U+2581, and U+FFFD for each invalid byte. */
#include "model_internal.h"

/* Darts-clone unit accessors. */
static inline uint32_t du_has_leaf(uint32_t u) { return (u >> 8) & 1; }
static inline uint32_t du_value(uint32_t u) { return u & 0x7FFFFFFFu; }
static inline uint32_t du_label(uint32_t u) { return u & (0x80000000u | 0xFFu); }
static inline uint32_t du_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }

/* Longest charsmap rule that is a prefix of s; returns its length (0: none)
 * and the normalized replacement in *rep. */
static inline __attribute__((always_inline)) size_t charsmap_match(const tkm_model *m, const char *s, size_t len, const char **rep, size_t *replen)
{
    const uint32_t *a = m->darts;
    size_t n = m->darts_units;
    if (!n) return 0;
    size_t best = 0;
    uint32_t bestv = 0;
    uint32_t id = du_offset(a[0]);
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        id ^= c;
        if (id >= n) break;
        uint32_t u = a[id];
        if (du_label(u) != c) break;
        id ^= du_offset(u);
        if (id >= n) break;
        if (du_has_leaf(u)) {
            best = i + 1;
            bestv = du_value(a[id]);
        }
    }
    if (!best || bestv >= m->norm_strings_len) return 0;
    *rep = m->norm_strings + bestv;
    *replen = strnlen(*rep, m->norm_strings_len - bestv);
    return best;
}

/* One normalization step: (piece, plen) is the replacement, returns bytes
 * consumed (>= 1). */
static size_t normalize_prefix(const tkm_model *m, const char *s, size_t len, const char **piece, size_t *plen)
{
    if (m->has_user) {
        size_t k = tkmi_ptrie_longest(&m->user, s, len);
        if (k) { *piece = s; *plen = k; return k; }
    }
    if (m->darts_units) {
        size_t k = charsmap_match(m, s, len, piece, plen);
        if (k) return k;
    }
    int mb;
    if (tkmi_utf8_decode((const uint8_t *)s, len, &mb) < 0) {
        *piece = "\xEF\xBF\xBD";
        *plen = 3;
        return 1;
    }
    *piece = s;
    *plen = (size_t)mb;
    return (size_t)mb;
}

/* c is ASCII, not ' ', and the darts root (units a[0..n), root offset off)
 * has no edge labelled c: no charsmap rule begins with it */
static inline int plain_ascii(const uint32_t *a, uint32_t n, uint32_t off, uint32_t c)
{
    return c < 0x80 && c != ' ' && !((off ^ c) < n && du_label(a[off ^ c]) == c);
}

static int out_put(char **out, size_t *olen, size_t *ocap, const char *s, size_t n)
{
    if (*olen + n > *ocap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)out, ocap, *olen + n, 1));
    memcpy(*out + *olen, s, n);
    *olen += n;
    return 0;
}

int tkmi_normalize(const tkm_model *m, const char *in, size_t len, char **out, size_t *olen, size_t *ocap)
{
    if (len == 0) return 0;
    const char *piece;
    size_t plen;
    /* Fast path: identity model without spaces or special handling needs a
     * per-character loop anyway for U+FFFD; keep one loop for all cases. */
    if (m->remove_extra_ws) {
        while (len) {
            size_t k = normalize_prefix(m, in, len, &piece, &plen);
            if (!(plen == 1 && piece[0] == ' ')) break;
            in += k;
            len -= k;
        }
        if (len == 0) return 0;
    }
    /* Worst case growth: every byte becomes 3 bytes (U+FFFD or U+2581). */
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)out, ocap, *olen + len * 3 + 8, 1));
    const char *ws = m->escape_ws ? TKMI_WS : " ";
    size_t wsl = m->escape_ws ? 3 : 1;
    if (!m->treat_ws_suffix && m->add_dummy_prefix) TKM_FORWARD_IF_ERROR(out_put(out, olen, ocap, ws, wsl));
    int prev_space = m->remove_extra_ws;
    /* Without user symbols, what normalize_prefix and the code below would
     * copy as it is, one character at a time, is copied a run at a time:
     * ASCII bytes other than ' ' and valid multi-byte characters at which
     * no charsmap rule matches (plain_ascii: an ASCII byte that begins no
     * rule at all); a rule matched at the end of the run is applied at
     * once (k), not looked up again. */
    const uint32_t *da = m->darts;
    uint32_t dn = (uint32_t)m->darts_units, doff = dn ? du_offset(da[0]) : 0;
    while (len) {
        size_t k = 0;
        if (!m->has_user) {
            size_t r = 0;
            while (r < len) {
                uint8_t c = (uint8_t)in[r];
                if (c < 0x80) {
                    if (c == ' ') break;
                    if (!plain_ascii(da, dn, doff, c) && (k = charsmap_match(m, in + r, len - r, &piece, &plen)) > 0)
                        break;
                    r++;
                    continue;
                }
                if (dn && (k = charsmap_match(m, in + r, len - r, &piece, &plen)) > 0) break;
                int mb;
                if (tkmi_utf8_decode((const uint8_t *)in + r, len - r, &mb) < 0) break;
                r += (size_t)mb;
            }
            if (r) {
                TKM_FORWARD_IF_ERROR(out_put(out, olen, ocap, in, r));
                in += r;
                len -= r;
                prev_space = 0;
                if (!k) continue; /* the character that ended the run: below, next time */
            }
        }
        if (k) {
            /* a rule matched: piece, plen */
        } else if (!m->has_user && (uint8_t)in[0] < 0x80 &&
                   !((doff ^ (uint8_t)in[0]) < dn && du_label(da[doff ^ (uint8_t)in[0]]) == (uint8_t)in[0])) {
            /* ' ' (or ASCII plain_ascii left) beginning no rule: itself */
            piece = in;
            plen = 1;
            k = 1;
        } else {
            k = normalize_prefix(m, in, len, &piece, &plen);
        }
        if (prev_space)
            while (plen && piece[0] == ' ') { piece++; plen--; }
        if (plen) {
            for (size_t i = 0; i < plen; i++) {
                if (m->escape_ws && piece[i] == ' ') {
                    TKM_FORWARD_IF_ERROR(out_put(out, olen, ocap, TKMI_WS, 3));
                } else {
                    if (*olen + 1 > *ocap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)out, ocap, *olen + 1, 1));
                    (*out)[(*olen)++] = piece[i];
                }
            }
            prev_space = piece[plen - 1] == ' ';
        }
        in += k;
        len -= k;
        if (!m->remove_extra_ws) prev_space = 0;
    }
    if (m->remove_extra_ws) {
        while (*olen >= wsl && memcmp(*out + *olen - wsl, ws, wsl) == 0) *olen -= wsl;
    }
    if (m->treat_ws_suffix && m->add_dummy_prefix) TKM_FORWARD_IF_ERROR(out_put(out, olen, ocap, ws, wsl));
    return 0;
}
