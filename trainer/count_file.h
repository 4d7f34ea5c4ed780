/* count_file.h - the count-file (.tkc) reader and writer shared by the
 * trainer (count_file.c) and the MPI exchange; format in count_file.c and
 * tokenmill-count(1). */
#ifndef TKM_COUNT_FILE_H
#define TKM_COUNT_FILE_H

#include <zlib.h>

#include "trainer_internal.h"

/* A count file being read: header fields, then one entry at a time. */
typedef struct tkmi_cfile {
    char *path;
    gzFile gz;                 /* NULL: reading mem */
    const uint8_t *mem;
    size_t mem_len, mem_pos;
    uint8_t bufmem[1u << 16], *buf;
    size_t bpos, blen;
    int eof, done;
    uint64_t off;              /* uncompressed bytes consumed */
    uint32_t crc;
    char *hdr;                 /* the header text */
    size_t hdr_len;
    char *opts;                /* its "option" lines */
    size_t opts_len;
    int weighted;
    char **inputs;
    int n_inputs;
    uint64_t st[6];            /* lines, bytes, invalid, nul, pre-tokens, skipped lines */
    char *key;                 /* current entry */
    size_t klen, kcap;
    int64_t cnt;
    uint64_t n, sum;           /* entries read, sum of their counts */
} tkmi_cfile;

int tkmi_cf_open(const char *path, tkmi_cfile **out);
/* the same bytes in memory (name for messages; data must outlive f) */
int tkmi_cf_open_mem(const char *name, const void *data, size_t len, tkmi_cfile **out);
/* 1: an entry in key/klen/cnt; 0: end (totals and CRC checked); <0 error */
int tkmi_cf_next(tkmi_cfile *f);
void tkmi_cf_close(tkmi_cfile *f);

typedef struct tkmi_cwriter tkmi_cwriter;
/* path "-" is standard output; others are written to PATH.tmp.PID and
 * renamed by tkmi_cw_close(w, 1) (commit 0: removed). */
int tkmi_cw_open(const char *path, const char *hdr, size_t hdr_len, tkmi_cwriter **out);
int tkmi_cw_put(tkmi_cwriter *w, const char *key, size_t len, int64_t cnt);
int tkmi_cw_close(tkmi_cwriter *w, int commit);

int tkmi_cf_options(const struct tkm_trainer *t, int weighted, char **out, size_t *out_n);
int tkmi_cf_check_options(const char *path, const char *opts, size_t n, const char *want, size_t wn, const char *what,
                          int check_weighted);
int tkmi_cf_header(const char *opts, size_t on, char *const *inputs, int n_inputs, const uint64_t st[6], char **out,
                   size_t *out_n);

#endif
