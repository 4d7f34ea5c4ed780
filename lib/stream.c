/* stream.c - streamed line input from files, stdin and gzip (zlib detects
 * gzip by its magic and passes plain files through). Lines of any length are
 * returned whole; memory is bounded by the longest line. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include "tkm_internal.h"

struct tkm_reader {
    gzFile gz;
    char *name;
    char *buf;
    size_t cap, start, end;
    int eof;
    uint64_t lineno, bytes;
};

/* zlib's message without the "<fd:N>: " it prefixes when it was given a
 * descriptor: the messages here name the file already. */
static const char *gz_msg(gzFile gz, int *zerr)
{
    const char *msg = gzerror(gz, zerr);
    if (msg && !strncmp(msg, "<fd:", 4)) {
        const char *e = strstr(msg, ">: ");
        if (e) msg = e + 3;
    }
    return msg;
}

int tkm_reader_open(const char *path, tkm_reader **out)
{
    *out = NULL;
    int fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY);
    TKM_RETURN_ERROR_IF(fd < 0, TKM_EIO, "%s: cannot open: %s", path, strerror(errno));
    tkm_reader *r = tkmi_calloc(1, sizeof *r);
    if (!r) { close(fd); return tkmi_error(TKM_ENOMEM, "out of memory"); }
    r->name = tkmi_strdup(strcmp(path, "-") == 0 ? "<stdin>" : path);
    r->cap = 1 << 20;
    r->buf = tkmi_malloc(r->cap);
    r->gz = gzdopen(fd, "rb");
    if (!r->name || !r->buf || !r->gz) {
        if (!r->gz) close(fd);
        tkm_reader_close(r);
        return tkmi_error(TKM_ENOMEM, "%s: out of memory", path);
    }
    gzbuffer(r->gz, 1 << 18);
    *out = r;
    return 0;
}

void tkm_reader_close(tkm_reader *r)
{
    if (!r) return;
    if (r->gz) gzclose(r->gz);
    tkmi_free(r->name);
    tkmi_free(r->buf);
    tkmi_free(r);
}

uint64_t tkm_reader_lineno(const tkm_reader *r) { return r->lineno; }
uint64_t tkm_reader_bytes(const tkm_reader *r) { return r->bytes; }

static int reader_fill(tkm_reader *r)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->end == r->cap) {
        size_t nc = r->cap * 2;
        char *nb = tkmi_realloc(r->buf, nc);
        TKM_RETURN_ERROR_IF(!nb, TKM_ENOMEM, "%s: out of memory for a line of %zu bytes at line %llu",
                            r->name, r->end, (unsigned long long)r->lineno + 1);
        r->buf = nb;
        r->cap = nc;
    }
    size_t want = r->cap - r->end;
    if (want > (1u << 30)) want = 1u << 30;
    int n = gzread(r->gz, r->buf + r->end, (unsigned)want);
    if (n < 0) {
        int zerr;
        const char *msg = gz_msg(r->gz, &zerr);
        return tkmi_error(zerr == Z_ERRNO ? TKM_EIO : TKM_EFORMAT, "%s: read error near line %llu (byte %llu): %s",
                          r->name, (unsigned long long)r->lineno + 1, (unsigned long long)r->bytes,
                          zerr == Z_ERRNO ? strerror(errno) : msg);
    }
    if (n == 0) {
        int zerr;
        const char *msg = gz_msg(r->gz, &zerr);
        TKM_RETURN_ERROR_IF(zerr != Z_OK && zerr != Z_STREAM_END, TKM_EFORMAT,
                            "%s: corrupt or truncated gzip data near line %llu: %s", r->name,
                            (unsigned long long)r->lineno + 1, msg);
        r->eof = 1;
    }
    r->end += (size_t)n;
    r->bytes += (uint64_t)n;
    return 0;
}

int tkm_reader_next(tkm_reader *r, const char **line, size_t *len)
{
    size_t scan = r->start;
    for (;;) {
        char *nl = memchr(r->buf + scan, '\n', r->end - scan);
        if (nl) {
            *line = r->buf + r->start;
            *len = (size_t)(nl - (r->buf + r->start));
            r->start = (size_t)(nl - r->buf) + 1;
            r->lineno++;
            return 1;
        }
        if (r->eof) {
            if (r->end > r->start) {
                *line = r->buf + r->start;
                *len = r->end - r->start;
                r->start = r->end;
                r->lineno++;
                return 1;
            }
            return 0;
        }
        size_t scanned = r->end - r->start;
        TKM_FORWARD_IF_ERROR(reader_fill(r));
        scan = r->start + scanned;
    }
}
