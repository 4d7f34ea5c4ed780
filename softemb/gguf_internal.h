/* gguf_internal.h - a whole-file GGUF reader (every key/value pair and tensor,
 * checked against the file's bounds) and the row codecs and tokenizer
 * metadata that `softemb splice` needs from teacher.c. Internal. */
#ifndef TKM_GGUF_INTERNAL_H
#define TKM_GGUF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tokenmill.h"

/* GGUF value types */
enum { TKMI_GGUF_U8, TKMI_GGUF_I8, TKMI_GGUF_U16, TKMI_GGUF_I16, TKMI_GGUF_U32, TKMI_GGUF_I32, TKMI_GGUF_F32,
       TKMI_GGUF_BOOL, TKMI_GGUF_STR, TKMI_GGUF_ARR, TKMI_GGUF_U64, TKMI_GGUF_I64, TKMI_GGUF_F64 };

typedef struct {
    const char *key;   /* in the file, not NUL-terminated */
    size_t klen;
    uint32_t type;     /* TKMI_GGUF_* */
    size_t start, end; /* the whole pair (key length .. end of value): file offsets */
    size_t val;        /* offset of the value */
} tkmi_gguf_kv;

typedef struct {
    const char *name; /* in the file, not NUL-terminated */
    size_t nlen;
    uint32_t ndim;
    uint64_t ne[4];   /* unused dimensions 1 */
    uint32_t type;    /* ggml type */
    uint64_t off;     /* relative to the data section */
    size_t nbytes;
} tkmi_gguf_tensor;

typedef struct {
    const unsigned char *p; /* the file (not owned) */
    size_t n;
    const char *path;
    uint32_t version;
    size_t align;           /* general.alignment or 32 */
    tkmi_gguf_kv *kv;
    size_t nkv;
    tkmi_gguf_tensor *t;
    size_t nt;
    size_t data;            /* file offset of the data section */
} tkmi_gguf;

/* Parses a GGUF (version 2 or 3, little-endian) held in memory: every pair
 * and tensor description; checks value types, string and array bounds,
 * nesting, dimensions (1..4, each row a whole number of blocks), known ggml
 * types, unique keys and tensor names, aligned offsets and every tensor's
 * data inside the file. Errors name path and the byte offset.
 * @return 0, TKM_EFORMAT, TKM_ENOTSUP (version), TKM_ENOMEM. */
int tkmi_gguf_parse(const unsigned char *p, size_t n, const char *path, tkmi_gguf *g);
/* The same, except that tensor data is not checked beyond an aligned offset
 * inside the file, and a tensor of a type this reader does not know (or whose
 * rows are not whole blocks of its type) gets nbytes 0: for a caller that
 * reads one tensor of its own choosing and checks that one (the teacher
 * loader), so that other tensors cannot make the file unreadable. */
int tkmi_gguf_parse_any_type(const unsigned char *p, size_t n, const char *path, tkmi_gguf *g);
void tkmi_gguf_free(tkmi_gguf *g);
/* The pair named key, or NULL. */
const tkmi_gguf_kv *tkmi_gguf_find(const tkmi_gguf *g, const char *key);
/* The tensor named name, or NULL. */
const tkmi_gguf_tensor *tkmi_gguf_tensor_find(const tkmi_gguf *g, const char *name);
/* Bytes of n elements of ggml type t (n a multiple of its block), 0 if unknown. */
size_t tkmi_ggml_nbytes(uint32_t t, uint64_t n);
const char *tkmi_ggml_type_name(uint32_t t);
/* An integer value (any integer type), or -1 if the pair is not an integer. */
int64_t tkmi_gguf_int(const tkmi_gguf *g, const tkmi_gguf_kv *kv);

/* From teacher.c: the tokenizer pairs of a sentencepiece model as
 * tkm_emb_write_gguf_model writes them (*out tkmi_malloc'd, *nkv pairs). */
int tkmi_se_gguf_tokenizer_kvs(const char *path, const tkm_model *model, unsigned char **out, size_t *len,
                               uint64_t *nkv);
/* n values of ggml type F32, F16, BF16 or Q8_0 (n a multiple of 32) to and
 * from float32 (F16/BF16 rounded to nearest even; Q8_0 as ggml's reference
 * quantizer). TKM_ENOTSUP for other types. */
int tkmi_se_row_to_float(uint32_t ggml_type, const unsigned char *src, size_t n, float *out);
int tkmi_se_row_from_float(uint32_t ggml_type, const float *x, size_t n, unsigned char *out);

#endif
