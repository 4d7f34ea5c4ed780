/* count_spill.c - counting in bounded memory (--max-memory): when a worker's
 * pre-token table passes its share of the limit, its entries are written to
 * a temporary file (a run) and the table starts again empty; at the end
 * every table is spilled too and the runs are merged, summing counts, into
 * the one table the trainers read. Exact: the merged table holds the same
 * (pre-token, count) pairs as the in-memory path, and the trainers' results
 * do not depend on table order, so the model is the same byte for byte
 * (tests/cli/scale.sh). Runs are unlinked as soon as they are created, so
 * nothing is left behind whatever happens.
 *
 * A run is cut into PARTS partitions by the top bits of the keys' hashes
 * (the slots' tags hold them), each sorted by key. Spilling needs no copy
 * of the table: its slot array, not needed any more, is turned into the ids
 * grouped by partition in place (tkmi_counts_take_ids), and only one
 * partition at a time is sorted through a scratch array (1/PARTS of the
 * table; the share of the limit the tables get leaves room for it,
 * trainer.c). The merge takes partition by partition too: -t threads merge
 * partitions at once and hand their results over in partition order, so
 * that what is built from them does not depend on the thread count.
 *
 * BPE and Unigram (t->load_filter): the runs are merged twice. The first
 * pass builds the trainer's budget histogram (tkmi_mb_add: BPE's merge
 * loop's bytes, or the Unigram words', by count); the threshold is decided
 * from it as merge_budget or word_budget would, and the second pass loads
 * only the sample (tkmi_mb_keep, at the counts as counted; the others'
 * characters are summed for the character coverage). The table then holds
 * the pre-tokens the trainer uses and nothing else: the same threshold,
 * sample and model as when the whole table is loaded and the trainer
 * samples it, without the peak of every unique pre-token in memory.
 *
 * Run format: per partition, entries in bytewise key order (keys unique
 * within a run): varint bytes shared with the previous key of the
 * partition, varint length of the rest, varint count, the rest. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "trainer_internal.h"
#include "../lib/heap.h"
#include "../lib/parallel.h"

#define PART_BITS 8
#define PARTS (1u << PART_BITS)
/* at most this many runs are merged at once (a read buffer each per
 * thread); runs are written through WBUF bytes and read through RBUF */
#define MAX_WAY 64
#define WBUF ((size_t)256 << 10)
#define RBUF ((size_t)64 << 10)

struct tkmi_run {
    int fd;
    uint64_t off[PARTS + 1]; /* partition p: bytes off[p]..off[p+1] */
};

static pthread_mutex_t prog_mu = PTHREAD_MUTEX_INITIALIZER;

/* done in MB of total, the whole only when it is all done (one last line) */
static uint64_t mb_of(uint64_t done, uint64_t total)
{
    uint64_t d = done >> 20, all = total >> 20;
    return done >= total ? all : d < all ? d : (all ? all - 1 : 0);
}

void tkmi_progress(struct tkm_trainer *t, const char *phase, uint64_t done, uint64_t total)
{
    if (!t->progress) return;
    pthread_mutex_lock(&prog_mu);
    t->progress(t->progress_ctx, phase, done, total);
    pthread_mutex_unlock(&prog_mu);
}

/* An anonymous temporary file in $TMPDIR (or /tmp), unlinked at once. */
static int run_open(struct tkmi_run **out)
{
    *out = NULL;
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    size_t n = strlen(dir) + 32;
    char *path = tkmi_malloc(n);
    struct tkmi_run *r = tkmi_calloc(1, sizeof *r);
    if (!path || !r) {
        tkmi_free(path);
        tkmi_free(r);
        return tkmi_error(TKM_ENOMEM, "out of memory");
    }
    snprintf(path, n, "%s/tokenmill-run-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        int e = errno;
        int rc = tkmi_error(TKM_EIO, "cannot create a spill file in %s: %s", dir, strerror(e));
        tkmi_free(path);
        tkmi_free(r);
        return rc;
    }
    unlink(path);
    tkmi_free(path);
    r->fd = fd;
    *out = r;
    return 0;
}

