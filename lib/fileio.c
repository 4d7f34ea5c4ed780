/* fileio.c - reading whole files and atomic outputs (lib/fileio.h): the one
 * temp-file pattern of the library (model.c, hf_json.c, softemb/). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"

/* Opens a regular file for reading: its descriptor, or a negative error. */
static int open_regular(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY);
    TKM_RETURN_ERROR_IF(fd < 0, TKM_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tkmi_error(TKM_EIO, "%s: not a regular file", path);
    }
    *size = (size_t)st.st_size;
    return fd;
}

int tkmi_read_file(const char *path, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    size_t size;
    int fd = open_regular(path, &size);
    if (fd < 0)
        return fd;
    uint8_t *buf = tkmi_malloc(size ? size : 1);
    if (!buf) { close(fd); return tkmi_error(TKM_ENOMEM, "out of memory reading %s", path); }
    size_t got = 0;
    while (got < size) {
        ssize_t k = read(fd, buf + got, size - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            close(fd);
            tkmi_free(buf);
            return tkmi_error(TKM_EIO, "%s: read error: %s", path, k < 0 ? strerror(errno) : "short read");
        }
        got += (size_t)k;
    }
    close(fd);
    *data = buf;
    *len = size;
    return 0;
}

int tkmi_map_file(const char *path, const uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    size_t size;
    int fd = open_regular(path, &size);
    if (fd < 0)
        return fd;
    if (size == 0) {
        close(fd);
        return 0;
    }
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    TKM_RETURN_ERROR_IF(p == MAP_FAILED, TKM_EIO, "%s: cannot map: %s", path, strerror(errno));
    *data = p;
    *len = size;
    return 0;
}

void tkmi_unmap_file(const uint8_t *data, size_t len)
{
    if (data)
        munmap((void *)data, len);
}

int tkmi_out_open(tkmi_outfile *o, const char *path)
{
    o->fd = -1;
    o->path = path;
    size_t pl = strlen(path);
    o->tmp = tkmi_malloc(pl + 32);
    TKM_RETURN_ERROR_IF(!o->tmp, TKM_ENOMEM, "out of memory");
    struct stat st;
    int out = !strcmp(path, "-");
    o->inplace = out || (stat(path, &st) == 0 && !S_ISREG(st.st_mode));
    if (o->inplace) {
        snprintf(o->tmp, pl + 32, "%s", out ? "standard output" : path);
        o->fd = out ? dup(1) : open(path, O_WRONLY);
    } else {
        snprintf(o->tmp, pl + 32, "%s.tmp.%ld", path, (long)getpid());
        o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    }
    if (o->fd < 0) {
        int rc = tkmi_error(TKM_EIO, "%s: cannot %s: %s", o->tmp, o->inplace ? "open" : "create", strerror(errno));
        tkmi_free(o->tmp);
        o->tmp = NULL;
        return rc;
    }
    return 0;
}

int tkmi_out_write(tkmi_outfile *o, const void *p, size_t n)
{
    const uint8_t *c = p;
    while (n) {
        ssize_t k = write(o->fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        TKM_RETURN_ERROR_IF(k <= 0, TKM_EIO, "%s: write error: %s", o->tmp, k < 0 ? strerror(errno) : "no progress");
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

int tkmi_out_commit(tkmi_outfile *o)
{
    int rc = 0;
    if (close(o->fd) != 0) rc = tkmi_error(TKM_EIO, "%s: write error: %s", o->tmp, strerror(errno));
    else if (!o->inplace && rename(o->tmp, o->path) != 0)
        rc = tkmi_error(TKM_EIO, "%s: cannot write: %s", o->path, strerror(errno));
    if (rc < 0 && !o->inplace) unlink(o->tmp);
    tkmi_free(o->tmp);
    o->tmp = NULL;
    o->fd = -1;
    return rc;
}

void tkmi_out_abort(tkmi_outfile *o)
{
    if (o->fd >= 0) close(o->fd);
    if (o->tmp && !o->inplace) unlink(o->tmp);
    tkmi_free(o->tmp);
    o->tmp = NULL;
    o->fd = -1;
}

int tkmi_write_file_atomic(const char *path, const void *data, size_t len)
{
    tkmi_outfile o;
    TKM_FORWARD_IF_ERROR(tkmi_out_open(&o, path));
    int rc = tkmi_out_write(&o, data, len);
    if (rc < 0) {
        tkmi_out_abort(&o);
        return rc;
    }
    return tkmi_out_commit(&o);
}

/* all n bytes at off, through pread (wr 0) or pwrite (wr 1) */
static int full_range(int fd, char *p, size_t n, uint64_t off, int wr)
{
    while (n) {
        ssize_t k = wr ? pwrite(fd, p, n, (off_t)off) : pread(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return errno;
        if (k == 0) return -1;
        p += k;
        off += (uint64_t)k;
        n -= (size_t)k;
    }
    return 0;
}

int tkmi_pread_full(int fd, void *buf, size_t n, uint64_t off) { return full_range(fd, buf, n, off, 0); }

/* (pwrite only reads the buffer: the cast drops nothing it needs) */
int tkmi_pwrite_full(int fd, const void *buf, size_t n, uint64_t off) { return full_range(fd, (char *)buf, n, off, 1); }
