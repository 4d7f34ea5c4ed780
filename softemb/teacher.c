/* teacher.c - teachers for soft embeddings: an embedding matrix (GGUF,
 * safetensors, .npy) with the bytes of every row's token decoded from its
 * vocabulary (sentencepiece, GPT-2 byte-level, WordPiece, plain lines), and the
 * GGUF / .npy writers used to hand embeddings back to model tooling. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/json.h"
#include "../lib/fileio.h"
#include "../lib/model_internal.h"
#include "../lib/tkm_internal.h"
#include "gguf_internal.h"
#include "tokenmill_softemb.h"

struct tkm_teacher {
    size_t rows, dim;
    float *m;
    char **piece;          /* rows NUL-terminated strings (in `text`) */
    size_t *boff, *blen;   /* decoded bytes: bytes + boff[r], blen[r] */
    unsigned char *bytes;
    uint8_t *kind;
    char *text;
    const char *format, *style;
};

/* ---- small helpers ----------------------------------------------------------- */

typedef struct {
    const unsigned char *p;
    size_t n;
    const char *path;
} mfile;

static int map_file(const char *path, mfile *f)
{
    memset(f, 0, sizeof(*f));
    f->path = path;
    TKM_FORWARD_IF_ERROR(tkmi_map_file(path, &f->p, &f->n));
    TKM_RETURN_ERROR_IF(f->n == 0, TKM_EFORMAT, "%s: empty file", path);
    return 0;
}

static void unmap_file(mfile *f)
{
    tkmi_unmap_file(f->p, f->n);
    f->p = NULL;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static float f16_to_f32(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, bits;
    if (e == 0) {
        if (m == 0) {
            bits = s;
        } else { /* subnormal: normalise */
            int k = -1;
            do {
                k++;
                m <<= 1;
            } while (!(m & 1024));
            bits = s | (uint32_t)(127 - 15 - k) << 23 | (m & 1023) << 13;
        }
    } else if (e == 31) {
        bits = s | 0x7F800000u | m << 13;
    } else {
        bits = s | (e + 112) << 23 | m << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint16_t f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t s = (x >> 16) & 0x8000, e = (x >> 23) & 255, m = x & 0x7FFFFF;
    if (e == 255)
        return (uint16_t)(s | 0x7C00 | (m ? 0x200 : 0));
    int ne = (int)e - 127 + 15;
    if (ne >= 31)
        return (uint16_t)(s | 0x7C00);
    if (ne <= 0) { /* subnormal or zero, round to nearest even */
        if (ne < -10)
            return (uint16_t)s;
        m |= 0x800000;
        int shift = 14 - ne;
        uint32_t half = 1u << (shift - 1), rest = m & ((1u << shift) - 1), q = m >> shift;
        if (rest > half || (rest == half && (q & 1)))
            q++;
        return (uint16_t)(s | q);
    }
    uint32_t q = (uint32_t)ne << 10 | m >> 13, rest = m & 0x1FFF;
    if (rest > 0x1000 || (rest == 0x1000 && (q & 1)))
        q++; /* may carry into the exponent: still correct, up to inf */
    return (uint16_t)(s | q);
}

static float bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint16_t f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7F800000u) == 0x7F800000u && (x & 0x7FFFFF))
        return (uint16_t)((x >> 16) | 0x40);
    uint32_t r = x + 0x7FFF + ((x >> 16) & 1);
    return (uint16_t)(r >> 16);
}

/* ---- the teacher object ----------------------------------------------------- */

static tkm_teacher *teacher_alloc(size_t rows, size_t dim)
{
    tkm_teacher *t = tkmi_calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->rows = rows;
    t->dim = dim;
    if (rows > SIZE_MAX / 4 / (dim ? dim : 1))
        goto fail;
    t->m = tkmi_malloc(rows * dim * sizeof(float) + 1);
    t->piece = tkmi_calloc(rows + 1, sizeof(char *));
    t->boff = tkmi_calloc(rows + 1, sizeof(size_t));
    t->blen = tkmi_calloc(rows + 1, sizeof(size_t));
    t->kind = tkmi_calloc(rows + 1, 1);
    if (!t->m || !t->piece || !t->boff || !t->blen || !t->kind)
        goto fail;
    return t;
fail:
    tkm_teacher_free(t);
    return NULL;
}

void tkm_teacher_free(tkm_teacher *t)
{
    if (!t)
        return;
    tkmi_free(t->m);
    tkmi_free(t->piece);
    tkmi_free(t->boff);
    tkmi_free(t->blen);
    tkmi_free(t->kind);
    tkmi_free(t->bytes);
    tkmi_free(t->text);
    tkmi_free(t);
}

size_t tkm_teacher_rows(const tkm_teacher *t) { return t->rows; }
size_t tkm_teacher_dim(const tkm_teacher *t) { return t->dim; }
const float *tkm_teacher_matrix(const tkm_teacher *t) { return t->m; }
const char *tkm_teacher_piece(const tkm_teacher *t, size_t row) { return row < t->rows ? t->piece[row] : NULL; }
tkm_row_kind tkm_teacher_row_kind(const tkm_teacher *t, size_t row)
{
    return row < t->rows ? (tkm_row_kind)t->kind[row] : TKM_ROW_UNUSED;
}
const char *tkm_teacher_format(const tkm_teacher *t) { return t->format; }
const char *tkm_teacher_vocab_style(const tkm_teacher *t) { return t->style; }

const unsigned char *tkm_teacher_bytes(const tkm_teacher *t, size_t row, size_t *len)
{
    if (row >= t->rows) {
        *len = 0;
        return NULL;
    }
    *len = t->blen[row];
    return t->bytes + t->boff[row];
}

/* Converts n values of `dtype` at src to float32. 0, or TKM_ENOTSUP. */
enum { DT_F32, DT_F16, DT_BF16, DT_Q8_0 };

static void convert(int dtype, const unsigned char *src, size_t n, float *out)
{
    switch (dtype) {
    case DT_F32:
        memcpy(out, src, n * 4);
        break;
    case DT_F16:
        for (size_t i = 0; i < n; i++)
            out[i] = f16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        break;
    case DT_BF16:
        for (size_t i = 0; i < n; i++)
            out[i] = bf16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        break;
    case DT_Q8_0: /* blocks of 32: f16 scale, 32 int8 */
        for (size_t b = 0; b < n / 32; b++) {
            const unsigned char *blk = src + b * 34;
            float d = f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
            for (int i = 0; i < 32; i++)
                out[b * 32 + (size_t)i] = d * (float)(int8_t)blk[2 + i];
        }
        break;
    }
}

static size_t dtype_bytes(int dtype, size_t n)
{
    return dtype == DT_F32 ? n * 4 : dtype == DT_Q8_0 ? n / 32 * 34 : n * 2;
}

/* ---- vocabularies --------------------------------------------------------------- */

typedef struct {
    char **s;       /* pieces (allocated) */
    size_t *len;
    uint8_t *kind;  /* TKM_ROW_* from the vocabulary's own types (NORMAL if unknown) */
    uint8_t *is_byte_piece; /* sentencepiece <0xNN> BYTE pieces */
    uint8_t *raw;   /* spelled as raw text, not in the vocabulary's alphabet: HF added
                       tokens, GGUF USER_DEFINED tokens (matters for byte-level) */
    size_t n;
    const char *style;
} vocab;