static void run_close(struct tkmi_run *r)
{
    if (!r) return;
    close(r->fd);
    tkmi_free(r);
}

/* ---- writing ---- */
typedef struct {
    struct tkmi_run *run;
    char *buf;
    size_t used;
    uint64_t off;
    const char *prev; /* the previous key of the partition (still held by the caller) */
    size_t prev_len;
} rwriter;

static int w_flush(rwriter *w)
{
    for (size_t o = 0; o < w->used;) {
        ssize_t k = write(w->run->fd, w->buf + o, w->used - o);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            int e = errno;
            return tkmi_error(TKM_EIO, "cannot write a spill file: %s", k < 0 ? strerror(e) : "no room (disk full?)");
        }
        o += (size_t)k;
    }
    w->used = 0;
    return 0;
}

static int w_entry(rwriter *w, const char *k, size_t len, int64_t cnt)
{
    size_t shared = 0, lim = len < w->prev_len ? len : w->prev_len;
    while (shared < lim && k[shared] == w->prev[shared]) shared++;
    size_t rest = len - shared;
    if (w->used + 30 > WBUF) TKM_FORWARD_IF_ERROR(w_flush(w));
    size_t h = tkmi_varint_put((uint8_t *)(w->buf + w->used), shared);
    h += tkmi_varint_put((uint8_t *)(w->buf + w->used + h), rest);
    h += tkmi_varint_put((uint8_t *)(w->buf + w->used + h), (uint64_t)cnt);
    w->used += h;
    w->off += h + rest;
    for (size_t o = shared; o < len;) {
        if (w->used == WBUF) TKM_FORWARD_IF_ERROR(w_flush(w));
        size_t m = len - o < WBUF - w->used ? len - o : WBUF - w->used;
        memcpy(w->buf + w->used, k + o, m);
        w->used += m;
        o += m;
    }
    w->prev = k;
    w->prev_len = len;
    return 0;
}

/* partition p ends (the next one starts with no previous key) */
static void w_part_end(rwriter *w, unsigned p)
{
    w->run->off[p + 1] = w->off;
    w->prev = NULL;
    w->prev_len = 0;
}

static int add_run(struct tkm_trainer *t, struct tkmi_run *r)
{
    pthread_mutex_lock(&t->mu);
    int rc = tkmi_grow((void **)&t->runs, &t->runs_cap, t->n_runs + 1, sizeof *t->runs);
    if (rc == 0) {
        t->runs[t->n_runs++] = r;
        t->spill_bytes += r->off[PARTS];
    }
    pthread_mutex_unlock(&t->mu);
    if (rc < 0) run_close(r);
    return rc;
}

/* ---- spilling a table ---- */
typedef struct { uint64_t pre, id; } sitem; /* the key's first 8 bytes, big-endian, zero-padded */
static _Thread_local const tkmi_counts *sort_ctx;
static int sitem_cmp(const void *x, const void *y)
{
    const sitem *a = x, *b = y;
    if (a->pre != b->pre) return a->pre < b->pre ? -1 : 1;
    tkmi_centry ea, eb;
    tkmi_counts_get(sort_ctx, a->id, &ea);
    tkmi_counts_get(sort_ctx, b->id, &eb);
    return tkmi_key_pfx_cmp(a->pre, ea.key, ea.len, b->pre, eb.key, eb.len);
}

/* progress of the spills under way (several workers may spill at once);
 * smaller spills take well under a second and are not reported */
#define SPILL_REPORT_MIN ((uint64_t)64 << 20)
static void spill_report(struct tkm_trainer *t, uint64_t add_total, uint64_t add_done)
{
    pthread_mutex_lock(&prog_mu);
    t->sp_total += add_total;
    t->sp_done += add_done;
    if (t->progress && add_done && t->sp_total >= SPILL_REPORT_MIN)
        t->progress(t->progress_ctx, "spilling tables (MB)", mb_of(t->sp_done, t->sp_total), t->sp_total >> 20);
    if (t->sp_done >= t->sp_total) t->sp_done = t->sp_total = 0;
    pthread_mutex_unlock(&prog_mu);
}

