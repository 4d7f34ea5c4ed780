/* count_file.c - count files (.tkc): the unique pre-tokens of some inputs
 * with their counts, written by `tokenmill count`, read by `train --counts`,
 * combined by `count --merge` and used as the wire encoding of the MPI
 * exchange (cli/mpi_train.c). The format is tokenmill-count(1)'s:
 *
 *   a gzip stream (or the same bytes uncompressed) of
 *   header   text lines: "tokenmill-counts 1", "option KEY VALUE" for every
 *            option that changes counting, "input PATH" per input, "stats
 *            LINES BYTES INVALID NUL PRETOKENS SKIPPED", "records"
 *   records  keys in strictly increasing bytewise order, front-coded:
 *            varint SHARED, varint SUFFIX_LEN (>= 1), SUFFIX, varint COUNT
 *   end      varint 0, varint 0, varint ENTRIES, varint SUM_OF_COUNTS
 *            (mod 2^64), then CRC-32 (zlib's) of every byte before it, 4
 *            bytes little-endian
 *
 * Varints are unsigned LEB128 (7 bits a byte, low first). Sorted keys make
 * merging N files a streaming k-way merge; the counts, entries, sum and CRC
 * make a truncated or damaged file an error that names it, never a crash. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "trainer_internal.h"
#include "count_file.h"
#include "../lib/heap.h"

#define CF_VERSION 1
#define CF_MAX_HEADER (64u << 20) /* header bytes (inputs lists can be long) */
#define CF_MAX_KEY (1u << 30)     /* bytes of one pre-token */
#define CF_BUF (1u << 16)

/* ---- escaping: bytes <= 0x20, '%' and 0x7F as %XX ---- */
static int esc_append(char **buf, size_t *n, size_t *cap, const char *s, size_t len)
{
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)buf, cap, *n + 3 * len + 1, 1));
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c <= 0x20 || c == '%' || c == 0x7F) *n += (size_t)sprintf(*buf + *n, "%%%02X", c);
        else (*buf)[(*n)++] = (char)c;
    }
    (*buf)[*n] = 0;
    return 0;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Unescapes s[0..len) into a new string; NULL when malformed (or no memory). */
static char *unesc(const char *s, size_t len, int *nomem)
{
    char *r = tkmi_malloc(len + 1);
    if (!r) { *nomem = 1; return NULL; }
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') { r[k++] = s[i]; continue; }
        int a = i + 2 < len ? hexval(s[i + 1]) : -1;
        int b = i + 2 < len ? hexval(s[i + 2]) : -1;
        if (a < 0 || b < 0 || (a | b) == 0) { tkmi_free(r); return NULL; } /* no NUL in a name */
        r[k++] = (char)(a << 4 | b);
        i += 2;
    }
    r[k] = 0;
    return r;
}

static int fmt_append(char **buf, size_t *n, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fmt_append(char **buf, size_t *n, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    TKM_RETURN_ERROR_IF(k < 0, TKM_EINVAL, "bad format");
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)buf, cap, *n + (size_t)k + 1, 1));
    va_start(ap, fmt);
    vsnprintf(*buf + *n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    *n += (size_t)k;
    return 0;
}

/* The "option" lines of a trainer: every option that changes which
 * pre-tokens are cut or how they count. weighted comes last: it is checked
 * between files, not against the trainer (train --counts has no weights). */
int tkmi_cf_options(const struct tkm_trainer *t, int weighted, char **out, size_t *out_n)
{
    const tkm_train_options *o = &t->o;
    char *b = NULL;
    size_t n = 0, cap = 0;
    int rc = fmt_append(&b, &n, &cap, "option normalization ");
    if (rc == 0) rc = esc_append(&b, &n, &cap, t->norm_name ? t->norm_name : "identity", strlen(t->norm_name ? t->norm_name : "identity"));
    if (rc == 0) {
        if (t->charsmap)
            rc = fmt_append(&b, &n, &cap, "\noption charsmap %zu:%08lx\n", t->charsmap_len,
                            crc32(0L, t->charsmap, (uInt)t->charsmap_len));
        else rc = fmt_append(&b, &n, &cap, "\noption charsmap none\n");
    }
    if (rc == 0)
        rc = fmt_append(&b, &n, &cap,
                        "option add_dummy_prefix %d\noption remove_extra_whitespaces %d\n"
                        "option split_by_unicode_script %d\noption split_by_number %d\noption split_digits %d\n"
                        "option split_by_whitespace %d\noption allow_whitespace_only_pieces %d\n"
                        "option word_model_cuts %d\noption user_defined_symbols %d",
                        !!o->add_dummy_prefix, !!o->remove_extra_whitespaces, !!o->split_by_unicode_script,
                        !!o->split_by_number, !!o->split_digits, !!o->split_by_whitespace,
                        !!o->allow_whitespace_only_pieces, o->model_type == TKM_MODEL_WORD, o->n_user_defined);
    for (int i = 0; rc == 0 && i < o->n_user_defined; i++) {
        rc = fmt_append(&b, &n, &cap, " ");
        if (rc == 0) rc = esc_append(&b, &n, &cap, t->user[i], strlen(t->user[i]));
    }
    if (rc == 0) rc = fmt_append(&b, &n, &cap, "\noption treat_whitespace_as_suffix %d\noption pretokenization_delimiter ",
                                 !!o->treat_whitespace_as_suffix);
    if (rc == 0) {
        const char *d = o->pretokenization_delimiter ? o->pretokenization_delimiter : "";
        rc = esc_append(&b, &n, &cap, d, strlen(d));
    }
    if (rc == 0)
        rc = fmt_append(&b, &n, &cap, "\noption input_tsv %d\noption max_sentence_length %d\noption skip_unk_lines %d\noption weighted %d\n",
                        !!o->input_tsv, o->max_sentence_length > 0 ? o->max_sentence_length : 0, !!o->skip_unk_lines,
                        !!weighted);
    if (rc < 0) { tkmi_free(b); return rc; }
    *out = b;
    *out_n = n;
    return 0;
}

/* ---- writer ---- */
struct tkmi_cwriter {
    gzFile gz;
    char *path, *tmp; /* tmp NULL: writing in place (stdout, a device) */
    uint8_t buf[CF_BUF];
    size_t blen;
    uint32_t crc;
    char *prev;
    size_t plen, pcap;
    uint64_t n, sum;
};