static void vocab_free(vocab *v)
{
    for (size_t i = 0; i < v->n; i++)
        tkmi_free(v->s[i]);
    tkmi_free(v->s);
    tkmi_free(v->len);
    tkmi_free(v->kind);
    tkmi_free(v->is_byte_piece);
    tkmi_free(v->raw);
    memset(v, 0, sizeof(*v));
}

/* n entries for a matrix of `rows` rows (more entries than rows: an error,
 * before anything is allocated). */
static int vocab_init(vocab *v, size_t n, size_t rows, const char *path)
{
    TKM_RETURN_ERROR_IF(n > rows, TKM_EFORMAT, "%s: the vocabulary has %zu entries but the matrix only %zu rows",
                        path, n, rows);
    v->n = n;
    v->s = tkmi_calloc(n + 1, sizeof(char *));
    v->len = tkmi_calloc(n + 1, sizeof(size_t));
    v->kind = tkmi_calloc(n + 1, 1);
    v->is_byte_piece = tkmi_calloc(n + 1, 1);
    v->raw = tkmi_calloc(n + 1, 1);
    if (!v->s || !v->len || !v->kind || !v->is_byte_piece || !v->raw) {
        v->n = 0;
        vocab_free(v);
        return tkmi_error(TKM_ENOMEM, "%s: out of memory for %zu vocabulary entries", path, n);
    }
    return 0;
}

static int vocab_set(vocab *v, size_t i, const char *s, size_t len)
{
    char *c = tkmi_malloc(len + 1);
    if (!c)
        return TKM_ENOMEM;
    memcpy(c, s, len);
    c[len] = 0;
    tkmi_free(v->s[i]);
    v->s[i] = c;
    v->len[i] = len;
    return 0;
}

static int vocab_from_model(const char *path, size_t rows, vocab *v)
{
    tkm_model *m = NULL;
    TKM_FORWARD_IF_ERROR(tkm_model_load(path, &m));
    int n = tkm_model_size(m), rc = vocab_init(v, (size_t)n, rows, path);
    for (int i = 0; rc == 0 && i < n; i++) {
        size_t k;
        const char *p = tkm_model_piece(m, i, &k);
        rc = vocab_set(v, (size_t)i, p, k);
        tkm_piece_type ty = tkm_model_piece_type(m, i);
        v->kind[i] = ty == TKM_PIECE_CONTROL || ty == TKM_PIECE_UNKNOWN ? TKM_ROW_SPECIAL
                   : ty == TKM_PIECE_UNUSED ? TKM_ROW_UNUSED : TKM_ROW_NORMAL;
        v->is_byte_piece[i] = ty == TKM_PIECE_BYTE;
    }
    tkm_model_free(m);
    v->style = "sentencepiece";
    return rc;
}

static int is_wordpiece_special(const char *s, size_t n)
{
    static const char *const sp[] = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };
    for (size_t i = 0; i < sizeof(sp) / sizeof(sp[0]); i++)
        if (strlen(sp[i]) == n && memcmp(sp[i], s, n) == 0)
            return 1;
    return 0;
}