int tkmi_spill_worker(struct tkm_trainer *t, tkmi_worker *w)
{
    tkmi_counts *c = &w->counts;
    if (!c->n) return 0;
    double t0 = tkmi_now();
    uint64_t tbytes = tkmi_counts_bytes(c);
    size_t start[PARTS + 1];
    tkmi_counts_take_ids(c, PART_BITS, start);
    size_t most = 1;
    for (unsigned p = 0; p < PARTS; p++)
        if (start[p + 1] - start[p] > most) most = start[p + 1] - start[p];
    sitem *it = tkmi_malloc(most * sizeof *it);
    rwriter wr = {0};
    wr.buf = tkmi_malloc(WBUF);
    int rc = (!it || !wr.buf) ? tkmi_error(TKM_ENOMEM, "out of memory (spilling counts)") : run_open(&wr.run);
    spill_report(t, tbytes, 0);
    uint64_t reported = 0;
    sort_ctx = c;
    for (unsigned p = 0; rc == 0 && p < PARTS; p++) {
        size_t k = 0;
        for (size_t i = start[p]; i < start[p + 1]; i++) {
            tkmi_centry e;
            if (i + 16 < start[p + 1]) tkmi_counts_prefetch(c, c->s[i + 16]); /* (records are all over the arena) */
            tkmi_counts_get(c, c->s[i], &e);
            if (e.count == 0) continue; /* (emptied) */
            it[k].pre = tkmi_key_pfx8(e.key, e.len);
            it[k++].id = c->s[i];
        }
        if (k > 1) qsort(it, k, sizeof *it, sitem_cmp);
        for (size_t i = 0; rc == 0 && i < k; i++) {
            tkmi_centry e;
            if (i + 16 < k) tkmi_counts_prefetch(c, it[i + 16].id);
            tkmi_counts_get(c, it[i].id, &e);
            rc = w_entry(&wr, e.key, e.len, e.count);
        }
        w_part_end(&wr, p);
        uint64_t now = tbytes * (p + 1) / PARTS;
        spill_report(t, 0, now - reported);
        reported = now;
    }
    if (rc == 0) rc = w_flush(&wr);
    if (reported < tbytes) spill_report(t, 0, tbytes - reported);
    tkmi_free(it);
    tkmi_free(wr.buf);
    size_t limit = c->limit;
    tkmi_counts_free(c);
    if (rc < 0) {
        run_close(wr.run);
        return rc;
    }
    TKM_FORWARD_IF_ERROR(add_run(t, wr.run));
    pthread_mutex_lock(&prog_mu);
    t->stats.seconds_spill += tkmi_now() - t0;
    pthread_mutex_unlock(&prog_mu);
    TKM_FORWARD_IF_ERROR(tkmi_counts_init(c, 1 << 16));
    c->limit = limit;
    return 0;
}

/* ---- reading a partition of a run ---- */
typedef struct {
    int fd;
    uint64_t off, left; /* the next file byte to read, and how many are left */
    char *buf;
    size_t pos, n;
    char *key;
    size_t cap, len;
    int64_t cnt;
} rreader;

static int r_fill(rreader *r)
{
    if (r->pos < r->n) memmove(r->buf, r->buf + r->pos, r->n - r->pos);
    r->n -= r->pos;
    r->pos = 0;
    size_t want = RBUF - r->n;
    if (want > r->left) want = (size_t)r->left;
    while (want) {
        ssize_t k = pread(r->fd, r->buf + r->n, want, (off_t)r->off);
        if (k < 0 && errno == EINTR) continue;
        TKM_RETURN_ERROR_IF(k <= 0, TKM_EIO, "cannot read a spill file%s", k == 0 ? " (truncated)" : "");
        r->n += (size_t)k;
        r->off += (uint64_t)k;
        r->left -= (uint64_t)k;
        want -= (size_t)k;
    }
    return 0;
}