static int cw_flush(tkmi_cwriter *w)
{
    if (!w->blen) return 0;
    w->crc = (uint32_t)crc32(w->crc, w->buf, (uInt)w->blen);
    int k = gzwrite(w->gz, w->buf, (unsigned)w->blen);
    TKM_RETURN_ERROR_IF(k <= 0 || (size_t)k != w->blen, TKM_EIO, "%s: write error (disk full?)", w->tmp ? w->tmp : w->path);
    w->blen = 0;
    return 0;
}

static int cw_bytes(tkmi_cwriter *w, const void *p, size_t len)
{
    const uint8_t *s = p;
    while (len) {
        if (w->blen == CF_BUF) TKM_FORWARD_IF_ERROR(cw_flush(w));
        size_t k = CF_BUF - w->blen < len ? CF_BUF - w->blen : len;
        memcpy(w->buf + w->blen, s, k);
        w->blen += k;
        s += k;
        len -= k;
    }
    return 0;
}

static int cw_varint(tkmi_cwriter *w, uint64_t v)
{
    uint8_t b[10];
    return cw_bytes(w, b, tkmi_varint_put(b, v));
}

int tkmi_cw_open(const char *path, const char *hdr, size_t hdr_len, tkmi_cwriter **out)
{
    *out = NULL;
    tkmi_cwriter *w = tkmi_calloc(1, sizeof *w);
    TKM_RETURN_ERROR_IF(!w, TKM_ENOMEM, "out of memory");
    w->path = tkmi_strdup(path);
    int fd = -1, rc = 0;
    struct stat st;
    if (!w->path) rc = tkmi_error(TKM_ENOMEM, "out of memory");
    else if (!strcmp(path, "-") || (stat(path, &st) == 0 && !S_ISREG(st.st_mode))) {
        fd = !strcmp(path, "-") ? dup(1) : open(path, O_WRONLY);
        if (fd < 0) rc = tkmi_error(TKM_EIO, "%s: cannot open: %s", path, strerror(errno));
    } else {
        size_t pl = strlen(path) + 32;
        w->tmp = tkmi_malloc(pl);
        if (!w->tmp) rc = tkmi_error(TKM_ENOMEM, "out of memory");
        else {
            snprintf(w->tmp, pl, "%s.tmp.%ld", path, (long)getpid());
            fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0) rc = tkmi_error(TKM_EIO, "%s: cannot create: %s", w->tmp, strerror(errno));
        }
    }
    if (rc == 0) {
        w->gz = gzdopen(fd, "wb1");
        if (!w->gz) { close(fd); rc = tkmi_error(TKM_ENOMEM, "out of memory (gzip)"); }
    }
    if (rc == 0) rc = cw_bytes(w, hdr, hdr_len);
    if (rc < 0) { tkmi_cw_close(w, 0); return rc; }
    *out = w;
    return 0;
}

int tkmi_cw_put(tkmi_cwriter *w, const char *key, size_t len, int64_t cnt)
{
    TKM_RETURN_ERROR_IF(len == 0 || len > CF_MAX_KEY || cnt < 1, TKM_EINVAL, "count file: bad entry (length %zu, count %lld)",
                        len, (long long)cnt);
    size_t sh = 0, m = len < w->plen ? len : w->plen;
    while (sh < m && w->prev[sh] == key[sh]) sh++;
    TKM_RETURN_ERROR_IF(sh == len || (sh < w->plen && (uint8_t)key[sh] < (uint8_t)w->prev[sh]), TKM_EINVAL,
                        "count file: keys out of order");
    TKM_FORWARD_IF_ERROR(cw_varint(w, sh));
    TKM_FORWARD_IF_ERROR(cw_varint(w, len - sh));
    TKM_FORWARD_IF_ERROR(cw_bytes(w, key + sh, len - sh));
    TKM_FORWARD_IF_ERROR(cw_varint(w, (uint64_t)cnt));
    if (len > w->pcap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&w->prev, &w->pcap, len, 1));
    memcpy(w->prev + sh, key + sh, len - sh);
    w->plen = len;
    w->n++;
    w->sum += (uint64_t)cnt;
    return 0;
}

int tkmi_cw_close(tkmi_cwriter *w, int commit)
{
    if (!w) return 0;
    int rc = 0;
    if (commit && w->gz) {
        rc = cw_varint(w, 0);
        if (rc == 0) rc = cw_varint(w, 0);
        if (rc == 0) rc = cw_varint(w, w->n);
        if (rc == 0) rc = cw_varint(w, w->sum);
        if (rc == 0) rc = cw_flush(w);
        uint8_t c[4] = {(uint8_t)w->crc, (uint8_t)(w->crc >> 8), (uint8_t)(w->crc >> 16), (uint8_t)(w->crc >> 24)};
        if (rc == 0 && gzwrite(w->gz, c, 4) != 4) rc = tkmi_error(TKM_EIO, "%s: write error (disk full?)", w->tmp ? w->tmp : w->path);
    }
    if (w->gz && gzclose(w->gz) != Z_OK && commit && rc == 0)
        rc = tkmi_error(TKM_EIO, "%s: write error (disk full?)", w->tmp ? w->tmp : w->path);
    if (w->tmp) {
        if (commit && rc == 0 && rename(w->tmp, w->path) != 0)
            rc = tkmi_error(TKM_EIO, "%s: cannot write: %s", w->path, strerror(errno));
        if (!commit || rc < 0) unlink(w->tmp);
    }
    tkmi_free(w->path);
    tkmi_free(w->tmp);
    tkmi_free(w->prev);
    tkmi_free(w);
    return rc;
}

/* ---- reader ---- */
static int cf_fill(tkmi_cfile *f)
{
    if (f->eof) return 0;
    int k = f->gz ? gzread(f->gz, f->buf, CF_BUF) : 0;
    if (f->gz && k < 0) {
        int e;
        const char *m = gzerror(f->gz, &e);
        return tkmi_error(TKM_EFORMAT, "%s: byte %llu: %s", f->path, (unsigned long long)f->off,
                          e == Z_ERRNO ? strerror(errno) : m);
    }
    if (!f->gz) { /* in memory */
        size_t left = f->mem_len - f->mem_pos;
        k = (int)(left < CF_BUF ? left : CF_BUF);
        memcpy(f->buf, f->mem + f->mem_pos, (size_t)k);
        f->mem_pos += (size_t)k;
    }
    f->bpos = 0;
    f->blen = (size_t)k;
    if (k == 0) f->eof = 1;
    return k;
}

