/*
 * sword_extract - dump the text of SWORD zText/zCom modules as plain text.
 *
 * Usage: sword_extract [-4] [-r] MODULE_DIR...
 *
 * A module directory holds, per testament (ot, nt) and block type
 * (b = book, c = chapter, v = verse), three files:
 *
 *   XX.?zs  block index: 12-byte records (u32 offset, u32 size,
 *           u32 uncompressed size) into XX.?zz
 *   XX.?zz  concatenated zlib streams, one per block
 *   XX.?zv  entry index: records (u32 block, u32 offset, u16 size), 10 bytes
 *           each; for the zText4/zCom4 drivers the size is u32 (12 bytes)
 *
 * All integers are little-endian.  Entries are printed in index order; runs
 * of identical records (linked commentary entries) are printed once.
 *
 * Markup (OSIS, ThML, GBF) is stripped: element content is kept except for
 * notes (<note>, GBF <RF>..<Rf>), which are dropped; attributes (Strong's
 * numbers, morphology, ...) are dropped; paragraph-like elements start a
 * new output line; HTML entities are decoded; whitespace is collapsed.
 * Output is one paragraph per line with no empty lines.
 *
 * The entry record size is detected from the data (file size and records
 * that fit the block index); -4 only says which size to prefer when both
 * fit (some modules' .conf files name the wrong driver).
 *
 * -r prints every entry raw (no markup stripping), one entry per line.
 *
 * Errors (unreadable files, corrupt indexes, bad zlib data) are reported
 * with the file name and offset, and the program exits with status 1.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#if defined(__GNUC__) || defined(__clang__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN __attribute__((noreturn))
#else
#define PRINTF_LIKE(f, a)
#define NORETURN
#endif

static const char *progname = "sword_extract";

static NORETURN PRINTF_LIKE(1, 2) void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static PRINTF_LIKE(1, 2) void warn(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: warning: ", progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        die("out of memory (%zu bytes)", n);
    return q;
}

typedef struct {
    unsigned char *data;
    size_t len;
    size_t cap;
} Buf;

static void buf_reserve(Buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        die("out of memory");
    if (b->len + extra <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap = cap > SIZE_MAX / 2 ? b->len + extra : cap * 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

static void buf_put(Buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

/* Read a whole file.  Returns 0 if it does not exist and optional is set. */
static int read_file(const char *path, Buf *b, int optional)
{
    FILE *f = fopen(path, "rb");
    b->len = 0;
    if (!f) {
        if (optional && errno == ENOENT)
            return 0;
        die("%s: cannot open: %s", path, strerror(errno));
    }
    for (;;) {
        buf_reserve(b, 65536);
        size_t n = fread(b->data + b->len, 1, b->cap - b->len, f);
        b->len += n;
        if (n == 0)
            break;
    }
    if (ferror(f))
        die("%s: read error: %s", path, strerror(errno));
    fclose(f);
    return 1;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint32_t le16(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

/* ------------------------------------------------------------------ */
/* Markup stripping                                                    */

typedef struct {
    Buf para;          /* current paragraph */
    int pending_space; /* whitespace seen since the last emitted byte */
    int note_depth;    /* >0 while inside a note: text is dropped */
    int after_note;    /* a note was just dropped: it may have been the
                          only separator between two words */
    unsigned long warnings;
} Stripper;

static void emit_break(Stripper *st)
{
    if (st->para.len > 0) {
        buf_put(&st->para, "\n", 1);
        if (fwrite(st->para.data, 1, st->para.len, stdout) != st->para.len)
            die("write error on standard output: %s", strerror(errno));
    }
    st->para.len = 0;
    st->pending_space = 0;
    st->after_note = 0;
}

static void emit_space(Stripper *st)
{
    if (st->note_depth == 0) {
        if (st->para.len > 0)
            st->pending_space = 1;
        st->after_note = 0;
    }
}

/* Does s start with closing punctuation (no space wanted before it)? */
static int closing_punct(const char *s, size_t n)
{
    static const char *const close[] = {
        ".", ",", ";", ":", "!", "?", ")", "]", "}", "'", "\"",
        "\xE2\x80\x99", /* right single quotation mark */
        "\xE2\x80\x9D", /* right double quotation mark */
        "\xE2\x80\x94", /* em dash */
    };
    for (size_t i = 0; i < sizeof close / sizeof close[0]; i++) {
        size_t l = strlen(close[i]);
        if (l <= n && memcmp(s, close[i], l) == 0)
            return 1;
    }
    return 0;
}

static void emit_bytes(Stripper *st, const char *s, size_t n)
{
    if (st->note_depth > 0 || n == 0)
        return;
    if (st->after_note && st->para.len > 0 && !closing_punct(s, n))
        st->pending_space = 1;
    if (st->pending_space)
        buf_put(&st->para, " ", 1);
    st->pending_space = 0;
    st->after_note = 0;
    buf_put(&st->para, s, n);
}

static size_t utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static const struct {
    const char *name;
    uint32_t cp;
} entities[] = {
    {"amp", '&'},       {"lt", '<'},        {"gt", '>'},
    {"quot", '"'},      {"apos", '\''},     {"nbsp", ' '},
    {"mdash", 0x2014},  {"ndash", 0x2013},  {"lsquo", 0x2018},
    {"rsquo", 0x2019},  {"ldquo", 0x201C},  {"rdquo", 0x201D},
    {"hellip", 0x2026},
};

/*
 * Decode the entity starting at s[0] == '&'.  On success emits it and
 * returns the number of bytes consumed; returns 0 if it is not an entity.
 */
static size_t decode_entity(Stripper *st, const char *s, size_t n)
{
    size_t end = 1;
    while (end < n && end < 12 && s[end] != ';' && s[end] != '&' &&
           s[end] != '<' && (unsigned char)s[end] > ' ')
        end++;
    if (end >= n || s[end] != ';' || end == 1)
        return 0;
    const char *name = s + 1;
    size_t len = end - 1;
    uint32_t cp = 0;
    int found = 0;
    if (name[0] == '#') {
        int hex = len > 1 && (name[1] == 'x' || name[1] == 'X');
        size_t i = hex ? 2 : 1;
        if (i >= len)
            return 0;
        for (; i < len; i++) {
            int c = (unsigned char)name[i], v;
            if (c >= '0' && c <= '9')
                v = c - '0';
            else if (hex && c >= 'a' && c <= 'f')
                v = c - 'a' + 10;
            else if (hex && c >= 'A' && c <= 'F')
                v = c - 'A' + 10;
            else
                return 0;
            cp = cp * (hex ? 16u : 10u) + (uint32_t)v;
            if (cp > 0x10FFFF)
                return 0;
        }
        if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        found = 1;
    } else {
        for (size_t i = 0; i < sizeof entities / sizeof entities[0]; i++) {
            if (strlen(entities[i].name) == len &&
                memcmp(entities[i].name, name, len) == 0) {
                cp = entities[i].cp;
                found = 1;
                break;
            }
        }
    }
    if (!found)
        return 0;
    if (cp < 0x20 || cp == ' ') {
        emit_space(st);
    } else {
        char u[4];
        emit_bytes(st, u, utf8_encode(cp, u));
    }
    return end + 1;
}

static int name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && memcmp(name, want, len) == 0;
}

/* Elements that start and end a paragraph (both tags break the line). */
static const char *const break_tags[] = {
    "p",     "lb",   "br",   "div",     "title",   "head", "lg", "l",
    "item",  "list", "row",  "table",   "chapter", "speaker",
    "CM",    "CL",   /* GBF paragraph / line break */
};

/*
 * Handle one tag s[0..n) (s[0] == '<', s[n-1] == '>').
 */
static void handle_tag(Stripper *st, const char *s, size_t n)
{
    size_t i = 1;
    int closing = 0;
    if (i < n && s[i] == '/') {
        closing = 1;
        i++;
    }
    const char *name = s + i;
    while (i < n && s[i] != '>' && s[i] != '/' && s[i] != ' ' &&
           s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
        i++;
    size_t nlen = (size_t)(s + i - name);
    int selfclose = n >= 2 && s[n - 2] == '/';

    if (name_is(name, nlen, "note")) {
        if (selfclose)
            return;
        if (closing) {
            if (st->note_depth > 0 && --st->note_depth == 0)
                st->after_note = 1;
        } else {
            st->note_depth++;
        }
        return;
    }
    /* GBF footnotes: <RF>note text<Rf> */
    if (name_is(name, nlen, "RF") && !closing) {
        st->note_depth++;
        return;
    }
    if (name_is(name, nlen, "Rf") && !closing) {
        if (st->note_depth > 0 && --st->note_depth == 0)
            st->after_note = 1;
        return;
    }
    if (st->note_depth > 0)
        return;
    if (name_is(name, nlen, "cell")) {
        emit_space(st);
        return;
    }
    for (size_t k = 0; k < sizeof break_tags / sizeof break_tags[0]; k++) {
        if (name_is(name, nlen, break_tags[k])) {
            /* Verse milestones are <div type="x-milestone">: not a break. */
            if (name_is(name, nlen, "div")) {
                static const char ms[] = "type=\"x-milestone\"";
                size_t ml = sizeof ms - 1;
                for (size_t j = i; j + ml <= n; j++)
                    if (memcmp(s + j, ms, ml) == 0)
                        return;
            }
            emit_break(st);
            return;
        }
    }
    /* Everything else (w, hi, q, reference, milestone, ...): drop the tag,
     * keep its content. */
}

static void strip_entry(Stripper *st, const char *s, size_t n,
                        const char *file, size_t rec_off)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '<') {
            if (n - i >= 4 && memcmp(s + i, "<!--", 4) == 0) {
                size_t j = i + 4;
                while (j + 3 <= n && memcmp(s + j, "-->", 3) != 0)
                    j++;
                i = j + 3 <= n ? j + 3 : n;
                continue;
            }
            int starts_name = i + 1 < n &&
                              (s[i + 1] == '/' || s[i + 1] == '_' ||
                               (s[i + 1] >= 'A' && s[i + 1] <= 'Z') ||
                               (s[i + 1] >= 'a' && s[i + 1] <= 'z'));
            if (starts_name) {
                size_t j = i + 1;
                char quote = 0;
                while (j < n) {
                    if (quote) {
                        if (s[j] == quote)
                            quote = 0;
                    } else if (s[j] == '"' || s[j] == '\'') {
                        quote = s[j];
                    } else if (s[j] == '>') {
                        break;
                    }
                    j++;
                }
                if (j >= n) {
                    warn("%s: entry at index offset %zu: unterminated tag, "
                         "rest of entry dropped",
                         file, rec_off);
                    st->warnings++;
                    return;
                }
                handle_tag(st, s + i, j + 1 - i);
                i = j + 1;
                continue;
            }
            /* a lone '<' in text */
            emit_bytes(st, "<", 1);
            i++;
            continue;
        }
        if (c == '&') {
            size_t used = decode_entity(st, s + i, n - i);
            if (used) {
                i += used;
                continue;
            }
            emit_bytes(st, "&", 1);
            i++;
            continue;
        }
        if (c <= ' ' || c == 0x7F) {
            emit_space(st);
            i++;
            continue;
        }
        /* copy a run of ordinary bytes */
        size_t j = i + 1;
        while (j < n && s[j] != '<' && s[j] != '&' &&
               (unsigned char)s[j] > ' ' && s[j] != 0x7F)
            j++;
        emit_bytes(st, s + i, j - i);
        i = j;
    }
}