static int r_varint(rreader *r, uint64_t *v)
{
    if (r->n - r->pos < 10 && r->left) TKM_FORWARD_IF_ERROR(r_fill(r));
    uint64_t x = 0;
    for (int s = 0; s < 70; s += 7) {
        TKM_RETURN_ERROR_IF(r->pos == r->n, TKM_EIO, "spill file truncated");
        uint8_t b = (uint8_t)r->buf[r->pos++];
        x |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return tkmi_error(TKM_EIO, "spill file corrupt");
}

/* The next entry: 1, or 0 at the end of the partition. */
static int r_next(rreader *r)
{
    if (r->pos == r->n && !r->left) return 0;
    uint64_t shared, rest, cnt;
    TKM_FORWARD_IF_ERROR(r_varint(r, &shared));
    TKM_FORWARD_IF_ERROR(r_varint(r, &rest));
    TKM_FORWARD_IF_ERROR(r_varint(r, &cnt));
    TKM_RETURN_ERROR_IF(shared > r->len || rest > ((uint64_t)1 << 40), TKM_EIO, "spill file corrupt");
    size_t len = (size_t)(shared + rest);
    if (len > r->cap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&r->key, &r->cap, len, 1));
    for (size_t o = (size_t)shared; o < len;) {
        if (r->pos == r->n) TKM_FORWARD_IF_ERROR(r_fill(r));
        TKM_RETURN_ERROR_IF(r->pos == r->n, TKM_EIO, "spill file truncated");
        size_t m = len - o < r->n - r->pos ? len - o : r->n - r->pos;
        memcpy(r->key + o, r->buf + r->pos, m);
        r->pos += m;
        o += m;
    }
    r->len = len;
    r->cnt = (int64_t)cnt;
    return 1;
}

/* the template declares two T per line: T must be one name */
typedef rreader *rreader_p;
static int head_before(const void *ctx, const rreader_p *a, const rreader_p *b)
{
    (void)ctx;
    return tkmi_key_cmp((*a)->key, (*a)->len, (*b)->key, (*b)->len) < 0;
}
TKMI_HEAP_DEFINE(runheap, rreader_p, const void *, head_before) /* lib/heap.h */

/* ---- merging, partition by partition ---- */
/* What the merge of the runs learns on the way (load_filter): unique
 * pre-tokens, the budget's byte bound and its histogram. */
typedef struct {
    tkmi_mb_hist *h;
    uint64_t n;
    double bound;
    size_t longest;
} merge_seen;

enum { TO_RUN, TO_SEEN, TO_TABLE };
typedef struct {
    struct tkm_trainer *t;
    struct tkmi_run **runs;
    size_t k;
    int to;
    rwriter *w;         /* TO_RUN */
    merge_seen *seen;   /* TO_SEEN */
    tkmi_counts *out;   /* TO_TABLE: the entries tkmi_mb_keep keeps at thr; */
    int64_t thr;        /* the others' characters go to drop (NULL: thr is 0) */
    tkmi_chars *drop;
    int64_t *drop_sum;
    const char *phase;
    uint64_t done, total;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned next_claim, next_apply;
    int err;
} mjob;

/* a partition merged: entries (varint length, varint count, key) */
typedef struct {
    mjob *j;
    int rc;
    rreader *rd;
    rreader **hp;
    char *out;
    size_t used, cap, n;
} mthread;

static int out_room(mthread *m, size_t need)
{
    if (m->used + need <= m->cap) return 0;
    return tkmi_grow((void **)&m->out, &m->cap, m->used + need, 1);
}

