/* count_spill.c - counting in bounded memory (--max-memory): when a worker's
 * pre-token table passes its share of the limit, its entries are written to
 * a temporary file sorted by key (a run) and the table starts again empty;
 * at the end every table is spilled too and the runs are merged by key,
 * summing counts, into the one table the trainers read. Exact: the merged
 * table holds the same (pre-token, count) pairs as the in-memory path, and
 * the trainers' results do not depend on table order, so the model is the
 * same byte for byte (tests/cli/scale.sh). Runs are unlinked as soon as they
 * are created, so nothing is left behind whatever happens.
 *
 * BPE (t->bpe_filter): the runs are merged into one run on disk instead,
 * while the merge budget's histogram is built from the keys as they pass
 * (tkmi_mb_add: the merge loop's bytes by count); merge_budget's threshold
 * is decided from it, and the merged run is loaded keeping only the
 * pre-tokens counted at least that often (the others' characters are
 * summed for the character coverage). The table then holds the pre-tokens
 * the merge loop uses and nothing else: the same threshold, kept set and
 * model as when the whole table is loaded and merge_budget drops the rare
 * ones, without the peak of every unique pre-token in memory.
 *
 * Run format: entries (uint32 key length, int64 count, key bytes) in
 * bytewise key order, keys unique within a run. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "trainer_internal.h"
#include "../lib/heap.h"

/* at most this many runs are merged at once (open files, heap size); a
 * run is written and read through a buffer of RUN_BUF bytes */
#define MAX_WAY 64
#define RUN_BUF (64u << 10)

/* An anonymous temporary file in $TMPDIR (or /tmp), unlinked at once. */
static int run_open(FILE **out)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    size_t n = strlen(dir) + 32;
    char *path = tkmi_malloc(n);
    TKM_RETURN_ERROR_IF(!path, TKM_ENOMEM, "out of memory");
    snprintf(path, n, "%s/tokenmill-run-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        int e = errno;
        int rc = tkmi_error(TKM_EIO, "cannot create a spill file in %s: %s", dir, strerror(e));
        tkmi_free(path);
        return rc;
    }
    unlink(path);
    tkmi_free(path);
    *out = fdopen(fd, "w+b");
    if (!*out) {
        close(fd);
        return tkmi_error(TKM_EIO, "cannot open a spill file in %s", dir);
    }
    setvbuf(*out, NULL, _IOFBF, RUN_BUF); /* (stdio allocates it) */
    return 0;
}

static int run_write(FILE *f, const char *k, uint32_t len, int64_t cnt, uint64_t *bytes)
{
    if (fwrite(&len, sizeof len, 1, f) != 1 || fwrite(&cnt, sizeof cnt, 1, f) != 1 ||
        (len && fwrite(k, 1, len, f) != len))
        return tkmi_error(TKM_EIO, "cannot write a spill file (disk full?)");
    *bytes += sizeof len + sizeof cnt + len;
    return 0;
}

static int add_run(struct tkm_trainer *t, FILE *f, uint64_t bytes)
{
    pthread_mutex_lock(&t->mu);
    int rc = tkmi_grow((void **)&t->runs, &t->runs_cap, t->n_runs + 1, sizeof *t->runs);
    if (rc == 0) {
        t->runs[t->n_runs++] = f;
        t->spill_bytes += bytes;
    }
    pthread_mutex_unlock(&t->mu);
    if (rc < 0) fclose(f);
    return rc;
}

int tkmi_spill_worker(struct tkm_trainer *t, tkmi_worker *w)
{
    tkmi_counts *c = &w->counts;
    if (!c->n) return 0;
    uint64_t *idx;
    size_t n = c->n;
    TKM_FORWARD_IF_ERROR(tkmi_counts_sorted(c, &idx));
    FILE *f = NULL;
    int rc = run_open(&f);
    uint64_t bytes = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        tkmi_centry e;
        tkmi_counts_get(c, idx[i], &e);
        rc = run_write(f, e.key, (uint32_t)e.len, e.count, &bytes);
    }
    tkmi_free(idx);
    if (rc == 0 && fflush(f) != 0) rc = tkmi_error(TKM_EIO, "cannot write a spill file (disk full?)");
    if (rc < 0) {
        if (f) fclose(f);
        return rc;
    }
    TKM_FORWARD_IF_ERROR(add_run(t, f, bytes));
    size_t limit = c->limit;
    tkmi_counts_free(c);
    TKM_FORWARD_IF_ERROR(tkmi_counts_init(c, 1 << 16));
    c->limit = limit;
    return 0;
}

/* ---- k-way merge ---- */
typedef struct {
    FILE *f;
    char *key;
    size_t cap;
    uint32_t len;
    int64_t cnt;
} head_t;