/* ------------------------------------------------------------------ */
/* Module reading                                                      */

typedef struct {
    int raw;       /* -r */
    int size4;     /* -4 */
    Stripper st;
    Buf idx, dat, vrs, block;
} Ctx;

static void inflate_block(Ctx *c, const char *zfile, uint32_t blockno,
                          uint32_t off, uint32_t size, uint32_t usize)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    c->block.len = 0;
    if (size == 0) {
        if (usize != 0)
            die("%s: block %u: index says 0 compressed bytes but %u "
                "uncompressed",
                zfile, blockno, usize);
        return;
    }
    int rc = inflateInit(&zs);
    if (rc != Z_OK)
        die("%s: inflateInit failed: %s", zfile, zError(rc));
    zs.next_in = c->dat.data + off;
    zs.avail_in = size;
    buf_reserve(&c->block, (size_t)usize + 1);
    for (;;) {
        if (c->block.cap == c->block.len)
            buf_reserve(&c->block, 65536);
        zs.next_out = c->block.data + c->block.len;
        zs.avail_out = (uInt)(c->block.cap - c->block.len);
        rc = inflate(&zs, Z_NO_FLUSH);
        c->block.len = c->block.cap - zs.avail_out;
        if (rc == Z_STREAM_END)
            break;
        if (rc == Z_OK)
            continue;
        if (rc == Z_BUF_ERROR && zs.avail_in == 0)
            die("%s: block %u at offset %u: truncated zlib stream "
                "(%u compressed bytes)",
                zfile, blockno, off, size);
        die("%s: block %u at offset %u: zlib error: %s", zfile, blockno, off,
            zs.msg ? zs.msg : zError(rc));
    }
    inflateEnd(&zs);
    if (c->block.len != usize)
        die("%s: block %u at offset %u: decompressed to %zu bytes but the "
            "index says %u",
            zfile, blockno, off, c->block.len, usize);
}

