/* json.h - a small DOM JSON reader (RFC 8259) for the files we read:
 * safetensors headers and HF tokenizer.json. Internal (tkmi_), not installed.
 *
 * The whole document is parsed into one arena; strings are decoded to UTF-8
 * (\uXXXX escapes and surrogate pairs included; a lone surrogate is an error)
 * and NUL-terminated, with their byte length kept (they may contain NUL).
 * Objects keep member order; duplicate keys are kept, lookup returns the first.
 * Numbers are doubles (strtod); integers below 2^53 in magnitude are exact. */
#ifndef TKM_JSON_H
#define TKM_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    TKMI_JSON_NULL, TKMI_JSON_FALSE, TKMI_JSON_TRUE, TKMI_JSON_NUMBER,
    TKMI_JSON_STRING, TKMI_JSON_ARRAY, TKMI_JSON_OBJECT
} tkmi_json_type;

typedef struct tkmi_json tkmi_json;
struct tkmi_json {
    tkmi_json_type type;
    size_t len;            /* STRING: bytes; ARRAY/OBJECT: number of items */
    union {
        double num;        /* NUMBER */
        const char *str;   /* STRING (NUL-terminated, len bytes) */
        tkmi_json *items;  /* ARRAY: len values; OBJECT: 2*len values, key (STRING), value, ... */
    } u;
    size_t offset;         /* byte offset of the value in the source text */
};

typedef struct tkmi_json_doc tkmi_json_doc;

/* Parses text[0..len). `name` (a file name) is used in error messages, which
 * give the byte offset, line and column: "tokenizer.json: offset 1234 (line 5,
 * column 7): expected ':'". Nesting deeper than 512 levels is an error.
 * @return 0 and *doc, or TKM_EFORMAT / TKM_ENOMEM. */
int tkmi_json_parse(const char *text, size_t len, const char *name, tkmi_json_doc **doc);
/* Reads and parses a whole file (TKM_EIO if unreadable). */
int tkmi_json_parse_file(const char *path, tkmi_json_doc **doc);
const tkmi_json *tkmi_json_root(const tkmi_json_doc *doc);
void tkmi_json_free(tkmi_json_doc *doc);

/* First member named key of an object; NULL if absent or v is not an object. */
const tkmi_json *tkmi_json_get(const tkmi_json *v, const char *key);
/* Item i of an array (NULL out of range / not an array). */
const tkmi_json *tkmi_json_at(const tkmi_json *v, size_t i);
/* Key (a STRING value) and value of object member i. */
const tkmi_json *tkmi_json_key(const tkmi_json *v, size_t i);
const tkmi_json *tkmi_json_val(const tkmi_json *v, size_t i);
/* The string of a STRING value, else NULL. */
const char *tkmi_json_str(const tkmi_json *v);
/* 1 if v is a NUMBER holding an integer in [lo, hi] (stored in *out), else 0. */
int tkmi_json_int(const tkmi_json *v, int64_t lo, int64_t hi, int64_t *out);

#endif