static int merge_part(mthread *m, unsigned p, uint64_t *in_bytes)
{
    mjob *j = m->j;
    size_t n = 0;
    m->used = m->n = 0;
    *in_bytes = 0;
    for (size_t i = 0; i < j->k; i++) {
        rreader *r = &m->rd[i];
        r->fd = j->runs[i]->fd;
        r->off = j->runs[i]->off[p];
        r->left = j->runs[i]->off[p + 1] - r->off;
        *in_bytes += r->left;
        r->pos = r->n = 0;
        r->len = 0;
        int x = r_next(r);
        if (x < 0) return x;
        if (x) m->hp[n++] = r;
    }
    runheap_heapify(NULL, m->hp, n);
    while (n) {
        /* the smallest key, summed over every run that holds it */
        rreader *top = m->hp[0];
        size_t len = top->len;
        TKM_FORWARD_IF_ERROR(out_room(m, len + 20));
        size_t at = m->used + 20; /* the key first, its header once the count is known */
        if (len) memcpy(m->out + at, top->key, len);
        int64_t cnt = 0;
        while (n && m->hp[0]->len == len && memcmp(m->hp[0]->key, m->out + at, len) == 0) {
            cnt += m->hp[0]->cnt;
            int x = r_next(m->hp[0]);
            if (x < 0) return x;
            if (!x) m->hp[0] = m->hp[--n];
            if (n) runheap_sift_down(NULL, m->hp, n, 0, m->hp[0]);
        }
        size_t h = tkmi_varint_put((uint8_t *)(m->out + m->used), len);
        h += tkmi_varint_put((uint8_t *)(m->out + m->used + h), (uint64_t)cnt);
        memmove(m->out + m->used + h, m->out + at, len);
        m->used += h + len;
        m->n++;
    }
    return 0;
}

static inline size_t get_varint(const char *p, uint64_t *v)
{
    uint64_t x = 0;
    size_t o = 0;
    for (int s = 0;; s += 7) {
        uint8_t b = (uint8_t)p[o++];
        x |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) break;
    }
    *v = x;
    return o;
}

/* partition p's merged entries go where the job says (in partition order) */
static int apply_part(mthread *m, unsigned p)
{
    mjob *j = m->j;
    for (size_t o = 0; o < m->used;) {
        uint64_t len, c;
        o += get_varint(m->out + o, &len);
        o += get_varint(m->out + o, &c);
        const char *key = m->out + o;
        int64_t cnt = (int64_t)c;
        o += len;
        if (j->to == TO_RUN) {
            TKM_FORWARD_IF_ERROR(w_entry(j->w, key, (size_t)len, cnt));
        } else if (j->to == TO_SEEN) {
            merge_seen *s = j->seen;
            s->n++;
            /* (bytes for characters: a bound for BPE's estimate, which
             * grows with them, and Unigram's, by bytes) */
            s->bound += tkmi_mb_cost(s->h, (size_t)len, (size_t)len);
            if (len > s->longest) s->longest = (size_t)len;
            tkmi_mb_add(s->h, key, (size_t)len, cnt);
        } else {
            uint64_t h = tkmi_hash_bytes(key, (size_t)len);
            if (cnt >= j->thr || tkmi_mb_keep(h, cnt, j->thr)) {
                /* (the count as counted: the trainer weighs the sample) */
                TKM_FORWARD_IF_ERROR(tkmi_counts_add(j->out, key, (size_t)len, h, cnt));
                continue;
            }
            int64_t k = tkmi_chars_key(j->drop, (const uint8_t *)key, (size_t)len, cnt);
            if (k < 0) return (int)k;
            *j->drop_sum += cnt * k;
            j->t->stats.merge_dropped_unique++;
            j->t->stats.merge_dropped_occurrences += (uint64_t)cnt;
        }
    }
    if (j->to == TO_RUN) w_part_end(j->w, p);
    return 0;
}

