/* decode.c - ids back to text, as libsentencepiece's DecodeIds: control ids
 * vanish, unk becomes unk_surface, runs of byte pieces are decoded as UTF-8
 * (U+FFFD per invalid byte), U+2581 becomes ' ', and a leading U+2581 is
 * dropped when the model adds a dummy prefix. */
#include "model_internal.h"

typedef struct { char *p; size_t n, cap; } obuf;

static int ob_put(obuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&b->p, &b->cap, b->n + n + 1, 1));
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return 0;
}

static int flush_bytes(obuf *b, const uint8_t *bytes, size_t n)
{
    size_t off = 0;
    while (off < n) {
        int mb;
        if (tkmi_utf8_decode(bytes + off, n - off, &mb) < 0) {
            TKM_FORWARD_IF_ERROR(ob_put(b, "\xEF\xBF\xBD", 3));
            off += 1;
        } else {
            TKM_FORWARD_IF_ERROR(ob_put(b, (const char *)bytes + off, (size_t)mb));
            off += (size_t)mb;
        }
    }
    return 0;
}

int tkm_decode(const tkm_model *m, const int32_t *ids, size_t n, char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    for (size_t i = 0; i < n; i++)
        TKM_RETURN_ERROR_IF(ids[i] < 0 || ids[i] >= m->n, TKM_ERANGE, "invalid id %d at position %zu (vocabulary has %d)",
                            ids[i], i + 1, m->n);
    obuf b = {0};
    uint8_t *bytes = NULL;
    size_t nb = 0, bcap = 0;
    int rc = ob_put(&b, "", 0);
    int is_bos_ws = 1, bos_ws_seen = 0;
    int strip_bos = m->add_dummy_prefix || m->remove_extra_ws;
    for (size_t i = 0; i < n && rc == 0; i++) {
        int id = ids[i], t = m->type[id];
        if (t == TKM_PIECE_BYTE) {
            rc = tkmi_grow((void **)&bytes, &bcap, nb + 1, 1);
            if (rc == 0) {
                const char *p = tkmi_piece(m, id);
                unsigned v = 0;
                for (int k = 3; k < 5; k++) {
                    char c = p[k];
                    v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 32) - 'a' + 10);
                }
                bytes[nb++] = (uint8_t)v;
            }
            continue;
        }
        if (nb) { rc = flush_bytes(&b, bytes, nb); nb = 0; if (rc) break; }
        if (bos_ws_seen || b.n > 0) is_bos_ws = 0;
        bos_ws_seen = 0;
        if (t == TKM_PIECE_CONTROL) continue;
        if (t == TKM_PIECE_UNKNOWN) {
            rc = ob_put(&b, m->unk_surface, m->unk_surface_len);
            continue;
        }
        const char *p = tkmi_piece(m, id);
        size_t pl = m->plen[id];
        if (is_bos_ws && strip_bos && pl >= 3 && memcmp(p, TKMI_WS, 3) == 0) {
            p += 3;
            pl -= 3;
            bos_ws_seen = !m->remove_extra_ws;
        }
        size_t s = 0;
        for (size_t k = 0; k + 3 <= pl; k++) {
            if (memcmp(p + k, TKMI_WS, 3) == 0) {
                if ((rc = ob_put(&b, p + s, k - s)) || (rc = ob_put(&b, " ", 1))) break;
                s = k + 3;
                k += 2;
            }
        }
        if (rc == 0) rc = ob_put(&b, p + s, pl - s);
    }
    if (rc == 0 && nb) rc = flush_bytes(&b, bytes, nb);
    tkmi_free(bytes);
    if (rc == 0 && m->denorm_map_len) {
        /* sentencepiece's denormalizer: the decoded text through the
         * denormalizer_spec's rules (no dummy prefix, spaces as they are) */
        tkm_model d;
        memset(&d, 0, sizeof d);
        char *dn = NULL;
        size_t dl = 0, dc = 0;
        uint32_t *units = NULL; /* the trie copied: aligned uint32 reads */
        rc = tkmi_charsmap_view(&d, m->denorm_map, m->denorm_map_len, m->name, "denormalizer precompiled_charsmap");
        if (rc == 0 && d.darts_units) {
            units = tkmi_malloc(d.darts_units * sizeof *units);
            if (!units) rc = tkmi_error(TKM_ENOMEM, "out of memory");
            else {
                memcpy(units, m->denorm_map + 4, d.darts_units * sizeof *units);
                d.darts = units;
            }
        }
        if (rc == 0) rc = tkmi_normalize(&d, b.p, b.n, &dn, &dl, &dc);
        tkmi_free(units);
        if (rc == 0) rc = tkmi_grow((void **)&dn, &dc, dl + 1, 1);
        if (rc == 0) {
            tkmi_free(b.p);
            b.p = dn;
            b.n = dl;
        } else {
            tkmi_free(dn);
        }
    }
    if (rc < 0) { tkmi_free(b.p); return rc; }
    b.p[b.n] = 0;
    *out = b.p;
    *outlen = b.n;
    return 0;
}
