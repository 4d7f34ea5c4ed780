/* json.c - a small DOM JSON reader (RFC 8259) for safetensors headers and HF
 * tokenizer.json. Values live in a bump arena owned by the document, so a parse
 * is a handful of large allocations and freeing is one walk over blocks. */
#include "fileio.h"
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tkm_internal.h"
#include "tokenmill.h"

#define JSON_MAX_DEPTH 512
#define ARENA_BLOCK (256u * 1024u)

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_block;

struct tkmi_json_doc {
    arena_block *blocks;
    tkmi_json root;
};

typedef struct {
    const unsigned char *s;
    size_t len, pos;
    const char *name;
    tkmi_json_doc *doc;
    tkmi_json *stack; /* children of the open containers */
    size_t nstack, capstack;
    char *buf;        /* string decoding scratch */
    size_t capbuf;
    int depth;
} parser;

static void *arena_alloc(tkmi_json_doc *d, size_t n)
{
    n = (n + 15u) & ~(size_t)15u;
    arena_block *b = d->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        arena_block *nb = tkmi_malloc(sizeof(*nb) + cap);
        if (!nb)
            return NULL;
        nb->used = 0;
        nb->cap = cap;
        if (b && n > ARENA_BLOCK) { /* keep filling the current block later */
            nb->next = b->next;
            b->next = nb;
            nb->used = n;
            return nb->data;
        }
        nb->next = b;
        d->blocks = nb;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static int fail(const parser *p, const char *what)
{
    size_t line = 1, col = 1;
    for (size_t i = 0; i < p->pos && i < p->len; i++) {
        if (p->s[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return tkmi_error(TKM_EFORMAT, "%s: offset %zu (line %zu, column %zu): %s", p->name, p->pos,
                      line, col, what);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static int push(parser *p, const tkmi_json *v)
{
    if (p->nstack == p->capstack) {
        size_t cap = p->capstack ? p->capstack * 2 : 256;
        tkmi_json *ns = tkmi_realloc(p->stack, cap * sizeof(*ns));
        if (!ns)
            return TKM_ENOMEM;
        p->stack = ns;
        p->capstack = cap;
    }
    p->stack[p->nstack++] = *v;
    return 0;
}

static int buf_put(parser *p, size_t *n, const char *src, size_t k)
{
    if (*n + k + 1 > p->capbuf) {
        size_t cap = p->capbuf ? p->capbuf : 256;
        while (cap < *n + k + 1)
            cap *= 2;
        char *nb = tkmi_realloc(p->buf, cap);
        if (!nb)
            return TKM_ENOMEM;
        p->buf = nb;
        p->capbuf = cap;
    }
    memcpy(p->buf + *n, src, k);
    *n += k;
    return 0;
}

static int hex4(parser *p, uint32_t *out)
{
    if (p->len - p->pos < 4)
        return fail(p, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p->s[p->pos + (size_t)i];
        int d = c >= '0' && c <= '9' ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return fail(p, "bad hex digit in \\u escape");
        v = v * 16 + (uint32_t)d;
    }
    p->pos += 4;
    *out = v;
    return 0;
}

/* p->pos is just after the opening quote. */
static int parse_string(parser *p, tkmi_json *out)
{
    size_t n = 0, start = p->pos;
    out->offset = start - 1;
    for (;;) {
        size_t run = p->pos;
        while (p->pos < p->len) {
            unsigned char c = p->s[p->pos];
            if (c == '"' || c == '\\' || c < 0x20)
                break;
            if (c >= 0x80) {
                int mb;
                if (tkmi_utf8_decode(p->s + p->pos, p->len - p->pos, &mb) < 0)
                    return fail(p, "invalid UTF-8 in string");
                p->pos += (size_t)mb;
            } else {
                p->pos++;
            }
        }
        TKM_FORWARD_IF_ERROR(buf_put(p, &n, (const char *)p->s + run, p->pos - run));
        if (p->pos >= p->len)
            return fail(p, "unterminated string");
        unsigned char c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20)
            return fail(p, "control character in string");
        /* backslash */
        p->pos++;
        if (p->pos >= p->len)
            return fail(p, "unterminated string");
        char e = (char)p->s[p->pos++], ch;
        switch (e) {
        case '"': ch = '"'; break;
        case '\\': ch = '\\'; break;
        case '/': ch = '/'; break;
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': {
            uint32_t cp;
            TKM_FORWARD_IF_ERROR(hex4(p, &cp));
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail(p, "lone low surrogate in \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                    return fail(p, "high surrogate without a low surrogate");
                p->pos += 2;
                TKM_FORWARD_IF_ERROR(hex4(p, &lo));
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return fail(p, "high surrogate without a low surrogate");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            char u[4];
            int k = tkmi_utf8_encode(cp, u);
            TKM_FORWARD_IF_ERROR(buf_put(p, &n, u, (size_t)k));
            continue;
        }
        default:
            p->pos--;
            return fail(p, "bad escape in string");
        }
        TKM_FORWARD_IF_ERROR(buf_put(p, &n, &ch, 1));
    }
    char *s = arena_alloc(p->doc, n + 1);
    if (!s)
        return TKM_ENOMEM;
    if (n)
        memcpy(s, p->buf, n);
    s[n] = 0;
    out->type = TKMI_JSON_STRING;
    out->len = n;
    out->u.str = s;
    return 0;
}

static int parse_number(parser *p, tkmi_json *out)
{
    size_t st = p->pos;
    const unsigned char *s = p->s;
    if (p->pos < p->len && s[p->pos] == '-')
        p->pos++;
    if (p->pos >= p->len || s[p->pos] < '0' || s[p->pos] > '9')
        return fail(p, "bad number");
    if (s[p->pos] == '0') {
        p->pos++;
    } else {
        while (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9')
            p->pos++;
    }
    if (p->pos < p->len && s[p->pos] == '.') {
        p->pos++;
        if (p->pos >= p->len || s[p->pos] < '0' || s[p->pos] > '9')
            return fail(p, "bad number: digit expected after '.'");
        while (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9')
            p->pos++;
    }
    if (p->pos < p->len && (s[p->pos] == 'e' || s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (s[p->pos] == '+' || s[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->len || s[p->pos] < '0' || s[p->pos] > '9')
            return fail(p, "bad number: digit expected in exponent");
        while (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9')
            p->pos++;
    }
    char tmp[64];
    size_t k = p->pos - st;
    if (k >= sizeof(tmp)) { /* long literal: strtod on a heap copy */
        char *h = tkmi_malloc(k + 1);
        if (!h)
            return TKM_ENOMEM;
        memcpy(h, s + st, k);
        h[k] = 0;
        out->u.num = strtod(h, NULL);
        tkmi_free(h);
    } else {
        memcpy(tmp, s + st, k);
        tmp[k] = 0;
        out->u.num = strtod(tmp, NULL);
    }
    out->type = TKMI_JSON_NUMBER;
    out->len = 0;
    out->offset = st;
    return 0;
}

static int literal(parser *p, const char *word, tkmi_json_type t, tkmi_json *out)
{
    size_t k = strlen(word);
    if (p->len - p->pos < k || memcmp(p->s + p->pos, word, k) != 0)
        return fail(p, "unexpected character");
    out->type = t;
    out->len = 0;
    out->offset = p->pos;
    p->pos += k;
    return 0;
}

static int parse_value(parser *p, tkmi_json *out);

/* Moves the children pushed since `base` into the arena. */
static int close_container(parser *p, size_t base, tkmi_json *out, size_t nitems)
{
    size_t k = p->nstack - base;
    out->len = nitems;
    out->u.items = NULL;
    if (k) {
        tkmi_json *items = arena_alloc(p->doc, k * sizeof(*items));
        if (!items)
            return TKM_ENOMEM;
        memcpy(items, p->stack + base, k * sizeof(*items));
        out->u.items = items;
    }
    p->nstack = base;
    return 0;
}

static int parse_container(parser *p, tkmi_json *out)
{
    int obj = p->s[p->pos] == '{';
    char close = obj ? '}' : ']';
    out->type = obj ? TKMI_JSON_OBJECT : TKMI_JSON_ARRAY;
    out->offset = p->pos;
    if (++p->depth > JSON_MAX_DEPTH)
        return fail(p, "nesting deeper than 512 levels");
    p->pos++;
    size_t base = p->nstack, n = 0;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        p->depth--;
        return close_container(p, base, out, 0);
    }
    for (;;) {
        tkmi_json v;
        skip_ws(p);
        if (obj) {
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return fail(p, "expected a string key");
            p->pos++;
            TKM_FORWARD_IF_ERROR(parse_string(p, &v));
            TKM_FORWARD_IF_ERROR(push(p, &v));
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return fail(p, "expected ':'");
            p->pos++;
        }
        TKM_FORWARD_IF_ERROR(parse_value(p, &v));
        TKM_FORWARD_IF_ERROR(push(p, &v));
        n++;
        skip_ws(p);
        if (p->pos >= p->len)
            return fail(p, obj ? "unterminated object" : "unterminated array");
        char c = (char)p->s[p->pos++];
        if (c == close)
            break;
        if (c != ',') {
            p->pos--;
            return fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    p->depth--;
    return close_container(p, base, out, n);
}

static int parse_value(parser *p, tkmi_json *out)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, "unexpected end of input");
    switch (p->s[p->pos]) {
    case '{':
    case '[':
        return parse_container(p, out);
    case '"':
        p->pos++;
        return parse_string(p, out);
    case 't':
        return literal(p, "true", TKMI_JSON_TRUE, out);
    case 'f':
        return literal(p, "false", TKMI_JSON_FALSE, out);
    case 'n':
        return literal(p, "null", TKMI_JSON_NULL, out);
    default:
        return parse_number(p, out);
    }
}

int tkmi_json_parse(const char *text, size_t len, const char *name, tkmi_json_doc **doc)
{
    *doc = NULL;
    tkmi_json_doc *d = tkmi_calloc(1, sizeof(*d));
    if (!d)
        return TKM_ENOMEM;
    parser p = { .s = (const unsigned char *)text, .len = len, .name = name ? name : "JSON",
                 .doc = d };
    int rc = parse_value(&p, &d->root);
    if (rc == 0) {
        skip_ws(&p);
        if (p.pos != p.len)
            rc = fail(&p, "trailing characters after the JSON value");
    }
    tkmi_free(p.stack);
    tkmi_free(p.buf);
    if (rc < 0) {
        tkmi_json_free(d);
        return rc;
    }
    *doc = d;
    return 0;
}

int tkmi_json_parse_file(const char *path, tkmi_json_doc **doc)
{
    *doc = NULL;
    uint8_t *buf;
    size_t n;
    TKM_FORWARD_IF_ERROR(tkmi_read_file(path, &buf, &n));
    int rc = tkmi_json_parse((const char *)buf, n, path, doc);
    tkmi_free(buf);
    return rc;
}

const tkmi_json *tkmi_json_root(const tkmi_json_doc *doc)
{
    return &doc->root;
}

void tkmi_json_free(tkmi_json_doc *doc)
{
    if (!doc)
        return;
    arena_block *b = doc->blocks;
    while (b) {
        arena_block *nx = b->next;
        tkmi_free(b);
        b = nx;
    }
    tkmi_free(doc);
}

const tkmi_json *tkmi_json_get(const tkmi_json *v, const char *key)
{
    if (!v || v->type != TKMI_JSON_OBJECT)
        return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < v->len; i++) {
        const tkmi_json *k = &v->u.items[2 * i];
        if (k->len == kl && memcmp(k->u.str, key, kl) == 0)
            return &v->u.items[2 * i + 1];
    }
    return NULL;
}

const tkmi_json *tkmi_json_at(const tkmi_json *v, size_t i)
{
    if (!v || v->type != TKMI_JSON_ARRAY || i >= v->len)
        return NULL;
    return &v->u.items[i];
}

const tkmi_json *tkmi_json_key(const tkmi_json *v, size_t i)
{
    if (!v || v->type != TKMI_JSON_OBJECT || i >= v->len)
        return NULL;
    return &v->u.items[2 * i];
}

const tkmi_json *tkmi_json_val(const tkmi_json *v, size_t i)
{
    if (!v || v->type != TKMI_JSON_OBJECT || i >= v->len)
        return NULL;
    return &v->u.items[2 * i + 1];
}

const char *tkmi_json_str(const tkmi_json *v)
{
    return v && v->type == TKMI_JSON_STRING ? v->u.str : NULL;
}

int tkmi_json_int(const tkmi_json *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (!v || v->type != TKMI_JSON_NUMBER)
        return 0;
    double d = v->u.num;
    if (!(d > -9007199254740992.0 && d < 9007199254740992.0) || d != (double)(int64_t)d)
        return 0;
    int64_t x = (int64_t)d;
    if (x < lo || x > hi)
        return 0;
    *out = x;
    return 1;
}
