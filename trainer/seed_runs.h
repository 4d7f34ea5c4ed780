/* seed_runs.h - the Unigram seed counter's per-group runs (seed_runs.c):
 * when the candidate substrings need G hash groups (passes) to fit the
 * counting tables, one enumeration of the words counts group 0 at once and
 * appends the occurrences of groups 1..G-1, in word order, to runs in an
 * unlinked temporary file; each later pass reads its group's run back
 * instead of enumerating every word's substrings again. Internal. */
#ifndef TKM_SEED_RUNS_H
#define TKM_SEED_RUNS_H

#include <stddef.h>
#include <stdint.h>

/* one occurrence, as the counter's table entry (unigram_train.c's sslot) */
typedef struct {
    uint64_t hash, where, cnt_next;
} tkmi_sslot;

typedef struct {
    int fd;               /* -1 until the first chunk is written */
    uint32_t ngroups;
    size_t gcap;          /* records in a group's buffer */
    tkmi_sslot *buf;      /* ngroups * gcap */
    uint32_t *bn;         /* records in each group's buffer */
    struct tkmi_srchunk { uint64_t off; uint32_t n; int32_t next; } *ch;
    size_t nch, chcap;
    int32_t *head, *tail; /* each group's chunks, in the order written */
    uint64_t end;         /* bytes written */
    uint32_t *ht;         /* combine(): record index + 1 by hash */
    size_t hcap;
} tkmi_sruns;

/* buffers of about buf_bytes in all */
int tkmi_sruns_init(tkmi_sruns *r, uint32_t ngroups, size_t buf_bytes);
void tkmi_sruns_free(tkmi_sruns *r);
/* writes group g's buffer as a chunk */
int tkmi_sruns_flush(tkmi_sruns *r, uint32_t g);
/* writes what the buffers hold: then every record is in a chunk */
int tkmi_sruns_finish(tkmi_sruns *r);
/* the records of group g in the order added, a chunk at a time: fn(ctx,
 * recs, n) for each chunk (the records are valid only during the call);
 * stops at fn's first nonzero return and returns it */
int tkmi_sruns_read(tkmi_sruns *r, uint32_t g, int (*fn)(void *ctx, const tkmi_sslot *recs, size_t n), void *ctx);

static inline int tkmi_sruns_add(tkmi_sruns *r, uint32_t g, uint64_t hash, uint64_t where, uint64_t cnt_next)
{
    uint32_t k = r->bn[g]++;
    r->buf[(size_t)g * r->gcap + k] = (tkmi_sslot){hash, where, cnt_next};
    return k + 1 == r->gcap ? tkmi_sruns_flush(r, g) : 0;
}

#endif
