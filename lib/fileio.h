/* fileio.h - file input and output of the library (lib/fileio.c): read a
 * whole file; write a file atomically (PATH.tmp.PID renamed into place),
 * whole or streamed; positioned reads and writes of a whole range. The special-file rule: "-" is standard output, and a
 * PATH that exists and is not a regular file (/dev/null, a FIFO, a terminal)
 * is written in place, never replaced. */
#ifndef TKM_FILEIO_H
#define TKM_FILEIO_H

#include "tkm_internal.h"

/* Reads a whole regular file into a tkmi_malloc'd buffer (TKM_EIO names the file). */
int tkmi_read_file(const char *path, uint8_t **data, size_t *len);
/* Maps a whole regular file read-only (TKM_EIO names the file; an empty
 * file maps to *data == NULL, *len == 0). Release with tkmi_unmap_file. */
int tkmi_map_file(const char *path, const uint8_t **data, size_t *len);
void tkmi_unmap_file(const uint8_t *data, size_t len);
/* Writes data to path atomically (or in place, by the special-file rule). */
int tkmi_write_file_atomic(const char *path, const void *data, size_t len);

/* A streamed output: open, write any number of times, then commit (rename
 * into place) or abort (remove the temp file). Both close and free it. */
typedef struct {
    int fd, inplace;
    char *tmp;        /* the name written to: PATH.tmp.PID, or PATH / "standard output" */
    const char *path; /* the caller's, kept until commit/abort */
} tkmi_outfile;
int tkmi_out_open(tkmi_outfile *o, const char *path);
int tkmi_out_write(tkmi_outfile *o, const void *p, size_t n);
int tkmi_out_commit(tkmi_outfile *o);
void tkmi_out_abort(tkmi_outfile *o);

/* pread/pwrite of all n bytes at offset off, going on after EINTR and
 * partial transfers: 0, or the errno of the failed call, or -1 when a call
 * transferred nothing (end of file on a read). */
int tkmi_pread_full(int fd, void *buf, size_t n, uint64_t off);
int tkmi_pwrite_full(int fd, const void *buf, size_t n, uint64_t off);

#endif