#define CF_TRUNC(f) tkmi_error(TKM_EFORMAT, "%s: byte %llu: truncated count file", (f)->path, (unsigned long long)(f)->off)

static int cf_bytes(tkmi_cfile *f, void *dst, size_t len)
{
    uint8_t *d = dst;
    while (len) {
        if (f->bpos == f->blen) {
            int k = cf_fill(f);
            if (k < 0) return k;
            if (k == 0) return CF_TRUNC(f);
        }
        size_t k = f->blen - f->bpos < len ? f->blen - f->bpos : len;
        memcpy(d, f->buf + f->bpos, k);
        f->crc = (uint32_t)crc32(f->crc, f->buf + f->bpos, (uInt)k);
        f->bpos += k;
        f->off += k;
        d += k;
        len -= k;
    }
    return 0;
}

static int cf_varint(tkmi_cfile *f, uint64_t *v)
{
    uint64_t r = 0;
    for (int sh = 0;; sh += 7) {
        uint8_t b;
        TKM_FORWARD_IF_ERROR(cf_bytes(f, &b, 1));
        TKM_RETURN_ERROR_IF(sh == 63 && b > 1, TKM_EFORMAT, "%s: byte %llu: varint too long", f->path,
                            (unsigned long long)f->off);
        r |= (uint64_t)(b & 0x7F) << sh;
        if (!(b & 0x80)) break;
        TKM_RETURN_ERROR_IF(sh == 63, TKM_EFORMAT, "%s: byte %llu: varint too long", f->path, (unsigned long long)f->off);
    }
    *v = r;
    return 0;
}

void tkmi_cf_close(tkmi_cfile *f)
{
    if (!f) return;
    if (f->gz) gzclose(f->gz);
    tkmi_free(f->path);
    tkmi_free(f->hdr);
    tkmi_free(f->opts);
    for (int i = 0; i < f->n_inputs; i++) tkmi_free(f->inputs[i]);
    tkmi_free(f->inputs);
    tkmi_free(f->key);
    tkmi_free(f);
}

/* Parses the header text (f->hdr, f->hdr_len bytes ending in "records\n"). */
static int cf_parse_header(tkmi_cfile *f)
{
    const char *p = f->hdr, *e = f->hdr + f->hdr_len;
    const char *nl = memchr(p, '\n', (size_t)(e - p));
    static const char magic[] = "tokenmill-counts ";
    TKM_RETURN_ERROR_IF(!nl || (size_t)(nl - p) <= sizeof magic - 1 || memcmp(p, magic, sizeof magic - 1) != 0,
                        TKM_EFORMAT, "%s: not a tokenmill count file", f->path);
    long ver = strtol(p + sizeof magic - 1, NULL, 10);
    TKM_RETURN_ERROR_IF(ver != CF_VERSION, TKM_EFORMAT, "%s: count file version %ld; this tokenmill reads version %d",
                        f->path, ver, CF_VERSION);
    size_t on = 0, ocap = 0;
    int have_stats = 0, nomem = 0;
    for (p = nl + 1; p < e; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(e - p));
        size_t len = (size_t)(nl - p);
        unsigned long long line_off = (unsigned long long)(p - f->hdr);
        if (len == 7 && !memcmp(p, "records", 7)) {
            TKM_RETURN_ERROR_IF(!have_stats, TKM_EFORMAT, "%s: header has no stats line", f->path);
            TKM_RETURN_ERROR_IF(!f->opts, TKM_EFORMAT, "%s: header has no options", f->path);
            return 0;
        }
        if (len > 7 && !memcmp(p, "option ", 7)) {
            const char *sp = memchr(p + 7, ' ', len - 7);
            TKM_RETURN_ERROR_IF(!sp || sp == p + 7, TKM_EFORMAT, "%s: byte %llu: bad option line", f->path, line_off);
            TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&f->opts, &ocap, on + len + 2, 1));
            memcpy(f->opts + on, p, len);
            f->opts[on + len] = '\n';
            on += len + 1;
            f->opts[on] = 0;
            f->opts_len = on;
            if (len > 16 && !memcmp(p, "option weighted ", 16)) f->weighted = p[16] == '1';
        } else if (len > 6 && !memcmp(p, "input ", 6)) {
            char **ni = tkmi_realloc(f->inputs, (size_t)(f->n_inputs + 1) * sizeof *ni);
            TKM_RETURN_ERROR_IF(!ni, TKM_ENOMEM, "out of memory");
            f->inputs = ni;
            char *s = unesc(p + 6, len - 6, &nomem);
            TKM_RETURN_ERROR_IF(nomem, TKM_ENOMEM, "out of memory");
            if (s && !*s) { tkmi_free(s); s = NULL; }
            TKM_RETURN_ERROR_IF(!s, TKM_EFORMAT, "%s: byte %llu: bad input line", f->path, line_off);
            f->inputs[f->n_inputs++] = s;
        } else if (len > 6 && !memcmp(p, "stats ", 6)) {
            char tmp[256];
            TKM_RETURN_ERROR_IF(len >= sizeof tmp, TKM_EFORMAT, "%s: byte %llu: bad stats line", f->path, line_off);
            memcpy(tmp, p, len);
            tmp[len] = 0;
            char *q = tmp + 6, *end;
            for (int i = 0; i < 6; i++) {
                errno = 0;
                f->st[i] = strtoull(q, &end, 10);
                TKM_RETURN_ERROR_IF(end == q || errno || (*end != ' ' && *end != 0) || *q == '-', TKM_EFORMAT,
                                    "%s: byte %llu: bad stats line", f->path, line_off);
                q = end;
            }
            TKM_RETURN_ERROR_IF(*q, TKM_EFORMAT, "%s: byte %llu: bad stats line", f->path, line_off);
            have_stats = 1;
        } else {
            return tkmi_error(TKM_EFORMAT, "%s: byte %llu: unknown header line", f->path, line_off);
        }
    }
    return tkmi_error(TKM_EFORMAT, "%s: header not terminated", f->path);
}