/*
 * 10-byte entry records store the size in 16 bits; some modules (built by
 * osis2mod from very long entries) have sizes that wrapped around 65536.
 * If the next entry of the same block (or the block end) lies exactly a
 * multiple of 65536 bytes further on, use that as the real size.
 */
static uint32_t fix_size16(Ctx *c, size_t r, size_t nrec, uint32_t b,
                           uint32_t eo, uint32_t es, const char *vfile)
{
    uint64_t end = (uint64_t)eo + es;
    uint64_t next = c->block.len;
    for (size_t k = r + 1; k < nrec; k++) {
        const unsigned char *p = c->vrs.data + k * 10;
        if (le16(p + 8) == 0)
            continue;
        if (le32(p) == b && le32(p + 4) > eo)
            next = le32(p + 4);
        break;
    }
    if (next > end && next <= c->block.len && (next - end) % 65536 == 0) {
        warn("%s: record %zu at offset %zu: 16-bit entry size %u wrapped "
             "around, using %llu",
             vfile, r, r * 10, es, (unsigned long long)(next - eo));
        return (uint32_t)(next - eo);
    }
    return es;
}

/*
 * Could c->vrs consist of rsize-byte records?  Every non-empty record must
 * name an existing block and lie inside its uncompressed size (a 16-bit
 * size may have wrapped, which only makes it smaller).
 */
