/* seed_runs.c - per-group runs of the Unigram seed counter (seed_runs.h):
 * one temporary file, unlinked as soon as it is made, holding chunks of
 * records; each group's chunks are linked in the order they were written,
 * so a group reads back the sequence of occurrences it was given, except
 * that a buffer's occurrences of one substring are combined before it is
 * written (combine()), as the counter's table would combine them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trainer_internal.h"
#include "seed_runs.h"
#include "../lib/fileio.h"

int tkmi_sruns_init(tkmi_sruns *r, uint32_t ngroups, size_t buf_bytes)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->ngroups = ngroups;
    size_t g = buf_bytes / sizeof(tkmi_sslot) / (ngroups ? ngroups : 1);
    r->gcap = g < 64 ? 64 : g > ((size_t)1 << 30) ? (size_t)1 << 30 : g;
    r->buf = tkmi_malloc((size_t)ngroups * r->gcap * sizeof *r->buf);
    r->bn = tkmi_calloc(ngroups, sizeof *r->bn);
    r->head = tkmi_malloc((size_t)ngroups * sizeof *r->head);
    r->tail = tkmi_malloc((size_t)ngroups * sizeof *r->tail);
    for (r->hcap = 1024; r->hcap < 2 * r->gcap;) r->hcap *= 2;
    r->ht = tkmi_malloc(r->hcap * sizeof *r->ht);
    if (!r->buf || !r->bn || !r->head || !r->tail || !r->ht) {
        tkmi_sruns_free(r);
        return tkmi_error(TKM_ENOMEM, "out of memory (seed runs)");
    }
    for (uint32_t k = 0; k < ngroups; k++) r->head[k] = r->tail[k] = -1;
    return 0;
}

void tkmi_sruns_free(tkmi_sruns *r)
{
    if (r->fd >= 0) close(r->fd);
    tkmi_free(r->buf);
    tkmi_free(r->bn);
    tkmi_free(r->ch);
    tkmi_free(r->head);
    tkmi_free(r->tail);
    tkmi_free(r->ht);
    memset(r, 0, sizeof *r);
    r->fd = -1;
}

/* the file, in $TMPDIR or /tmp */
static int sruns_open(tkmi_sruns *r)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    char path[4096];
    int l = snprintf(path, sizeof path, "%s/tokenmill-seeds-XXXXXX", dir);
    TKM_RETURN_ERROR_IF(l < 0 || (size_t)l >= sizeof path, TKM_EINVAL, "TMPDIR is too long");
    r->fd = mkstemp(path);
    TKM_RETURN_ERROR_IF(r->fd < 0, TKM_EIO, "cannot create a seed counting file in %s: %s", dir, strerror(errno));
    unlink(path);
    return 0;
}

/* The records of one substring (the same 64-bit hash and length) become
 * the first one, in place and in the order of first occurrence, with the
 * counts summed (saturating at 48 bits) and the branch bit set if the
 * records branch (end a word, or differ in the follower's hash): what the
 * counter's table (unigram_train.c's stab_add) makes of them, so a
 * combined run counts the same, entry for entry and in the same order of
 * new entries. Returns the records left. */
static uint32_t combine(tkmi_sruns *r, tkmi_sslot *b, uint32_t n)
{
    const uint64_t cmax = (1ull << 48) - 1;
    size_t mask = r->hcap - 1;
    uint32_t m = 0;
    memset(r->ht, 0, r->hcap * sizeof *r->ht);
    for (uint32_t k = 0; k < n; k++) {
        tkmi_sslot e = b[k];
        for (size_t i = (e.hash >> 8) & mask;; i = (i + 1) & mask) {
            uint32_t j = r->ht[i];
            if (!j) {
                r->ht[i] = m + 1;
                b[m++] = e;
                break;
            }
            tkmi_sslot *d = &b[j - 1];
            if (d->hash != e.hash || ((d->where ^ e.where) & 0xFFFFFE)) continue;
            uint64_t c = (d->cnt_next >> 16) + (e.cnt_next >> 16);
            if (c > cmax) c = cmax;
            d->where |= ((uint16_t)d->cnt_next != (uint16_t)e.cnt_next) | (e.where & 1);
            d->cnt_next = c << 16 | (uint16_t)d->cnt_next;
            break;
        }
    }
    return m;
}

int tkmi_sruns_flush(tkmi_sruns *r, uint32_t g)
{
    uint32_t n = r->bn[g];
    if (!n) return 0;
    n = combine(r, r->buf + (size_t)g * r->gcap, n);
    if (r->fd < 0) TKM_FORWARD_IF_ERROR(sruns_open(r));
    if (r->nch == r->chcap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&r->ch, &r->chcap, r->nch + 1, sizeof *r->ch));
    size_t bytes = (size_t)n * sizeof(tkmi_sslot);
    int e = tkmi_pwrite_full(r->fd, r->buf + (size_t)g * r->gcap, bytes, r->end);
    TKM_RETURN_ERROR_IF(e, TKM_EIO, "cannot write the seed counting file (disk full?): %s",
                        e > 0 ? strerror(e) : "short write");
    uint64_t off = r->end + bytes;
    r->ch[r->nch] = (struct tkmi_srchunk){r->end, n, -1};
    if (r->tail[g] >= 0) r->ch[r->tail[g]].next = (int32_t)r->nch;
    else r->head[g] = (int32_t)r->nch;
    r->tail[g] = (int32_t)r->nch++;
    r->end = off;
    r->bn[g] = 0;
    return 0;
}

int tkmi_sruns_finish(tkmi_sruns *r)
{
    for (uint32_t g = 0; g < r->ngroups; g++) TKM_FORWARD_IF_ERROR(tkmi_sruns_flush(r, g));
    return 0;
}

int tkmi_sruns_read(tkmi_sruns *r, uint32_t g, int (*fn)(void *ctx, const tkmi_sslot *recs, size_t n), void *ctx)
{
    for (int32_t c = r->head[g]; c >= 0; c = r->ch[c].next) {
        /* chunks are at most gcap records: the buffer of group 0 (never
         * stored) holds one */
        int e = tkmi_pread_full(r->fd, r->buf, (size_t)r->ch[c].n * sizeof(tkmi_sslot), r->ch[c].off);
        TKM_RETURN_ERROR_IF(e, TKM_EIO, "cannot read the seed counting file: %s", e > 0 ? strerror(e) : "short read");
        int rc = fn(ctx, r->buf, r->ch[c].n);
        if (rc) return rc;
    }
    return 0;
}