/* Reads the next entry of h: 1, or 0 at the end of the run. */
static int head_next(head_t *h)
{
    uint32_t len;
    size_t got = fread(&len, sizeof len, 1, h->f);
    if (got != 1) {
        TKM_RETURN_ERROR_IF(ferror(h->f), TKM_EIO, "cannot read a spill file");
        return 0;
    }
    TKM_RETURN_ERROR_IF(fread(&h->cnt, sizeof h->cnt, 1, h->f) != 1, TKM_EIO, "spill file truncated");
    if (len > h->cap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&h->key, &h->cap, len, 1));
    TKM_RETURN_ERROR_IF(len && fread(h->key, 1, len, h->f) != len, TKM_EIO, "spill file truncated");
    h->len = len;
    return 1;
}

/* the template declares two T per line: T must be one name */
typedef head_t *head_p;
static int head_before(const void *ctx, const head_p *a, const head_p *b)
{
    (void)ctx;
    return tkmi_key_cmp((*a)->key, (*a)->len, (*b)->key, (*b)->len) < 0;
}
TKMI_HEAP_DEFINE(runheap, head_p, const void *, head_before) /* lib/heap.h */

/* What the merge of the runs into one run learns on the way (BPE): unique
 * pre-tokens, the merge budget's byte bound and its histogram. */
typedef struct {
    tkmi_mb_hist *h;
    int narrow;
    uint64_t n, keybytes;
    double bound;
    size_t longest;
} merge_seen;

/* Merges runs[0..k) (closed afterwards) into the table out (out_f NULL) or
 * into the run out_f; seen (or NULL) learns about each merged entry. */
static int merge_runs(FILE **runs, size_t k, tkmi_counts *out, FILE *out_f, uint64_t *bytes, merge_seen *seen)
{
    head_t *heads = tkmi_calloc(k, sizeof *heads);
    head_t **hp = tkmi_calloc(k, sizeof *hp);
    char *cur = NULL;
    size_t cur_cap = 0, n = 0;
    int rc = (!heads || !hp) ? tkmi_error(TKM_ENOMEM, "out of memory (merging runs)") : 0;
    for (size_t i = 0; rc == 0 && i < k; i++) {
        heads[i].f = runs[i];
        if (fseek(runs[i], 0, SEEK_SET) != 0) { rc = tkmi_error(TKM_EIO, "cannot rewind a spill file"); break; }
        int r = head_next(&heads[i]);
        if (r < 0) rc = r;
        else if (r) hp[n++] = &heads[i];
    }
    if (rc == 0) runheap_heapify(NULL, hp, n);
    while (rc == 0 && n) {
        /* the smallest key, summed over every run that holds it */
        uint32_t len = hp[0]->len;
        if (len > cur_cap && (rc = tkmi_grow((void **)&cur, &cur_cap, len, 1)) < 0) break;
        if (len) memcpy(cur, hp[0]->key, len);
        int64_t cnt = 0;
        while (n && hp[0]->len == len && memcmp(hp[0]->key, cur, len) == 0) {
            cnt += hp[0]->cnt;
            int r = head_next(hp[0]);
            if (r < 0) { rc = r; break; }
            if (!r) hp[0] = hp[--n];
            runheap_sift_down(NULL, hp, n, 0, hp[0]);
        }
        if (rc < 0) break;
        if (seen) {
            seen->n++;
            seen->keybytes += len;
            seen->bound += tkmi_mb_bytes(len, seen->narrow);
            if (len > seen->longest) seen->longest = len;
            tkmi_mb_add(seen->h, cur, len, cnt, seen->narrow);
        }
        rc = out_f ? run_write(out_f, cur, len, cnt, bytes) : tkmi_counts_add(out, cur, len, tkmi_hash_bytes(cur, len), cnt);
    }
    for (size_t i = 0; i < k; i++) {
        fclose(runs[i]);
        runs[i] = NULL;
        if (heads) tkmi_free(heads[i].key);
    }
    tkmi_free(heads);
    tkmi_free(hp);
    tkmi_free(cur);
    if (rc == 0 && out_f && fflush(out_f) != 0) rc = tkmi_error(TKM_EIO, "cannot write a spill file (disk full?)");
    return rc;
}

/* Loads the merged run f into out (sized for n entries): the entries
 * counted at least thr times; the others' characters go to *drop (NULL
 * when thr is 0). */
static int load_merged(FILE *f, tkmi_counts *out, uint64_t n, int64_t thr, tkmi_chars *drop, int64_t *drop_sum)
{
    TKM_FORWARD_IF_ERROR(tkmi_counts_init(out, (size_t)n));
    TKM_RETURN_ERROR_IF(fseek(f, 0, SEEK_SET) != 0, TKM_EIO, "cannot rewind a spill file");
    head_t h = {.f = f};
    int r;
    while ((r = head_next(&h)) > 0) {
        if (h.cnt >= thr) {
            if ((r = tkmi_counts_add(out, h.key, h.len, tkmi_hash_bytes(h.key, h.len), h.cnt)) < 0) break;
        } else {
            int64_t k = tkmi_chars_key(drop, (const uint8_t *)h.key, h.len, h.cnt);
            if (k < 0) { r = (int)k; break; }
            *drop_sum += h.cnt * k;
        }
    }
    tkmi_free(h.key);
    return r < 0 ? r : 0;
}