static int is_wordpiece_unused(const char *s, size_t n)
{
    if (n < 9 || memcmp(s, "[unused", 7) != 0 || s[n - 1] != ']')
        return 0;
    for (size_t i = 7; i + 1 < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int vocab_from_lines(const char *path, size_t rows, vocab *v)
{
    mfile f;
    TKM_FORWARD_IF_ERROR(map_file(path, &f));
    size_t n = 0;
    for (size_t i = 0; i < f.n; i++)
        n += f.p[i] == '\n';
    if (f.n && f.p[f.n - 1] != '\n')
        n++;
    int rc = vocab_init(v, n, rows, path), wp = 0;
    size_t line = 0, st = 0;
    for (size_t i = 0; rc == 0 && i <= f.n && line < n; i++) {
        if (i < f.n && f.p[i] != '\n')
            continue;
        size_t e = i;
        if (e > st && f.p[e - 1] == '\r')
            e--;
        int mb;
        for (size_t k = st; k < e; k += (size_t)mb) {
            if (tkmi_utf8_decode(f.p + k, e - k, &mb) < 0) {
                rc = tkmi_error(TKM_EFORMAT, "%s: line %zu: invalid UTF-8 at byte offset %zu", path, line + 1, k);
                break;
            }
        }
        if (rc == 0)
            rc = vocab_set(v, line, (const char *)f.p + st, e - st);
        if (rc == 0 && ((e - st >= 2 && memcmp(f.p + st, "##", 2) == 0) ||
                        is_wordpiece_special((const char *)f.p + st, e - st)))
            wp = 1;
        line++;
        st = i + 1;
    }
    unmap_file(&f);
    v->style = wp ? "wordpiece" : "plain";
    return rc;
}

/* The type of a pre-tokenizer / decoder tree contains "ByteLevel"? */
static int json_has_type(const tkmi_json *v, const char *type, int depth)
{
    if (!v || depth > 16)
        return 0;
    if (v->type == TKMI_JSON_OBJECT) {
        const char *t = tkmi_json_str(tkmi_json_get(v, "type"));
        if (t && strcmp(t, type) == 0)
            return 1;
        for (size_t i = 0; i < v->len; i++)
            if (json_has_type(tkmi_json_val(v, i), type, depth + 1))
                return 1;
    } else if (v->type == TKMI_JSON_ARRAY) {
        for (size_t i = 0; i < v->len; i++)
            if (json_has_type(tkmi_json_at(v, i), type, depth + 1))
                return 1;
    }
    return 0;
}

/* The byte of a sentencepiece byte piece "<0xNN>" (two hex digits), else -1. */
static int byte_piece_value(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        int c = (unsigned char)s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

static int vocab_from_hf_json(const char *path, size_t rows, vocab *v)
{
    tkmi_json_doc *doc;
    TKM_FORWARD_IF_ERROR(tkmi_json_parse_file(path, &doc));
    const tkmi_json *root = tkmi_json_root(doc), *model = tkmi_json_get(root, "model");
    const tkmi_json *voc = tkmi_json_get(model, "vocab"), *added = tkmi_json_get(root, "added_tokens");
    const char *mtype = tkmi_json_str(tkmi_json_get(model, "type"));
    int rc = 0;
    size_t n = 0;
    if (!voc || (voc->type != TKMI_JSON_OBJECT && voc->type != TKMI_JSON_ARRAY)) {
        rc = tkmi_error(TKM_EFORMAT, "%s: no model.vocab", path);
        goto done;
    }
    int64_t id;
    if (voc->type == TKMI_JSON_OBJECT) {
        for (size_t i = 0; i < voc->len; i++) {
            if (!tkmi_json_int(tkmi_json_val(voc, i), 0, 1 << 26, &id)) {
                rc = tkmi_error(TKM_EFORMAT, "%s: offset %zu: vocabulary id is not a small integer", path,
                                tkmi_json_val(voc, i)->offset);
                goto done;
            }
            if ((size_t)id + 1 > n)
                n = (size_t)id + 1;
        }
    } else {
        n = voc->len;
    }
    for (size_t i = 0; added && i < added->len; i++)
        if (tkmi_json_int(tkmi_json_get(tkmi_json_at(added, i), "id"), 0, 1 << 26, &id) && (size_t)id + 1 > n)
            n = (size_t)id + 1;
    if ((rc = vocab_init(v, n, rows, path)) < 0)
        goto done;
    for (size_t i = 0; i < n; i++)
        v->kind[i] = TKM_ROW_UNUSED; /* ids nobody names */
    for (size_t i = 0; i < voc->len; i++) {
        const tkmi_json *k, *val;
        if (voc->type == TKMI_JSON_OBJECT) {
            k = tkmi_json_key(voc, i);
            val = tkmi_json_val(voc, i);
            tkmi_json_int(val, 0, 1 << 26, &id);
        } else {
            k = tkmi_json_at(tkmi_json_at(voc, i), 0);
            id = (int64_t)i;
        }
        if (!tkmi_json_str(k)) {
            rc = tkmi_error(TKM_EFORMAT, "%s: offset %zu: vocabulary entry without a string", path,
                            tkmi_json_at(voc, i) ? tkmi_json_at(voc, i)->offset : voc->offset);
            goto done;
        }
        if ((rc = vocab_set(v, (size_t)id, k->u.str, k->len)) < 0)
            goto done;
        v->kind[id] = TKM_ROW_NORMAL;
    }
    for (size_t i = 0; added && i < added->len; i++) {
        const tkmi_json *a = tkmi_json_at(added, i);
        const tkmi_json *c = tkmi_json_get(a, "content");
        if (!tkmi_json_int(tkmi_json_get(a, "id"), 0, 1 << 26, &id) || !tkmi_json_str(c))
            continue;
        if ((rc = vocab_set(v, (size_t)id, c->u.str, c->len)) < 0)
            goto done;
        v->kind[id] = tkmi_json_get(a, "special") && tkmi_json_get(a, "special")->type == TKMI_JSON_TRUE
                      ? TKM_ROW_SPECIAL : TKM_ROW_NORMAL;
        v->raw[id] = 1; /* added tokens match raw text: "  " is two spaces, not byte-level */
    }
    if (mtype && strcmp(mtype, "WordPiece") == 0)
        v->style = "wordpiece";
    else if (json_has_type(tkmi_json_get(root, "pre_tokenizer"), "ByteLevel", 0) ||
             json_has_type(tkmi_json_get(root, "decoder"), "ByteLevel", 0))
        v->style = "byte-level";
    else
        v->style = "sentencepiece";
    if (!strcmp(v->style, "sentencepiece"))
        for (size_t i = 0; i < n; i++)
            v->is_byte_piece[i] = v->s[i] && byte_piece_value(v->s[i], v->len[i]) >= 0;
done:
    tkmi_json_free(doc);
    if (rc < 0)
        vocab_free(v);
    return rc;
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int load_vocab_file(const char *path, size_t rows, vocab *v)
{
    if (ends_with(path, ".json"))
        return vocab_from_hf_json(path, rows, v);
    if (ends_with(path, ".model"))
        return vocab_from_model(path, rows, v);
    return vocab_from_lines(path, rows, v);
}

/* GPT-2's byte <-> character table: printable Latin-1 bytes map to
 * themselves, the other 68 bytes to U+0100.. in byte order. */
static void byte_level_table(int32_t cp_to_byte[512])
{
    for (int i = 0; i < 512; i++)
        cp_to_byte[i] = -1;
    int k = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (printable)
            cp_to_byte[b] = b;
        else
            cp_to_byte[256 + k++] = b;
    }
}

size_t tkm_se_sp_piece_bytes(const char *s, size_t n, int is_byte_piece, unsigned char *out)
{
    if (is_byte_piece && byte_piece_value(s, n) >= 0) {
        out[0] = (unsigned char)byte_piece_value(s, n);
        return 1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 &&
            (unsigned char)s[i + 2] == 0x81) {
            out[k++] = ' ';
            i += 3;
        } else {
            out[k++] = (unsigned char)s[i++];
        }
    }
    return k;
}

/* Decodes piece s (len n) of style into out (capacity >= n + 1); returns the
 * byte count, or -1 when a byte-level piece has a character outside the table.
 * Raw pieces (added / user-defined tokens) of a byte-level vocabulary are their
 * own bytes. */
static long decode_piece(const char *style, const char *s, size_t n, int is_byte_piece, int raw, const int32_t *bl,
                         unsigned char *out)
{
    size_t k = 0;
    if (!strcmp(style, "sentencepiece"))
        return (long)tkm_se_sp_piece_bytes(s, n, is_byte_piece, out);
    if (!strcmp(style, "byte-level")) {
        if (raw) {
            memcpy(out, s, n);
            return (long)n;
        }
        for (size_t i = 0; i < n;) {
            int mb;
            int32_t cp = tkmi_utf8_decode((const unsigned char *)s + i, n - i, &mb);
            if (cp < 0 || cp >= 512 || bl[cp] < 0)
                return -1;
            out[k++] = (unsigned char)bl[cp];
            i += (size_t)mb;
        }
        return (long)k;
    }
    if (!strcmp(style, "wordpiece")) {
        if (n >= 2 && s[0] == '#' && s[1] == '#') {
            memcpy(out, s + 2, n - 2);
            return (long)(n - 2);
        }
        out[0] = ' ';
        memcpy(out + 1, s, n);
        return (long)(n + 1);
    }
    memcpy(out, s, n);
    return (long)n;
}

/* Fills pieces, decoded bytes and kinds of t from v (rows beyond v: UNUSED). */
static int attach_vocab(tkm_teacher *t, const vocab *v, const char *path)
{
    TKM_RETURN_ERROR_IF(v->n > t->rows, TKM_EFORMAT,
                        "%s: the vocabulary has %zu entries but the matrix only %zu rows", path, v->n, t->rows);
    size_t tl = 0;
    for (size_t i = 0; i < v->n; i++)
        tl += v->len[i] + 2;
    t->text = tkmi_malloc(tl + t->rows + 1);
    t->bytes = tkmi_malloc(tl + 1);
    TKM_RETURN_ERROR_IF(!t->text || !t->bytes, TKM_ENOMEM, "out of memory");
    int32_t bl[512];
    byte_level_table(bl);
    size_t to = 0, bo = 0;
    t->style = v->style;
    for (size_t r = 0; r < t->rows; r++) {
        t->piece[r] = t->text + to;
        t->boff[r] = bo;
        if (r >= v->n || !v->s[r]) {
            t->text[to++] = 0;
            t->blen[r] = 0;
            t->kind[r] = TKM_ROW_UNUSED;
            continue;
        }
        memcpy(t->text + to, v->s[r], v->len[r] + 1);
        to += v->len[r] + 1;
        uint8_t kind = v->kind[r];
        if (!strcmp(v->style, "wordpiece") && kind == TKM_ROW_NORMAL) {
            if (is_wordpiece_special(v->s[r], v->len[r]))
                kind = TKM_ROW_SPECIAL;
            else if (is_wordpiece_unused(v->s[r], v->len[r]))
                kind = TKM_ROW_UNUSED;
        }
        /* special tokens are their own text (as llama.cpp and HF print them) */
        long k = decode_piece(v->style, v->s[r], v->len[r], v->is_byte_piece[r],
                              v->raw[r] || kind == TKM_ROW_SPECIAL, bl, t->bytes + bo);
        /* a normal piece outside the byte-level alphabet: the vocabulary is not
         * byte-level after all (or is corrupt); refuse rather than guess */
        TKM_RETURN_ERROR_IF(k < 0, TKM_EFORMAT,
                            "%s: piece %zu (\"%s\") has a character outside the byte-level alphabet "
                            "and is not an added or user-defined token", path, r, v->s[r]);
        t->blen[r] = (size_t)k;
        bo += (size_t)k;
        if ((k == 0 || v->len[r] == 0) && kind == TKM_ROW_NORMAL)
            kind = TKM_ROW_UNUSED; /* an empty piece is no token (WordPiece would make it " ") */
        t->kind[r] = kind;
    }
    return 0;
}

/* ---- GGUF ------------------------------------------------------------------------- */

/* The teacher matrix (and the vocabulary in the metadata) of a GGUF file,
 * parsed and bounds-checked by gguf.c's reader. */
static int load_gguf(const mfile *f, const tkm_teacher_opts *o, tkm_teacher **out, vocab *v)
{
    tkmi_gguf g;
    TKM_FORWARD_IF_ERROR(tkmi_gguf_parse_any_type(f->p, f->n, f->path, &g));
    const char *want = o && o->tensor ? o->tensor : "token_embd.weight";
    const tkmi_gguf_tensor *tn = tkmi_gguf_tensor_find(&g, want);
    int rc = 0;
    if (!tn) {
        rc = tkmi_error(TKM_EFORMAT, "%s: no tensor named %s", f->path, want);
        goto out;
    }
    if (tn->ndim != 2) {
        rc = tkmi_error(TKM_EFORMAT, "%s: tensor %s has %u dimensions, not 2", f->path, want, tn->ndim);
        goto out;
    }
    uint64_t ne0 = tn->ne[0], ne1 = tn->ne[1];
    int dt = tn->type == 0 ? DT_F32 : tn->type == 1 ? DT_F16 : tn->type == 30 ? DT_BF16 : tn->type == 8 ? DT_Q8_0 : -1;
    if (dt < 0) {
        rc = tkmi_error(TKM_ENOTSUP, "%s: unsupported tensor type %u (%s); F32, F16, BF16 and Q8_0 are read", f->path,
                        tn->type, want);
        goto out;
    }
    if (ne0 == 0 || ne1 == 0 || ne0 > (1u << 20) || ne1 > (1u << 26)) {
        rc = tkmi_error(TKM_EFORMAT, "%s: implausible shape [%llu, %llu] of %s", f->path, (unsigned long long)ne0,
                        (unsigned long long)ne1, want);
        goto out;
    }
    if (dt == DT_Q8_0 && ne0 % 32) {
        rc = tkmi_error(TKM_EFORMAT, "%s: Q8_0 row length %llu is not a multiple of 32", f->path,
                        (unsigned long long)ne0);
        goto out;
    }
    size_t nbytes = dtype_bytes(dt, (size_t)(ne0 * ne1));
    if (tn->off > f->n - g.data || nbytes > f->n - g.data - tn->off) {
        rc = tkmi_error(TKM_EFORMAT, "%s: tensor %s (offset %llu, %zu bytes) lies beyond the end of the file (%zu bytes)",
                        f->path, want, (unsigned long long)tn->off, nbytes, f->n);
        goto out;
    }
    tkm_teacher *t = teacher_alloc((size_t)ne1, (size_t)ne0);
    if (!t) {
        rc = tkmi_error(TKM_ENOMEM, "out of memory for a %llu x %llu matrix", (unsigned long long)ne1,
                        (unsigned long long)ne0);
        goto out;
    }
    convert(dt, f->p + g.data + tn->off, (size_t)(ne0 * ne1), t->m);
    t->format = "gguf";
    *out = t;
    const tkmi_gguf_kv *tok = tkmi_gguf_find(&g, "tokenizer.ggml.tokens");
    const tkmi_gguf_kv *typ = tkmi_gguf_find(&g, "tokenizer.ggml.token_type");
    const tkmi_gguf_kv *mod = tkmi_gguf_find(&g, "tokenizer.ggml.model");
    /* arrays: element type (4 bytes), count (8), then the elements */
    if (tok && (tok->type != TKMI_GGUF_ARR || le32(f->p + tok->val) != TKMI_GGUF_STR))
        tok = NULL;
    if (typ && (typ->type != TKMI_GGUF_ARR || le32(f->p + typ->val) != TKMI_GGUF_I32))
        typ = NULL;
    if (mod && mod->type != TKMI_GGUF_STR)
        mod = NULL;
    if (tok && (!o || !o->vocab)) { /* the vocabulary in the metadata */
        size_t tok_n = (size_t)le64(f->p + tok->val + 4), type_n = typ ? (size_t)le64(f->p + typ->val + 4) : 0;
        if ((rc = vocab_init(v, tok_n, t->rows, f->path)) < 0)
            goto out;
        size_t off = tok->val + 12;
        for (size_t i = 0; i < tok_n; i++) { /* strings: length (8 bytes), then the bytes */
            size_t sl = (size_t)le64(f->p + off);
            if ((rc = vocab_set(v, i, (const char *)f->p + off + 8, sl)) < 0)
                goto out;
            off += 8 + sl;
        }
        for (size_t i = 0; i < type_n && i < tok_n; i++) {
            int32_t ty = (int32_t)le32(f->p + typ->val + 12 + 4 * i);
            v->kind[i] = ty == 2 || ty == 3 ? TKM_ROW_SPECIAL : ty == 5 ? TKM_ROW_UNUSED : TKM_ROW_NORMAL;
            v->is_byte_piece[i] = ty == 6 && byte_piece_value(v->s[i], v->len[i]) >= 0;
            v->raw[i] = ty == 4; /* USER_DEFINED: raw text, as llama.cpp prints it */
        }
        const char *tm = mod ? (const char *)f->p + mod->val + 8 : NULL;
        size_t tml = mod ? (size_t)le64(f->p + mod->val) : 0;
        int spm = 0;
        v->style = tm && tml == 4 && !memcmp(tm, "gpt2", 4) ? "byte-level"
                 : tm && tml == 4 && !memcmp(tm, "bert", 4) ? "wordpiece"
                 : tm && tml == 5 && !memcmp(tm, "plain", 5) ? "plain" : (spm = 1, "sentencepiece");
        /* a flag, not strcmp(v->style, ...): GCC 12 with -fsanitize=address
         * warns (-Wstring-compare) about the strcmp of a ?: result */
        if (!type_n && spm)
            for (size_t i = 0; i < tok_n; i++)
                v->is_byte_piece[i] = byte_piece_value(v->s[i], v->len[i]) >= 0;
    }
out:
    tkmi_gguf_free(&g);
    return rc;
}

/* ---- safetensors ---------------------------------------------------------------- */

static int load_safetensors(const mfile *f, const tkm_teacher_opts *o, tkm_teacher **out)
{
    TKM_RETURN_ERROR_IF(f->n < 8, TKM_EFORMAT, "%s: truncated at offset 0 (header length)", f->path);
    uint64_t hl = le64(f->p);
    TKM_RETURN_ERROR_IF(hl > f->n - 8, TKM_EFORMAT, "%s: header length %llu exceeds the file (%zu bytes)", f->path,
                        (unsigned long long)hl, f->n);
    tkmi_json_doc *doc;
    /* JSON offsets count from the header, 8 bytes into the file: say so */
    char jname[512];
    snprintf(jname, sizeof(jname), "%s: JSON header (file offset = 8 + header offset)", f->path);
    TKM_FORWARD_IF_ERROR(tkmi_json_parse((const char *)f->p + 8, (size_t)hl, jname, &doc));
    const tkmi_json *root = tkmi_json_root(doc), *ent = NULL;
    const char *name = NULL;
    int rc = 0, ncand = 0;
    char cands[512] = "";
    for (size_t i = 0; root->type == TKMI_JSON_OBJECT && i < root->len; i++) {
        const char *k = tkmi_json_str(tkmi_json_key(root, i));
        const tkmi_json *v = tkmi_json_val(root, i);
        const tkmi_json *shape = tkmi_json_get(v, "shape");
        if (!k || !strcmp(k, "__metadata__") || !shape || shape->len != 2)
            continue;
        if (o && o->tensor) {
            if (!strcmp(k, o->tensor)) {
                ent = v;
                name = k;
            }
            continue;
        }
        if (ends_with(k, "embed_tokens.weight") || ends_with(k, "word_embeddings.weight") ||
            !strcmp(k, "token_embd.weight") || ends_with(k, "wte.weight")) {
            ncand++;
            if (strlen(cands) + strlen(k) + 3 < sizeof(cands)) {
                strcat(cands, cands[0] ? ", " : "");
                strcat(cands, k);
            }
            ent = v;
            name = k;
        }
    }
    if (!ent) {
        rc = tkmi_error(TKM_EFORMAT, "%s: no 2-D tensor %s%s", f->path, o && o->tensor ? "named " : "",
                        o && o->tensor ? o->tensor : "named like *embed_tokens.weight or *word_embeddings.weight "
                                                    "(give --tensor NAME)");
        goto done;
    }
    if (ncand > 1) {
        rc = tkmi_error(TKM_EINVAL, "%s: several embedding tensors (%s): choose one with --tensor", f->path, cands);
        goto done;
    }
    const char *dts = tkmi_json_str(tkmi_json_get(ent, "dtype"));
    int dt = !dts ? -1 : !strcmp(dts, "F32") ? DT_F32 : !strcmp(dts, "F16") ? DT_F16 : !strcmp(dts, "BF16") ? DT_BF16 : -1;
    if (dt < 0) {
        rc = tkmi_error(TKM_ENOTSUP, "%s: tensor %s has dtype %s; F32, F16 and BF16 are read", f->path, name,
                        dts ? dts : "(none)");
        goto done;
    }
    int64_t r, d, b, e;
    const tkmi_json *shape = tkmi_json_get(ent, "shape"), *offs = tkmi_json_get(ent, "data_offsets");
    if (!tkmi_json_int(tkmi_json_at(shape, 0), 1, 1 << 26, &r) || !tkmi_json_int(tkmi_json_at(shape, 1), 1, 1 << 20, &d) ||
        !tkmi_json_int(tkmi_json_at(offs, 0), 0, INT64_MAX / 2, &b) ||
        !tkmi_json_int(tkmi_json_at(offs, 1), 0, INT64_MAX / 2, &e)) {
        rc = tkmi_error(TKM_EFORMAT, "%s: offset %zu: bad shape or data_offsets of %s", f->path, 8 + ent->offset, name);
        goto done;
    }
    size_t nbytes = dtype_bytes(dt, (size_t)(r * d)), data = 8 + (size_t)hl;
    if (e < b || (size_t)(e - b) != nbytes || (size_t)e > f->n - data) {
        rc = tkmi_error(TKM_EFORMAT, "%s: tensor %s: data_offsets [%lld, %lld] do not fit its shape or the file",
                        f->path, name, (long long)b, (long long)e);
        goto done;
    }
    tkm_teacher *t = teacher_alloc((size_t)r, (size_t)d);
    if (!t) {
        rc = tkmi_error(TKM_ENOMEM, "out of memory for a %lld x %lld matrix", (long long)r, (long long)d);
        goto done;
    }
    convert(dt, f->p + data + b, (size_t)(r * d), t->m);
    t->format = "safetensors";
    *out = t;
done:
    tkmi_json_free(doc);
    return rc;
}

/* ---- npy ---------------------------------------------------------------------------- */

/* The value of key ('descr') in an npy header, a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (30522, 384), }: a pointer
 * just past the key's colon (spaces skipped), or NULL. */
static const char *npy_value(const char *h, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = strchr(h, '\''); p; p = strchr(p + 1, '\'')) {
        if (strncmp(p + 1, key, kl) != 0 || p[1 + kl] != '\'')
            continue;
        p += kl + 2;
        while (*p == ' ')
            p++;
        if (*p != ':')
            return NULL;
        p++;
        while (*p == ' ')
            p++;
        return p;
    }
    return NULL;
}

static int load_npy(const mfile *f, tkm_teacher **out)
{
    TKM_RETURN_ERROR_IF(f->n < 10, TKM_EFORMAT, "%s: truncated at offset %zu (npy header)", f->path, f->n);
    int major = f->p[6];
    TKM_RETURN_ERROR_IF(major < 1 || major > 3, TKM_ENOTSUP, "%s: offset 6: npy format version %d is not read (1-3)",
                        f->path, major);
    size_t hl, ho;
    if (major == 1) {
        hl = (size_t)f->p[8] | (size_t)f->p[9] << 8;
        ho = 10;
    } else {
        TKM_RETURN_ERROR_IF(f->n < 12, TKM_EFORMAT, "%s: truncated at offset %zu (npy header)", f->path, f->n);
        hl = le32(f->p + 8);
        ho = 12;
    }
    TKM_RETURN_ERROR_IF(hl > f->n - ho, TKM_EFORMAT, "%s: truncated at offset %zu (npy header of %zu bytes)",
                        f->path, f->n, hl);
    char h[4096];
    TKM_RETURN_ERROR_IF(hl >= sizeof(h), TKM_EFORMAT, "%s: offset 8: npy header of %zu bytes is too long", f->path, hl);
    memcpy(h, f->p + ho, hl);
    h[hl] = 0;
    TKM_RETURN_ERROR_IF(memchr(h, 0, hl) || h[0] != '{', TKM_EFORMAT, "%s: offset %zu: the npy header is not a dict",
                        f->path, ho);
    const char *ds = npy_value(h, "descr"), *fo = npy_value(h, "fortran_order"), *sh = npy_value(h, "shape");
    TKM_RETURN_ERROR_IF(!ds || !fo || !sh, TKM_EFORMAT, "%s: offset %zu: npy header lacks descr/fortran_order/shape",
                        f->path, ho);
    int dt = !strncmp(ds, "'<f4'", 5) ? DT_F32 : !strncmp(ds, "'<f2'", 5) ? DT_F16 : -1;
    if (dt < 0) {
        size_t k = strcspn(ds, ",}");
        return tkmi_error(TKM_ENOTSUP, "%s: offset %zu: npy dtype %.*s is not read ('<f4' or '<f2')", f->path,
                          ho + (size_t)(ds - h), (int)k, ds);
    }
    TKM_RETURN_ERROR_IF(strncmp(fo, "False", 5) != 0, TKM_ENOTSUP, "%s: Fortran-order npy arrays are not read",
                        f->path);
    TKM_RETURN_ERROR_IF(*sh != '(', TKM_EFORMAT, "%s: offset %zu: bad npy shape", f->path, ho + (size_t)(sh - h));
    char *end;
    long long r = strtoll(sh + 1, &end, 10);
    while (*end == ' ' || *end == ',')
        end++;
    long long d = strtoll(end, &end, 10);
    while (*end == ' ' || *end == ',')
        end++;
    if (*end != ')' || r <= 0 || d <= 0 || r > (1 << 26) || d > (1 << 20)) {
        size_t k = strcspn(sh, ")");
        return tkmi_error(TKM_EFORMAT, "%s: offset %zu: the npy array must be 2-D and non-empty (shape %.*s)",
                          f->path, ho + (size_t)(sh - h), (int)(k + (sh[k] == ')')), sh);
    }
    size_t nbytes = dtype_bytes(dt, (size_t)(r * d));
    TKM_RETURN_ERROR_IF(nbytes > f->n - ho - hl, TKM_EFORMAT,
                        "%s: truncated at offset %zu: %zu data bytes, %zu expected for shape (%lld, %lld)", f->path,
                        f->n, f->n - ho - hl, nbytes, r, d);
    tkm_teacher *t = teacher_alloc((size_t)r, (size_t)d);
    TKM_RETURN_ERROR_IF(!t, TKM_ENOMEM, "out of memory for a %lld x %lld matrix", r, d);
    convert(dt, f->p + ho + hl, (size_t)(r * d), t->m);
    t->format = "npy";
    *out = t;
    return 0;
}

/* ---- load ------------------------------------------------------------------------------ */

static char *sibling(const char *path, const char *name)
{
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path + 1) : 0;
    char *s = tkmi_malloc(dl + strlen(name) + 1);
    if (!s)
        return NULL;
    memcpy(s, path, dl);
    strcpy(s + dl, name);
    return s;
}