static int cf_read_header(tkmi_cfile *f)
{
    size_t cap = 0, n = 0;
    for (;;) {
        TKM_RETURN_ERROR_IF(n >= CF_MAX_HEADER, TKM_EFORMAT, "%s: header longer than %u bytes", f->path, CF_MAX_HEADER);
        if (n + 1 > cap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&f->hdr, &cap, n + 1, 1));
        if (n < 17 && f->bpos == f->blen && cf_fill(f) == 0) /* shorter than the magic line */
            return tkmi_error(TKM_EFORMAT, "%s: not a tokenmill count file", f->path);
        TKM_FORWARD_IF_ERROR(cf_bytes(f, f->hdr + n, 1));
        n++;
        if (n <= 17 && f->hdr[n - 1] != "tokenmill-counts "[n - 1])
            return tkmi_error(TKM_EFORMAT, "%s: not a tokenmill count file", f->path);
        if (f->hdr[n - 1] == '\n' && n >= 9 && !memcmp(f->hdr + n - 9, "\nrecords\n", 9)) break;
    }
    f->hdr_len = n;
    return cf_parse_header(f);
}

static int cf_start(tkmi_cfile *f)
{
    f->buf = f->bufmem;
    f->crc = (uint32_t)crc32(0L, Z_NULL, 0);
    return cf_read_header(f);
}

int tkmi_cf_open(const char *path, tkmi_cfile **out)
{
    *out = NULL;
    tkmi_cfile *f = tkmi_calloc(1, sizeof *f);
    TKM_RETURN_ERROR_IF(!f, TKM_ENOMEM, "out of memory");
    f->path = tkmi_strdup(path);
    int rc = 0;
    if (!f->path) rc = tkmi_error(TKM_ENOMEM, "out of memory");
    else {
        int fd = !strcmp(path, "-") ? dup(0) : open(path, O_RDONLY);
        if (fd < 0) rc = tkmi_error(TKM_EIO, "%s: cannot open: %s", path, strerror(errno));
        else if (!(f->gz = gzdopen(fd, "rb"))) { close(fd); rc = tkmi_error(TKM_ENOMEM, "out of memory (gzip)"); }
        else gzbuffer(f->gz, 1u << 17);
    }
    if (rc == 0) rc = cf_start(f);
    if (rc < 0) { tkmi_cf_close(f); return rc; }
    *out = f;
    return 0;
}

int tkmi_cf_open_mem(const char *name, const void *data, size_t len, tkmi_cfile **out)
{
    *out = NULL;
    tkmi_cfile *f = tkmi_calloc(1, sizeof *f);
    TKM_RETURN_ERROR_IF(!f, TKM_ENOMEM, "out of memory");
    f->path = tkmi_strdup(name);
    f->mem = data;
    f->mem_len = len;
    int rc = f->path ? cf_start(f) : tkmi_error(TKM_ENOMEM, "out of memory");
    if (rc < 0) { tkmi_cf_close(f); return rc; }
    *out = f;
    return 0;
}

int tkmi_cf_next(tkmi_cfile *f)
{
    if (f->done) return 0;
    uint64_t sh, sl, cnt;
    unsigned long long at = (unsigned long long)f->off;
    TKM_FORWARD_IF_ERROR(cf_varint(f, &sh));
    TKM_FORWARD_IF_ERROR(cf_varint(f, &sl));
    if (sh == 0 && sl == 0) { /* end: totals, then the CRC of everything before it */
        uint64_t n, sum;
        TKM_FORWARD_IF_ERROR(cf_varint(f, &n));
        TKM_FORWARD_IF_ERROR(cf_varint(f, &sum));
        uint32_t crc = f->crc;
        uint8_t c[4];
        TKM_FORWARD_IF_ERROR(cf_bytes(f, c, 4));
        uint32_t want = (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
        TKM_RETURN_ERROR_IF(n != f->n || sum != f->sum, TKM_EFORMAT,
                            "%s: byte %llu: the trailer says %llu entries (sum %llu), the file holds %llu (sum %llu)", f->path,
                            at, (unsigned long long)n, (unsigned long long)sum, (unsigned long long)f->n,
                            (unsigned long long)f->sum);
        TKM_RETURN_ERROR_IF(crc != want, TKM_EFORMAT, "%s: CRC mismatch (file damaged)", f->path);
        int k = f->bpos < f->blen ? 1 : cf_fill(f);
        if (k < 0) return k;
        TKM_RETURN_ERROR_IF(k > 0, TKM_EFORMAT, "%s: byte %llu: data after the end of the count file", f->path,
                            (unsigned long long)f->off);
        f->done = 1;
        return 0;
    }
    TKM_RETURN_ERROR_IF(sh > f->klen || sl == 0 || sl > CF_MAX_KEY - sh, TKM_EFORMAT,
                        "%s: byte %llu: bad record (shared %llu of %zu, suffix %llu)", f->path, at,
                        (unsigned long long)sh, f->klen, (unsigned long long)sl);
    size_t len = (size_t)(sh + sl);
    int had_next = sh < f->klen;
    uint8_t prevc = had_next ? (uint8_t)f->key[sh] : 0;
    /* the key grows as its bytes arrive: a hostile length costs no more
     * memory than the file really holds */
    for (size_t got = (size_t)sh; got < len;) {
        size_t k = len - got < (1u << 20) ? len - got : (1u << 20);
        if (got + k > f->kcap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&f->key, &f->kcap, got + k, 1));
        TKM_FORWARD_IF_ERROR(cf_bytes(f, f->key + got, k));
        got += k;
    }
    TKM_RETURN_ERROR_IF(had_next && (uint8_t)f->key[sh] <= prevc, TKM_EFORMAT, "%s: byte %llu: keys out of order", f->path, at);
    TKM_FORWARD_IF_ERROR(cf_varint(f, &cnt));
    TKM_RETURN_ERROR_IF(cnt < 1 || cnt > (uint64_t)INT64_MAX, TKM_EFORMAT, "%s: byte %llu: count %llu out of range",
                        f->path, at, (unsigned long long)cnt);
    f->klen = len;
    f->cnt = (int64_t)cnt;
    f->n++;
    f->sum += cnt;
    return 1;
}

