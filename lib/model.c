/* model.c - sentencepiece ModelProto reader and writer, written by hand
 * against the protobuf wire format (no protobuf dependency). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "hf_pipeline.h"
#include "model_internal.h"

/* ---- protobuf reading ---- */
typedef struct {
    const uint8_t *p, *end, *base;
    const char *name;
} pbr;

static int pb_varint(pbr *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        TKM_RETURN_ERROR_IF(r->p >= r->end, TKM_EFORMAT, "%s: truncated model (varint at byte %zu)", r->name,
                            (size_t)(r->p - r->base));
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) { *v = x; return 0; }
    }
    return tkmi_error(TKM_EFORMAT, "%s: malformed varint at byte %zu", r->name, (size_t)(r->p - r->base));
}

/* Reads a field header; for wire type 2 returns the sub-range in *sub. */
static int pb_field(pbr *r, int *field, int *wire, uint64_t *val, pbr *sub)
{
    uint64_t key;
    TKM_FORWARD_IF_ERROR(pb_varint(r, &key));
    *field = (int)(key >> 3);
    *wire = (int)(key & 7);
    TKM_RETURN_ERROR_IF(*field == 0, TKM_EFORMAT, "%s: invalid field number 0 at byte %zu", r->name,
                        (size_t)(r->p - r->base));
    switch (*wire) {
    case 0: return pb_varint(r, val);
    case 1:
        TKM_RETURN_ERROR_IF(r->end - r->p < 8, TKM_EFORMAT, "%s: truncated model at byte %zu", r->name,
                            (size_t)(r->p - r->base));
        memcpy(val, r->p, 8);
        r->p += 8;
        return 0;
    case 5: {
        TKM_RETURN_ERROR_IF(r->end - r->p < 4, TKM_EFORMAT, "%s: truncated model at byte %zu", r->name,
                            (size_t)(r->p - r->base));
        uint32_t v32;
        memcpy(&v32, r->p, 4);
        *val = v32;
        r->p += 4;
        return 0;
    }
    case 2: {
        uint64_t n;
        TKM_FORWARD_IF_ERROR(pb_varint(r, &n));
        TKM_RETURN_ERROR_IF(n > (uint64_t)(r->end - r->p), TKM_EFORMAT,
                            "%s: truncated model (field %d wants %llu bytes at byte %zu, %zu left)", r->name, *field,
                            (unsigned long long)n, (size_t)(r->p - r->base), (size_t)(r->end - r->p));
        sub->p = r->p;
        sub->end = r->p + n;
        sub->base = r->base;
        sub->name = r->name;
        r->p += n;
        *val = n;
        return 0;
    }
    default:
        return tkmi_error(TKM_EFORMAT, "%s: unsupported wire type %d at byte %zu", r->name, *wire,
                          (size_t)(r->p - r->base));
    }
}