int tkm_teacher_load(const char *path, const tkm_teacher_opts *o, tkm_teacher **out)
{
    *out = NULL;
    mfile f;
    TKM_FORWARD_IF_ERROR(map_file(path, &f));
    tkm_teacher *t = NULL;
    vocab v;
    memset(&v, 0, sizeof(v));
    int rc;
    if (f.n >= 4 && !memcmp(f.p, "GGUF", 4))
        rc = load_gguf(&f, o, &t, &v);
    else if (f.n >= 6 && !memcmp(f.p, "\x93NUMPY", 6))
        rc = load_npy(&f, &t);
    else if (f.n >= 9 && f.p[8] == '{')
        rc = load_safetensors(&f, o, &t);
    else
        rc = tkmi_error(TKM_EFORMAT, "%s: not a GGUF, safetensors or .npy file (offset 0)", path);
    unmap_file(&f);
    if (rc == 0 && !v.n) {
        const char *vp = o ? o->vocab : NULL;
        char *auto_path = NULL;
        if (!vp) {
            static const char *const names[] = { "tokenizer.json", "vocab.txt", "tokenizer.model" };
            for (size_t i = 0; i < 3 && !vp; i++) {
                auto_path = sibling(path, names[i]);
                if (auto_path && access(auto_path, R_OK) == 0)
                    vp = auto_path;
                else {
                    tkmi_free(auto_path);
                    auto_path = NULL;
                }
            }
        }
        if (!vp)
            rc = tkmi_error(TKM_EINVAL, "%s: no vocabulary: give --teacher-vocab (a .model, tokenizer.json or "
                                        "vocab.txt), or put one next to the matrix", path);
        else
            rc = load_vocab_file(vp, t->rows, &v);
        if (rc == 0)
            rc = attach_vocab(t, &v, vp);
        tkmi_free(auto_path);
    } else if (rc == 0) {
        rc = attach_vocab(t, &v, path);
    }
    vocab_free(&v);
    if (rc < 0) {
        tkm_teacher_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* ---- writers ------------------------------------------------------------------------------- */

/* Headers are built in memory (obuf); the matrix is converted in chunks and
 * streamed after them into PATH.tmp.PID, renamed into place at the end, so a
 * multi-GB matrix is never copied whole and a failure leaves no file. */
typedef struct {
    unsigned char *p;
    size_t n, cap;
    int err;
} obuf;

static void oput(obuf *b, const void *s, size_t k)
{
    if (b->err || (tkmi_grow((void **)&b->p, &b->cap, b->n + k, 1) < 0 && (b->err = 1)))
        return;
    memcpy(b->p + b->n, s, k);
    b->n += k;
}

static void o32(obuf *b, uint32_t v)
{
    unsigned char x[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24) };
    oput(b, x, 4);
}

static void o64(obuf *b, uint64_t v)
{
    o32(b, (uint32_t)v);
    o32(b, (uint32_t)(v >> 32));
}

static void ostr(obuf *b, const char *s)
{
    size_t n = strlen(s);
    o64(b, n);
    oput(b, s, n);
}

/* Writes header b, then m (n floats) as dtype, little-endian, atomically to path. */
static int write_with_matrix(const char *path, obuf *b, const float *m, size_t n, tkm_dtype dtype)
{
    if (b->err) {
        tkmi_free(b->p);
        return tkmi_error(TKM_ENOMEM, "out of memory writing %s", path);
    }
    enum { CHUNK = 1 << 16 };
    unsigned char *buf = tkmi_malloc(CHUNK * 4);
    tkmi_outfile o;
    int rc = !buf ? tkmi_error(TKM_ENOMEM, "out of memory writing %s", path) : tkmi_out_open(&o, path);
    if (rc == 0) {
        rc = tkmi_out_write(&o, b->p, b->n);
        for (size_t i = 0; rc == 0 && i < n; i += CHUNK) {
            size_t k = n - i < CHUNK ? n - i : CHUNK, w = 0;
            for (size_t j = 0; j < k; j++) {
                uint32_t u;
                if (dtype == TKM_DTYPE_F32) {
                    memcpy(&u, &m[i + j], 4);
                    for (int s = 0; s < 4; s++)
                        buf[w++] = (unsigned char)(u >> (8 * s));
                } else {
                    u = dtype == TKM_DTYPE_F16 ? f32_to_f16(m[i + j]) : f32_to_bf16(m[i + j]);
                    buf[w++] = (unsigned char)u;
                    buf[w++] = (unsigned char)(u >> 8);
                }
            }
            rc = tkmi_out_write(&o, buf, w);
        }
        if (rc == 0) rc = tkmi_out_commit(&o);
        else tkmi_out_abort(&o);
    }
    tkmi_free(buf);
    tkmi_free(b->p);
    return rc;
}

/* A piece a byte-level reader would not spell back (a character outside the
 * GPT-2 alphabet): written as USER_DEFINED (raw text), as llama.cpp does. */
static int byte_level_raw(const char *p, const int32_t *bl)
{
    size_t n = strlen(p);
    for (size_t i = 0; i < n;) {
        int mb;
        int32_t cp = tkmi_utf8_decode((const unsigned char *)p + i, n - i, &mb);
        if (cp < 0 || cp >= 512 || bl[cp] < 0)
            return 1;
        i += (size_t)mb;
    }
    return 0;
}

static void ostrn(obuf *b, const char *s, size_t n)
{
    o64(b, n);
    oput(b, s, n);
}

/* The tokenizer metadata of a GGUF file, in llama.cpp's keys and conventions. */
typedef struct gguf_vocab {
    const char *const *pieces;  /* NULL: no vocabulary */
    const size_t *lens;         /* NULL: strlen */
    const char *model;          /* tokenizer.ggml.model or NULL */
    const int32_t *types;       /* NULL: none */
    const float *scores;        /* NULL: none */
    int64_t ids[4];             /* unk, bos, eos, pad; < 0: not written */
    int flags[4];               /* add_bos, add_eos, add_space_prefix, remove_extra_whitespaces; < 0: none */
} gguf_vocab;

static const char *const gguf_id_keys[4] = { "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.bos_token_id",
                                             "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id" };
static const char *const gguf_flag_keys[4] = { "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token",
                                               "tokenizer.ggml.add_space_prefix",
                                               "tokenizer.ggml.remove_extra_whitespaces" };

/* The tokenizer key/value pairs of v (gguf_vocab_nkv(v) of them) for rows tokens. */
static uint64_t gguf_vocab_nkv(const gguf_vocab *v)
{
    uint64_t nkv = (v->pieces != NULL) + (v->model != NULL) + (v->types != NULL) + (v->scores != NULL);
    for (int i = 0; i < 4; i++)
        nkv += v->ids[i] >= 0;
    for (int i = 0; i < 4; i++)
        nkv += v->flags[i] >= 0;
    return nkv;
}

static void put_vocab(obuf *b, const gguf_vocab *v, size_t rows)
{
    if (v->pieces) {
        ostr(b, "tokenizer.ggml.tokens");
        o32(b, TKMI_GGUF_ARR);
        o32(b, TKMI_GGUF_STR);
        o64(b, rows);
        for (size_t r = 0; r < rows; r++) {
            const char *p = v->pieces[r] ? v->pieces[r] : "";
            ostrn(b, p, v->lens && v->pieces[r] ? v->lens[r] : strlen(p));
        }
    }
    if (v->model) {
        ostr(b, "tokenizer.ggml.model");
        o32(b, TKMI_GGUF_STR);
        ostr(b, v->model);
    }
    if (v->types) {
        ostr(b, "tokenizer.ggml.token_type");
        o32(b, TKMI_GGUF_ARR);
        o32(b, TKMI_GGUF_I32);
        o64(b, rows);
        for (size_t r = 0; r < rows; r++)
            o32(b, (uint32_t)v->types[r]);
    }
    if (v->scores) {
        ostr(b, "tokenizer.ggml.scores");
        o32(b, TKMI_GGUF_ARR);
        o32(b, TKMI_GGUF_F32);
        o64(b, rows);
        for (size_t r = 0; r < rows; r++) {
            uint32_t u;
            memcpy(&u, &v->scores[r], 4);
            o32(b, u);
        }
    }
    for (int i = 0; i < 4; i++)
        if (v->ids[i] >= 0) {
            ostr(b, gguf_id_keys[i]);
            o32(b, TKMI_GGUF_U32);
            o32(b, (uint32_t)v->ids[i]);
        }
    for (int i = 0; i < 4; i++)
        if (v->flags[i] >= 0) {
            ostr(b, gguf_flag_keys[i]);
            o32(b, TKMI_GGUF_BOOL);
            unsigned char x = (unsigned char)(v->flags[i] != 0);
            oput(b, &x, 1);
        }
}

static int write_gguf(const char *path, size_t rows, size_t dim, const float *m, const gguf_vocab *v,
                      tkm_dtype dtype)
{
    TKM_RETURN_ERROR_IF(rows == 0 || dim == 0, TKM_EINVAL, "%s: empty matrix", path);
    TKM_RETURN_ERROR_IF(rows > SIZE_MAX / 4 / dim, TKM_EINVAL, "%s: matrix too large", path);
    TKM_RETURN_ERROR_IF(dtype != TKM_DTYPE_F32 && dtype != TKM_DTYPE_F16 && dtype != TKM_DTYPE_BF16, TKM_EINVAL,
                        "%s: bad dtype %d", path, (int)dtype);
    uint64_t nkv = 1 + gguf_vocab_nkv(v);
    obuf b = {0};
    oput(&b, "GGUF", 4);
    o32(&b, 3);
    o64(&b, 1); /* tensors */
    o64(&b, nkv);
    ostr(&b, "general.architecture");
    o32(&b, TKMI_GGUF_STR);
    ostr(&b, "tokenmill-softemb");
    put_vocab(&b, v, rows);
    ostr(&b, "token_embd.weight");
    o32(&b, 2);
    o64(&b, dim);
    o64(&b, rows);
    o32(&b, dtype == TKM_DTYPE_F32 ? 0 : dtype == TKM_DTYPE_F16 ? 1 : 30);
    o64(&b, 0);
    static const unsigned char zeros[32] = {0};
    oput(&b, zeros, (32 - b.n % 32) % 32);
    return write_with_matrix(path, &b, m, rows * dim, dtype);
}

int tkm_emb_write_gguf(const char *path, size_t rows, size_t dim, const float *m, const char *const *pieces,
                       const char *vocab_style, const tkm_row_kind *kinds, tkm_dtype dtype)
{
    const char *gm = !vocab_style ? NULL : !strcmp(vocab_style, "sentencepiece") ? "llama"
                   : !strcmp(vocab_style, "byte-level") ? "gpt2" : !strcmp(vocab_style, "wordpiece") ? "bert" : "plain";
    if (!pieces)
        gm = NULL, kinds = NULL;
    TKM_RETURN_ERROR_IF(rows == 0 || dim == 0, TKM_EINVAL, "%s: empty matrix", path);
    int32_t bl[512];
    byte_level_table(bl);
    int gpt2 = gm && !strcmp(gm, "gpt2"), llama = gm && !strcmp(gm, "llama"), want_types = kinds != NULL;
    for (size_t r = 0; gpt2 && !want_types && r < rows; r++)
        want_types = pieces[r] && byte_level_raw(pieces[r], bl);
    int32_t *types = NULL;
    if (want_types) {
        types = tkmi_malloc(rows * sizeof(int32_t));
        TKM_RETURN_ERROR_IF(!types, TKM_ENOMEM, "out of memory writing %s", path);
        for (size_t r = 0; r < rows; r++) {
            const char *p = pieces[r] ? pieces[r] : "";
            tkm_row_kind k = kinds ? kinds[r] : TKM_ROW_NORMAL;
            types[r] = k == TKM_ROW_SPECIAL ? TKM_GGUF_CONTROL : k == TKM_ROW_UNUSED ? TKM_GGUF_UNUSED
                     : llama && byte_piece_value(p, strlen(p)) >= 0 ? TKM_GGUF_BYTE
                     : gpt2 && byte_level_raw(p, bl) ? TKM_GGUF_USER_DEFINED : TKM_GGUF_NORMAL;
        }
    }
    gguf_vocab v = { pieces, NULL, gm, types, NULL, { -1, -1, -1, -1 }, { -1, -1, -1, -1 } };
    int rc = write_gguf(path, rows, dim, m, &v, dtype);
    tkmi_free(types);
    return rc;
}

/* The tokenizer of a sentencepiece model in llama.cpp's conventions (arrays
 * in a, freed by model_vocab_free). */
typedef struct {
    const char **pieces;
    size_t *lens;
    int32_t *types;
    float *scores;
} vocab_arrays;

static void model_vocab_free(vocab_arrays *a)
{
    tkmi_free(a->pieces);
    tkmi_free(a->lens);
    tkmi_free(a->types);
    tkmi_free(a->scores);
}

static int model_vocab(const char *path, const tkm_model *model, gguf_vocab *v, vocab_arrays *a)
{
    memset(a, 0, sizeof(*a));
    TKM_RETURN_ERROR_IF(!model, TKM_EINVAL, "%s: no model", path);
    size_t rows = (size_t)tkm_model_size(model);
    TKM_RETURN_ERROR_IF(rows == 0, TKM_EINVAL, "%s: empty matrix", path);
    /* llama.cpp runs sentencepiece BPE as its "llama" (SPM) tokenizer and
     * Unigram as its "t5" (UGM) one. It adds BOS (and no EOS) when asked, as
     * sentencepiece-based HF tokenizers do; the space prefix and whitespace
     * folding follow the model's normalizer. */
    tkm_model_type kind = tkm_model_kind(model);
    TKM_RETURN_ERROR_IF(kind != TKM_MODEL_BPE && kind != TKM_MODEL_UNIGRAM, TKM_ENOTSUP,
                        "%s: only BPE and Unigram models have a llama.cpp tokenizer", path);
    a->pieces = tkmi_malloc(rows * sizeof(*a->pieces));
    a->lens = tkmi_malloc(rows * sizeof(size_t));
    a->types = tkmi_malloc(rows * sizeof(int32_t));
    a->scores = tkmi_malloc(rows * sizeof(float));
    if (!a->pieces || !a->lens || !a->types || !a->scores) {
        model_vocab_free(a);
        return tkmi_error(TKM_ENOMEM, "out of memory writing %s", path);
    }
    for (size_t r = 0; r < rows; r++) {
        a->pieces[r] = tkm_model_piece(model, (int)r, &a->lens[r]);
        a->scores[r] = tkm_model_score(model, (int)r);
        tkm_piece_type ty = tkm_model_piece_type(model, (int)r);
        /* llama.cpp's llama_token_type has sentencepiece's numbering */
        a->types[r] = ty == TKM_PIECE_UNKNOWN ? TKM_GGUF_UNKNOWN : ty == TKM_PIECE_CONTROL ? TKM_GGUF_CONTROL
                    : ty == TKM_PIECE_USER_DEFINED ? TKM_GGUF_USER_DEFINED : ty == TKM_PIECE_UNUSED ? TKM_GGUF_UNUSED
                    : ty == TKM_PIECE_BYTE ? TKM_GGUF_BYTE : TKM_GGUF_NORMAL;
    }
    int bos = tkm_model_bos_id(model);
    gguf_vocab g = { a->pieces, a->lens, kind == TKM_MODEL_BPE ? "llama" : "t5", a->types, a->scores,
                     { tkm_model_unk_id(model), bos, tkm_model_eos_id(model), tkm_model_pad_id(model) },
                     { bos >= 0, 0, model->add_dummy_prefix, model->remove_extra_ws } };
    *v = g;
    return 0;
}

int tkm_emb_write_gguf_model(const char *path, const tkm_model *model, size_t dim, const float *m, tkm_dtype dtype)
{
    gguf_vocab v;
    vocab_arrays a;
    TKM_FORWARD_IF_ERROR(model_vocab(path, model, &v, &a));
    TKM_RETURN_ERROR_IF(dim == 0, TKM_EINVAL, "%s: empty matrix", path);
    int rc = write_gguf(path, (size_t)tkm_model_size(model), dim, m, &v, dtype);
    model_vocab_free(&a);
    return rc;
}

int tkm_emb_write_npy(const char *path, size_t rows, size_t dim, const float *m)
{
    TKM_RETURN_ERROR_IF(rows == 0 || dim == 0, TKM_EINVAL, "%s: empty matrix", path);
    TKM_RETURN_ERROR_IF(rows > SIZE_MAX / 4 / dim, TKM_EINVAL, "%s: matrix too large", path);
    char h[128];
    int hl = snprintf(h, sizeof(h), "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }", rows, dim);
    size_t total = 10 + (size_t)hl + 1, pad = (64 - total % 64) % 64;
    obuf b = {0};
    oput(&b, "\x93NUMPY\x01\x00", 8);
    size_t hlen = (size_t)hl + pad + 1;
    unsigned char x[2] = { (unsigned char)hlen, (unsigned char)(hlen >> 8) };
    oput(&b, x, 2);
    oput(&b, h, (size_t)hl);
    for (size_t i = 0; i < pad; i++)
        oput(&b, " ", 1);
    oput(&b, "\n", 1);
    return write_with_matrix(path, &b, m, rows * dim, TKM_DTYPE_F32);
}

/* ---- for softemb/splice.c ---------------------------------------------------------------- */

int tkmi_se_gguf_tokenizer_kvs(const char *path, const tkm_model *model, unsigned char **out, size_t *len,
                               uint64_t *nkv)
{
    gguf_vocab v;
    vocab_arrays a;
    *out = NULL;
    *len = 0;
    TKM_FORWARD_IF_ERROR(model_vocab(path, model, &v, &a));
    obuf b = {0};
    put_vocab(&b, &v, (size_t)tkm_model_size(model));
    model_vocab_free(&a);
    if (b.err) {
        tkmi_free(b.p);
        return tkmi_error(TKM_ENOMEM, "out of memory writing %s", path);
    }
    *out = b.p;
    *len = b.n;
    *nkv = gguf_vocab_nkv(&v);
    return 0;
}

int tkmi_se_row_to_float(uint32_t ggml_type, const unsigned char *src, size_t n, float *out)
{
    int dt = ggml_type == 0 ? DT_F32 : ggml_type == 1 ? DT_F16 : ggml_type == 30 ? DT_BF16
           : ggml_type == 8 && n % 32 == 0 ? DT_Q8_0 : -1;
    if (dt < 0)
        return TKM_ENOTSUP;
    convert(dt, src, n, out);
    return 0;
}

int tkmi_se_row_from_float(uint32_t ggml_type, const float *x, size_t n, unsigned char *out)
{
    if (ggml_type == 0) {
        for (size_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, &x[i], 4);
            for (int s = 0; s < 4; s++)
                out[4 * i + (size_t)s] = (unsigned char)(u >> (8 * s));
        }
    } else if (ggml_type == 1 || ggml_type == 30) {
        for (size_t i = 0; i < n; i++) {
            uint16_t u = ggml_type == 1 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
            out[2 * i] = (unsigned char)u;
            out[2 * i + 1] = (unsigned char)(u >> 8);
        }
    } else if (ggml_type == 8 && n % 32 == 0) {
        /* Q8_0 as ggml's reference quantizer: d = max|x| / 127 (stored as
         * f16), q = round(x / d) */
        for (size_t b = 0; b < n / 32; b++) {
            const float *v = x + 32 * b;
            float amax = 0;
            for (int i = 0; i < 32; i++)
                amax = fabsf(v[i]) > amax ? fabsf(v[i]) : amax;
            float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
            uint16_t h = f32_to_f16(d);
            unsigned char *blk = out + 34 * b;
            blk[0] = (unsigned char)h;
            blk[1] = (unsigned char)(h >> 8);
            for (int i = 0; i < 32; i++) { /* NaN (or inf * 0) -> 0: rows read from a hostile file */
                float q = v[i] * id;
                q = q != q ? 0.0f : q > 127.0f ? 127.0f : q < -127.0f ? -127.0f : roundf(q);
                blk[2 + i] = (unsigned char)(int8_t)q;
            }
        }
    } else {
        return TKM_ENOTSUP;
    }
    return 0;
}