/* ---- checks between files and trainers ---- */
/* value of "option KEY " in opts (points into opts; len), or NULL */
static const char *opt_find(const char *opts, size_t n, const char *key, size_t klen, size_t *vlen)
{
    for (const char *p = opts, *e = opts + n; p < e;) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        if (!nl) break;
        if ((size_t)(nl - p) > 7 + klen && !memcmp(p + 7, key, klen) && p[7 + klen] == ' ') {
            *vlen = (size_t)(nl - p) - 8 - klen;
            return p + 8 + klen;
        }
        p = nl + 1;
    }
    return NULL;
}

/* opts (from file `path`) against want (what this run needs): 0, or
 * TKM_EINVAL naming the file and the first option that differs. what:
 * "this run" or another file's name. */
int tkmi_cf_check_options(const char *path, const char *opts, size_t n, const char *want, size_t wn, const char *what,
                          int check_weighted)
{
    for (const char *p = want, *e = want + wn; p < e;) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        const char *key = p + 7, *sp = memchr(key, ' ', (size_t)(nl - key));
        size_t klen = (size_t)(sp - key), wl = (size_t)(nl - sp - 1), vl;
        p = nl + 1;
        if (!check_weighted && klen == 8 && !memcmp(key, "weighted", 8)) continue;
        const char *v = opt_find(opts, n, key, klen, &vl);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(klen < 60 ? klen : 60), key);
        for (char *q = name; *q; q++)
            if (*q == '_') *q = '-';
        TKM_RETURN_ERROR_IF(!v, TKM_EINVAL, "%s: no option %s in the header (written by another tokenmill?)", path, name);
        if (vl != wl || memcmp(v, sp + 1, wl) != 0)
            return tkmi_error(TKM_EINVAL, "%s: counted with --%s %.*s%s, %s has --%s %.*s (the counting options must be the same)",
                              path, name, (int)(vl < 200 ? vl : 200), v, vl > 200 ? "..." : "", what, name,
                              (int)(wl < 200 ? wl : 200), sp + 1);
    }
    for (const char *p = opts, *e = opts + n; p < e;) { /* options this tokenmill does not know */
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        const char *key = p + 7, *sp = memchr(key, ' ', (size_t)(nl - key));
        size_t vl;
        p = nl + 1;
        if (!sp) return tkmi_error(TKM_EFORMAT, "%s: bad option line", path);
        if (!opt_find(want, wn, key, (size_t)(sp - key), &vl))
            return tkmi_error(TKM_EINVAL, "%s: option '%.*s' is unknown to this tokenmill", path, (int)(sp - key), key);
    }
    return 0;
}

/* The header of a count file: options, inputs, stats. */
int tkmi_cf_header(const char *opts, size_t on, char *const *inputs, int n_inputs, const uint64_t st[6], char **out,
                   size_t *out_n)
{
    char *b = NULL;
    size_t n = 0, cap = 0;
    int rc = fmt_append(&b, &n, &cap, "tokenmill-counts %d\n", CF_VERSION);
    if (rc == 0) rc = tkmi_grow((void **)&b, &cap, n + on + 1, 1);
    if (rc == 0) { memcpy(b + n, opts, on); n += on; b[n] = 0; }
    for (int i = 0; rc == 0 && i < n_inputs; i++) {
        rc = fmt_append(&b, &n, &cap, "input ");
        if (rc == 0) rc = esc_append(&b, &n, &cap, inputs[i], strlen(inputs[i]));
        if (rc == 0) rc = fmt_append(&b, &n, &cap, "\n");
    }
    if (rc == 0)
        rc = fmt_append(&b, &n, &cap, "stats %llu %llu %llu %llu %llu %llu\nrecords\n", (unsigned long long)st[0],
                        (unsigned long long)st[1], (unsigned long long)st[2], (unsigned long long)st[3],
                        (unsigned long long)st[4], (unsigned long long)st[5]);
    if (rc < 0) { tkmi_free(b); return rc; }
    *out = b;
    *out_n = n;
    return 0;
}

/* ---- the trainer's count files ---- */
struct tkmi_cfset {
    char **paths;
    size_t n, cap;
    int weighted; /* -1 until a file or text input sets it */
    uint64_t st[6];
    tkmi_counts imported; /* entries added by tkm_trainer_add_records (MPI) */
    int has_imported;
    int taken; /* tkm_trainer_partition took the counted text already */
    /* tkm_trainer_partition: the table, its entries by part in key order,
     * each part's next entry and end; the chunk handed out; a key buffer */
    tkmi_counts part_tab;
    size_t *part_idx, *part_pos, *part_end;
    int nparts;
    uint8_t *chunk;
    size_t chunk_cap;
    char *rkey;
    size_t rkey_cap;
};

static int cfset_get(struct tkm_trainer *t, struct tkmi_cfset **out)
{
    if (!t->cfset) {
        t->cfset = tkmi_calloc(1, sizeof *t->cfset);
        TKM_RETURN_ERROR_IF(!t->cfset, TKM_ENOMEM, "out of memory");
        t->cfset->weighted = -1;
    }
    *out = t->cfset;
    return 0;
}

void tkmi_cfset_free(struct tkm_trainer *t)
{
    struct tkmi_cfset *s = t->cfset;
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) tkmi_free(s->paths[i]);
    tkmi_free(s->paths);
    tkmi_counts_free(&s->imported);
    tkmi_counts_free(&s->part_tab);
    tkmi_free(s->part_idx);
    tkmi_free(s->part_pos);
    tkmi_free(s->part_end);
    tkmi_free(s->chunk);
    tkmi_free(s->rkey);
    tkmi_free(s);
    t->cfset = NULL;
}

int tkm_trainer_add_input_name(tkm_trainer *t, const char *path) { return tkmi_trainer_add_input(t, path); }