static void *merge_thread(void *arg)
{
    mthread *m = arg;
    mjob *j = m->j;
    m->rd = tkmi_calloc(j->k, sizeof *m->rd);
    m->hp = tkmi_calloc(j->k, sizeof *m->hp);
    int rc = (!m->rd || !m->hp) ? tkmi_error(TKM_ENOMEM, "out of memory (merging runs)") : 0;
    for (size_t i = 0; rc == 0 && i < j->k; i++)
        if (!(m->rd[i].buf = tkmi_malloc(RBUF))) rc = tkmi_error(TKM_ENOMEM, "out of memory (merging runs)");
    while (rc == 0) {
        unsigned p = __atomic_fetch_add(&j->next_claim, 1, __ATOMIC_RELAXED);
        if (p >= PARTS || __atomic_load_n(&j->err, __ATOMIC_RELAXED)) break;
        uint64_t in = 0;
        rc = merge_part(m, p, &in);
        pthread_mutex_lock(&j->mu);
        while (!j->err && j->next_apply != p) pthread_cond_wait(&j->cv, &j->mu);
        if (j->err) rc = rc ? rc : 1; /* (another failed: stop) */
        if (rc == 0) rc = apply_part(m, p);
        if (rc == 0) {
            j->next_apply++;
            j->done += in;
            tkmi_progress(j->t, j->phase, mb_of(j->done, j->total), j->total >> 20);
        } else if (rc < 0) {
            j->err = rc;
        }
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
    }
    if (m->rd)
        for (size_t i = 0; i < j->k; i++) {
            tkmi_free(m->rd[i].buf);
            tkmi_free(m->rd[i].key);
        }
    tkmi_free(m->rd);
    tkmi_free(m->hp);
    tkmi_free(m->out);
    m->rc = rc < 0 ? rc : 0;
    return NULL;
}

/* Merges runs[0..k) partition by partition into what j says, on the
 * trainer's threads. */
static int merge_runs(mjob *j)
{
    struct tkm_trainer *t = j->t;
    int nt = t->n_workers < 1 ? 1 : t->n_workers;
    if (nt > (int)PARTS) nt = PARTS;
    j->total = 0;
    for (size_t i = 0; i < j->k; i++) j->total += j->runs[i]->off[PARTS];
    j->done = 0;
    j->next_claim = j->next_apply = 0;
    j->err = 0;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    mthread *m = tkmi_calloc((size_t)nt, sizeof *m);
    TKM_RETURN_ERROR_IF(!m, TKM_ENOMEM, "out of memory");
    for (int i = 0; i < nt; i++) m[i].j = j;
    tkmi_par_jobs(m, nt, sizeof *m, offsetof(mthread, rc), merge_thread);
    int rc = 0;
    for (int i = 0; i < nt; i++)
        if (m[i].rc < 0 && rc == 0) rc = m[i].rc;
    tkmi_free(m);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    if (rc == 0 && j->to == TO_RUN) rc = w_flush(j->w);
    return rc;
}

/* the runs, merged twice for BPE and Unigram (see the top of the file) */
static int finish_filtered(struct tkm_trainer *t, tkmi_counts *out)
{
    merge_seen seen = {0};
    seen.h = tkmi_calloc(1, sizeof *seen.h);
    TKM_RETURN_ERROR_IF(!seen.h, TKM_ENOMEM, "out of memory");
    seen.h->model = t->load_filter;
    seen.h->narrow = tkmi_mb_narrow(&t->o);
    mjob j = {.t = t, .runs = t->runs, .k = t->n_runs, .to = TO_SEEN, .seen = &seen,
              .phase = "merging runs 1/2 (MB)"};
    int rc = merge_runs(&j);
    t->unique_all = seen.n;
    int64_t thr = 0;
    uint64_t budget = tkmi_mb_budget(t, t->load_filter), kept = 0;
    /* the budget's two steps: the byte bound, then (over it) the sample's
     * threshold; the table then holds the sample, at the counts as counted
     * (the trainer weighs it as in memory) */
    if (rc == 0 && budget && seen.bound > (double)budget) thr = tkmi_mb_decide_sample(t, seen.h, budget, &kept);
    j.to = TO_TABLE;
    j.phase = "merging runs 2/2 (MB)";
    if (rc == 0 && thr > 0) {
        t->chars_extra = tkmi_calloc(1, sizeof *t->chars_extra);
        rc = t->chars_extra ? tkmi_chars_init(t->chars_extra) : tkmi_error(TKM_ENOMEM, "out of memory");
        if (rc == 0) rc = tkmi_counts_init(out, (size_t)kept);
        j.out = out;
        j.thr = thr;
        j.drop = t->chars_extra;
        j.drop_sum = &t->chars_extra_sum;
        if (rc == 0) rc = merge_runs(&j);
        if (rc == 0 && out->n == 0) rc = tkmi_mb_none_kept(t, t->load_filter, budget);
        t->mb_pre.set = rc == 0;
        t->mb_pre.drop_below = thr;
        t->mb_pre.max_syms = seen.h->longest;
    } else if (rc == 0) { /* everything fits: the whole table */
        rc = tkmi_counts_init(out, (size_t)seen.n);
        j.out = out;
        j.thr = 0;
        if (rc == 0) rc = merge_runs(&j);
    }
    tkmi_free(seen.h);
    return rc;
}