static float u2f(uint64_t v)
{
    uint32_t u = (uint32_t)v;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int parse_trainer_spec(tkm_model *m, pbr *r)
{
    while (r->p < r->end) {
        int f, w;
        uint64_t v;
        pbr sub;
        TKM_FORWARD_IF_ERROR(pb_field(r, &f, &w, &v, &sub));
        switch (f) {
        case 3: m->model_type = (int)v; break;
        case 4: m->vocab_size_spec = (int)v; break;
        case 33: m->hard_vocab_limit = v != 0; break;
        case 24: m->treat_ws_suffix = v != 0; break;
        case 35: m->byte_fallback = v != 0; break;
        case 41: m->bos_id = (int)(int32_t)v; break;
        case 42: m->eos_id = (int)(int32_t)v; break;
        case 43: m->pad_id = (int)(int32_t)v; break;
        case 44:
            if (w == 2) { m->unk_surface = (const char *)sub.p; m->unk_surface_len = (size_t)v; }
            break;
        default: break;
        }
    }
    return 0;
}

static int parse_normalizer_spec(tkm_model *m, pbr *r)
{
    while (r->p < r->end) {
        int f, w;
        uint64_t v;
        pbr sub;
        TKM_FORWARD_IF_ERROR(pb_field(r, &f, &w, &v, &sub));
        switch (f) {
        case 2:
            if (w == 2) { m->charsmap = sub.p; m->charsmap_len = (size_t)v; }
            break;
        case 3: m->add_dummy_prefix = v != 0; break;
        case 4: m->remove_extra_ws = v != 0; break;
        case 5: m->escape_ws = v != 0; break;
        default: break;
        }
    }
    return 0;
}

static int parse_model(tkm_model *m)
{
    pbr r = {m->raw, m->raw + m->raw_len, m->raw, m->name};
    size_t cap = 0;
    /* First pass: count pieces for a single allocation. */
    {
        pbr c = r;
        size_t n = 0;
        while (c.p < c.end) {
            int f, w;
            uint64_t v;
            pbr sub;
            TKM_FORWARD_IF_ERROR(pb_field(&c, &f, &w, &v, &sub));
            if (f == 1 && w == 2) n++;
        }
        cap = n;
    }
    TKM_RETURN_ERROR_IF(cap == 0, TKM_EFORMAT, "%s: not a sentencepiece model (no pieces)", m->name);
    TKM_RETURN_ERROR_IF(cap > (1u << 24), TKM_EFORMAT, "%s: too many pieces (%zu)", m->name, cap);
    m->poff = tkmi_malloc(cap * sizeof *m->poff);
    m->plen = tkmi_malloc(cap * sizeof *m->plen);
    m->score = tkmi_malloc(cap * sizeof *m->score);
    m->type = tkmi_malloc(cap);
    TKM_RETURN_ERROR_IF(!m->poff || !m->plen || !m->score || !m->type, TKM_ENOMEM, "out of memory");
    while (r.p < r.end) {
        int f, w;
        uint64_t v;
        pbr sub;
        TKM_FORWARD_IF_ERROR(pb_field(&r, &f, &w, &v, &sub));
        if (w != 2) continue;
        if (f == 1) {
            int id = m->n++;
            m->poff[id] = 0;
            m->plen[id] = 0;
            m->score[id] = 0;
            m->type[id] = TKM_PIECE_NORMAL;
            int have_piece = 0;
            while (sub.p < sub.end) {
                int f2, w2;
                uint64_t v2;
                pbr s2;
                TKM_FORWARD_IF_ERROR(pb_field(&sub, &f2, &w2, &v2, &s2));
                if (f2 == 1 && w2 == 2) {
                    m->poff[id] = (uint32_t)(s2.p - m->raw);
                    m->plen[id] = (uint32_t)v2;
                    have_piece = 1;
                } else if (f2 == 2 && w2 == 5) {
                    m->score[id] = u2f(v2);
                } else if (f2 == 3 && w2 == 0) {
                    TKM_RETURN_ERROR_IF(v2 < 1 || v2 > 6, TKM_EFORMAT, "%s: piece %d has invalid type %llu",
                                        m->name, id, (unsigned long long)v2);
                    m->type[id] = (uint8_t)v2;
                }
            }
            TKM_RETURN_ERROR_IF(!have_piece || m->plen[id] == 0, TKM_EFORMAT, "%s: piece %d is empty", m->name, id);
        } else if (f == 2) {
            m->has_trainer_spec = 1;
            TKM_FORWARD_IF_ERROR(parse_trainer_spec(m, &sub));
        } else if (f == 3) {
            m->has_normalizer_spec = 1;
            TKM_FORWARD_IF_ERROR(parse_normalizer_spec(m, &sub));
        } else if (f == 5 && w == 2) { /* denormalizer_spec: its charsmap only */
            while (sub.p < sub.end) {
                int f2, w2;
                uint64_t v2;
                pbr s2;
                TKM_FORWARD_IF_ERROR(pb_field(&sub, &f2, &w2, &v2, &s2));
                if (f2 == 2 && w2 == 2) { m->denorm_map = s2.p; m->denorm_map_len = (size_t)v2; }
            }
        }
    }
    return 0;
}

int tkmi_charsmap_view(tkm_model *d, const uint8_t *blob, size_t len, const char *name, const char *what)
{
    TKM_RETURN_ERROR_IF(len < 4, TKM_EFORMAT, "%s: truncated %s", name, what);
    uint32_t tsize;
    memcpy(&tsize, blob, 4);
    TKM_RETURN_ERROR_IF(tsize > len - 4 || tsize % 4, TKM_EFORMAT, "%s: malformed %s (trie size %u)", name, what, tsize);
    d->charsmap = blob;
    d->charsmap_len = len;
    d->darts = NULL; /* the caller points it at an aligned copy of the units */
    d->darts_units = tsize / 4;
    d->norm_strings = (const char *)blob + 4 + tsize;
    d->norm_strings_len = len - 4 - tsize;
    return 0;
}

static int decode_charsmap(tkm_model *m)
{
    if (m->denorm_map_len) { /* validated now, viewed when decoding */
        tkm_model d;
        memset(&d, 0, sizeof d);
        TKM_FORWARD_IF_ERROR(tkmi_charsmap_view(&d, m->denorm_map, m->denorm_map_len, m->name,
                                                "denormalizer precompiled_charsmap"));
    }
    if (!m->charsmap_len) return 0;
    TKM_RETURN_ERROR_IF(m->charsmap_len < 4, TKM_EFORMAT, "%s: truncated precompiled_charsmap", m->name);
    uint32_t tsize;
    memcpy(&tsize, m->charsmap, 4);
    TKM_RETURN_ERROR_IF(tsize > m->charsmap_len - 4 || tsize % 4, TKM_EFORMAT,
                        "%s: malformed precompiled_charsmap (trie size %u)", m->name, tsize);
    /* the trie sits at any offset in the protobuf bytes: copied so that its
     * units are read as aligned uint32 (native order is little-endian here,
     * as in sentencepiece) */
    m->darts_units = tsize / 4;
    if (m->darts_units) {
        uint32_t *d = tkmi_malloc(tsize);
        TKM_RETURN_ERROR_IF(!d, TKM_ENOMEM, "out of memory");
        memcpy(d, m->charsmap + 4, tsize);
        m->darts = d;
    }
    m->norm_strings = (const char *)m->charsmap + 4 + tsize;
    m->norm_strings_len = m->charsmap_len - 4 - tsize;
    return 0;
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The byte of a BYTE piece, or -1. Exactly the spelling sentencepiece writes
 * and reads back ("<0x%02X>"): no sign, no space, no lowercase. The piece is
 * not NUL-terminated (it points into the protobuf bytes). */
static int byte_piece_value(const char *p, uint32_t len)
{
    if (len != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>') return -1;
    int hi = hex_digit(p[3]), lo = hex_digit(p[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static int index_model(tkm_model *m, int need_unk)
{
    TKM_FORWARD_IF_ERROR(tkmi_strmap_init(&m->pieces, (size_t)m->n));
    TKM_FORWARD_IF_ERROR(tkmi_strmap_init(&m->reserved, 512));
    for (int i = 0; i < 256; i++) m->byte_id[i] = -1;
    m->unk_id = -1;
    for (int i = 0; i < m->n; i++) {
        int t = m->type[i];
        int normal = t == TKM_PIECE_NORMAL || t == TKM_PIECE_USER_DEFINED || t == TKM_PIECE_UNUSED;
        int rc = tkmi_strmap_put(normal ? &m->pieces : &m->reserved, tkmi_piece(m, i), m->plen[i], i);
        TKM_FORWARD_IF_ERROR(rc);
        TKM_RETURN_ERROR_IF(rc == 0, TKM_EFORMAT, "%s: piece %d (%.*s) is already defined", m->name, i,
                            (int)m->plen[i], tkmi_piece(m, i));
        if (t == TKM_PIECE_USER_DEFINED) m->has_user = 1;
        if (t == TKM_PIECE_UNUSED) m->has_unused = 1;
        if (t == TKM_PIECE_UNKNOWN) {
            TKM_RETURN_ERROR_IF(m->unk_id >= 0, TKM_EFORMAT, "%s: unk is already defined (ids %d and %d)", m->name,
                                m->unk_id, i);
            m->unk_id = i;
        }
        if (t == TKM_PIECE_BYTE) {
            TKM_RETURN_ERROR_IF(!m->byte_fallback, TKM_EFORMAT,
                                "%s: byte piece %d found although byte_fallback is false", m->name, i);
            int b = byte_piece_value(tkmi_piece(m, i), m->plen[i]);
            TKM_RETURN_ERROR_IF(b < 0, TKM_EFORMAT,
                                "%s: byte piece %d (%.*s) is invalid: a byte piece is <0xHH>, two uppercase hex digits",
                                m->name, i, (int)(m->plen[i] < 16 ? m->plen[i] : 16), tkmi_piece(m, i));
            m->byte_id[b] = i;
        }
    }
    TKM_RETURN_ERROR_IF(m->unk_id < 0 && need_unk, TKM_EFORMAT, "%s: unk is not defined", m->name);
    if (m->has_user) TKM_FORWARD_IF_ERROR(tkmi_ptrie_build_model(&m->user, m, 1u << TKM_PIECE_USER_DEFINED));
    if (m->byte_fallback)
        for (int b = 0; b < 256; b++)
            TKM_RETURN_ERROR_IF(m->byte_id[b] < 0, TKM_EFORMAT,
                                "%s: byte_fallback is set but byte piece <0x%02X> is missing", m->name, b);
    return 0;
}

/* The checks behind tkm_model_warning: signs of a .model cut short (the
 * pieces come first, so every cut between two pieces still parses) or with
 * pieces removed. 0 or TKM_ENOMEM. */
static int diagnose(tkm_model *m)
{
    static const char *const kinds[] = {"?", "Unigram", "BPE", "word", "char"};
    const char *kind = kinds[m->model_type >= 1 && m->model_type <= 4 ? m->model_type : 0];
    char msg[512];
    if (!m->has_trainer_spec || !m->has_normalizer_spec)
        snprintf(msg, sizeof msg,
                 "%s has no %s: the file is probably truncated (sentencepiece writes both after the pieces); "
                 "it loads as a %d-piece %s model with default settings",
                 m->name,
                 !m->has_trainer_spec && !m->has_normalizer_spec ? "trainer_spec and no normalizer_spec"
                 : !m->has_trainer_spec                          ? "trainer_spec"
                                                                 : "normalizer_spec",
                 m->n, kind);
    else if (m->vocab_size_spec > m->n && m->hard_vocab_limit)
        snprintf(msg, sizeof msg, "%s has %d pieces but its trainer_spec says vocab_size %d: pieces are missing",
                 m->name, m->n, m->vocab_size_spec);
    else
        return 0;
    m->warning = tkmi_strdup(msg);
    TKM_RETURN_ERROR_IF(!m->warning, TKM_ENOMEM, "out of memory");
    return 0;
}

int tkm_model_load_mem(const void *data, size_t size, const char *name, tkm_model **out)
{
    int rc = tkmi_model_load_pb(data, size, name, 1, out);
    if (rc == 0 && (rc = diagnose(*out)) < 0) {
        tkm_model_free(*out);
        *out = NULL;
    }
    return rc;
}

const char *tkm_model_warning(const tkm_model *m) { return m->warning; }

int tkmi_model_load_pb(const void *data, size_t size, const char *name, int need_unk, tkm_model **out)
{
    *out = NULL;
    tkm_model *m = tkmi_calloc(1, sizeof *m);
    TKM_RETURN_ERROR_IF(!m, TKM_ENOMEM, "out of memory");
    m->name = tkmi_strdup(name ? name : "<memory>");
    m->raw = tkmi_malloc(size);
    if (!m->name || !m->raw) { tkm_model_free(m); return tkmi_error(TKM_ENOMEM, "out of memory"); }
    memcpy(m->raw, data, size);
    m->raw_len = size;
    m->model_type = TKM_MODEL_UNIGRAM;
    m->bos_id = 1;
    m->eos_id = 2;
    m->pad_id = -1;
    m->unk_surface = " \xE2\x81\x87 ";
    m->unk_surface_len = 5;
    m->add_dummy_prefix = m->remove_extra_ws = m->escape_ws = 1;
    m->hard_vocab_limit = 1;
    int rc = parse_model(m);
    if (rc == 0) rc = decode_charsmap(m);
    if (rc == 0) rc = index_model(m, need_unk);
    if (rc < 0) { tkm_model_free(m); return rc; }
    /* Special ids must name pieces of the model; a disabled one is -1. */
    if (m->bos_id >= m->n) m->bos_id = -1;
    if (m->eos_id >= m->n) m->eos_id = -1;
    if (m->pad_id >= m->n) m->pad_id = -1;
    *out = m;
    return 0;
}

int tkm_model_load(const char *path, tkm_model **out)
{
    *out = NULL;
    uint8_t *buf;
    size_t size;
    TKM_FORWARD_IF_ERROR(tkmi_read_file(path, &buf, &size));
    if (size == 0) {
        tkmi_free(buf);
        return tkmi_error(TKM_EFORMAT, "%s: empty model file", path);
    }
    int rc = tkm_model_load_mem(buf, size, path, out);
    tkmi_free(buf);
    return rc;
}

void tkm_model_free(tkm_model *m)
{
    if (!m) return;
    tkmi_free(m->raw);
    tkmi_free(m->name);
    tkmi_free(m->poff);
    tkmi_free(m->plen);
    tkmi_free(m->score);
    tkmi_free(m->type);
    tkmi_free(m->darts);
    tkmi_free(m->warning);
    tkmi_strmap_free(&m->pieces);
    tkmi_strmap_free(&m->reserved);
    tkmi_ptrie_free(&m->user);
    tkmi_front_free(m->front);
    tkmi_free(m);
}

int tkmi_piece_to_id(const tkm_model *m, const char *s, size_t len)
{
    int32_t id = tkmi_strmap_get(&m->reserved, s, len);
    if (id >= 0) return id;
    id = tkmi_strmap_get(&m->pieces, s, len);
    return id >= 0 ? id : m->unk_id;
}

int tkm_model_size(const tkm_model *m) { return m->n; }
tkm_model_type tkm_model_kind(const tkm_model *m) { return (tkm_model_type)m->model_type; }
const char *tkm_model_piece(const tkm_model *m, int id, size_t *len)
{
    if (id < 0 || id >= m->n) return NULL;
    if (len) *len = m->plen[id];
    return tkmi_piece(m, id);
}
float tkm_model_score(const tkm_model *m, int id) { return id >= 0 && id < m->n ? m->score[id] : 0.0f; }
tkm_piece_type tkm_model_piece_type(const tkm_model *m, int id)
{
    return id >= 0 && id < m->n ? (tkm_piece_type)m->type[id] : (tkm_piece_type)0;
}
int tkm_model_piece_id(const tkm_model *m, const char *piece, size_t len)
{
    int32_t id = tkmi_strmap_get(&m->reserved, piece, len);
    return id >= 0 ? id : tkmi_strmap_get(&m->pieces, piece, len);
}
int tkm_model_unk_id(const tkm_model *m) { return m->unk_id; }
int tkm_model_bos_id(const tkm_model *m) { return m->bos_id; }
int tkm_model_eos_id(const tkm_model *m) { return m->eos_id; }
int tkm_model_pad_id(const tkm_model *m) { return m->pad_id; }
int tkm_model_byte_fallback(const tkm_model *m) { return m->byte_fallback; }
const uint8_t *tkm_model_bytes(const tkm_model *m, size_t *len)
{
    *len = m->raw_len;
    return m->raw;
}

int tkm_model_save(const tkm_model *m, const char *path)
{
    TKM_RETURN_ERROR_IF(m->front, TKM_ENOTSUP, "%s: a tokenizer read from a tokenizer.json or tiktoken file "
                        "cannot be saved as a sentencepiece .model", m->name);
    return tkmi_write_file_atomic(path, m->raw, m->raw_len);
}

/* ---- protobuf writing ---- */
void tkmi_pb_append(tkmi_pb *b, const void *p, size_t n)
{
    if (b->err) return;
    if (tkmi_grow((void **)&b->p, &b->cap, b->n + n, 1) < 0) { b->err = 1; return; }
    if (n) memcpy(b->p + b->n, p, n); /* p may be NULL when n is 0 */
    b->n += n;
}
void tkmi_pb_varint(tkmi_pb *b, uint64_t v)
{
    uint8_t tmp[10];
    int k = 0;
    do {
        tmp[k] = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v) tmp[k] |= 0x80;
        k++;
    } while (v);
    tkmi_pb_append(b, tmp, (size_t)k);
}
void tkmi_pb_tag(tkmi_pb *b, int field, int wire) { tkmi_pb_varint(b, ((uint64_t)field << 3) | (unsigned)wire); }
void tkmi_pb_bytes(tkmi_pb *b, int field, const void *s, size_t len)
{
    tkmi_pb_tag(b, field, 2);
    tkmi_pb_varint(b, len);
    tkmi_pb_append(b, s, len);
}
void tkmi_pb_str(tkmi_pb *b, int field, const char *s) { tkmi_pb_bytes(b, field, s, strlen(s)); }
void tkmi_pb_int(tkmi_pb *b, int field, int64_t v)
{
    tkmi_pb_tag(b, field, 0);
    tkmi_pb_varint(b, (uint64_t)v); /* negative int32 is sign-extended to 10 bytes */
}
void tkmi_pb_float(tkmi_pb *b, int field, float v)
{
    tkmi_pb_tag(b, field, 5);
    tkmi_pb_append(b, &v, 4);
}