int tkm_trainer_add_counts(tkm_trainer *t, const char *path)
{
    struct tkmi_cfset *s = NULL;
    TKM_FORWARD_IF_ERROR(cfset_get(t, &s));
    tkmi_cfile *f;
    TKM_FORWARD_IF_ERROR(tkmi_cf_open(path, &f));
    char *want = NULL;
    size_t wn = 0;
    int rc = tkmi_cf_options(t, 0, &want, &wn);
    if (rc == 0) rc = tkmi_cf_check_options(path, f->opts, f->opts_len, want, wn, "this run", 0);
    int tw = t->workers ? !!t->o.weighted : s->weighted;
    if (rc == 0 && tw >= 0 && tw != f->weighted)
        rc = tkmi_error(TKM_EINVAL, "%s: counted %s weights, other inputs of this run %s (counts would be in different units)",
                        path, f->weighted ? "with" : "without", tw ? "with" : "without");
    if (rc == 0) rc = tkmi_grow((void **)&s->paths, &s->cap, s->n + 1, sizeof *s->paths);
    if (rc == 0 && !(s->paths[s->n] = tkmi_strdup(path))) rc = tkmi_error(TKM_ENOMEM, "out of memory");
    if (rc == 0) {
        s->n++;
        s->weighted = f->weighted;
        for (int i = 0; rc == 0 && i < f->n_inputs; i++) rc = tkmi_trainer_add_input(t, f->inputs[i]);
        for (int i = 0; i < 6; i++) s->st[i] += f->st[i];
    }
    tkmi_free(want);
    tkmi_cf_close(f);
    return rc;
}

static int cf_finish(struct tkm_trainer *t, tkmi_counts *out, int allow_empty);

/* Adds one file's entries to the table. */
static int load_file(const char *path, tkmi_counts *out)
{
    tkmi_cfile *f;
    TKM_FORWARD_IF_ERROR(tkmi_cf_open(path, &f));
    int r;
    while ((r = tkmi_cf_next(f)) > 0) {
        if ((r = tkmi_counts_add(out, f->key, f->klen, tkmi_hash_bytes(f->key, f->klen), f->cnt)) < 0) break;
    }
    tkmi_cf_close(f);
    return r;
}

int tkmi_cf_finish(struct tkm_trainer *t, tkmi_counts *out) { return cf_finish(t, out, 0); }

/* allow_empty: for count files (an MPI rank or a shard may have no text) */
static int cf_finish(struct tkm_trainer *t, tkmi_counts *out, int allow_empty)
{
    struct tkmi_cfset *s = t->cfset;
    if (!s && (t->workers || !allow_empty)) return tkmi_counts_finish(t, out);
    memset(out, 0, sizeof *out);
    if (!s) return tkmi_counts_init(out, 1 << 16);
    if (t->workers && !s->taken) TKM_FORWARD_IF_ERROR(tkmi_counts_finish(t, out));
    else TKM_FORWARD_IF_ERROR(tkmi_counts_init(out, 1 << 16));
    for (size_t i = 0; i < s->n; i++) TKM_FORWARD_IF_ERROR(load_file(s->paths[i], out));
    if (s->has_imported) {
        s->has_imported = 0;
        TKM_FORWARD_IF_ERROR(tkmi_counts_absorb(out, &s->imported));
    }
    t->stats.lines += s->st[0];
    t->stats.bytes += s->st[1];
    t->stats.invalid_utf8_bytes += s->st[2];
    t->stats.nul_bytes += s->st[3];
    t->stats.pretokens_total += s->st[4];
    t->stats.skipped_lines += s->st[5];
    t->stats.pretokens_unique = out->n;
    TKM_RETURN_ERROR_IF(out->n == 0 && !allow_empty, TKM_EEMPTY, "no input: the corpus is empty");
    return 0;
}

/* The counts of t (text and count files) sorted; the header of t. */
static int trainer_header(struct tkm_trainer *t, char **hdr, size_t *hn)
{
    int w = t->workers ? !!t->o.weighted : t->cfset && t->cfset->weighted >= 0 ? t->cfset->weighted : !!t->o.weighted;
    char *opts;
    size_t on;
    TKM_FORWARD_IF_ERROR(tkmi_cf_options(t, w, &opts, &on));
    uint64_t st[6] = {t->stats.lines, t->stats.bytes, t->stats.invalid_utf8_bytes, t->stats.nul_bytes,
                      t->stats.pretokens_total, t->stats.skipped_lines};
    int rc = tkmi_cf_header(opts, on, t->inputs, t->n_inputs, st, hdr, hn);
    tkmi_free(opts);
    return rc;
}

int tkm_trainer_write_counts(tkm_trainer *t, const char *path)
{
    tkmi_counts c;
    int rc = cf_finish(t, &c, 1);
    t->stats.seconds_count = tkmi_now() - t->t_start;
    uint64_t *idx = NULL;
    char *hdr = NULL;
    size_t hn = 0;
    tkmi_cwriter *w = NULL;
    if (rc == 0) rc = tkmi_counts_sorted(&c, &idx);
    if (rc == 0) rc = trainer_header(t, &hdr, &hn);
    if (rc == 0) rc = tkmi_cw_open(path, hdr, hn, &w);
    for (size_t i = 0; rc == 0 && i < c.n; i++) {
        tkmi_centry e;
        tkmi_counts_get(&c, idx[i], &e);
        rc = tkmi_cw_put(w, e.key, e.len, e.count);
    }
    int rc2 = tkmi_cw_close(w, rc == 0);
    if (rc == 0) rc = rc2;
    tkmi_free(idx);
    tkmi_free(hdr);
    tkmi_counts_free(&c);
    t->stats.seconds_total = tkmi_now() - t->t_start;
    return rc;
}

/* ---- k-way merge of count files ---- */
/* the template declares two T per line: T must be one name */
typedef tkmi_cfile *cfile_p;
static int head_before(const void *ctx, const cfile_p *a, const cfile_p *b)
{
    (void)ctx;
    return tkmi_key_cmp((*a)->key, (*a)->klen, (*b)->key, (*b)->klen) < 0;
}
TKMI_HEAP_DEFINE(cfheap, cfile_p, const void *, head_before) /* lib/heap.h */