typedef struct {
    struct tkm_trainer *t;
    tkmi_worker *w;
    int rc;
} spill_job;

static void *spill_thread(void *arg)
{
    spill_job *s = arg;
    s->rc = tkmi_spill_worker(s->t, s->w);
    return NULL;
}

int tkmi_spill_finish(struct tkm_trainer *t, tkmi_counts *out)
{
    /* the workers' last tables, spilled at once (each frees its own) */
    int nw = t->n_workers;
    spill_job *sj = tkmi_calloc((size_t)(nw ? nw : 1), sizeof *sj);
    TKM_RETURN_ERROR_IF(!sj, TKM_ENOMEM, "out of memory");
    for (int i = 0; i < nw; i++) sj[i] = (spill_job){.t = t, .w = &t->workers[i]};
    if (nw > 0) tkmi_par_jobs(sj, nw, sizeof *sj, offsetof(spill_job, rc), spill_thread);
    int rc = 0;
    for (int i = 0; i < nw; i++)
        if (sj[i].rc < 0 && rc == 0) rc = sj[i].rc;
    tkmi_free(sj);
    if (rc < 0) return rc;
    t->stats.spill_runs = t->n_runs;
    double t0 = tkmi_now();
    /* more runs than MAX_WAY: merge them MAX_WAY at a time into longer runs
     * (TKM_SPILL_MAX_WAY lowers it, for tests) */
    size_t way = MAX_WAY;
    const char *env = getenv("TKM_SPILL_MAX_WAY");
    if (env && atoi(env) >= 2 && atoi(env) < MAX_WAY) way = (size_t)atoi(env);
    while (t->n_runs > way) {
        size_t k = way, base = t->n_runs - k;
        rwriter w = {0};
        w.buf = tkmi_malloc(WBUF);
        TKM_RETURN_ERROR_IF(!w.buf, TKM_ENOMEM, "out of memory");
        rc = run_open(&w.run);
        mjob j = {.t = t, .runs = t->runs + base, .k = k, .to = TO_RUN, .w = &w,
                  .phase = "merging runs to longer (MB)"};
        if (rc == 0) rc = merge_runs(&j);
        tkmi_free(w.buf);
        if (rc < 0) {
            run_close(w.run);
            return rc;
        }
        for (size_t i = base; i < t->n_runs; i++) run_close(t->runs[i]);
        t->n_runs = base;
        /* the new run goes first: long runs are merged again last */
        memmove(t->runs + 1, t->runs, t->n_runs * sizeof *t->runs);
        t->runs[0] = w.run;
        t->n_runs++;
    }
    if (t->load_filter) rc = finish_filtered(t, out);
    else {
        rc = tkmi_counts_init(out, 1 << 16);
        mjob j = {.t = t, .runs = t->runs, .k = t->n_runs, .to = TO_TABLE, .out = out,
                  .phase = "merging runs (MB)"};
        if (rc == 0) rc = merge_runs(&j);
        t->unique_all = out->n;
    }
    for (size_t i = 0; i < t->n_runs; i++) run_close(t->runs[i]);
    t->n_runs = 0;
    t->stats.seconds_spill_merge = tkmi_now() - t0;
    return rc;
}

void tkmi_spill_free(struct tkm_trainer *t)
{
    for (size_t i = 0; i < t->n_runs; i++) run_close(t->runs[i]);
    tkmi_free(t->runs);
    t->runs = NULL;
    t->n_runs = t->runs_cap = 0;
}