static int plausible(const Ctx *c, size_t rsize, size_t nblocks)
{
    if (c->vrs.len % rsize != 0)
        return 0;
    for (size_t off = 0; off < c->vrs.len; off += rsize) {
        const unsigned char *p = c->vrs.data + off;
        uint32_t b = le32(p), eo = le32(p + 4);
        uint32_t es = rsize == 12 ? le32(p + 8) : le16(p + 8);
        if (es == 0)
            continue;
        if (b >= nblocks)
            return 0;
        uint32_t usize = le32(c->idx.data + (size_t)b * 12 + 8);
        if ((uint64_t)eo + es > usize)
            return 0;
    }
    return 1;
}

/* Returns 1 if the testament was present. */
static int extract_testament(Ctx *c, const char *dir, const char *testament)
{
    static const char types[] = "bcv";
    char sfile[4096], zfile[4096], vfile[4096];
    int found = 0;

    for (const char *t = types; *t; t++) {
        int n = snprintf(sfile, sizeof sfile, "%s/%s.%czs", dir, testament, *t);
        if (n < 0 || (size_t)n >= sizeof sfile)
            die("%s: path too long", dir);
        snprintf(zfile, sizeof zfile, "%s/%s.%czz", dir, testament, *t);
        snprintf(vfile, sizeof vfile, "%s/%s.%czv", dir, testament, *t);
        if (!read_file(sfile, &c->idx, 1))
            continue;
        if (found)
            die("%s: more than one block type for testament %s", dir,
                testament);
        found = 1;
        read_file(zfile, &c->dat, 0);
        read_file(vfile, &c->vrs, 0);

        if (c->idx.len % 12 != 0)
            die("%s: size %zu is not a multiple of the 12-byte record size",
                sfile, c->idx.len);
        size_t nblocks = c->idx.len / 12;
        size_t rsize = c->size4 ? 12 : 10;
        if (!plausible(c, rsize, nblocks)) {
            size_t other = rsize == 12 ? 10 : 12;
            if (!plausible(c, other, nblocks))
                die("%s: size %zu: neither 10- nor 12-byte entry records "
                    "fit the block index %s",
                    vfile, c->vrs.len, sfile);
            rsize = other;
        }
        size_t nrec = c->vrs.len / rsize;
        int have_block = 0;
        uint32_t cur_block = 0;
        uint32_t pb = 0, po = 0, ps = 0;
        int have_prev = 0;

        for (size_t r = 0; r < nrec; r++) {
            const unsigned char *p = c->vrs.data + r * rsize;
            size_t roff = r * rsize;
            uint32_t b = le32(p), eo = le32(p + 4);
            uint32_t es = rsize == 12 ? le32(p + 8) : le16(p + 8);
            if (es == 0)
                continue;
            if (have_prev && b == pb && eo == po && es == ps)
                continue; /* linked entry: same text as the previous one */
            pb = b;
            po = eo;
            ps = es;
            have_prev = 1;
            if (b >= nblocks)
                die("%s: record %zu at offset %zu: block %u out of range "
                    "(%s has %zu blocks)",
                    vfile, r, roff, b, sfile, nblocks);
            if (!have_block || cur_block != b) {
                const unsigned char *q = c->idx.data + (size_t)b * 12;
                uint32_t zo = le32(q), zsz = le32(q + 4), zu = le32(q + 8);
                if ((uint64_t)zo + zsz > c->dat.len)
                    die("%s: block %u (index offset %zu): compressed range "
                        "%u+%u exceeds %s size %zu",
                        sfile, b, (size_t)b * 12, zo, zsz, zfile, c->dat.len);
                inflate_block(c, zfile, b, zo, zsz, zu);
                have_block = 1;
                cur_block = b;
            }
            if (rsize == 10)
                es = fix_size16(c, r, nrec, b, eo, es, vfile);
            if ((uint64_t)eo + es > c->block.len)
                die("%s: record %zu at offset %zu: entry %u+%u exceeds "
                    "block %u length %zu",
                    vfile, r, roff, eo, es, b, c->block.len);
            const char *text = (const char *)c->block.data + eo;
            if (c->raw) {
                Stripper *st = &c->st;
                for (uint32_t k = 0; k < es; k++) {
                    if (text[k] == '\n' || text[k] == '\r')
                        emit_space(st);
                    else
                        emit_bytes(st, text + k, 1);
                }
                emit_break(st);
            } else {
                strip_entry(&c->st, text, es, vfile, roff);
                c->st.note_depth = 0; /* notes never span entries */
                emit_space(&c->st);   /* entries are separate words */
            }
        }
    }
    return found;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [-4] [-r] MODULE_DIR...\n"
            "  -4  prefer 12-byte entry records (zText4/zCom4 modules)\n"
            "  -r  print raw entries (no markup stripping), one per line\n",
            progname);
}

int main(int argc, char **argv)
{
    Ctx c;
    memset(&c, 0, sizeof c);
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        for (const char *o = argv[i] + 1; *o; o++) {
            switch (*o) {
            case '4':
                c.size4 = 1;
                break;
            case 'r':
                c.raw = 1;
                break;
            case 'h':
                usage(stdout);
                return 0;
            default:
                fprintf(stderr, "%s: unknown option -%c\n", progname, *o);
                usage(stderr);
                return 2;
            }
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    for (; i < argc; i++) {
        int any = extract_testament(&c, argv[i], "ot");
        any |= extract_testament(&c, argv[i], "nt");
        if (!any)
            die("%s: no zText/zCom data files (ot.?zs / nt.?zs) found",
                argv[i]);
        emit_break(&c.st);
        c.st.note_depth = 0;
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        die("write error on standard output: %s", strerror(errno));
    if (c.st.warnings)
        fprintf(stderr, "%s: %lu warning(s)\n", progname, c.st.warnings);
    free(c.idx.data);
    free(c.dat.data);
    free(c.vrs.data);
    free(c.block.data);
    free(c.st.para.data);
    return 0;
}