int tkm_counts_merge(const char *const *paths, int n, const char *out, uint64_t *entries)
{
    TKM_RETURN_ERROR_IF(n < 1, TKM_EINVAL, "no count files to merge");
    tkmi_cfile **fs = tkmi_calloc((size_t)n, sizeof *fs), **hp = tkmi_calloc((size_t)n, sizeof *hp);
    char **inputs = NULL, *hdr = NULL, *cur = NULL;
    size_t n_in = 0, in_cap = 0, hn = 0, cur_cap = 0, nh = 0;
    uint64_t st[6] = {0};
    tkmi_cwriter *w = NULL;
    int rc = fs && hp ? 0 : tkmi_error(TKM_ENOMEM, "out of memory");
    for (int i = 0; rc == 0 && i < n; i++) {
        rc = tkmi_cf_open(paths[i], &fs[i]);
        if (rc == 0 && i > 0) {
            rc = tkmi_cf_check_options(paths[i], fs[i]->opts, fs[i]->opts_len, fs[0]->opts, fs[0]->opts_len, paths[0], 1);
        }
        for (int k = 0; rc == 0 && k < fs[i]->n_inputs; k++) {
            rc = tkmi_grow((void **)&inputs, &in_cap, n_in + 1, sizeof *inputs);
            if (rc == 0) inputs[n_in++] = fs[i]->inputs[k];
        }
        for (int k = 0; rc == 0 && k < 6; k++) st[k] += fs[i]->st[k];
    }
    if (rc == 0) rc = tkmi_cf_header(fs[0]->opts, fs[0]->opts_len, inputs, (int)n_in, st, &hdr, &hn);
    if (rc == 0) rc = tkmi_cw_open(out, hdr, hn, &w);
    for (int i = 0; rc == 0 && i < n; i++) {
        int r = tkmi_cf_next(fs[i]);
        if (r < 0) rc = r;
        else if (r) hp[nh++] = fs[i];
    }
    if (rc == 0) cfheap_heapify(NULL, hp, nh);
    while (rc == 0 && nh) {
        size_t len = hp[0]->klen;
        if (len > cur_cap && (rc = tkmi_grow((void **)&cur, &cur_cap, len, 1)) < 0) break;
        memcpy(cur, hp[0]->key, len);
        int64_t cnt = 0;
        while (nh && hp[0]->klen == len && memcmp(hp[0]->key, cur, len) == 0) {
            if (hp[0]->cnt > INT64_MAX - cnt) { rc = tkmi_error(TKM_ERANGE, "%s: counts overflow 2^63", hp[0]->path); break; }
            cnt += hp[0]->cnt;
            int r = tkmi_cf_next(hp[0]);
            if (r < 0) { rc = r; break; }
            if (!r) hp[0] = hp[--nh];
            cfheap_sift_down(NULL, hp, nh, 0, hp[0]);
        }
        if (rc == 0) rc = tkmi_cw_put(w, cur, len, cnt);
    }
    if (entries) *entries = w ? w->n : 0;
    int rc2 = tkmi_cw_close(w, rc == 0);
    if (rc == 0) rc = rc2;
    for (int i = 0; fs && i < n; i++) tkmi_cf_close(fs[i]);
    tkmi_free(fs);
    tkmi_free(hp);
    tkmi_free(inputs);
    tkmi_free(hdr);
    tkmi_free(cur);
    return rc;
}

/* ---- counting elsewhere: byte ranges, partitions, records (MPI) ---- */
int tkm_trainer_add_file_range(tkm_trainer *t, const char *path, uint64_t start, uint64_t end, double weight)
{
    int64_t saved = t->cur_inc;
    if (t->o.weighted) {
        TKM_RETURN_ERROR_IF(!(weight > 0 && weight <= 1000), TKM_EINVAL, "%s: weight %g out of range (0, 1000]", path, weight);
        int64_t inc = llround(weight * 100.0);
        t->cur_inc = inc < 1 ? 1 : inc;
    }
    int rc = 0;
    if (start == 0 && end == UINT64_MAX) { /* the whole file, any kind (gzip, stdin): the usual reader */
        rc = tkm_trainer_add_file(t, path);
        if (rc == 0) tkmi_free(t->inputs[--t->n_inputs]); /* named by the caller, not here */
        t->cur_inc = saved;
        return rc;
    }
    /* the lines that start in [start, end) of a plain file */
    FILE *f = fopen(path, "rb");
    if (!f) {
        t->cur_inc = saved;
        return tkmi_error(TKM_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0;
    uint64_t pos = start;
    if (start > 0) { /* a line starts at start only if byte start-1 ends one */
        if (fseeko(f, (off_t)(start - 1), SEEK_SET) != 0) rc = tkmi_error(TKM_EIO, "%s: cannot seek: %s", path, strerror(errno));
        else {
            ssize_t k = getline(&line, &cap, f);
            pos = k > 0 ? start - 1 + (uint64_t)k : UINT64_MAX;
        }
    }
    while (rc == 0 && pos < end) {
        errno = 0;
        ssize_t k = getline(&line, &cap, f);
        if (k <= 0) {
            if (ferror(f)) rc = tkmi_error(TKM_EIO, "%s: read error: %s", path, strerror(errno));
            break;
        }
        pos += (uint64_t)k;
        size_t len = (size_t)k - (line[k - 1] == '\n');
        rc = tkm_trainer_add_line(t, line, len);
        t->st.bytes += len + 1;
    }
    free(line); /* getline's buffer */
    fclose(f);
    t->cur_inc = saved;
    return rc;
}

static uint64_t entry_hash(const tkmi_counts *c, uint64_t id)
{
    tkmi_centry e;
    tkmi_counts_get(c, id, &e);
    return tkmi_hash_bytes(e.key, e.len);
}

/* part of a pre-token among n: multiply-shift of its hash */
static int part_of(uint64_t h, int n) { return (int)(((unsigned __int128)h * (unsigned)n) >> 64); }

int tkm_trainer_partition(tkm_trainer *t, int nparts, uint64_t st[6])
{
    TKM_RETURN_ERROR_IF(nparts < 1 || nparts > (1 << 20), TKM_EINVAL, "partitions %d out of range", nparts);
    struct tkmi_cfset *s = NULL;
    TKM_FORWARD_IF_ERROR(cfset_get(t, &s));
    tkmi_counts_free(&s->part_tab);
    tkmi_free(s->part_idx);
    tkmi_free(s->part_pos);
    tkmi_free(s->part_end);
    s->part_idx = s->part_pos = s->part_end = NULL;
    TKM_FORWARD_IF_ERROR(cf_finish(t, &s->part_tab, 1));
    s->taken = 1;
    uint64_t local[6] = {t->stats.lines, t->stats.bytes, t->stats.invalid_utf8_bytes, t->stats.nul_bytes,
                         t->stats.pretokens_total, t->stats.skipped_lines};
    memcpy(st, local, sizeof local);
    t->stats.lines = t->stats.bytes = t->stats.invalid_utf8_bytes = t->stats.nul_bytes = 0;
    t->stats.pretokens_total = t->stats.skipped_lines = 0;
    memset(s->st, 0, sizeof s->st);
    uint64_t *sorted;
    TKM_FORWARD_IF_ERROR(tkmi_counts_sorted(&s->part_tab, &sorted));
    size_t n = s->part_tab.n;
    /* bucket by part, keeping key order within each (counting sort) */
    s->part_idx = tkmi_malloc((n ? n : 1) * sizeof *s->part_idx);
    s->part_pos = tkmi_calloc((size_t)nparts + 1, sizeof *s->part_pos);
    if (!s->part_idx || !s->part_pos) {
        tkmi_free(sorted);
        return tkmi_error(TKM_ENOMEM, "out of memory (partitioning counts)");
    }
    for (size_t i = 0; i < n; i++) s->part_pos[part_of(entry_hash(&s->part_tab, sorted[i]), nparts) + 1]++;
    for (int p = 0; p < nparts; p++) s->part_pos[p + 1] += s->part_pos[p];
    for (size_t i = 0; i < n; i++) s->part_idx[s->part_pos[part_of(entry_hash(&s->part_tab, sorted[i]), nparts)]++] = sorted[i];
    /* part_pos[p] is now the end of part p; move it back to its start */
    for (int p = nparts; p > 0; p--) s->part_pos[p] = s->part_pos[p - 1];
    s->part_pos[0] = 0;
    tkmi_free(sorted);
    s->nparts = nparts;
    /* part_end[p] = part_pos[p + 1] initially: kept in a second array */
    s->part_end = tkmi_malloc((size_t)nparts * sizeof *s->part_end);
    TKM_RETURN_ERROR_IF(!s->part_end, TKM_ENOMEM, "out of memory");
    for (int p = 0; p < nparts; p++) s->part_end[p] = s->part_pos[p + 1];
    return 0;
}

int tkm_trainer_part_chunk(tkm_trainer *t, int part, size_t max_bytes, const void **buf, size_t *len)
{
    struct tkmi_cfset *s = t->cfset;
    *buf = NULL;
    *len = 0;
    TKM_RETURN_ERROR_IF(!s || !s->part_pos || part < 0 || part >= s->nparts, TKM_EINVAL, "no such partition %d", part);
    const tkmi_counts *c = &s->part_tab;
    size_t n = 0;
    const char *prev = NULL;
    size_t plen = 0;
    while (s->part_pos[part] < s->part_end[part]) {
        tkmi_centry ent, *e = &ent;
        tkmi_counts_get(c, s->part_idx[s->part_pos[part]], e);
        const char *k = e->key;
        size_t sh = 0, m = e->len < plen ? e->len : plen;
        while (sh < m && prev[sh] == k[sh]) sh++;
        size_t need = n + 30 + (e->len - sh);
        if (n > 0 && need > max_bytes) break; /* a record alone may pass max_bytes */
        TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&s->chunk, &s->chunk_cap, need, 1));
        n += tkmi_varint_put(s->chunk + n, sh);
        n += tkmi_varint_put(s->chunk + n, e->len - sh);
        memcpy(s->chunk + n, k + sh, e->len - sh);
        n += e->len - sh;
        n += tkmi_varint_put(s->chunk + n, (uint64_t)e->count);
        prev = k;
        plen = e->len;
        s->part_pos[part]++;
    }
    *buf = s->chunk;
    *len = n;
    /* every part handed out: the table goes (rank 0 then holds only what it
     * receives, as one process would) */
    int left = 0;
    for (int p = 0; p < s->nparts && !left; p++) left = s->part_pos[p] < s->part_end[p];
    if (!left && s->part_idx) {
        tkmi_counts_free(&s->part_tab);
        memset(&s->part_tab, 0, sizeof s->part_tab);
        tkmi_free(s->part_idx);
        s->part_idx = NULL;
    }
    return 0;
}