/* The runs (at most MAX_WAY) merged into one run, the merge budget decided
 * on the way, then the kept entries loaded (see the top of the file). */
static int finish_filtered(struct tkm_trainer *t, tkmi_counts *out)
{
    FILE *f = NULL;
    uint64_t bytes = 0;
    merge_seen seen = {.narrow = tkmi_mb_narrow(&t->o)};
    seen.h = tkmi_calloc(1, sizeof *seen.h);
    TKM_RETURN_ERROR_IF(!seen.h, TKM_ENOMEM, "out of memory");
    int rc = run_open(&f);
    if (rc == 0) rc = merge_runs(t->runs, t->n_runs, NULL, f, &bytes, &seen);
    else
        for (size_t i = 0; i < t->n_runs; i++) { fclose(t->runs[i]); t->runs[i] = NULL; }
    t->n_runs = 0;
    t->unique_all = seen.n;
    int64_t thr = 0;
    uint64_t budget = tkmi_mb_budget(t);
    size_t total_syms = 0;
    /* merge_budget's two steps: the byte bound, then (over it) the threshold */
    if (rc == 0 && budget && seen.bound > (double)budget) thr = tkmi_mb_decide(t, seen.h, budget, &total_syms);
    if (rc == 0 && thr > 0 && seen.h->kept_uniq > 0) {
        t->chars_extra = tkmi_calloc(1, sizeof *t->chars_extra);
        rc = t->chars_extra ? tkmi_chars_init(t->chars_extra) : tkmi_error(TKM_ENOMEM, "out of memory");
        if (rc == 0)
            rc = load_merged(f, out, seen.h->kept_uniq, thr, t->chars_extra, &t->chars_extra_sum);
        t->mb_pre.set = rc == 0;
        t->mb_pre.drop_below = thr;
        t->mb_pre.total_syms = total_syms;
        t->mb_pre.max_syms = seen.h->longest;
    } else if (rc == 0) {
        /* nothing goes (or everything would): the whole table, and
         * merge_budget decides from it as without a spill */
        if (thr > 0) { /* (undo the stats tkmi_mb_decide set) */
            t->stats.merge_dropped_unique = t->stats.merge_dropped_occurrences = 0;
            t->stats.merge_drop_below = 0;
            t->stats.merge_bytes_estimate = 0;
        }
        rc = load_merged(f, out, seen.n, 0, NULL, NULL);
    }
    if (f) fclose(f);
    tkmi_free(seen.h);
    return rc;
}

int tkmi_spill_finish(struct tkm_trainer *t, tkmi_counts *out)
{
    for (int i = 0; i < t->n_workers; i++) TKM_FORWARD_IF_ERROR(tkmi_spill_worker(t, &t->workers[i]));
    t->stats.spill_runs = t->n_runs;
    /* more runs than MAX_WAY: merge them MAX_WAY at a time into longer runs
     * (TKM_SPILL_MAX_WAY lowers it, for tests) */
    size_t way = MAX_WAY;
    const char *env = getenv("TKM_SPILL_MAX_WAY");
    if (env && atoi(env) >= 2 && atoi(env) < MAX_WAY) way = (size_t)atoi(env);
    while (t->n_runs > way) {
        size_t k = way, base = t->n_runs - k;
        FILE *f = NULL;
        uint64_t bytes = 0;
        TKM_FORWARD_IF_ERROR(run_open(&f));
        int rc = merge_runs(t->runs + base, k, NULL, f, &bytes, NULL);
        t->n_runs = base;
        if (rc < 0) { fclose(f); return rc; }
        /* the new run goes first: long runs are merged again last */
        memmove(t->runs + 1, t->runs, t->n_runs * sizeof *t->runs);
        t->runs[0] = f;
        t->n_runs++;
    }
    if (t->bpe_filter) return finish_filtered(t, out);
    uint64_t total = 0;
    TKM_FORWARD_IF_ERROR(tkmi_counts_init(out, 1 << 16));
    int rc = merge_runs(t->runs, t->n_runs, out, NULL, &total, NULL);
    t->n_runs = 0;
    t->unique_all = out->n;
    return rc;
}

void tkmi_spill_free(struct tkm_trainer *t)
{
    for (size_t i = 0; i < t->n_runs; i++)
        if (t->runs[i]) fclose(t->runs[i]);
    tkmi_free(t->runs);
    t->runs = NULL;
    t->n_runs = t->runs_cap = 0;
}