static int rec_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
    uint64_t r = 0;
    for (int sh = 0; sh < 64; sh += 7) {
        TKM_RETURN_ERROR_IF(*i >= n, TKM_EFORMAT, "count records: truncated at byte %zu", *i);
        uint8_t b = p[(*i)++];
        TKM_RETURN_ERROR_IF(sh == 63 && b > 1, TKM_EFORMAT, "count records: varint too long at byte %zu", *i);
        r |= (uint64_t)(b & 0x7F) << sh;
        if (!(b & 0x80)) { *v = r; return 0; }
    }
    return tkmi_error(TKM_EFORMAT, "count records: varint too long at byte %zu", *i);
}

int tkm_trainer_add_records(tkm_trainer *t, const void *buf, size_t len)
{
    struct tkmi_cfset *s = NULL;
    TKM_FORWARD_IF_ERROR(cfset_get(t, &s));
    if (!s->has_imported) {
        TKM_FORWARD_IF_ERROR(tkmi_counts_init(&s->imported, 1 << 16));
        s->has_imported = 1;
    }
    const uint8_t *p = buf;
    size_t i = 0, plen = 0;
    while (i < len) {
        uint64_t sh, sl, cnt;
        size_t at = i;
        TKM_FORWARD_IF_ERROR(rec_varint(p, len, &i, &sh));
        TKM_FORWARD_IF_ERROR(rec_varint(p, len, &i, &sl));
        TKM_RETURN_ERROR_IF(sh > plen || sl == 0 || sl > len - i, TKM_EFORMAT, "count records: bad record at byte %zu", at);
        size_t kl = (size_t)(sh + sl);
        if (kl > s->rkey_cap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&s->rkey, &s->rkey_cap, kl, 1));
        memcpy(s->rkey + sh, p + i, (size_t)sl);
        i += (size_t)sl;
        TKM_FORWARD_IF_ERROR(rec_varint(p, len, &i, &cnt));
        TKM_RETURN_ERROR_IF(cnt < 1 || cnt > (uint64_t)INT64_MAX, TKM_EFORMAT, "count records: bad count at byte %zu", at);
        TKM_FORWARD_IF_ERROR(tkmi_counts_add(&s->imported, s->rkey, kl, tkmi_hash_bytes(s->rkey, kl), (int64_t)cnt));
        plen = kl;
    }
    return 0;
}

int tkm_trainer_add_input_stats(tkm_trainer *t, const uint64_t st[6])
{
    struct tkmi_cfset *s = NULL;
    TKM_FORWARD_IF_ERROR(cfset_get(t, &s));
    for (int i = 0; i < 6; i++) s->st[i] += st[i];
    return 0;
}
