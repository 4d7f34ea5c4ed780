/* unigram_train.c - the Unigram trainer: seed pieces from the unique
 * pre-tokens, EM (forward-backward on each word's lattice, weighted by its
 * count, digamma M-step) and pruning by likelihood loss, as sentencepiece's
 * unigram_model_trainer.cc, but over unique words instead of a suffix array
 * of the whole corpus, so memory follows the vocabulary of the corpus.
 *
 * Determinism: words are sorted; expected counts are accumulated in 64-bit
 * fixed point (each contribution rounded on its own), so the sums do not
 * depend on how words are split between threads. */
#include <float.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../lib/parallel.h"
#include "seed_runs.h"
#include "trainer_internal.h"
#include "uwords.h"

#define FIX_SCALE 16777216.0 /* 2^24: expected counts in fixed point */

typedef struct {
    char *s; /* into the piece arena */
    uint32_t len;
    float score;
} piece_t;

/* The pieces' trie, from lib/ptrie.c's tkmi_ptrie (nodes numbered depth
 * first, edges of a node sorted by byte) with each node's first edge and
 * piece id side by side, and the edges' bytes apart from their children:
 * a node's first child is the next node (depth first), so a walk down a
 * path of single children (every multi-byte character) reads the nodes and
 * the bytes in order and never a child; the child array is read only to
 * search a node with several children. 13 bytes a node instead of 16 (the
 * trie of the first E-step's seeds lives beside their lattices: the peak),
 * plus at most 4 MB of direct tables for the few nodes with many children
 * (near the root, where a binary search over the edges mispredicts). */
typedef struct {
    int32_t root[256];
    /* first edge; (piece id + 1) << 8 | the byte of the edge into the node
     * (the label: a node's first child, node + 1, is tested with the record
     * read next anyway, not with ebyte[]) */
    struct unode { uint32_t first, idl; } *node; /* n_nodes + 1 (the last ends the edges) */
    uint8_t *ebyte;   /* per edge */
    int32_t *echild;  /* per edge; a node's first edge (its child is node + 1)
                       * holds the index of its table in dense, if it has one */
    int32_t *dense;   /* child by byte (-1: none), 256 a table, for the nodes
                       * of at least UTRIE_DENSE children (no binary search) */
    size_t n_nodes;
} utrie;
#define UTRIE_SHARE_MIN ((size_t)1 << 20) /* trie nodes: from here on, words outside the cache take populate_next */
#define UTRIE_DENSE 24
#define UTRIE_DENSE_MAX 4096 /* tables, 1 KB each */

static void utrie_free(utrie *t)
{
    tkmi_free(t->node);
    tkmi_free(t->ebyte);
    tkmi_free(t->echild);
    tkmi_free(t->dense);
    t->node = NULL;
    t->ebyte = NULL;
    t->echild = NULL;
    t->dense = NULL;
}

/* a lattice node unpacked, 8 bytes: start, and (id + 1) << 8 | length in
 * bytes (pieces are at most CNODE_MAXLEN bytes and CNODE_MAXID pieces) */
struct cnode { uint32_t start, idlen; };

typedef struct {
    tkmi_uwords W; /* the words (uwords.h) */
    size_t nw;     /* W.n */
    char *warena;  /* W.arena */
    piece_t *p;
    size_t np, pcap;
    char *parena;
    size_t parena_n, parena_cap;
    utrie trie;
    float min_score;
    /* cached lattices: pieces are only ever removed during training, so each
     * word's lattice is found once with the trie and then only filtered */
    /* one segment per thread, for the words of its range (wsplit): each
     * thread fills and reads only its own, so nothing is ever joined;
     * lat_off[i] is word i's first node in its segment. Memory is bounded:
     * a segment holds at most lat_max nodes, the lattices of a prefix
     * [wsplit[t], lat_cut[t]) of the thread's words; the others are found
     * again with the trie at every pass (and join the cache when filtering
     * has made room). A lattice found again is the filtered one, node for
     * node, so the budget (and with it the thread count) cannot change the
     * model. */
    /* The cache keeps a node in CNODE_BYTES (3) bytes, packed (see
     * cnode_pack): n and cap count nodes; lat has one byte more than cap
     * nodes (a node is read as 4 bytes) */
    struct latseg { uint8_t *lat; size_t n, cap; } seg[64];
    int have_lat;
    size_t *lat_off, lat_n, lat_max, lat_cut[64];
    /* set by lat_tables at the start of each pass: clen[code], the length
     * of a packed code with the pieces of this pass, clen_old with those of
     * the last pass (the cache's codes while removals are pending), ftab:
     * the last pass's code -> this pass's code, or CNODE_GONE */
    uint8_t *clen, *clen_old;
    uint32_t *ftab;
    /* removals not yet applied to the cache: pend[b] is the current index of
     * the piece that was b at the last pass (lat_np pieces then), or -1;
     * the next pass filters each cached lattice as it reads it */
    int32_t *pend;
    size_t lat_np;
    int trie_stale; /* pieces were removed since the trie was built */
    int threads;
    /* word ranges of the threads, cut at equal shares of the bytes (the
     * sorted words put the long Japanese runs at the end: equal numbers of
     * words gave one thread 60% more work) */
    size_t wsplit[65];
    /* the pieces' own lattices for pruning (alt_main), found with the trie
     * at the first pruning and then only read through amap: the lattice of
     * the piece that was b then (node ids of that time too) is in the
     * buffer of the thread t that found it (asplit[t] <= b < asplit[t + 1]),
     * from abuf[t] + aoff[b], abn[t] nodes in that buffer; amap[b]: its
     * index now, or -1. alat_have: found. */
    struct cnode *abuf[64];
    size_t abn[64], asplit[65];
    int an_t, alat_have;
    size_t *aoff, an;
    int32_t *amap;
    const tkm_train_options *o;
    int debug; /* TKM_DEBUG_UNIGRAM */
    int estep_exact; /* TKM_UNIGRAM_ESTEP=exact: no word in plain doubles (tests) */
    int64_t n_plain, n_words; /* the last E-step: words in plain doubles, words */
    double t_start, cpu0;
} uni;

#define CNODE_MAXLEN 255
/* the lattice cache's bytes, all threads together */
#define LAT_CACHE_BYTES ((size_t)256 << 20)
#define CNODE_MAXID ((1 << 24) - 2)
static inline struct cnode cnode_make(uint32_t start, uint32_t end, int32_t id)
{
    return (struct cnode){start, ((uint32_t)(id + 1) << 8) | (end - start)};
}
static inline int32_t cnode_id(struct cnode c) { return (int32_t)(c.idlen >> 8) - 1; }
static inline uint32_t cnode_end(struct cnode c) { return c.start + (c.idlen & 0xFF); }

/* A cached node packed in 3 bytes (little endian): bit 0 marks the first
 * node at a start, bits 1..23 are its code: 0..3 the unknown node of 1..4
 * bytes, piece id + CNODE_UNK above. Neither start nor length is kept:
 * the lengths come from a table by code (clen), and the start is the
 * previous start, or, on a marked node, the previous start plus the length
 * of the node that was first there. That holds because populate() puts a
 * character's own piece or its unknown node (length: the character's)
 * first at each start, and every character starts one; cache_add checks
 * it and leaves a word that breaks it uncached. A removed piece's node
 * that is first at its start becomes the unknown node there (populate's
 * rule: it was the character's own piece), any other vanishes. */
#define CNODE_BYTES 3
#define CNODE_UNK 4
#define CNODE_CODES ((uint32_t)1 << 23)
#define CNODE_GONE UINT32_MAX
static inline uint32_t cnode_load(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t v;
    memcpy(&v, p, 4); /* one load: the byte past the last node is padding */
    return v & 0xFFFFFF;
#else
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
#endif
}
static inline void cnode_store(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
}

/* the one parallel-for (lib/parallel.h): every job runs, and the message of
 * a failed job comes back with its rc */
#define par_run(jobs, n, job_size, fn) \
    tkmi_par_jobs((jobs), (n), (job_size), (size_t)((char *)&(jobs)[0].rc - (char *)&(jobs)[0]), (fn))

/* a thread's CPU seconds (TKM_DEBUG_UNIGRAM's per-thread times) */
static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* TKM_DEBUG_UNIGRAM=1: one line a stage on stderr, with wall and process
 * CPU seconds since the trainer started */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
__attribute__((format(printf, 2, 3))) static void dbg(const uni *U, const char *fmt, ...)
{
    if (!U->debug) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "debug: ");
    vfprintf(stderr, fmt, ap);
    long rss = 0, hwm = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[128];
        while (fgets(line, sizeof line, f)) {
            if (!strncmp(line, "VmRSS:", 6)) rss = strtol(line + 6, NULL, 10);
            if (!strncmp(line, "VmHWM:", 6)) hwm = strtol(line + 6, NULL, 10);
        }
        fclose(f);
    }
    fprintf(stderr, " (%.2f s, cpu %.2f s, rss %ld MB, peak %ld MB)\n", tkmi_now() - U->t_start, cpu_now() - U->cpu0,
            rss >> 10, hwm >> 10);
    va_end(ap);
}

/* ---- words ---- */
static inline const char *word_s(const uni *U, size_t i) { return tkmi_uw_s(&U->W, i); }
static inline size_t word_len(const uni *U, size_t i) { return tkmi_uw_len(&U->W, i); }
static inline int64_t word_cnt(const uni *U, size_t i) { return tkmi_uw_cnt(&U->W, i); }

/* Under --max-memory, the words of all pre-tokens may not fit: when
 * their estimate (tkmi_uwords_peak) is over the Unigram budget (half the
 * limit, vocab_common.c), the pre-tokens counted fewer than *tau times are
 * a threshold sample (tkmi_mb_decide_sample; 0: none), reported in the
 * stats. After a spill tau was decided while the runs were merged
 * (count_spill.c), and only the pre-tokens kept were loaded. */
static int word_budget(struct tkm_trainer *t, const tkmi_counts *counts, int64_t *tau)
{
    *tau = 0;
    if (t->mb_pre.set) {
        *tau = t->mb_pre.drop_below;
        t->mb_pre.set = 0;
        return 0;
    }
    uint64_t budget = tkmi_mb_budget(t, TKM_MODEL_UNIGRAM);
    if (!budget) return 0;
    double all = 0;
    tkmi_citer it;
    tkmi_centry e;
    tkmi_counts_iter(counts, 0, 1, &it);
    while (tkmi_counts_next(&it, &e)) all += tkmi_uwords_peak(e.len);
    if (getenv("TKM_DEBUG_UNIGRAM"))
        fprintf(stderr, "debug: Unigram words at their peak about %.1f MB for all %zu pre-tokens, budget %.1f MB\n",
                all / 1e6, counts->n, budget / 1e6);
    if (all <= (double)budget) return 0;
    tkmi_mb_hist *h = tkmi_calloc(1, sizeof *h);
    TKM_RETURN_ERROR_IF(!h, TKM_ENOMEM, "out of memory");
    h->model = TKM_MODEL_UNIGRAM;
    tkmi_counts_iter(counts, 0, 1, &it);
    while (tkmi_counts_next(&it, &e)) tkmi_mb_add(h, e.key, e.len, e.count);
    uint64_t kept;
    *tau = tkmi_mb_decide_sample(t, h, budget, &kept);
    tkmi_free(h);
    return 0;
}

/* Pre-tokens (smp: its threshold sample), cut at characters outside the
 * vocabulary, sorted (uwords.c); the count table is freed as they are
 * made. */
static int build_words(uni *U, tkmi_counts *counts, tkmi_cpmap *req, tkmi_uw_sample *smp)
{
    TKM_FORWARD_IF_ERROR(tkmi_uwords_build(&U->W, counts, req, smp));
    U->nw = U->W.n;
    U->warena = U->W.arena;
    /* thread ranges by bytes */
    int T = U->threads;
    size_t bytes = (size_t)U->W.bytes, acc = 0, t = 1;
    U->wsplit[0] = 0;
    for (size_t i = 0; i < U->nw && t < (size_t)T; i++) {
        acc += word_len(U, i);
        while (t < (size_t)T && acc * (size_t)T >= bytes * t) U->wsplit[t++] = i + 1;
    }
    while (t <= (size_t)T) U->wsplit[t++] = U->nw;
    return 0;
}

/* ---- pieces ---- */
static int piece_add(uni *U, const char *s, uint32_t len, float score)
{
    if (U->np == U->pcap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&U->p, &U->pcap, U->np + 1, sizeof *U->p));
    TKM_RETURN_ERROR_IF(U->parena_n + len > U->parena_cap, TKM_ENOMEM, "piece arena exhausted");
    memcpy(U->parena + U->parena_n, s, len);
    U->p[U->np++] = (piece_t){U->parena + U->parena_n, len, score};
    U->parena_n += len;
    return 0;
}

static int rebuild_trie(uni *U)
{
    utrie_free(&U->trie);
    const char **strs = tkmi_malloc((U->np + 1) * sizeof *strs);
    uint32_t *lens = tkmi_malloc((U->np + 1) * sizeof *lens);
    int32_t *ids = tkmi_malloc((U->np + 1) * sizeof *ids);
    int rc = (!strs || !lens || !ids) ? tkmi_error(TKM_ENOMEM, "out of memory") : 0;
    if (rc == 0 && U->np > CNODE_MAXID) /* ids take 24 bits in the trie too */
        rc = tkmi_error(TKM_EINVAL, "Unigram: %zu pieces in the lattice cache, at most %d", U->np, CNODE_MAXID);
    U->min_score = FLT_MAX;
    for (size_t i = 0; rc == 0 && i < U->np; i++) {
        strs[i] = U->p[i].s;
        lens[i] = U->p[i].len;
        ids[i] = (int32_t)i;
        if (U->p[i].score < U->min_score) U->min_score = U->p[i].score;
    }
    tkmi_ptrie pt;
    memset(&pt, 0, sizeof pt);
    if (rc == 0) rc = tkmi_ptrie_build(&pt, strs, lens, ids, U->np);
    tkmi_free(strs);
    tkmi_free(lens);
    tkmi_free(ids);
    strs = NULL;
    lens = NULL;
    ids = NULL;
    if (rc == 0) {
        utrie *t = &U->trie;
        memcpy(t->root, pt.root, sizeof t->root);
        t->n_nodes = pt.n_nodes;
        t->node = tkmi_malloc((pt.n_nodes + 1) * sizeof *t->node);
        if (!t->node) {
            rc = tkmi_error(TKM_ENOMEM, "out of memory (trie)");
        } else {
            for (size_t i = 0; i < pt.n_nodes; i++) t->node[i] = (struct unode){pt.first[i], (uint32_t)(pt.id[i] + 1) << 8};
            t->node[pt.n_nodes] = (struct unode){pt.first[pt.n_nodes], 0};
            for (size_t i = 1; i < pt.n_nodes; i++)
                for (uint32_t e = pt.first[i]; e < pt.first[i + 1]; e++) t->node[pt.echild[e]].idl |= pt.ebyte[e];
            for (int b = 0; b < 256; b++)
                if (pt.root[b] > 0) t->node[pt.root[b]].idl |= (uint32_t)b;
            /* the edges are taken over as they are (their arrays were sized
             * for one node a byte of the pieces: trimmed) */
            t->ebyte = pt.ebyte;
            t->echild = pt.echild;
            pt.ebyte = NULL;
            pt.echild = NULL;
            void *q = tkmi_realloc(t->ebyte, pt.n_edges + 1);
            if (q) t->ebyte = q;
            q = tkmi_realloc(t->echild, (pt.n_edges + 1) * sizeof *t->echild);
            if (q) t->echild = q;
            size_t nd = 0;
            for (size_t i = 1; i < t->n_nodes && nd < UTRIE_DENSE_MAX; i++)
                nd += t->node[i + 1].first - t->node[i].first >= UTRIE_DENSE;
            if (nd && !(t->dense = tkmi_malloc(nd * 256 * sizeof *t->dense))) rc = tkmi_error(TKM_ENOMEM, "out of memory (trie)");
            nd = 0;
            for (size_t i = 1; rc == 0 && i < t->n_nodes; i++) {
                uint32_t lo = t->node[i].first, hi = t->node[i + 1].first;
                if (hi - lo < UTRIE_DENSE) continue;
                if (nd == UTRIE_DENSE_MAX) { /* no table: searched */
                    t->echild[lo] = -1;
                    continue;
                }
                int32_t *d = t->dense + nd * 256;
                for (int b = 0; b < 256; b++) d[b] = -1;
                for (uint32_t e = lo; e < hi; e++) d[t->ebyte[e]] = t->echild[e];
                t->echild[lo] = (int32_t)nd++;
            }
        }
    }
    tkmi_ptrie_free(&pt);
    U->trie_stale = 0;
    tkmi_free(strs);
    tkmi_free(lens);
    tkmi_free(ids);
    return rc;
}

/* ---- lattices ---- */
typedef struct { uint32_t start, end; int32_t id; float score; } lnode;

typedef struct {
    lnode *nodes;
    size_t nn, ncap;
    double *alpha, *beta; /* E-step: mantissas (0, or in [1, 2) once complete) */
    int32_t *ealpha, *ebeta; /* and their binary exponents */
    float *best;
    int32_t *back;
    size_t pcap;
    double *pv; /* E-step: the nodes' probabilities, gathered once */
    size_t pvcap;
} scratch;

static void scratch_free(scratch *x)
{
    tkmi_free(x->nodes);
    tkmi_free(x->alpha);
    tkmi_free(x->beta);
    tkmi_free(x->ealpha);
    tkmi_free(x->ebeta);
    tkmi_free(x->best);
    tkmi_free(x->back);
    tkmi_free(x->pv);
}

static int ensure_positions(scratch *x, size_t n)
{
    if (n + 1 <= x->pcap) return 0;
    size_t c = x->pcap;
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&x->alpha, &c, n + 1, sizeof(double)));
    c = x->pcap;
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&x->beta, &c, n + 1, sizeof(double)));
    c = x->pcap;
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&x->ealpha, &c, n + 1, sizeof(int32_t)));
    c = x->pcap;
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&x->ebeta, &c, n + 1, sizeof(int32_t)));
    c = x->pcap;
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&x->best, &c, n + 1, sizeof(float)));
    c = x->pcap;
    TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&x->back, &c, n + 1, sizeof(int32_t)));
    x->pcap = c;
    return 0;
}

/* The child of node (0: the root) by byte b, or -1. A node's first child
 * is node + 1 (numbered depth first). */
static inline int32_t utrie_child(const utrie *t, int32_t node, uint8_t b)
{
    if (node == 0) return t->root[b];
    uint32_t lo = t->node[node].first, hi = t->node[node + 1].first;
    if (lo == hi) return -1;
    uint8_t l = (uint8_t)t->node[node + 1].idl; /* the first child's label */
    if (l == b) return node + 1;
    if (l > b) return -1;
    if (hi - lo >= UTRIE_DENSE && t->echild[lo] >= 0 && t->dense) return t->dense[(size_t)t->echild[lo] * 256 + b];
    lo++;
    while (lo < hi) {
        uint32_t mid = (lo + hi) >> 1;
        if (t->ebyte[mid] < b) lo = mid + 1;
        else hi = mid;
    }
    return lo < t->node[node + 1].first && t->ebyte[lo] == b ? t->echild[lo] : -1;
}

/* All pieces matching in s[0..n), in order of start then length; a char
 * with no single-char piece gets an unknown node (id -1), first among the
 * nodes at its start. `scores`: fill in the nodes' scores (Viterbi; the
 * E-step takes probabilities by id). */
static int populate(const uni *U, scratch *x, const char *s, size_t n, int scores)
{
    x->nn = 0;
    const float unk = U->min_score - 10.0f;
    const utrie *t = &U->trie;
    size_t start = 0;
    while (start < n) {
        size_t mblen = (size_t)tkmi_utf8_lead_len((uint8_t)s[start]);
        if (mblen > n - start) mblen = n - start;
        int single = 0;
        int32_t node = 0;
        size_t first = x->nn;
        for (size_t k = start; k < n; k++) {
            node = utrie_child(t, node, (uint8_t)s[k]);
            if (node < 0) break;
            int32_t id = (int32_t)(t->node[node].idl >> 8) - 1;
            if (id < 0) continue;
            if (x->nn == x->ncap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&x->nodes, &x->ncap, x->nn + 1, sizeof(lnode)));
            x->nodes[x->nn++] = (lnode){(uint32_t)start, (uint32_t)(k + 1), id, scores ? U->p[id].score : 0};
            if (k + 1 - start == mblen) single = 1;
        }
        if (!single) {
            /* first among the nodes at this start, where the character's
             * own piece would be: a cached lattice filtered after that piece
             * was removed has it there too, and the order decides rounding
             * and Viterbi ties */
            if (x->nn == x->ncap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&x->nodes, &x->ncap, x->nn + 1, sizeof(lnode)));
            memmove(x->nodes + first + 1, x->nodes + first, (x->nn - first) * sizeof *x->nodes);
            x->nodes[first] = (lnode){(uint32_t)start, (uint32_t)(start + mblen), -1, unk};
            x->nn++;
        }
        start += mblen;
    }
    return ensure_positions(x, n);
}

/* populate() for the words of a sorted run, one after the other: the walks
 * down the trie that start in the prefix a word shares with the one before
 * repeat that word's walks over the shared bytes, so those are taken from
 * it (its nodes there and the trie node where each walk crossed the end of
 * the shared prefix), and only the rest is walked. The same nodes in the
 * same order as populate(). Two starts are walked at a time, a step of
 * each in turn: a walk is a chain of dependent loads (a cache miss a trie
 * node, mostly), and two independent chains wait on their misses together;
 * each keeps its nodes and path apart (pwalk) until both are done. */
typedef struct {
    uint32_t at, steps; /* the walk's trie nodes: path[at .. at + steps) */
    uint32_t nb, ne;    /* its lattice nodes: [nb, ne) */
} pstart;
typedef struct {
    lnode *nd; /* the start's lattice nodes, the unknown one aside */
    size_t nn, ncap;
    int32_t *path; /* its walk's trie nodes */
    size_t pn, pcap;
} pwalk;
typedef struct {
    lnode *old; /* the previous word's lattice */
    size_t oldn, oldcap;
    int32_t *path[2];
    size_t pathcap[2];
    pstart *ps[2]; /* by the walk's start byte */
    size_t pscap[2];
    const char *s; /* the previous word (NULL: none) */
    size_t n;
    int cur;
    pwalk w[2]; /* the two starts walked at a time */
} pshare;

static void pshare_free(pshare *P)
{
    tkmi_free(P->old);
    for (int k = 0; k < 2; k++) {
        tkmi_free(P->path[k]);
        tkmi_free(P->ps[k]);
        tkmi_free(P->w[k].nd);
        tkmi_free(P->w[k].path);
    }
}

#define PSHARE_MAX ((size_t)1 << 16) /* longer strings: populate() (32-bit offsets in pstart) */
static int populate_next(const uni *U, scratch *x, pshare *P, const char *s, size_t n, int scores)
{
    if (n > PSHARE_MAX) { /* and the next string starts afresh */
        P->s = NULL;
        return populate(U, x, s, n, scores);
    }
    size_t L = 0;
    if (P->s) {
        size_t m = P->n < n ? P->n : n;
        while (L < m && P->s[L] == s[L]) L++;
    }
    /* the previous lattice moves aside, its buffer takes the new one */
    lnode *tn = P->old;
    size_t tc = P->oldcap;
    P->old = x->nodes;
    P->oldcap = x->ncap;
    P->oldn = x->nn;
    x->nodes = tn;
    x->ncap = tc;
    x->nn = 0;
    int o = P->cur, c = o ^ 1;
    if (n + 1 > P->pscap[c]) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&P->ps[c], &P->pscap[c], n + 1, sizeof(pstart)));
    const float unk = U->min_score - 10.0f;
    const utrie *t = &U->trie;
    const lnode *old = P->old;
    size_t pn = 0;
    for (size_t start = 0; start < n;) {
        size_t st[2], mb[2], k[2];
        int32_t node[2];
        int single[2] = {0, 0}, nw = 0, act[2] = {0, 0};
        for (size_t at = start; nw < 2 && at < n; nw++) {
            size_t mblen = (size_t)tkmi_utf8_lead_len((uint8_t)s[at]);
            st[nw] = at;
            mb[nw] = mblen > n - at ? n - at : mblen;
            at += mb[nw];
        }
        for (int w = 0; w < nw; w++) {
            pwalk *W = &P->w[w];
            W->nn = W->pn = 0;
            node[w] = 0;
            k[w] = st[w];
            if (st[w] < L) { /* the previous word's walk from here, over the shared bytes */
                const pstart *r = &P->ps[o][st[w]];
                size_t m = r->steps < L - st[w] ? r->steps : L - st[w];
                if (m > W->pcap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&W->path, &W->pcap, m, sizeof(int32_t)));
                memcpy(W->path, P->path[o] + r->at, m * sizeof(int32_t));
                W->pn = m;
                for (size_t j = r->nb; j < r->ne && old[j].end <= L; j++) {
                    if (old[j].id < 0) continue;
                    if (W->nn == W->ncap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&W->nd, &W->ncap, W->nn + 1, sizeof(lnode)));
                    W->nd[W->nn++] = old[j];
                    if (old[j].end - st[w] == mb[w]) single[w] = 1;
                }
                if (m == L - st[w]) { /* it reached the end of the shared bytes: on from there */
                    node[w] = P->path[o][r->at + m - 1];
                    k[w] = L;
                } else {
                    k[w] = n; /* it stopped inside them: here too */
                }
            }
            act[w] = k[w] < n;
        }
        while (act[0] | act[1]) {
            for (int w = 0; w < 2; w++) {
                if (!act[w]) continue;
                pwalk *W = &P->w[w];
                int32_t nx = utrie_child(t, node[w], (uint8_t)s[k[w]]);
                if (nx < 0) {
                    act[w] = 0;
                    continue;
                }
                node[w] = nx;
                if (W->pn == W->pcap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&W->path, &W->pcap, W->pn + 1, sizeof(int32_t)));
                W->path[W->pn++] = nx;
                int32_t id = (int32_t)(t->node[nx].idl >> 8) - 1;
                if (id >= 0) {
                    if (W->nn == W->ncap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&W->nd, &W->ncap, W->nn + 1, sizeof(lnode)));
                    W->nd[W->nn++] = (lnode){(uint32_t)st[w], (uint32_t)(k[w] + 1), id, scores ? U->p[id].score : 0};
                    if (k[w] + 1 - st[w] == mb[w]) single[w] = 1;
                }
                act[w] = ++k[w] < n;
            }
        }
        for (int w = 0; w < nw; w++) { /* in the order of the starts */
            const pwalk *W = &P->w[w];
            pstart *q = &P->ps[c][st[w]];
            if (pn + W->pn > P->pathcap[c])
                TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&P->path[c], &P->pathcap[c], pn + W->pn, sizeof(int32_t)));
            if (W->pn) memcpy(P->path[c] + pn, W->path, W->pn * sizeof(int32_t)); /* (a walk of none may have no buffer) */
            q->at = (uint32_t)pn;
            q->steps = (uint32_t)W->pn;
            pn += W->pn;
            if (x->nn + W->nn + 1 > x->ncap)
                TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&x->nodes, &x->ncap, x->nn + W->nn + 1, sizeof(lnode)));
            q->nb = (uint32_t)x->nn;
            if (!single[w]) /* the unknown node, first at its start, as populate() */
                x->nodes[x->nn++] = (lnode){(uint32_t)st[w], (uint32_t)(st[w] + mb[w]), -1, unk};
            if (W->nn) memcpy(x->nodes + x->nn, W->nd, W->nn * sizeof(lnode));
            x->nn += W->nn;
            q->ne = (uint32_t)x->nn;
        }
        start = st[nw - 1] + mb[nw - 1];
    }
    P->cur = c;
    P->s = s;
    P->n = n;
    return ensure_positions(x, n);
}

/* 2^d as a double, for -1022 <= d <= 1023 (exact) */
static inline double pow2i(int d)
{
    union { uint64_t u; double f; } v = {(uint64_t)(d + 1023) << 52};
    return v.f;
}

/* *a (positive, normal) becomes its mantissa in [1, 2); returns its
 * binary exponent: a multiplication by a power of two, exact */
static inline int32_t norm2(double *a)
{
    union { double f; uint64_t u; } v = {*a};
    int32_t e = (int32_t)((v.u >> 52) & 0x7FF) - 1023;
    v.u = (v.u & ~(0x7FFull << 52)) | (1023ull << 52);
    *a = v.f;
    return e;
}

/* Adds v x 2^ev to the sum m x 2^*e of a position (m = 0: empty): the
 * terms are kept at the exponent of the largest; one below 2^-1022 of it
 * is lost (it would not change the double sum either). */
static inline void sum2_add(double *m, int32_t *e, double v, int32_t ev)
{
    if (*m == 0) {
        *m = v;
        *e = ev;
        return;
    }
    int32_t d = ev - *e;
    if (d <= 0) {
        if (d >= -1022) *m += v * pow2i(d);
    } else {
        *m = (d <= 1022 ? *m * pow2i(-d) : 0) + v;
        *e = ev;
    }
}

/* Viterbi over the populated lattice: node indices of the best path are
 * left in back[] chain; returns the number of nodes (0 if no path). The
 * first candidate wins ties, as in sentencepiece. */
static size_t viterbi(scratch *x, size_t n, int32_t *path, size_t path_cap)
{
    for (size_t i = 0; i <= n; i++) { x->best[i] = -FLT_MAX; x->back[i] = -1; }
    x->best[0] = 0;
    for (size_t k = 0; k < x->nn; k++) {
        lnode *nd = &x->nodes[k];
        if (nd->start != 0 && x->back[nd->start] < 0) continue;
        float cand = x->best[nd->start] + nd->score;
        if (x->back[nd->end] < 0 || cand > x->best[nd->end]) {
            x->best[nd->end] = cand;
            x->back[nd->end] = (int32_t)k;
        }
    }
    if (x->back[n] < 0) return 0;
    size_t cnt = 0;
    for (size_t e = n; e > 0; e = x->nodes[x->back[e]].start) cnt++;
    if (cnt > path_cap) return cnt;
    size_t i = cnt;
    for (size_t e = n; e > 0; e = x->nodes[x->back[e]].start) path[--i] = x->back[e];
    return cnt;
}

/* viterbi() of a piece's lattice twice in one pass: with every node and
 * without the node (0, n, skip). That node ends at n, where no node starts,
 * so only the choice at n differs: both are kept there, each in node order
 * (the first candidate wins ties, as in two viterbi() runs). Returns the
 * path length with every node; the path without the node, if it fits in
 * path_cap, is in path and its length in *alt_len (0: none). */
static size_t viterbi_pair(scratch *x, size_t n, int32_t skip, int32_t *path, size_t path_cap, size_t *alt_len)
{
    float *best = x->best;
    int32_t *back = x->back;
    for (size_t i = 0; i < n; i++) { best[i] = -FLT_MAX; back[i] = -1; }
    best[0] = 0;
    float fw = -FLT_MAX, fo = -FLT_MAX; /* at n: with, without */
    int32_t bw = -1, bo = -1;
    for (size_t k = 0; k < x->nn; k++) {
        const lnode *nd = &x->nodes[k];
        if (nd->start != 0 && back[nd->start] < 0) continue;
        float cand = best[nd->start] + nd->score;
        if (nd->end == n) {
            if (bw < 0 || cand > fw) { fw = cand; bw = (int32_t)k; }
            if (!(nd->id == skip && nd->start == 0) && (bo < 0 || cand > fo)) { fo = cand; bo = (int32_t)k; }
        } else if (back[nd->end] < 0 || cand > best[nd->end]) {
            best[nd->end] = cand;
            back[nd->end] = (int32_t)k;
        }
    }
    *alt_len = 0;
    if (bo >= 0) {
        size_t cnt = 1;
        for (size_t e = x->nodes[bo].start; e > 0; e = x->nodes[back[e]].start) cnt++;
        *alt_len = cnt;
        if (cnt <= path_cap) {
            size_t i = cnt;
            path[--i] = bo;
            for (size_t e = x->nodes[bo].start; e > 0; e = x->nodes[back[e]].start) path[--i] = back[e];
        }
    }
    if (bw < 0) return 0;
    size_t cnt = 1;
    for (size_t e = x->nodes[bw].start; e > 0; e = x->nodes[back[e]].start) cnt++;
    return cnt;
}

/* viterbi() over a cached lattice (nodes as the cache keeps them, scores
 * from sc[id + 1], the unknown node's at sc[0]), without making it a scored
 * lattice first: the same sums in the same order, so the same path. The
 * path's pieces get cnt each in acc; returns its length (0: no path). */
static size_t viterbi_cached(scratch *x, const struct cnode *nd, size_t nn, size_t n, const float *sc, int64_t cnt,
                             int64_t *acc)
{
    float *best = x->best;
    int32_t *back = x->back;
    for (size_t i = 0; i <= n; i++) { best[i] = -FLT_MAX; back[i] = -1; }
    best[0] = 0;
    for (size_t k = 0; k < nn; k++) {
        uint32_t st = nd[k].start, en = cnode_end(nd[k]);
        if (st != 0 && back[st] < 0) continue;
        float cand = best[st] + sc[nd[k].idlen >> 8];
        if (back[en] < 0 || cand > best[en]) {
            best[en] = cand;
            back[en] = (int32_t)k;
        }
    }
    if (back[n] < 0) return 0;
    size_t len = 0;
    for (size_t e = n; e > 0; e = nd[back[e]].start) {
        int32_t id = cnode_id(nd[back[e]]);
        if (id >= 0) acc[id] += cnt;
        len++;
    }
    return len;
}

/* Word i's cached lattice (the thread's words in order, i < cut),
 * unpacked into *buf (grown to *bcap as needed), its node count in *nn.
 * With removals pending (U->pend), it is filtered on the way and written
 * back packed from node *o on, in place: a removed piece's node vanishes,
 * unless it is first at its start (the character's own piece), where it
 * becomes the unknown node, as populate() would make it. No branch a node:
 * ftab maps the codes, a removed node is written and then overwritten. */
static int cached_word(const uni *U, struct latseg *sg, size_t cut, size_t i, size_t *o, struct cnode **buf,
                       size_t *bcap, size_t *nn)
{
    size_t from = U->lat_off[i], to = i + 1 < cut ? U->lat_off[i + 1] : sg->n, m = 0;
    if (to - from > *bcap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)buf, bcap, to - from, sizeof **buf));
    struct cnode *b = *buf;
    const uint8_t *p = sg->lat + from * CNODE_BYTES;
    uint32_t cur = 0, nxt = 0;
    if (!U->pend) {
        const uint8_t *clen = U->clen;
        for (size_t k = 0; k < to - from; k++, p += CNODE_BYTES) {
            uint32_t v = cnode_load(p), code = v >> 1, len = clen[code], first = v & 1;
            cur = first ? nxt : cur;
            nxt = first ? cur + len : nxt;
            b[k] = (struct cnode){cur, (code >= CNODE_UNK ? (code - (CNODE_UNK - 1)) << 8 : 0) | len};
        }
        *nn = to - from;
        return 0;
    }
    const uint8_t *clen = U->clen_old;
    const uint32_t *ftab = U->ftab;
    uint8_t *w = sg->lat + *o * CNODE_BYTES;
    U->lat_off[i] = *o;
    for (size_t k = 0; k < to - from; k++, p += CNODE_BYTES) {
        uint32_t v = cnode_load(p), code = v >> 1, len = clen[code], first = v & 1;
        cur = first ? nxt : cur;
        nxt = first ? cur + len : nxt;
        uint32_t nc = ftab[code], gone = nc == CNODE_GONE;
        nc = gone ? len - 1 : nc;
        cnode_store(w + m * CNODE_BYTES, nc << 1 | first); /* m <= k: node k is read already */
        b[m] = (struct cnode){cur, (nc >= CNODE_UNK ? (nc - (CNODE_UNK - 1)) << 8 : 0) | len};
        m += (uint32_t)!gone | first;
    }
    *o += m;
    *nn = m;
    return 0;
}

/* The lattice populate() found (x, a word of n bytes) appended to the
 * thread's cache, packed, if it fits in lat_max nodes and packs (the
 * rule above cnode_load: each start's first node reaches the next start,
 * the unknown node has at most 4 bytes, codes fit 23 bits); returns 1 if
 * it was, 0 if not, or an error. */
static int cache_add(const uni *U, struct latseg *sg, const scratch *x, size_t n)
{
    if (sg->n + x->nn > U->lat_max) return 0;
    if (sg->n + x->nn > sg->cap) {
        size_t nc = sg->cap ? 2 * sg->cap : 65536;
        if (nc < sg->n + x->nn) nc = sg->n + x->nn;
        if (nc > U->lat_max) nc = U->lat_max;
        void *q = tkmi_realloc(sg->lat, nc * CNODE_BYTES + 1);
        TKM_RETURN_ERROR_IF(!q, TKM_ENOMEM, "out of memory (lattices)");
        sg->lat = q;
        sg->cap = nc;
        sg->lat[nc * CNODE_BYTES] = 0;
    }
    uint8_t *w = sg->lat + sg->n * CNODE_BYTES;
    uint32_t nxt = 0;
    for (size_t k = 0; k < x->nn; k++, w += CNODE_BYTES) {
        const lnode *d = &x->nodes[k];
        uint32_t len = d->end - d->start, first = k == 0 || d->start != x->nodes[k - 1].start;
        if (first) {
            if (d->start != nxt) return 0;
            nxt += len;
        }
        uint32_t code = d->id < 0 ? len - 1 : (uint32_t)d->id + CNODE_UNK;
        if (d->id < 0 ? code >= CNODE_UNK : code >= CNODE_CODES) return 0;
        cnode_store(w, code << 1 | first);
    }
    if (nxt != n) return 0;
    sg->n += x->nn;
    return 1;
}

/* At the start of a pass: clen by the codes of this pass's pieces (the
 * last pass's become clen_old) and, with removals pending, ftab from the
 * last pass's codes to this one's. */
static int lat_tables(uni *U)
{
    if (U->debug) {
        size_t nc = 0, nn = 0;
        for (int t = 0; t < U->threads; t++) {
            nc += U->lat_cut[t] - U->wsplit[t];
            nn += U->seg[t].n;
        }
        dbg(U, "  pass: %zu of %zu words cached, %zu nodes (%.0f MB)%s", nc, U->nw, nn,
            (double)nn * CNODE_BYTES / 1048576.0, U->pend ? ", filtering" : "");
    }
    tkmi_free(U->clen_old);
    tkmi_free(U->ftab);
    U->clen_old = U->clen;
    U->ftab = NULL;
    U->clen = tkmi_malloc(U->np + CNODE_UNK);
    TKM_RETURN_ERROR_IF(!U->clen, TKM_ENOMEM, "out of memory (lattices)");
    for (uint32_t c = 0; c < CNODE_UNK; c++) U->clen[c] = (uint8_t)(c + 1);
    for (size_t i = 0; i < U->np; i++) U->clen[i + CNODE_UNK] = (uint8_t)U->p[i].len;
    if (!U->pend) return 0;
    U->ftab = tkmi_malloc((U->lat_np + CNODE_UNK) * sizeof *U->ftab);
    TKM_RETURN_ERROR_IF(!U->ftab, TKM_ENOMEM, "out of memory (lattices)");
    for (uint32_t c = 0; c < CNODE_UNK; c++) U->ftab[c] = c;
    for (size_t b = 0; b < U->lat_np; b++)
        U->ftab[b + CNODE_UNK] = U->pend[b] >= 0 ? (uint32_t)U->pend[b] + CNODE_UNK : CNODE_GONE;
    return 0;
}

/* Pieces were removed (remap: index -> new index, or -1): the cache is
 * filtered by the next pass (U->pend, composed with removals still
 * pending), the pruning lattices' map follows at once. */
static int filter_lattices(uni *U, const int32_t *remap)
{
    if (!U->pend) {
        U->pend = tkmi_malloc((U->lat_np + 1) * sizeof *U->pend);
        TKM_RETURN_ERROR_IF(!U->pend, TKM_ENOMEM, "out of memory (lattices)");
        for (size_t b = 0; b < U->lat_np; b++) U->pend[b] = remap[b];
    } else {
        for (size_t b = 0; b < U->lat_np; b++)
            if (U->pend[b] >= 0) U->pend[b] = remap[U->pend[b]];
    }
    for (size_t b = 0; U->amap && b < U->an; b++)
        if (U->amap[b] >= 0) U->amap[b] = remap[U->amap[b]];
    U->trie_stale = 1;
    return 0;
}

static void update_min_score(uni *U)
{
    U->min_score = FLT_MAX;
    for (size_t i = 0; i < U->np; i++)
        if (U->p[i].score < U->min_score) U->min_score = U->p[i].score;
}

/* E-step, per thread and piece: its probability and expected count side by
 * side, so a lattice node's piece is one cache line, not two (a node's
 * lookups of these, scattered over the pieces, wait on memory) */
typedef struct { double pr; int64_t acc; } pacc_t;

/* The lattice cache's bound, lat_max nodes a thread, set once the seeds'
 * trie is built (before the first lattices): --max-memory less an eighth
 * (the C library's slack, the threads' scratch) less what EM holds beside
 * the cache: the words and lat_off, the trie, the pieces, the E-step's
 * per-thread arrays and, for pruning, the pieces' own lattices
 * (PRUNE_BYTES a piece: 233 measured at 4 GB of text); at least
 * LAT_CACHE_BYTES (which is also the bound without a limit). The cache
 * grows only as far as the lattices need, and what it holds cannot change
 * the model. TKM_LATTICE_CACHE_MAX nodes in all, internal, forces words
 * out of it in tests. */
#define PRUNE_BYTES 256
static void lat_budget(uni *U)
{
    uint64_t mm = U->o->max_memory, T = (uint64_t)U->threads, np = U->np + 1;
    uint64_t words = tkmi_uwords_bytes(&U->W) + (uint64_t)U->nw * sizeof *U->lat_off;
    uint64_t trie = (uint64_t)(U->trie.n_nodes + 1) * (sizeof *U->trie.node + 1 + sizeof *U->trie.echild) +
                    (uint64_t)UTRIE_DENSE_MAX * 256 * sizeof *U->trie.dense;
    uint64_t pieces = (uint64_t)U->pcap * sizeof *U->p + U->parena_cap;
    uint64_t pass = np * (T * sizeof(pacc_t) + 8 /* acc */ + 4 /* remap */ + 2 * (1 + 4) /* clen, ftab */) +
                    np * PRUNE_BYTES;
    uint64_t beside = words + trie + pieces + pass, room = mm - mm / 8;
    uint64_t lat_bytes = room > beside + LAT_CACHE_BYTES ? room - beside : LAT_CACHE_BYTES;
    if (lat_bytes > (uint64_t)SIZE_MAX / 2) lat_bytes = (uint64_t)SIZE_MAX / 2;
    const char *env = getenv("TKM_LATTICE_CACHE_MAX");
    U->lat_max = (env ? (size_t)strtoull(env, NULL, 10) : (size_t)lat_bytes / CNODE_BYTES) / (size_t)U->threads;
    dbg(U, "lattice cache: at most %zu nodes a thread (%.0f MB in all; beside it %.0f MB: words %.0f, trie %.0f, "
        "pieces %.0f, passes %.0f)", U->lat_max, (double)U->lat_max * (double)U->threads * CNODE_BYTES / 1048576.0,
        (double)beside / 1048576.0, (double)words / 1048576.0, (double)trie / 1048576.0, (double)pieces / 1048576.0,
        (double)pass / 1048576.0);
}

/* ---- parallel passes over the words ---- */

typedef struct {
    uni *U;
    int mode; /* 0: E-step, 1: Viterbi frequencies, 2: fill the cache only */
    int tid, nthreads;
    int64_t *acc; /* per piece, counts (Viterbi) */
    pacc_t *pa;   /* E-step: piece id at id + 1, the unknown node at 0; acc in fixed point */
    const float *sc; /* Viterbi: piece id's score at id + 1, the unknown node's at 0 (shared) */
    double obj;
    int64_t ntokens;
    int rc;
    int plain; /* E-step: every probability in [2^-100, 2^20], so estep_plain may do a word */
    int64_t n_plain, n_words; /* E-step: words done by estep_plain, words (debug) */
    double cpu, wall;         /* the thread's CPU and wall seconds in the pass (debug) */
} pass_t;

/* The E-step on one word's lattice (nodes by start, then length):
 * forward and backward sums in linear space, each position a mantissa and
 * a binary exponent (a word's path probabilities reach far below the double
 * range: a lattice position is normalized to [1, 2) once its sum is
 * complete, exactly, by its exponent), and each node's posterior times the
 * word's count added to pa[id + 1].acc in fixed point. pa[id + 1].pr is
 * piece id's probability e^score, pa[0].pr the unknown node's. Returns log Z, or
 * -INFINITY if the word has no path. Adds, multiplies and no exp or log per
 * node: the log-space version took one exp per node and a log per position
 * each way, and an exp per node for the posteriors. */
/* estep_word's sums in plain doubles, the same operations in the same order:
 * while every value involved is a normal double, scaling a term or a sum by
 * a power of two does not change its rounding, so the mantissa-and-exponent
 * sums of estep_word are these, exactly. That holds when the nodes'
 * probabilities are in [2^-100, 2^20] (the caller's `plain`) and every
 * forward and backward sum that is read (at a node's start, at a node's end,
 * and Z) is in [2^-400, 2^400] (checked here): then every
 * term is at least 2^-500, each product of the posteriors at least 2^-900
 * or the whole posterior below 0.5 (added as 0 either way), and nothing
 * overflows. Returns 0 when the check fails: nothing was added to pa, and
 * estep_word's own sums take over (long words). */
static int estep_plain(scratch *x, const struct cnode *nd, size_t nn, size_t n, pacc_t *pa, int64_t cnt, double *lz)
{
    double *fa = x->alpha, *ba = x->beta;
    const double *pv = x->pv;
    for (size_t k = 0; k <= n; k++) fa[k] = ba[k] = 0;
    fa[0] = 1;
    /* the range of the sums that are read (the nodes' starts, then Z): an
     * unreachable start (0) fails it, and estep_word's sums take over */
    double lo = 1, hi = 1;
    for (size_t k = 0; k < nn; k++) {
        double a = fa[nd[k].start];
        lo = a < lo ? a : lo;
        hi = a > hi ? a : hi;
        fa[cnode_end(nd[k])] += a * pv[k];
    }
    lo = fa[n] < lo ? fa[n] : lo;
    hi = fa[n] > hi ? fa[n] : hi;
    if (!(lo >= 0x1p-400 && hi <= 0x1p400)) return 0;
    ba[n] = 1;
    for (size_t k = nn; k-- > 0;) { /* the nodes' ends */
        double b = ba[cnode_end(nd[k])];
        lo = b < lo ? b : lo;
        hi = b > hi ? b : hi;
        ba[nd[k].start] += b * pv[k];
    }
    if (!(lo >= 0x1p-400 && hi <= 0x1p400)) return 0;
    double scale = (double)cnt * FIX_SCALE / fa[n];
    /* the unknown node's posterior goes to pa[0].acc, which nobody reads */
    for (size_t k = 0; k < nn; k++) {
        double q = fa[nd[k].start] * pv[k] * ba[cnode_end(nd[k])] * scale;
        pa[nd[k].idlen >> 8].acc += (int64_t)(q + 0.5);
    }
    if (lz) {
        double z = fa[n];
        int32_t ez = norm2(&z);
        *lz = log(z) + (double)ez * M_LN2;
    }
    return 1;
}

static double estep_word(scratch *x, const struct cnode *nd, size_t nn, size_t n, pacc_t *pa, int64_t cnt, int plain,
                         int want_lz, int64_t *n_plain)
{
    double *fa = x->alpha, *ba = x->beta, *pv = x->pv;
    int32_t *fe = x->ealpha, *be = x->ebeta;
    /* the nodes' probabilities first, one lookup a node (not three), apart
     * from the sums: the lookups, scattered over the pieces, do not wait on
     * each other */
    for (size_t k = 0; k < nn; k++) pv[k] = pa[nd[k].idlen >> 8].pr;
    double lzp = 0;
    if (plain && estep_plain(x, nd, nn, n, pa, cnt, want_lz ? &lzp : NULL)) {
        ++*n_plain;
        return lzp;
    }
    for (size_t k = 0; k <= n; k++) fa[k] = ba[k] = 0;
    fa[0] = 1;
    fe[0] = 0;
    size_t done = 0; /* forward: positions < done are complete */
    for (size_t k = 0; k < nn; k++) {
        uint32_t st = nd[k].start;
        for (; done <= st; done++)
            if (fa[done] != 0) fe[done] += norm2(&fa[done]);
        if (fa[st] == 0) continue;
        double v = fa[st] * pv[k];
        if (v != 0) sum2_add(&fa[cnode_end(nd[k])], &fe[cnode_end(nd[k])], v, fe[st]);
    }
    for (; done <= n; done++)
        if (fa[done] != 0) fe[done] += norm2(&fa[done]);
    if (fa[n] == 0) return -INFINITY;
    ba[n] = 1;
    be[n] = 0;
    done = n + 1; /* backward: positions >= done are complete */
    for (size_t k = nn; k-- > 0;) {
        uint32_t en = cnode_end(nd[k]);
        while (done > en) {
            done--;
            if (ba[done] != 0) be[done] += norm2(&ba[done]);
        }
        if (ba[en] == 0) continue;
        double v = ba[en] * pv[k];
        if (v != 0) sum2_add(&ba[nd[k].start], &be[nd[k].start], v, be[en]);
    }
    /* posteriors: alpha(start) p beta(end) / Z, times the count, 2^-24 units */
    double scale = (double)cnt * FIX_SCALE / fa[n];
    int32_t ez = fe[n];
    for (size_t k = 0; k < nn; k++) {
        uint32_t idp = nd[k].idlen >> 8, st = nd[k].start, en = cnode_end(nd[k]);
        if (idp == 0 || fa[st] == 0 || ba[en] == 0) continue;
        int32_t d = fe[st] + be[en] - ez;
        if (d < -1022) continue;
        if (d > 1023) d = 1023;
        double q = fa[st] * pv[k] * ba[en] * scale * pow2i(d);
        pa[idp].acc += (int64_t)(q + 0.5);
    }
    return want_lz ? log(fa[n]) + (double)ez * M_LN2 : 0;
}

static void *pass_main(void *arg)
{
    pass_t *P = arg;
    uni *U = P->U;
    double w0 = U->debug ? tkmi_now() : 0, c0 = U->debug ? thread_cpu() : 0;
    scratch x = {0};
    int32_t *path = NULL;
    size_t path_cap = 0;
    /* a fixed word -> thread split does not matter: sums are exact */
    size_t from = U->wsplit[P->tid], to = U->wsplit[P->tid + 1];
    struct latseg *sg = &U->seg[P->tid];
    size_t *cut = &U->lat_cut[P->tid];
    struct cnode *tmp = NULL; /* a lattice outside the cache */
    size_t tmp_cap = 0;
    size_t o = 0;             /* pending removals: the filtered cache's end */
    int moved = !U->pend;     /* sg->n is the filtered cache's end */
    pshare ps = {0};          /* the words outside the cache: the previous one's walks */
    /* populate_next pays where the walks wait on memory (a large trie: 1 GB
     * of text, 1M seeds, 14% of the words cached: round 0's E-steps 24.0 ->
     * 17.5 CPU s); over a small one its bookkeeping costs more than the
     * walks it saves (the default corpus, spm-train defaults, a 200k-node
     * cache: 6% more CPU). The same nodes either way. */
    const int share = U->trie.n_nodes >= UTRIE_SHARE_MIN;
    for (size_t i = from; i < to && P->rc == 0; i++) {
        const char *ws = word_s(U, i);
        size_t n = word_len(U, i);
        int64_t wcnt = word_cnt(U, i);
        int cached = i < *cut;
        size_t cn = 0; /* a cached lattice: its nodes, unpacked in tmp */
        if (cached) {
            if ((P->rc = cached_word(U, sg, *cut, i, &o, &tmp, &tmp_cap, &cn)) < 0) break;
        } else {
            if (!moved) { /* past the cached words: appends go after the filtered ones */
                sg->n = o;
                moved = 1;
            }
            /* not (yet) in the cache: the trie finds it; kept if it is the
             * next word of the prefix and fits */
            if (P->mode == 2 && i > *cut) break; /* the cache is full */
            P->rc = P->mode == 2 || share ? populate_next(U, &x, &ps, ws, n, P->mode == 1)
                                          : populate(U, &x, ws, n, P->mode == 1);
            if (P->rc < 0) break;
            if (i == *cut) {
                size_t at = sg->n;
                int r = cache_add(U, sg, &x, n);
                if (r < 0) { P->rc = r; break; }
                if (r) {
                    U->lat_off[i] = at;
                    (*cut)++;
                }
            }
        }
        if (cached && (P->rc = ensure_positions(&x, n)) < 0) break;
        if (P->mode == 2) continue;
        if (P->mode == 0) {
            if (!cached) {
                if (x.nn > tmp_cap) {
                    void *q = tkmi_realloc(tmp, x.nn * sizeof *tmp);
                    if (!q) { P->rc = tkmi_error(TKM_ENOMEM, "out of memory (lattices)"); break; }
                    tmp = q;
                    tmp_cap = x.nn;
                }
                for (size_t k = 0; k < x.nn; k++) tmp[k] = cnode_make(x.nodes[k].start, x.nodes[k].end, x.nodes[k].id);
                cn = x.nn;
            }
            const struct cnode *nd = tmp;
            size_t nn = cn;
            if (nn > x.pvcap && (P->rc = tkmi_grow((void **)&x.pv, &x.pvcap, nn, sizeof *x.pv)) < 0) break;
            double lz = estep_word(&x, nd, nn, n, P->pa, wcnt, P->plain, U->debug, &P->n_plain);
            P->n_words++;
            if (lz > -INFINITY) P->obj -= lz * (double)wcnt;
        } else {
            if (cached) {
                P->ntokens += (int64_t)viterbi_cached(&x, tmp, cn, n, P->sc, wcnt, P->acc) * wcnt;
                continue;
            }
            size_t cnt = viterbi(&x, n, path, path_cap);
            if (cnt > path_cap) {
                if ((P->rc = tkmi_grow((void **)&path, &path_cap, cnt, sizeof *path)) < 0) break;
                cnt = viterbi(&x, n, path, path_cap);
            }
            for (size_t k = 0; k < cnt; k++) {
                int32_t id = x.nodes[path[k]].id;
                if (id >= 0) P->acc[id] += wcnt;
            }
            P->ntokens += (int64_t)cnt * wcnt;
        }
    }
    if (!moved && P->rc == 0) sg->n = o; /* every word of the range was cached */
    if (U->debug) {
        P->cpu = thread_cpu() - c0;
        P->wall = tkmi_now() - w0;
    }
    scratch_free(&x);
    pshare_free(&ps);
    tkmi_free(path);
    tkmi_free(tmp);
    return NULL;
}

/* TKM_DEBUG_UNIGRAM: each thread's CPU and wall seconds in a pass (is one
 * idle while another finishes?) */
static void dbg_threads(const uni *U, const char *what, const pass_t *P, int T)
{
    if (!U->debug) return;
    char tl[512];
    size_t k = 0;
    for (int t = 0; t < T && k + 64 < sizeof tl; t++)
        k += (size_t)snprintf(tl + k, sizeof tl - k, "%s%.2f/%.2f", t ? ", " : "", P[t].cpu, P[t].wall);
    dbg(U, "  %s: threads' CPU/wall s %s", what, tl);
}

/* Runs a pass; out[i] receives the summed accumulator of piece i. */
static int run_pass(uni *U, int mode, int64_t *out, double *obj)
{
    int T = U->threads;
    pass_t *P = tkmi_calloc((size_t)T, sizeof *P);
    TKM_RETURN_ERROR_IF(!P, TKM_ENOMEM, "out of memory");
    int rc = 0;
    /* without a cache (the first E-step, over the seeds), the lattices found
     * are kept: the M-step then only filters them */
    if (!U->have_lat) {
        TKM_RETURN_ERROR_IF(U->np > CNODE_MAXID, TKM_EINVAL, "Unigram: %zu pieces in the lattice cache, at most %d",
                            U->np, CNODE_MAXID);
        U->lat_off = tkmi_malloc((U->nw + 1) * sizeof *U->lat_off);
        if (!U->lat_off) rc = tkmi_error(TKM_ENOMEM, "out of memory (lattices)");
        for (int t = 0; t < T; t++) U->lat_cut[t] = U->wsplit[t];
        U->have_lat = 1;
        /* fill the cache first, then free the seeds' trie (the largest) if
         * every word is in it, before the E-step's arrays are allocated */
        for (int t = 0; rc == 0 && t < T; t++) P[t] = (pass_t){U, 2, t, T, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0};
        if (rc == 0) par_run(P, T, sizeof *P, pass_main);
        for (int t = 0; t < T; t++)
            if (P[t].rc < 0 && rc == 0) rc = P[t].rc;
        int all = 1;
        for (int t = 0; t < T; t++) all &= U->lat_cut[t] == U->wsplit[t + 1];
        if (all) utrie_free(&U->trie);
        if (rc == 0) dbg_threads(U, "lattices found", P, T);
        if (rc == 0) dbg(U, "  lattices of %zu words found", U->nw);
    }
    int uncached = 0;
    for (int t = 0; t < T; t++) uncached |= U->lat_cut[t] < U->wsplit[t + 1];
    if (rc == 0 && uncached && (U->trie_stale || !U->trie.node)) rc = rebuild_trie(U); /* words outside the cache walk it */
    for (int t = 0; t < T; t++) {
        P[t] = (pass_t){U, mode, t, T, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0};
        if (mode == 0) {
            P[t].pa = tkmi_malloc((U->np + 1) * sizeof *P[t].pa);
            if (!P[t].pa) rc = tkmi_error(TKM_ENOMEM, "out of memory");
            else if (t == 0) {
                P[t].pa[0] = (pacc_t){exp((double)(U->min_score - 10.0f)), 0}; /* the unknown node, as populate() scores it */
                for (size_t i = 0; i < U->np; i++) P[t].pa[i + 1] = (pacc_t){exp((double)U->p[i].score), 0};
            } else if (P[0].pa) {
                memcpy(P[t].pa, P[0].pa, (U->np + 1) * sizeof *P[t].pa);
            }
            if (P[t].pa) {
                int plain = 1;
                for (size_t i = 0; i <= U->np; i++)
                    plain &= P[t].pa[i].pr >= 0x1p-100 && P[t].pa[i].pr <= 0x1p20;
                P[t].plain = plain && !U->estep_exact;
            }
        } else {
            P[t].acc = t == 0 ? out : tkmi_calloc(U->np + 1, sizeof(int64_t));
            if (!P[t].acc) rc = tkmi_error(TKM_ENOMEM, "out of memory");
        }
    }
    memset(out, 0, U->np * sizeof *out);
    float *sc = NULL;
    if (rc == 0 && mode == 1) {
        sc = tkmi_malloc((U->np + 1) * sizeof *sc);
        if (!sc) rc = tkmi_error(TKM_ENOMEM, "out of memory");
        else {
            sc[0] = U->min_score - 10.0f; /* the unknown node, as populate() scores it */
            for (size_t i = 0; i < U->np; i++) sc[i + 1] = U->p[i].score;
            for (int t = 0; t < T; t++) P[t].sc = sc;
        }
    }
    if (rc == 0) rc = lat_tables(U);
    if (rc == 0) par_run(P, T, sizeof *P, pass_main);
    if (rc == 0) dbg_threads(U, mode == 0 ? "E-step" : "Viterbi pass", P, T);
    tkmi_free(sc);
    if (U->pend) { /* the pass applied the pending removals */
        tkmi_free(U->pend);
        U->pend = NULL;
        for (int t = 0; t < T; t++) { /* give back what the seeds' lattices took beyond the rest */
            struct latseg *sg = &U->seg[t];
            if (sg->n + sg->n / 8 >= sg->cap) continue;
            void *q = tkmi_realloc(sg->lat, (sg->n + 1) * CNODE_BYTES + 1);
            if (q) { sg->lat = q; sg->cap = sg->n + 1; }
        }
    }
    U->lat_np = U->np;
    U->lat_n = 0;
    for (int t = 0; t < T; t++) U->lat_n += U->seg[t].n;
    double o = 0;
    for (int t = 0; t < T; t++) {
        if (P[t].rc < 0 && rc == 0) rc = P[t].rc;
        if (t > 0 && P[t].acc) {
            for (size_t i = 0; i < U->np; i++) out[i] += P[t].acc[i];
            tkmi_free(P[t].acc);
        }
        if (P[t].pa) {
            for (size_t i = 0; i < U->np; i++) out[i] += P[t].pa[i + 1].acc;
            tkmi_free(P[t].pa);
        }
        o += P[t].obj;
        if (t == 0) U->n_plain = U->n_words = 0;
        U->n_plain += P[t].n_plain;
        U->n_words += P[t].n_words;
    }
    if (obj) *obj = o;
    tkmi_free(P);
    return rc;
}

static double digamma(double x)
{
    double r = 0.0;
    for (; x < 7; ++x) r -= 1 / x;
    x -= 0.5;
    double xx = 1.0 / x, xx2 = xx * xx, xx4 = xx2 * xx2;
    r += log(x) + (1.0 / 24.0) * xx2 - (7.0 / 960.0) * xx4 + (31.0 / 8064.0) * xx4 * xx2 - (127.0 / 30720.0) * xx4 * xx4;
    return r;
}

/* M-step: drop pieces with expected count < 0.5, scores by digamma. */
static void m_step(uni *U, const int64_t *fix, int32_t *remap)
{
    double sum = 0;
    size_t k = 0;
    for (size_t i = 0; i < U->np; i++) {
        double f = (double)fix[i] / FIX_SCALE;
        remap[i] = -1;
        if (f < 0.5) continue;
        remap[i] = (int32_t)k;
        U->p[k] = U->p[i];
        U->p[k].score = (float)f; /* temporarily the count */
        sum += f;
        k++;
    }
    U->np = k;
    double ls = digamma(sum);
    for (size_t i = 0; i < U->np; i++) U->p[i].score = (float)(digamma((double)U->p[i].score) - ls);
}

typedef struct { int32_t id; double key; } rank_t;

static int cmp_rank_desc(const void *a, const void *b)
{
    const rank_t *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}
/* its key for tkmi_rsort (lib/radix.c): the double's bits made to order as
 * the values do (0 and -0 alike), descending, then the id */
static void rank_key(const void *item, tkmi_rkey *k)
{
    const rank_t *r = item;
    double d = r->key == 0 ? 0.0 : r->key;
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    u = u >> 63 ? ~u : u | 1ull << 63;
    k->hi = ~u;
    k->lo = (uint64_t)(uint32_t)r->id;
}

/* For pieces [from, to): keep[i] = 0 if the piece's own best segmentation
 * is split; alt[i] = its best segmentation without itself (nalt[i] pieces),
 * none if there is none. Each piece is independent: threads take ranges.
 * The first time (ainv NULL) the pieces' lattices are found with the trie
 * and kept in buf (aoff[i]: piece i's first node there); later they come
 * from U->abuf, the build-time piece of current piece i being ainv[i]. */
typedef struct {
    const uni *U;
    size_t from, to;
    int8_t *keep;
    int32_t **alt;
    uint8_t *nalt;
    const int32_t *ainv;
    const int32_t *order; /* the first time: pieces [from, to) by their strings */
    struct cnode *buf;
    size_t bn, bcap;
    size_t *aoff;
    int rc;
} altjob;

/* Piece i's lattice from the pruning cache, as populate() would find it
 * with the current pieces: removed pieces vanish, except that a removed
 * single-character piece becomes the unknown node (see cached_word). */
static int alt_from_cache(const uni *U, scratch *x, int32_t b, size_t i)
{
    int t = 0;
    while ((size_t)b >= U->asplit[t + 1]) t++;
    const struct cnode *lat = U->abuf[t];
    size_t a = U->aoff[b], e = (size_t)b + 1 < U->asplit[t + 1] ? U->aoff[b + 1] : U->abn[t], n = U->p[i].len;
    const uint8_t *s = (const uint8_t *)U->p[i].s;
    if (e - a > x->ncap) TKM_FORWARD_IF_ERROR(tkmi_grow((void **)&x->nodes, &x->ncap, e - a, sizeof(lnode)));
    const float unk = U->min_score - 10.0f;
    size_t o = 0;
    for (size_t k = a; k < e; k++) {
        struct cnode c = lat[k];
        int32_t id = cnode_id(c);
        if (id >= 0 && (id = U->amap[id]) < 0) {
            size_t mb = (size_t)tkmi_utf8_lead_len(s[c.start]);
            if (mb > n - c.start) mb = n - c.start;
            if ((c.idlen & 0xFF) != mb) continue;
        }
        x->nodes[o++] = (lnode){c.start, cnode_end(c), id, id >= 0 ? U->p[id].score : unk};
    }
    x->nn = o;
    return ensure_positions(x, n);
}

/* The first time, the pieces go in the order of their strings (J->order),
 * so that each one's lattice is found from the one before (populate_next:
 * sorted neighbours share their first bytes) and the trie's nodes they
 * walk are the ones just walked; their lattices are then put in the order
 * of the pieces, as alt_from_cache reads them. */
static void *alt_main(void *arg)
{
    altjob *J = arg;
    const uni *U = J->U;
    int32_t path[64];
    scratch x = {0};
    pshare ps = {0};
    size_t cnt = J->to - J->from;
    uint32_t *nn = NULL; /* the first time: each piece's lattice nodes */
    if (!J->ainv && cnt && !(nn = tkmi_malloc(cnt * sizeof *nn))) J->rc = tkmi_error(TKM_ENOMEM, "out of memory");
    for (size_t q = 0; J->rc == 0 && q < cnt; q++) {
        size_t i = J->order ? (size_t)J->order[q] : J->from + q;
        J->keep[i] = 1;
        if (J->ainv) {
            if ((J->rc = alt_from_cache(U, &x, J->ainv[i], i)) < 0) break;
        } else {
            if ((J->rc = populate_next(U, &x, &ps, U->p[i].s, U->p[i].len, 1)) < 0) break;
            if (J->bn + x.nn > J->bcap &&
                (J->rc = tkmi_grow((void **)&J->buf, &J->bcap, J->bn + x.nn, sizeof *J->buf)) < 0)
                break;
            J->aoff[i] = J->bn;
            nn[i - J->from] = (uint32_t)x.nn;
            for (size_t k = 0; k < x.nn; k++) J->buf[J->bn++] = cnode_make(x.nodes[k].start, x.nodes[k].end, x.nodes[k].id);
        }
        /* with itself, and without: the same lattice less the node (0,
         * len, i), which is there (a single character's own node stands for
         * its unknown node, which is then left out too) */
        size_t c;
        if (viterbi_pair(&x, U->p[i].len, (int32_t)i, path, 64, &c) >= 2) { J->keep[i] = 0; continue; }
        if (c == 0 || c > 64) continue; /* no alternative: always kept */
        J->alt[i] = tkmi_malloc(c * sizeof(int32_t));
        if (!J->alt[i]) { J->rc = tkmi_error(TKM_ENOMEM, "out of memory"); break; }
        for (size_t k = 0; k < c; k++) J->alt[i][k] = x.nodes[path[k]].id;
        J->nalt[i] = (uint8_t)c;
    }
    if (J->rc == 0 && nn && J->order) { /* the lattices in the order of the pieces */
        struct cnode *b = tkmi_malloc((J->bn + 1) * sizeof *b);
        if (!b) J->rc = tkmi_error(TKM_ENOMEM, "out of memory (lattices)");
        for (size_t i = J->from, w = 0; b && i < J->to; i++) {
            memcpy(b + w, J->buf + J->aoff[i], nn[i - J->from] * sizeof *b);
            J->aoff[i] = w;
            w += nn[i - J->from];
        }
        if (b) {
            tkmi_free(J->buf);
            J->buf = b;
            J->bcap = J->bn + 1;
        }
    }
    tkmi_free(nn);
    pshare_free(&ps);
    scratch_free(&x);
    return NULL;
}

/* keep[], alt[], nalt[] of every piece (alt_main on the threads); the first
 * time, the pieces' lattices are found with the trie and kept for the next
 * prunings: pieces are only removed, so a lattice is filtered, not found
 * again (nor is the trie rebuilt for it) */
static int alternatives(uni *U, int8_t *keep, int32_t **alt, uint8_t *nalt)
{
    size_t np = U->np;
    int T = U->threads, rc = 0;
    int32_t *ainv = NULL;
    int build = !U->alat_have;
    if (build) {
        TKM_RETURN_ERROR_IF(np > CNODE_MAXID, TKM_EINVAL, "Unigram: %zu pieces in the lattice cache, at most %d", np,
                            CNODE_MAXID);
        if (U->trie_stale || !U->trie.node) TKM_FORWARD_IF_ERROR(rebuild_trie(U));
        U->aoff = tkmi_malloc((np + 1) * sizeof *U->aoff);
        U->amap = tkmi_malloc((np + 1) * sizeof *U->amap);
        TKM_RETURN_ERROR_IF(!U->aoff || !U->amap, TKM_ENOMEM, "out of memory (lattices)");
        U->an = np;
        for (size_t i = 0; i < np; i++) U->amap[i] = (int32_t)i;
    } else {
        ainv = tkmi_malloc((np + 1) * sizeof *ainv);
        TKM_RETURN_ERROR_IF(!ainv, TKM_ENOMEM, "out of memory");
        for (size_t b = 0; b < U->an; b++)
            if (U->amap[b] >= 0) ainv[U->amap[b]] = (int32_t)b;
    }
    altjob J[64];
    for (int t = 0; t < T; t++)
        J[t] = (altjob){U, np * (size_t)t / (size_t)T, np * (size_t)(t + 1) / (size_t)T, keep, alt, nalt, ainv,
                        NULL, NULL, 0, 0, U->aoff, 0};
    /* the first time: the pieces by their strings, the trie's nodes in
     * order (numbered depth first, edges by byte); each job takes its own */
    int32_t *order = NULL;
    if (build && (order = tkmi_malloc((np + 1) * sizeof *order)) != NULL) {
        size_t no = 0, at[64];
        for (int t = 0; t < T; t++) at[t] = J[t].from;
        for (size_t k = 0; k < U->trie.n_nodes; k++) {
            int32_t id = (int32_t)(U->trie.node[k].idl >> 8) - 1;
            if (id < 0 || (size_t)id >= np) continue;
            int t = 0;
            while ((size_t)id >= J[t].to) t++;
            if (at[t] < J[t].to) order[at[t]++] = id;
            no++;
        }
        if (no == np) /* each piece once (else: in the order of ids) */
            for (int t = 0; t < T; t++) J[t].order = order + J[t].from;
    }
    par_run(J, T, sizeof *J, alt_main);
    tkmi_free(order);
    for (int t = 0; t < T; t++)
        if (J[t].rc < 0 && rc == 0) rc = J[t].rc;
    if (build && rc == 0) { /* each job's lattices stay in its buffer, trimmed */
        for (int t = 0; t < T; t++) {
            U->asplit[t] = J[t].from;
            U->abn[t] = J[t].bn;
            U->abuf[t] = J[t].buf;
            J[t].buf = NULL;
            if (U->abn[t] + 1 < J[t].bcap) {
                void *q = tkmi_realloc(U->abuf[t], (U->abn[t] + 1) * sizeof *U->abuf[t]);
                if (q) U->abuf[t] = q;
            }
        }
        U->asplit[T] = np;
        U->an_t = T;
        U->alat_have = 1;
    }
    for (int t = 0; t < T; t++) tkmi_free(J[t].buf);
    tkmi_free(ainv);
    return rc;
}

/* Pruning (sentencepiece's PruneSentencePieces): a piece whose own best
 * segmentation is split, or that never occurs in the Viterbi segmentation
 * of the corpus, goes; the others are ranked by the likelihood lost when
 * their occurrences are replaced by their second-best segmentation. */
static int prune(uni *U, size_t desired, int32_t *remap)
{
    size_t np = U->np;
    int8_t *keep = tkmi_malloc(np + 1);
    int32_t **alt = tkmi_calloc(np + 1, sizeof *alt);
    uint8_t *nalt = tkmi_calloc(np + 1, 1);
    int64_t *freq = tkmi_malloc((np + 1) * sizeof *freq);
    rank_t *cand = tkmi_malloc((np + 1) * sizeof *cand);
    piece_t *np_list = tkmi_malloc((np + 1) * sizeof *np_list);
    int rc = (!keep || !alt || !nalt || !freq || !cand || !np_list) ? tkmi_error(TKM_ENOMEM, "out of memory") : 0;
    for (size_t i = 0; i < np; i++) remap[i] = -1;
    if (rc == 0) rc = alternatives(U, keep, alt, nalt);
    dbg(U, "  alternatives of %zu pieces", np);
    if (rc == 0) rc = run_pass(U, 1, freq, NULL);
    dbg(U, "  Viterbi pass");
    size_t nk = 0, nc = 0;
    if (rc == 0) {
        double sum = 0, vsum = 0;
        for (size_t i = 0; i < np; i++) sum += (double)freq[i];
        for (size_t i = 0; i < U->nw; i++) vsum += (double)word_cnt(U, i);
        double logsum = log(sum);
        for (size_t i = 0; i < np; i++) {
            if (freq[i] == 0 || !keep[i]) continue;
            if (!nalt[i]) { remap[i] = (int32_t)nk; np_list[nk++] = U->p[i]; continue; }
            double F = (double)freq[i] / vsum;
            double lp = log((double)freq[i]) - logsum;
            double logsum_alt = log(sum + (double)freq[i] * (nalt[i] - 1));
            double lpa = 0;
            for (int k = 0; k < nalt[i]; k++) {
                int32_t a = alt[i][k];
                lpa += log((double)(a >= 0 ? freq[a] : 0) + (double)freq[i]) - logsum_alt;
            }
            cand[nc++] = (rank_t){(int32_t)i, F * (lp - lpa)};
        }
        size_t pruned = (size_t)((double)U->o->shrinking_factor * (double)np);
        if (pruned < desired) pruned = desired;
        tkmi_rsort(cand, nc, sizeof *cand, rank_key, cmp_rank_desc);
        for (size_t k = 0; k < nc && nk < pruned; k++) {
            remap[cand[k].id] = (int32_t)nk;
            np_list[nk++] = U->p[cand[k].id];
        }
        memcpy(U->p, np_list, nk * sizeof *np_list);
        U->np = nk;
    }
    for (size_t i = 0; i < np; i++) tkmi_free(alt[i]);
    tkmi_free(alt);
    tkmi_free(nalt);
    tkmi_free(keep);
    tkmi_free(freq);
    tkmi_free(cand);
    tkmi_free(np_list);
    return rc;
}

/* ---- seeds: substrings of the words, weighted by counts ----
 *
 * sentencepiece's seeds are the nodes of a suffix tree over the corpus: the
 * substrings that occur at least twice and are right-branching (followed by
 * at least two different characters), scored frequency x length, the best
 * seed_size kept. Here the same candidates are found over the unique words:
 * every substring of a word that is a valid piece (2 to max_piece_length
 * characters) is counted exactly with the word's count, and remembers the
 * first character that followed it (or the end of the word); a second,
 * different follower marks it branching. Only branching substrings counted at
 * least twice are candidates (a substring that is always followed by the same
 * character is a prefix of a longer candidate, and would crowd the seeds with
 * every piece of long repeated runs, as it did with Japanese text).
 *
 * Counts are exact: earlier versions dropped rare entries when a table was
 * full (lossy counting), which favoured the words counted last (Japanese
 * runs, which sort after Latin words) and lost most Latin seeds beyond a few
 * dozen MB. Memory is bounded by passes instead: the substrings are split by
 * hash into G groups and one group is counted per pass (G doubles, and the
 * counting restarts, when a pass outgrows seed_table_max entries); after each
 * pass the candidates are cut back to the best seed_size. Within a pass,
 * SEED_PARTS tables are chosen by hash and each is owned by one thread that
 * sees the words in sorted order, so neither the thread count nor G changes
 * the seeds (the order below is total).
 *
 * Only the best seed_size scores matter, and beyond a few tens of MB most
 * candidates seen twice are far below them: with a score floor (a lower
 * bound on the seed_size-th score, seed_floor) counting skips every
 * substring whose count-min bound x characters is below it. What reaches
 * the floor is still counted at every occurrence, so the seeds are those of
 * counting everything (1 GB generated: 49M candidates seen twice, 1.7M
 * counted, one pass, no runs on disk). */
#define SEED_PARTS 16
#define SEED_ROUTE_MAX 4096                 /* groups routed to runs, at most */
#define SEED_ROUTE_BYTES ((size_t)8 << 20) /* a thread's run buffers */
/* 24 bytes: the string's 64-bit hash; its first occurrence in the word
 * arena (offset << 24 | bytes << 1 | branching); its count (high 48 bits,
 * saturating) and a 16-bit hash of its first follower (0: end of word) */
typedef tkmi_sslot sslot;
#define SS_OFF(e) ((e)->where >> 24)
#define SS_LEN(e) ((uint32_t)((e)->where >> 1) & 0x7FFFFF)
#define SS_BRANCH(e) ((e)->where & 1)
#define SS_COUNT(e) ((int64_t)((e)->cnt_next >> 16))
#define SS_NEXT(e) ((uint16_t)(e)->cnt_next)
#define SS_COUNT_MAX ((1ull << 48) - 1)
typedef struct {
    sslot *s;
    size_t cap, n, max; /* max: entries allowed in this pass */
    int full;
} stab;

static int stab_resize(stab *t, size_t cap)
{
    TKMI_RESIZE(sslot, s, s->cnt_next, s->hash, t->s, t->cap, cap, tkmi_calloc_touched(cap, sizeof *t->s),
                "seed table");
    return 0;
}

/* Adds an occurrence (or, merging tables, an entry): `where` as in sslot
 * (its branch bit set if this occurrence ends the word, or the entry
 * branches), c occurrences, `next` the follower's hash. A string is
 * branching once it has been followed by two different characters or by the
 * end of a word, whatever the order of the occurrences. */
static int stab_add(stab *t, uint64_t where, uint64_t h, int64_t c, uint16_t next)
{
    size_t mask = t->cap - 1, i = h & mask;
    uint32_t len = (uint32_t)(where >> 1) & 0x7FFFFF;
    while (t->s[i].cnt_next) {
        sslot *e = &t->s[i];
        /* the 64-bit hash and the length stand for the string: a collision
         * (about n^2 / 2^65 for n substrings: 1e-6 for 10 million) would
         * only add one substring's count to another's seed score */
        if (e->hash == h && SS_LEN(e) == len) {
            uint64_t n = (e->cnt_next >> 16) + (uint64_t)c;
            if (n > SS_COUNT_MAX) n = SS_COUNT_MAX;
            e->where |= (SS_NEXT(e) != next) | (where & 1);
            e->cnt_next = n << 16 | SS_NEXT(e);
            return 0;
        }
        i = (i + 1) & mask;
    }
    if (t->n >= t->max) { /* this pass does not fit: the caller splits more */
        t->full = 1;
        return 0;
    }
    uint64_t n = (uint64_t)c > SS_COUNT_MAX ? SS_COUNT_MAX : (uint64_t)c;
    t->s[i] = (sslot){h, where, n << 16 | next};
    t->n++;
    if (t->n * 4 > t->cap * 3) TKM_FORWARD_IF_ERROR(stab_resize(t, t->cap * 2));
    return 0;
}

/* The passes over the words: SEED_HLL estimates how many distinct
 * candidates there are; SEED_MARK adds every candidate's occurrences (the
 * word's count) to a count-min sketch (16-bit counters, saturating; two a
 * candidate, chosen by its hash in one 64-byte block: the smaller of the
 * two is at least the candidate's count); SEED_COUNT counts exactly
 * the candidates the sketch lets through. The count of an extension of a
 * substring is at most the substring's (an occurrence of the longer string
 * is one of the shorter), so a start's bound `u` is the smallest sketch
 * value of its prefixes so far: counting stops extending a start when u < 2
 * (seen once: so is every extension; most long substrings of rare words are
 * never hashed into a table), and, with a score floor `prune` (a lower
 * bound on the seed_size-th best score, make_seeds), skips a substring whose
 * u x characters is below it and stops when no extension within the word
 * and max_piece_length can reach it. A substring whose score reaches the
 * floor is thus counted at every occurrence, exactly. The counters are
 * added with atomic compare-and-swap and saturate (a sum capped at 65535 in
 * any order): the sketch does not depend on the order, and the seeds depend
 * only on exact counts. */
enum { SEED_HLL, SEED_MARK, SEED_COUNT };
typedef struct {
    const uni *U;
    stab *parts;
    int tid, nthreads, mode;
    size_t wfrom, wto;       /* the words this job reads */
    uint32_t group, ngroups; /* this pass counts the substrings of one hash group */
    uint8_t *hll;            /* SEED_HLL: this job's registers */
    uint16_t *cms;           /* SEED_MARK, SEED_COUNT: the sketch */
    uint64_t cmask;          /* its 32-counter blocks - 1 */
    uint32_t ccap;           /* SEED_MARK: where the counters stop (CMS_MAX, or 2 when only "seen twice" is asked) */
    int64_t prune;           /* SEED_COUNT: the score floor (0: none) */
    tkmi_sruns *runs;        /* SEED_COUNT: the other groups' occurrences go there */
    int rc;
    int two; /* the sketch holds 2-bit counters (cms2_*: only "seen twice" is asked) */
} seed_job;

/* a job over the words of the thread's byte range; counting (parts set),
 * into the thread's own tables */
static seed_job seed_job_range(const uni *U, int tid, int nthreads, int mode, uint8_t *hll, uint16_t *cms,
                               uint64_t cmask)
{
    return (seed_job){U, NULL, tid, nthreads, mode, U->wsplit[tid], U->wsplit[tid + 1], 0, 1, hll, cms, cmask,
                      0xFFFF /* CMS_MAX */, 0, NULL, 0, 0};
}

#define CMS_MAX 0xFFFF
/* a hash's two counters: two different ones of a 64-byte block of 32, so
 * that a probe costs one cache miss (cmask: blocks - 1) */
static inline uint64_t cms_bi(uint64_t h, uint64_t cmask) { return (h >> 24 | h << 40) & cmask; }
static inline uint16_t *cms_block(uint16_t *cms, uint64_t h, uint64_t cmask) { return cms + (cms_bi(h, cmask) << 5); }
static inline unsigned cms_a(uint64_t h) { return (unsigned)(h >> 10) & 31; }
static inline unsigned cms_b(uint64_t h) { return cms_a(h) ^ (1 + ((unsigned)(h >> 15) & 15)); }
/* The 2-bit sketch, when counting asks only whether a candidate was seen
 * twice (no score floor): the same blocks of 32 counters and the same two
 * counters a hash, each counter 2 bits saturating at 2 (0, 1, 2: what a
 * 16-bit counter capped at 2 holds), a block one 64-bit word. A quarter of
 * the memory a counter (an eighth of the bytes a block): make_seeds gives
 * it more counters, so fewer substrings seen once pass it. */
static inline uint64_t *cms2_block(uint16_t *cms, uint64_t h, uint64_t cmask)
{
    return (uint64_t *)(void *)cms + cms_bi(h, cmask);
}
static inline uint32_t cms2_min(uint64_t w, uint64_t h)
{
    uint32_t x = (uint32_t)(w >> (2 * cms_a(h))) & 3, y = (uint32_t)(w >> (2 * cms_b(h))) & 3;
    return x < y ? x : y;
}
/* adds n to both counters of h, each saturating at 2, in one word */
static inline void cms2_add(uint64_t *blk, uint64_t h, int64_t n)
{
    unsigned a = 2 * cms_a(h), b = 2 * cms_b(h);
    uint64_t v = __atomic_load_n(blk, __ATOMIC_RELAXED);
    for (;;) {
        uint64_t x = v >> a & 3, y = v >> b & 3;
        if (x >= 2 && y >= 2) return;
        x = (uint64_t)n >= 2 - x ? 2 : x + (uint64_t)n;
        y = (uint64_t)n >= 2 - y ? 2 : y + (uint64_t)n;
        uint64_t nv = (v & ~(3ull << a) & ~(3ull << b)) | x << a | y << b;
        if (__atomic_compare_exchange_n(blk, &v, nv, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) return;
    }
}
/* the smaller of h's two counters, in either sketch */
static inline uint32_t cms_get(const uint16_t *cms, uint64_t h, uint64_t cmask, int two)
{
    if (two) return cms2_min(*cms2_block((uint16_t *)cms, h, cmask), h);
    const uint16_t *blk = cms_block((uint16_t *)cms, h, cmask);
    return blk[cms_a(h)] < blk[cms_b(h)] ? blk[cms_a(h)] : blk[cms_b(h)];
}
static inline const void *cms_at(const uint16_t *cms, uint64_t h, uint64_t cmask, int two)
{
    return two ? (const void *)cms2_block((uint16_t *)cms, h, cmask) : (const void *)cms_block((uint16_t *)cms, h, cmask);
}
/* adds n, saturating at cap (the same cap for every add: the sum is
 * min(cap, total) in any order); a counter at cap is only read */
static inline void cms_add(uint16_t *c, int64_t n, uint32_t cap)
{
    uint16_t v = __atomic_load_n(c, __ATOMIC_RELAXED);
    while (v < cap) {
        uint16_t nv = (uint64_t)n >= (uint64_t)(cap - v) ? (uint16_t)cap : (uint16_t)(v + n);
        if (__atomic_compare_exchange_n(c, &v, nv, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) break;
    }
}

#define HLL_BITS 12 /* 4096 registers: about 1.6% standard error */

enum { CH_WS = 1, CH_DIGIT = 2 };

/* the classes of a character for the validity rules: CH_ flags and its
 * script (-1: any, digits that join; -2: the whitespace mark) */
static inline void seed_class(const tkm_train_options *o, int32_t cp, uint8_t *fl, int16_t *sc)
{
    if (cp == (int32_t)TKMI_WS_CP) {
        *fl = CH_WS;
        *sc = -2;
        return;
    }
    int dig = tkmi_is_decimal_digit((uint32_t)cp);
    *fl = dig ? CH_DIGIT : 0;
    *sc = (int16_t)((dig && !o->split_by_number) ? -1 : tkmi_script((uint32_t)cp));
}

/* A start's substring as it grows: characters so far and the state of the
 * rules; wv: the substring is a valid piece (else only an extension may be) */
typedef struct { int len, prev, all_ws, has_digit, wv; } sgrow;
#define SGROW_INIT {0, -2, 1, 0, 1}
/* Extends the substring at character ci by character cj, while it stays a
 * valid piece (sentencepiece's IsValidSentencePiece; each rule, once
 * broken, stays broken): -1 when neither it nor any extension is one. It
 * reads characters ci..cj only, so a substring's candidate prefixes are the
 * same in every word that holds it. */
static inline __attribute__((always_inline)) int seed_grow(const tkm_train_options *o, int wsm, const uint8_t *cfl,
                                                          const int16_t *csc, size_t ci, size_t cj, sgrow *g)
{
    if (wsm && (g->wv = tkmi_ws_grow(wsm, o->allow_whitespace_only_pieces, cfl[cj] & CH_WS, g->len, g->all_ws,
                                     cfl[ci] & CH_WS, cj > ci && (cfl[cj - 1] & CH_WS))) < 0)
        return -1; /* treat_whitespace_as_suffix, split_by_whitespace=false */
    if (cfl[cj] & CH_WS) {
        if (!wsm && g->len > 0 && !(o->allow_whitespace_only_pieces && g->all_ws)) return -1;
    } else {
        if (!wsm && g->all_ws && g->len >= 2) return -1; /* "▁▁x": whitespace past the start */
        int dig = cfl[cj] & CH_DIGIT;
        if (o->split_digits && (dig || g->has_digit) && g->len > 0) return -1;
        int sc = csc[cj];
        if (o->split_by_unicode_script && g->prev >= 0 && sc >= 0 && sc != g->prev) return -1;
        g->prev = sc;
        g->all_ws = 0;
        g->has_digit |= dig;
    }
    return ++g->len > o->max_piece_length ? -1 : 0;
}
/* a substring's hash: FNV-1a over its bytes, then tkmi_hash_u64 */
#define SEED_FNV0 0xcbf29ce484222325ull
static inline uint64_t seed_fnv(uint64_t f, uint8_t b) { return (f ^ b) * 0x100000001b3ull; }

static void *seed_main(void *arg)
{
    seed_job *J = arg;
    const uni *U = J->U;
    const tkm_train_options *o = U->o;
    const int wsm = tkmi_ws_mode(o);
    uint32_t *cpos = NULL; /* byte offset of each character, and the end */
    int16_t *csc = NULL;   /* its script (-1: any, digits that join) */
    uint8_t *cfl = NULL;   /* CH_ flags */
    uint32_t *cpk = NULL;  /* a 16-bit hash of its bytes (never 0) */
    size_t ccap = 0;
    int full = 0;
    struct pending { uint64_t h; size_t bytes; int part; uint16_t next; uint32_t g; } pend[64]; /* max_piece_length <= 63 */
    struct cand { uint64_t h; uint32_t cj, len; } cand[64];
    for (size_t wi = J->wfrom; J->rc == 0 && !full && wi < J->wto; wi++) {
        const uint8_t *s = (const uint8_t *)word_s(U, wi);
        size_t n = word_len(U, wi), base = (size_t)tkmi_uw_off(&U->W, wi);
        int64_t cnt = word_cnt(U, wi);
        /* counting without a floor asks the sketch only whether a
         * substring was seen twice: each of a word seen twice was */
        const int probe = J->mode != SEED_COUNT || J->prune || cnt < 2;
        if (n + 1 > ccap) {
            size_t nc = n + 1 > 2 * ccap ? n + 1 : 2 * ccap;
            void *a = tkmi_realloc(cpos, nc * sizeof *cpos);
            if (a) cpos = a;
            void *b = a ? tkmi_realloc(csc, nc * sizeof *csc) : NULL;
            if (b) csc = b;
            void *d = b ? tkmi_realloc(cpk, nc * sizeof *cpk) : NULL;
            if (d) cpk = d;
            void *c = d ? tkmi_realloc(cfl, nc) : NULL;
            if (!c) { J->rc = tkmi_error(TKM_ENOMEM, "out of memory (seeds)"); break; }
            cfl = c;
            ccap = nc;
        }
        /* decode once: offsets, scripts, flags, packed bytes */
        size_t nch = 0;
        for (size_t i = 0; i < n;) {
            int mb;
            int32_t cp = tkmi_utf8_decode(s + i, n - i, &mb);
            cpos[nch] = (uint32_t)i;
            if (J->parts) { /* the follower's hash: counting (and the sample) only */
                uint32_t pk = 0;
                for (int b = 0; b < mb && b < 4; b++) pk = pk << 8 | s[i + (size_t)b];
                pk = (uint32_t)(tkmi_hash_u64(pk) >> 48);
                cpk[nch] = pk ? pk : 1; /* 0 is the end of the word */
            }
            seed_class(o, cp, &cfl[nch], &csc[nch]);
            nch++;
            i += (size_t)mb;
        }
        cpos[nch] = (uint32_t)n;
        for (size_t ci = 0; ci < nch && J->rc == 0; ci++) {
            /* extend s[ci..cj] while it stays a valid piece (sentencepiece's
             * IsValidSentencePiece; each rule, once broken, stays broken) */
            int len = 0, npend = 0, ncand = 0;
            sgrow gr = SGROW_INIT;
            uint64_t fnv = SEED_FNV0;
            for (size_t cj = ci; cj < nch; cj++) {
                if (seed_grow(o, wsm, cfl, csc, ci, cj, &gr) < 0) break;
                len = gr.len;
                for (uint32_t b = cpos[cj]; b < cpos[cj + 1]; b++) fnv = seed_fnv(fnv, s[b]);
                if (len < 2 || !gr.wv) continue;
                uint64_t h = tkmi_hash_u64(fnv);
                if (J->hll) { /* SEED_HLL, or the sketch's pass estimating on the way */
                    uint64_t w = h >> HLL_BITS;
                    uint8_t rho = (uint8_t)(w ? __builtin_ctzll(w) + 1 : 64 - HLL_BITS + 1);
                    uint8_t *r = &J->hll[h & ((1u << HLL_BITS) - 1)];
                    if (rho > *r) *r = rho;
                    if (J->mode == SEED_HLL) continue;
                }
                /* the start's candidates collected first, their sketch
                 * blocks prefetched (counting: the first few, as most
                 * starts stop early): the probes below then overlap their
                 * cache misses */
                if (probe && (J->mode == SEED_MARK || ncand < 3)) __builtin_prefetch(cms_at(J->cms, h, J->cmask, J->two));
                cand[ncand++] = (struct cand){h, (uint32_t)cj, (uint32_t)len};
            }
            uint32_t u = CMS_MAX; /* the sketch's bound on this start's counts */
            int64_t reach = (int64_t)(nch - ci) < o->max_piece_length ? (int64_t)(nch - ci) : o->max_piece_length;
            for (int k = 0; k < ncand; k++) {
                uint64_t h = cand[k].h;
                size_t cj = cand[k].cj;
                if (probe && J->mode == SEED_COUNT && k + 3 < ncand)
                    __builtin_prefetch(cms_at(J->cms, cand[k + 3].h, J->cmask, J->two));
                len = (int)cand[k].len;
                if (J->mode == SEED_MARK) {
                    if (J->two) cms2_add(cms2_block(J->cms, h, J->cmask), h, cnt);
                    else {
                        uint16_t *blk = cms_block(J->cms, h, J->cmask);
                        cms_add(blk + cms_a(h), cnt, J->ccap);
                        cms_add(blk + cms_b(h), cnt, J->ccap);
                    }
                    if (!J->parts) continue; /* else group 0 is the floor's sample: counted too */
                } else if (probe) {
                    uint32_t v = cms_get(J->cms, h, J->cmask, J->two);
                    if (v < u) u = v;
                    if (u < 2) break; /* seen once: so is every extension */
                    if (J->prune && u != CMS_MAX) {
                        if ((int64_t)u * reach < J->prune) break; /* no extension can reach the floor */
                        if ((int64_t)u * len < J->prune) continue;
                    }
                }
                int part = (int)(h >> 60) % SEED_PARTS;
                /* the group by multiply-shift: no division in this loop */
                uint32_t g = (uint32_t)((((h >> 20) & 0xFFFFFFFFu) * J->ngroups) >> 32);
                if (g != J->group && !J->runs) continue;
                size_t bytes = cpos[cj + 1] - cpos[ci];
                if (bytes > 0xFFFF) break; /* never (max_piece_length <= 63 characters) */
                /* collected first, their slots prefetched: the inserts
                 * below then wait for one cache miss, not one each */
                stab *tb = &J->parts[part];
                if (g == J->group) __builtin_prefetch(&tb->s[h & (tb->cap - 1)]);
                pend[npend++] = (struct pending){h, bytes, part, (uint16_t)(cj + 1 < nch ? cpk[cj + 1] : 0), g};
            }
            for (int k = 0; k < npend && J->rc == 0; k++) {
                stab *tb = &J->parts[pend[k].part];
                uint64_t where = (uint64_t)(base + cpos[ci]) << 24 | (uint64_t)pend[k].bytes << 1 | !pend[k].next;
                if (pend[k].g != J->group) { /* counted by a later pass, from the runs */
                    uint64_t c = (uint64_t)cnt > SS_COUNT_MAX ? SS_COUNT_MAX : (uint64_t)cnt;
                    J->rc = tkmi_sruns_add(J->runs, pend[k].g, pend[k].h, where, c << 16 | pend[k].next);
                    continue;
                }
                J->rc = stab_add(tb, where, pend[k].h, cnt, pend[k].next);
                full |= tb->full;
            }
            npend = 0;
        }
    }
    tkmi_free(cpos);
    tkmi_free(csc);
    tkmi_free(cfl);
    tkmi_free(cpk);
    return NULL;
}

/* A later pass of routed counting: the thread's occurrences of the pass's
 * group, read back from its runs in the order the words gave them, go into
 * its tables as seed_main would have put them. */
static int replay_chunk(void *ctx, const tkmi_sslot *r, size_t n)
{
    seed_job *J = ctx;
    enum { AHEAD = 8 };
    for (size_t k = 0; k < n && k < AHEAD; k++) {
        stab *tb = &J->parts[(int)(r[k].hash >> 60) % SEED_PARTS];
        __builtin_prefetch(&tb->s[r[k].hash & (tb->cap - 1)]);
    }
    for (size_t k = 0; k < n; k++) {
        if (k + AHEAD < n) {
            stab *ta = &J->parts[(int)(r[k + AHEAD].hash >> 60) % SEED_PARTS];
            __builtin_prefetch(&ta->s[r[k + AHEAD].hash & (ta->cap - 1)]);
        }
        stab *tb = &J->parts[(int)(r[k].hash >> 60) % SEED_PARTS];
        int rc = stab_add(tb, r[k].where, r[k].hash, SS_COUNT(&r[k]), SS_NEXT(&r[k]));
        if (rc < 0) return rc;
        if (tb->full) return 1;
    }
    return 0;
}

static void *seed_replay_main(void *arg)
{
    seed_job *J = arg;
    int rc = tkmi_sruns_read(J->runs, J->group, replay_chunk, J);
    if (rc < 0) J->rc = rc;
    return NULL;
}

typedef tkmi_seedp seed_t; /* s: into the word arena (or a seed file's buffer) */

/* score desc, then the string (bytewise, shorter first): a total order on
 * the candidates, so the seeds do not depend on passes or threads */
static int cmp_seed(const void *a, const void *b)
{
    const seed_t *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    uint32_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* cmp_seed's key for tkmi_rsort (lib/radix.c): the score, descending, and
 * the first 8 bytes of the string (zero-padded: a smaller key is a smaller
 * string); cmp_seed settles the runs of equal keys (a NUL byte or a longer
 * common prefix) */
static void seed_key(const void *item, tkmi_rkey *k)
{
    const seed_t *sd = item;
    k->hi = ~(uint64_t)sd->score;
    k->lo = tkmi_key_pfx8(sd->s, sd->len);
}
static void seed_sort(seed_t *sd, size_t n) { tkmi_rsort(sd, n, sizeof *sd, seed_key, cmp_seed); }

/* Default entries per pass: tables of at most 192 MB (3M entries), or an
 * eighth of physical memory if that is less (a table holds at most 8/3
 * slots an entry; more passes cost little: words are re-read, not
 * re-counted). At 256 MB spm-train's defaults on the default corpus (3.1M
 * substrings) took one pass and peaked at 282 MB instead of 213 MB in two,
 * for the same CPU; past 100 MB of text the score floor leaves ~2M. */
static size_t seed_table_default(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    double mem = pages > 0 && psz > 0 ? (double)pages * (double)psz / 8 : 256e6;
    if (mem > 192e6) mem = 192e6;
    double n = mem / (sizeof(sslot) * 8.0 / 3);
    return n < 1048576 ? 1048576 : (size_t)n;
}

/* the HyperLogLog estimate from T threads' registers (merged by max) */
static double hll_estimate(const uint8_t *reg, int T)
{
    const size_t M = (size_t)1 << HLL_BITS;
    double sum = 0;
    size_t zeros = 0;
    for (size_t i = 0; i < M; i++) {
        uint8_t r = 0;
        for (int t = 0; t < T; t++) r = reg[(size_t)t * M + i] > r ? reg[(size_t)t * M + i] : r;
        sum += ldexp(1.0, -(int)r);
        zeros += r == 0;
    }
    double m = (double)M, e = 0.7213 / (1 + 1.079 / m) * m * m / sum;
    if (e < 2.5 * m && zeros) e = m * log(m / (double)zeros);
    return e;
}

/* HyperLogLog estimate of the distinct candidate substrings (one pass that
 * only hashes, each thread over its range of words, the registers merged
 * by max), so that the bitmaps are sized before they are set. */
static int estimate_substrings(const uni *U, int T, double *est)
{
    const size_t M = (size_t)1 << HLL_BITS;
    T = U->threads; /* jobs over word ranges: one a thread */
    uint8_t *reg = tkmi_calloc((size_t)T * M, 1);
    TKM_RETURN_ERROR_IF(!reg, TKM_ENOMEM, "out of memory (seeds)");
    seed_job jobs[64];
    for (int t = 0; t < T; t++) jobs[t] = seed_job_range(U, t, T, SEED_HLL, reg + (size_t)t * M, NULL, 0);
    par_run(jobs, T, sizeof *jobs, seed_main);
    int rc = 0;
    for (int t = 0; t < T; t++)
        if (jobs[t].rc < 0 && rc == 0) rc = jobs[t].rc;
    *est = hll_estimate(reg, T);
    tkmi_free(reg);
    return rc;
}

/* An upper bound on the distinct candidates, without enumerating them: the
 * substrings of 2 to max_piece_length characters of the words, each word
 * once (the validity rules and repeats only lower it; default corpus:
 * 21.0M for 9.2M distinct candidates); it stops once past `stop` */
static double substrings_bound(const uni *U, double stop)
{
    const size_t L = U->o->max_piece_length > 1 ? (size_t)U->o->max_piece_length : 1;
    double b = 0;
    for (size_t i = 0; i < U->nw && b <= stop; i++) {
        const uint8_t *q = (const uint8_t *)word_s(U, i);
        size_t nch = tkmi_utf8_chars(q, word_len(U, i));
        size_t m = nch < L ? nch : L;
        if (m >= 2) b += (double)((m - 1) * (nch + 1) - (m * (m + 1) / 2 - 1));
    }
    return b;
}

/* Merges the threads' tables of a pass into thread 0's, part by part (job
 * m takes the parts p = m mod M), the tables of the lower threads (earlier
 * words) first: an entry keeps the first occurrence's offset, as if one
 * table had seen the words in order. */
typedef struct {
    stab (*tp)[SEED_PARTS];
    int T, m, M;
    int rc;
} mergejob;

static void *seed_merge_main(void *arg)
{
    mergejob *J = arg;
    for (int p = J->m; p < SEED_PARTS && J->rc == 0; p += J->M) {
        stab *dst = &J->tp[0][p];
        for (int t = 1; t < J->T && J->rc == 0 && !dst->full; t++) {
            stab *src = &J->tp[t][p];
            enum { AHEAD = 16 }; /* the destination slots a few entries on, prefetched */
            for (size_t k = 0; k < src->cap && J->rc == 0 && !dst->full; k++) {
                if (k + AHEAD < src->cap && src->s[k + AHEAD].cnt_next)
                    __builtin_prefetch(&dst->s[src->s[k + AHEAD].hash & (dst->cap - 1)]);
                const sslot *e = &src->s[k];
                if (e->cnt_next) J->rc = stab_add(dst, e->where, e->hash, SS_COUNT(e), SS_NEXT(e));
            }
            tkmi_free(src->s);
            src->s = NULL;
            src->cap = 0;
        }
    }
    return NULL;
}

/* Empties the threads' tables for a pass: thread 0's take table_max
 * entries, the others tmax (each counts its range of words into tables of
 * its own, merged part by part afterwards) */
static int seed_tables_reset(stab (*tp)[SEED_PARTS], int T, size_t table_max, size_t tmax)
{
    for (int t = 0; t < T; t++)
        for (int p = 0; p < SEED_PARTS; p++) {
            tkmi_free(tp[t][p].s);
            tp[t][p] = (stab){NULL, 0, 0, (t ? tmax : table_max) / SEED_PARTS + 1, 0};
            TKM_FORWARD_IF_ERROR(stab_resize(&tp[t][p], 4096));
        }
    return 0;
}

/* One counting pass over hash group g of G (replay: read back from the
 * runs, else the words are enumerated and, with runs, the other groups'
 * occurrences written): the threads' tables end merged in tp[0]; *full when
 * a table outgrew its entries. */
static int seed_count_pass(uni *U, stab (*tp)[SEED_PARTS], uint16_t *cms, uint64_t cmask, int two, int64_t prune,
                           uint32_t g, uint32_t G, tkmi_sruns *runs, int replay, int *full)
{
    int T = U->threads, rc = 0;
    seed_job jobs[64];
    for (int t = 0; t < T; t++) {
        jobs[t] = seed_job_range(U, t, T, SEED_COUNT, NULL, cms, cmask);
        jobs[t].two = two;
        jobs[t].parts = tp[t];
        jobs[t].group = g;
        jobs[t].ngroups = G;
        jobs[t].runs = runs ? &runs[t] : NULL;
        jobs[t].prune = prune;
    }
    par_run(jobs, T, sizeof *jobs, replay ? seed_replay_main : seed_main);
    *full = 0;
    for (int t = 0; t < T; t++)
        if (jobs[t].rc < 0 && rc == 0) rc = jobs[t].rc;
    for (int t = 0; t < T; t++)
        for (int p = 0; p < SEED_PARTS; p++) *full |= tp[t][p].full;
    if (rc == 0 && !*full && T > 1) {
        int M = T > SEED_PARTS ? SEED_PARTS : T;
        mergejob mj[SEED_PARTS];
        for (int m = 0; m < M; m++) mj[m] = (mergejob){tp, T, m, M, 0};
        par_run(mj, M, sizeof *mj, seed_merge_main);
        for (int m = 0; m < M; m++)
            if (mj[m].rc < 0 && rc == 0) rc = mj[m].rc;
        for (int p = 0; p < SEED_PARTS; p++) *full |= tp[0][p].full;
    }
    return rc;
}

/* a candidate's score: count x characters (0: not a candidate) */
static int64_t seed_score(const uni *U, const sslot *e)
{
    if (SS_COUNT(e) < 2 || !SS_BRANCH(e)) return 0;
    const uint8_t *q = (const uint8_t *)U->warena + SS_OFF(e);
    return SS_COUNT(e) * (int64_t)tkmi_utf8_chars(q, SS_LEN(e));
}

static int cmp_i64_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

#define SEED_PLAN_SAMPLE ((size_t)1 << 16) /* candidates asked to plan the passes */
/* The bound counting finds for a candidate (e, in its sample's table):
 * the smallest sketch value of its candidate prefixes and itself, as
 * seed_main's `u` reaches it at every occurrence (the prefixes depend on
 * the substring's characters only, seed_grow) */
static uint32_t seed_bound(const uni *U, const sslot *e, const uint16_t *cms, uint64_t cmask, int two,
                           int64_t *nch_out)
{
    const tkm_train_options *o = U->o;
    const int wsm = tkmi_ws_mode(o);
    const uint8_t *q = (const uint8_t *)U->warena + SS_OFF(e);
    size_t n = SS_LEN(e), nch = 0;
    uint32_t cpos[65];
    uint8_t cfl[64];
    int16_t csc[64];
    for (size_t i = 0; i < n && nch < 64;) {
        int mb;
        int32_t cp = tkmi_utf8_decode(q + i, n - i, &mb);
        cpos[nch] = (uint32_t)i;
        seed_class(o, cp, &cfl[nch], &csc[nch]);
        nch++;
        i += (size_t)mb;
    }
    cpos[nch] = (uint32_t)n;
    *nch_out = (int64_t)nch;
    sgrow gr = SGROW_INIT;
    uint64_t fnv = SEED_FNV0;
    uint32_t u = CMS_MAX;
    for (size_t cj = 0; cj < nch; cj++) {
        if (seed_grow(o, wsm, cfl, csc, 0, cj, &gr) < 0) break; /* never: e is a candidate */
        for (uint32_t b = cpos[cj]; b < cpos[cj + 1]; b++) fnv = seed_fnv(fnv, q[b]);
        if (gr.len < 2 || !gr.wv) continue;
        uint64_t h = tkmi_hash_u64(fnv);
        uint32_t v = cms_get(cms, h, cmask, two);
        if (v < u) u = v;
    }
    return u;
}

/* The distinct substrings that counting with the score floor `floor` (0:
 * none) will hash into its tables, about: those of the sample (group 0 of
 * S, every candidate seen there counted, the sketch complete) whose
 * bound (seed_bound, the smallest over the prefixes: a candidate's own
 * sketch value overstates it where the sketch is crowded) is at least 2
 * and, times the characters, reaches the floor; times S. A bound costs a
 * probe a prefix: of a larger sample (the floor's) about SEED_PLAN_SAMPLE
 * entries are asked, by low hash bits (the group is chosen by others). */
static double seed_to_count(const uni *U, const stab *parts, uint32_t S, const uint16_t *cms, uint64_t cmask,
                            int two, int64_t floor)
{
    size_t n = 0, asked = 0, pass = 0;
    for (int p = 0; p < SEED_PARTS; p++) n += parts[p].n;
    uint64_t k = n > SEED_PLAN_SAMPLE ? n / SEED_PLAN_SAMPLE : 1;
    for (int p = 0; p < SEED_PARTS; p++)
        for (size_t i = 0; i < parts[p].cap; i++) {
            const sslot *e = &parts[p].s[i];
            if (!e->cnt_next || (e->hash & 0xFFFFF) % k) continue;
            int64_t nch;
            uint32_t u = seed_bound(U, e, cms, cmask, two, &nch);
            asked++;
            pass += u >= 2 && (!floor || u == CMS_MAX || (int64_t)u * nch >= floor);
        }
    return asked ? (double)pass * S * ((double)n / (double)asked) : 0;
}

/* The score floor: a guess at a lower bound on the want-th best score,
 * from the exact counts of a hash sample of the candidates (group 0 of S,
 * about SEED_SAMPLE distinct candidates, counted by the sketch's pass into
 * tp). The sample holds each candidate with probability 1/S whatever its
 * score, so it holds about want/S of the best want; the floor is the
 * sample's score of rank want/S plus five standard deviations: below the
 * want-th best score but for a miss of about 3e-7. make_seeds checks it
 * after counting (at least want candidates at or above it, every one of
 * them counted exactly) and counts again without a floor when it fails:
 * the floor only saves time. */
#define SEED_SAMPLE ((size_t)1 << 20)
static int seed_floor(const uni *U, stab *parts, uint32_t S, size_t want, uint16_t *cms, uint64_t cmask,
                      int64_t *floor, double *survive)
{
    *floor = 0;
    size_t n = 0, cap = 0;
    for (int p = 0; p < SEED_PARTS; p++) cap += parts[p].n;
    int64_t *sc = tkmi_malloc((cap ? cap : 1) * sizeof *sc);
    TKM_RETURN_ERROR_IF(!sc, TKM_ENOMEM, "out of memory (seeds)");
    for (int p = 0; p < SEED_PARTS; p++)
        for (size_t k = 0; k < parts[p].cap; k++) {
            int64_t v = parts[p].s[k].cnt_next ? seed_score(U, &parts[p].s[k]) : 0;
            if (v > 0) sc[n++] = v;
        }
    double m = (double)want / S;
    size_t rank = (size_t)ceil(m + 5 * sqrt(m) + 16);
    if (n >= rank) {
        qsort(sc, n, sizeof *sc, cmp_i64_desc);
        *floor = sc[rank - 1];
    }
    *survive = seed_to_count(U, parts, S, cms, cmask, 0, *floor);
    dbg(U, "seed floor %lld: rank %zu of %zu sampled candidates (1 in %u of %zu); about %.0f to count",
        (long long)*floor, rank, n, S, cap, *survive);
    tkmi_free(sc);
    return 0;
}

/* *n_sub: how many substring seeds were kept (besides the characters),
 * *passes: how many hash groups the counting needed */
static int make_seeds(uni *U, const tkmi_vbase *vb, size_t n_req, const tkmi_chcount *req, size_t table_max,
                      size_t *n_sub, uint32_t *passes, double *n_cand)
{
    const tkm_train_options *o = U->o;
    size_t want = (size_t)o->seed_size;
    const char *env = getenv("TKM_SEED_TABLE_MAX"); /* internal: force passes in tests */
    if (!table_max && env) table_max = (size_t)strtoull(env, NULL, 10);
    if (!table_max) table_max = seed_table_default();
    *n_sub = 0;
    stab(*tp)[SEED_PARTS] = tkmi_calloc((size_t)U->threads, sizeof *tp);
    TKM_RETURN_ERROR_IF(!tp, TKM_ENOMEM, "out of memory (seeds)");
    seed_t *sd = NULL;
    size_t ns = 0, sd_cap = 0;
    int rc = 0;
    int T = U->threads;
    uint32_t G = 1;
    double est = 0, bound = 0;
    char *seed_buf = NULL;
    /* the score floor pays when there are many more candidates than seeds:
     * its sample is counted by the sketch's pass (TKM_SEED_FLOOR, internal:
     * 0 for none, or a floor to use, for tests) */
    const char *fl_env = getenv("TKM_SEED_FLOOR");
    /* Where the words' substrings (substrings_bound) are at most 2 x 16
     * seed_size, the candidates (about half of them or fewer) hardly ever
     * ask for the floor: the sketch's pass, made for counting without one,
     * estimates the candidates itself, from the same hashes (the same
     * estimate), and the estimating pass is saved. Should the estimate ask
     * for the floor after all, the sketch is made again as it would have
     * been. */
    int spec = 0;
    if (o->seed_sentencepieces_file) /* seeds from a file instead (seed_file.c): no counting passes */
        rc = tkmi_seed_file_read(o, &sd, &ns, &seed_buf), G = 0;
    else {
        if (!fl_env && want) bound = substrings_bound(U, 32.0 * (double)want);
        /* TKM_SEED_ESTIMATE_PASS (internal, tests): the estimating pass always */
        spec = bound > 0 && bound <= 32.0 * (double)want && !getenv("TKM_SEED_ESTIMATE_PASS");
        if (!spec) {
            rc = estimate_substrings(U, T, &est);
            dbg(U, "seed estimate: %.0f distinct candidates", est);
        }
    }
    const size_t HM = (size_t)1 << HLL_BITS;
    uint8_t *reg = spec ? tkmi_calloc((size_t)T * HM, 1) : NULL;
    if (rc == 0 && spec && !reg) rc = tkmi_error(TKM_ENOMEM, "out of memory (seeds)");
    uint32_t S = 0;
    int use_floor = 0, two = 0;
    uint16_t *cms = NULL;
    void *cms_mem = NULL;
    uint64_t W = 0, CM = 0;
    double est2 = 0;
    for (;;) {
        S = 0;
        use_floor = 0;
        double ref = spec ? bound : est; /* what S and the sketch are sized by */
        if (G && !spec && !fl_env && want && est > 16.0 * (double)want) {
            double sr = ceil(est / (double)SEED_SAMPLE);
            S = sr < 2 ? 2 : sr > (double)(1u << 20) ? 1u << 20 : (uint32_t)sr;
            use_floor = 1;
        } else if (G && ref * 1.1 > (double)table_max) {
            /* more than one pass may be needed: a smaller sample, counted the
             * same way, says how many substrings counting will hash (the
             * sketch's own estimate of those seen twice counts its collisions
             * too, and the bound of a prefix limits its extensions) */
            double sr = ceil(ref / (double)SEED_PLAN_SAMPLE);
            S = sr < 1 ? 1 : sr > (double)(1u << 20) ? 1u << 20 : (uint32_t)sr;
        }
        /* the sketch: 2W counters, about one a candidate, two with a floor
         * (whose sample estimates how many substrings pass it: fewer
         * collisions, a closer estimate); at least 2^19, at most 2^27 (256
         * MB): beyond that more candidates pass the sketch, which costs
         * time, not correctness. Without a floor, 2-bit counters
         * (cms2_add), about four a candidate in half the bytes of one
         * 16-bit counter each (at most 2^28, 64 MB; by the bound, two a
         * substring): the default corpus's substrings seen once that pass
         * it fell from 1.0M to 0.1M, and the 2.1M left to count fit one
         * pass (no runs) */
        two = G && !use_floor && !fl_env;
        double need = spec ? 2 * bound : est * (use_floor ? 2 : two ? 4 : 1);
        W = (uint64_t)1 << 18;
        while (rc == 0 && W < (uint64_t)1 << (two ? 27 : 26) && (double)(2 * W) < need) W <<= 1;
        CM = (W >> 4) - 1; /* 2W counters in blocks of 32 */
        if (rc == 0 && G) {
            /* aligned to 2 MB and, where the system allows, in huge pages:
             * the probes are random, a TLB miss each with 4 kB pages */
            const size_t HP = (size_t)2 << 20, bytes = two ? W / 2 : 2 * W * sizeof *cms;
            cms_mem = tkmi_malloc(bytes + HP);
            if (!cms_mem)
                rc = tkmi_error(TKM_ENOMEM, "out of memory (seed sketch of %llu counters)", (unsigned long long)(2 * W));
            else {
                cms = (uint16_t *)(((uintptr_t)cms_mem + HP - 1) & ~(uintptr_t)(HP - 1));
#ifdef MADV_HUGEPAGE
                if (bytes >= HP) madvise(cms, bytes, MADV_HUGEPAGE);
#endif
                memset(cms, 0, bytes);
            }
        }
        if (rc == 0 && S) rc = seed_tables_reset(tp, T, SIZE_MAX / 2, SIZE_MAX / 2);
        if (rc == 0 && G) {
            seed_job jobs[64];
            for (int t = 0; t < U->threads; t++) {
                jobs[t] = seed_job_range(U, t, U->threads, SEED_MARK, spec ? reg + (size_t)t * HM : NULL, cms, CM);
                jobs[t].two = two;
                /* no floor: counting asks only whether a count is 2 or more,
                 * so a counter stops there (most adds become reads) */
                if (!use_floor && !fl_env) jobs[t].ccap = 2;
                if (S) jobs[t].parts = tp[t], jobs[t].ngroups = S;
            }
            par_run(jobs, U->threads, sizeof *jobs, seed_main);
            for (int t = 0; t < U->threads; t++)
                if (jobs[t].rc < 0 && rc == 0) rc = jobs[t].rc;
            if (rc == 0 && S && T > 1) {
                mergejob mj[SEED_PARTS];
                int M = T > SEED_PARTS ? SEED_PARTS : T;
                for (int m = 0; m < M; m++) mj[m] = (mergejob){tp, T, m, M, 0};
                par_run(mj, M, sizeof *mj, seed_merge_main);
                for (int m = 0; m < M; m++)
                    if (mj[m].rc < 0 && rc == 0) rc = mj[m].rc;
            }
        }
        if (rc == 0 && spec) {
            est = hll_estimate(reg, T);
            dbg(U, "seed estimate: %.0f distinct candidates (%.0f substrings at most; in the sketch's pass)", est, bound);
            if (want && est > 16.0 * (double)want) { /* the floor after all: the sketch again, for it */
                spec = 0;
                tkmi_free(cms_mem);
                cms_mem = NULL;
                cms = NULL;
                if (S) rc = seed_tables_reset(tp, T, 0, 0);
                if (rc == 0) continue;
            }
        }
        break;
    }
    tkmi_free(reg);
    *n_cand = est;
    /* each thread counts its range of words into tables of its own (at most
     * 2 / T of the pass's entries each), merged part by part afterwards */
    size_t tmax = T > 2 ? table_max * 2 / (size_t)T : table_max;
    if (rc == 0 && G) {
        /* linear counting over the first row's counters of 2 or more: the
         * candidates seen at least twice (and those sharing a counter) */
        uint64_t set = 0;
        if (two)
            for (uint64_t i = 0; i < W / 16; i++)
                set += (uint64_t)__builtin_popcountll(((const uint64_t *)(void *)cms)[i] & 0xAAAAAAAAAAAAAAAAull);
        else
            for (uint64_t i = 0; i < 2 * W; i++) set += cms[i] >= 2;
        est2 = set >= 2 * W ? est : -(double)W * log(1 - (double)set / (double)(2 * W));
        if (est2 > est) est2 = est;
    }
    if (rc == 0 && G) dbg(U, "seed sketch: %.0f distinct candidates, %.0f seen twice", est, est2);
    int64_t floor = 0;
    double to_count = est2; /* the substrings counting will hash into its tables, about */
    if (rc == 0 && G && fl_env) floor = (int64_t)strtoll(fl_env, NULL, 10);
    else if (rc == 0 && use_floor) rc = seed_floor(U, tp[0], S, want, cms, CM, &floor, &to_count);
    if (rc == 0 && S && !use_floor) to_count = seed_to_count(U, tp[0], S, cms, CM, two, floor);
    if (rc == 0 && G && to_count * 1.1 > (double)table_max) G = (uint32_t)ceil(to_count * 1.1 / (double)table_max);
    dbg(U,
        "about %.0f distinct candidate substrings, %.0f seen twice, score floor %lld, about %.0f to count (sample 1 in "
        "%u): %u pass(es) of at most %zu",
        est, est2, (long long)floor, to_count, S, G, table_max);
    /* with G > 1 groups, the first pass enumerates the words once: it counts
     * group 0 and writes the other groups' occurrences to each thread's runs
     * (seed_runs.c), which the later passes read back instead of
     * enumerating again (the enumeration, with a sketch probe a substring,
     * costs more than reading 24 bytes an occurrence). Beyond
     * SEED_ROUTE_MAX groups (tiny tables) the buffers would outgrow the
     * tables: every pass enumerates. */
    tkmi_sruns *runs = NULL;
    uint64_t run_bytes = 0;
    /* internal, for tests: a thread's run buffers in bytes (small: many
     * chunks), 0 for no runs */
    const char *rb_env = getenv("TKM_SEED_RUN_BUFFER");
    size_t run_buf = rb_env ? (size_t)strtoull(rb_env, NULL, 10) : SEED_ROUTE_BYTES;
    for (uint32_t g = 0; rc == 0 && g < G; g++) {
        int route = G > 1 && G <= SEED_ROUTE_MAX && run_buf > 0;
        if (g == 0 && route) {
            runs = tkmi_calloc((size_t)T, sizeof *runs);
            if (!runs) rc = tkmi_error(TKM_ENOMEM, "out of memory (seeds)");
            for (int t = 0; rc == 0 && t < T; t++) rc = tkmi_sruns_init(&runs[t], G, run_buf);
            if (rc < 0) break;
        }
        rc = seed_tables_reset(tp, T, table_max, tmax);
        if (rc < 0) break;
        int full = 0;
        rc = seed_count_pass(U, tp, cms, CM, two, floor, g, G, route ? runs : NULL, route && g > 0, &full);
        for (int t = 0; rc == 0 && route && g == 0 && t < T; t++) {
            rc = tkmi_sruns_finish(&runs[t]);
            run_bytes += runs[t].end;
        }
        stab *parts = tp[0];
        size_t n_pass = 0;
        for (int p = 0; p < SEED_PARTS; p++) n_pass += parts[p].n;
        if (route && g == 0)
            dbg(U, "seed pass 1 of %u: %zu substrings, %.1f MB of other groups' occurrences written", G, n_pass,
                (double)run_bytes / 1e6);
        else dbg(U, "seed pass %u of %u: %zu substrings%s", g + 1, G, n_pass, full ? " (too many)" : "");
        if (rc < 0) break;
        if (full) { /* start again with twice as many groups */
            for (int t = 0; runs && t < T; t++) tkmi_sruns_free(&runs[t]);
            tkmi_free(runs);
            runs = NULL;
            run_bytes = 0;
            if (G >= (1u << 20)) {
                rc = tkmi_error(TKM_ENOMEM, "seed counting: tables too small");
                break;
            }
            G *= 2;
            g = (uint32_t)-1;
            ns = 0;
            continue;
        }
        for (int p = 0; rc == 0 && p < SEED_PARTS; p++) {
            for (size_t k = 0; k < parts[p].cap; k++) {
                if (k + 8 < parts[p].cap) { /* the strings a few entries on (random in the arena), asked for now */
                    const sslot *f = &parts[p].s[k + 8];
                    if (SS_COUNT(f) >= 2 && SS_BRANCH(f)) __builtin_prefetch(U->warena + SS_OFF(f));
                }
                const sslot *e = &parts[p].s[k];
                if (!e->cnt_next) continue;
                int64_t score = seed_score(U, e);
                if (score <= 0 || score < floor) continue; /* below the floor: maybe counted in part */
                if (ns == sd_cap) {
                    size_t nc = sd_cap ? 2 * sd_cap : 65536;
                    seed_t *q = tkmi_realloc(sd, nc * sizeof *sd);
                    if (!q) { rc = tkmi_error(TKM_ENOMEM, "out of memory (seeds)"); break; }
                    sd = q;
                    sd_cap = nc;
                }
                sd[ns++] = (seed_t){U->warena + SS_OFF(e), SS_LEN(e), score};
            }
            tkmi_free(parts[p].s);
            parts[p].s = NULL;
            parts[p].cap = 0;
        }
        /* keep the candidate list near the seeds wanted */
        if (rc == 0 && ns > 2 * want + 65536) {
            seed_sort(sd, ns);
            ns = want;
        }
        /* the floor checked: fewer than `want` candidates reach it, so the
         * seeds may lie below it: count again without one */
        if (rc == 0 && floor && g + 1 == G && ns < want) {
            dbg(U, "only %zu candidates reach the score floor %lld: counting again without it", ns, (long long)floor);
            for (int t = 0; runs && t < T; t++) tkmi_sruns_free(&runs[t]);
            tkmi_free(runs);
            runs = NULL;
            run_bytes = 0;
            floor = 0;
            G = est2 * 1.1 > (double)table_max ? (uint32_t)ceil(est2 * 1.1 / (double)table_max) : 1;
            g = (uint32_t)-1;
            ns = 0;
        }
    }
    for (int t = 0; runs && t < T; t++) tkmi_sruns_free(&runs[t]);
    tkmi_free(runs);
    for (int t = 0; t < T; t++)
        for (int p = 0; p < SEED_PARTS; p++) tkmi_free(tp[t][p].s);
    tkmi_free(tp);
    tkmi_free(cms_mem);
    *passes = G;
    if (rc == 0) {
        seed_sort(sd, ns); /* sd is NULL without candidates */
        size_t keep = ns < want ? ns : want;
        *n_sub = keep;
        U->parena_cap = (keep + n_req) * 4 + 16;
        for (size_t k = 0; k < keep; k++) U->parena_cap += sd[k].len;
        U->parena = tkmi_malloc(U->parena_cap);
        if (!U->parena) rc = tkmi_error(TKM_ENOMEM, "out of memory");
        double total = 0;
        for (size_t k = 0; k < n_req; k++) total += (double)req[k].cnt;
        for (size_t k = 0; k < keep; k++) total += (double)sd[k].score;
        double lt = log(total);
        for (size_t k = 0; rc == 0 && k < n_req; k++) {
            char buf[4];
            int l = tkmi_utf8_encode(req[k].cp, buf);
            if (tkmi_strmap_get(&vb->meta, buf, (size_t)l) >= 0) continue;
            rc = piece_add(U, buf, (uint32_t)l, (float)(log((double)req[k].cnt) - lt));
        }
        for (size_t k = 0; rc == 0 && k < keep; k++) {
            if (tkmi_strmap_get(&vb->meta, sd[k].s, sd[k].len) >= 0) continue;
            rc = piece_add(U, sd[k].s, sd[k].len, (float)(log((double)sd[k].score) - lt));
        }
    }
    tkmi_free(sd);
    tkmi_free(seed_buf);
    return rc;
}

typedef struct { const char *s; uint32_t len; float score; } fin_t;

static int cmp_fin(const void *a, const void *b)
{
    const fin_t *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    return c ? c : (x->len < y->len ? -1 : x->len > y->len);
}

/* Required characters: those kept by the coverage, minus specials; they
 * move to the front of vb->chars, the cpmap gives each its index there. */
static int required_chars(struct tkm_trainer *t, tkmi_vbase *vb, size_t *n_req_out)
{
    const tkm_train_options *o = &t->o;
    size_t n_req = 0;
    for (size_t i = 0; i < vb->cm.cap; i++) vb->cm.sym[i] = -1;
    for (size_t i = 0; i < vb->nreq; i++) {
        char buf[4];
        int l = tkmi_utf8_encode(vb->chars[i].cp, buf);
        if (tkmi_strmap_get(&vb->meta, buf, (size_t)l) >= 0) continue;
        vb->cm.sym[tkmi_cpmap_slot(&vb->cm, vb->chars[i].cp)] = (int32_t)n_req;
        vb->chars[n_req++] = vb->chars[i];
    }
    t->stats.chars_required = n_req;
    *n_req_out = n_req;
    long room = (long)o->vocab_size - vb->n_meta;
    TKM_RETURN_ERROR_IF(room < (long)n_req, TKM_EVOCAB,
                        "vocab size %d is smaller than the required pieces: %d special + %zu characters "
                        "(lower --character-coverage or raise --vocab-size to at least %zu)",
                        o->vocab_size, vb->n_meta, n_req, (size_t)vb->n_meta + n_req);
    return 0;
}

/* The progress callback: round k of n (n: the rounds done and those the
 * shrinking factor still needs), pieces left and the target. */
static void report_round(struct tkm_trainer *t, const uni *U, int rounds, size_t desired)
{
    if (!t->progress) return;
    int left = 0;
    if (U->np > desired)
        left = (int)ceil(log((double)desired / (double)U->np) / log((double)U->o->shrinking_factor) - 1e-9);
    char ph[128];
    snprintf(ph, sizeof ph, "Unigram round %d of %d: %zu pieces left, target %zu", rounds + 1, rounds + 1 + left,
             U->np, desired);
    t->progress(t->progress_ctx, ph, (uint64_t)rounds + 1, (uint64_t)(rounds + 1 + left));
}

/* EM (num_sub_iterations rounds) and pruning, in turn, until at most
 * `desired` pieces are left after EM. */
static int em_and_prune(struct tkm_trainer *t, uni *U, size_t desired)
{
    const tkm_train_options *o = U->o;
    int64_t *acc = NULL;
    int32_t *remap = NULL;
    int rc = rebuild_trie(U);
    if (rc == 0) {
        dbg(U, "trie of %zu nodes", U->trie.n_nodes);
#ifdef __GLIBC__
        /* what counting the seeds and building the trie freed sits in
         * malloc's free chunks: give those pages back before the first
         * lattices (the trie and all of them together are the peak) */
        malloc_trim(0);
#endif
        lat_budget(U);
        remap = tkmi_malloc((U->np + 1) * sizeof *remap);
        if (!remap) rc = tkmi_error(TKM_ENOMEM, "out of memory");
    }
    for (int rounds = 0; rc == 0; rounds++) {
        for (int it = 0; rc == 0 && it < o->num_sub_iterations; it++) {
            tkmi_free(acc);
            acc = tkmi_malloc((U->np + 1) * sizeof *acc);
            if (!acc) { rc = tkmi_error(TKM_ENOMEM, "out of memory"); break; }
            double obj;
            if ((rc = run_pass(U, 0, acc, &obj)) < 0) break;
            dbg(U, "  E-step done: %lld of %lld words in plain doubles", (long long)U->n_plain, (long long)U->n_words);
            size_t np_was = U->np;
            m_step(U, acc, remap);
            update_min_score(U);
            /* nothing removed: remap is the identity, the cache and the
             * trie stay as they are (no pass spent rewriting them) */
            if (U->np != np_was && (rc = filter_lattices(U, remap)) < 0) break;
            dbg(U, "  EM -> %zu pieces, objective %.4f, %zu lattice nodes", U->np, obj, U->lat_n);
        }
        if (rc < 0) break;
        report_round(t, U, rounds, desired);
        dbg(U, "round %d: %zu pieces after EM", rounds, U->np);
        if (U->np <= desired) break;
        if ((rc = prune(U, desired, remap)) < 0) break;
        dbg(U, "  pruned");
        if ((rc = filter_lattices(U, remap)) < 0) break;
        update_min_score(U);
    }
    tkmi_free(remap);
    tkmi_free(acc);
    return rc;
}

/* The final pieces into fin[0 .. *nf): the required characters (a missing
 * one scored just below the lowest piece, 0.0001 lower each), then the
 * best-scoring other pieces up to `room`; cbuf holds the characters' bytes. */
static int final_pieces(const uni *U, const tkmi_vbase *vb, size_t n_req, size_t room, fin_t *fin, char (*cbuf)[4],
                        size_t *nf_out)
{
    size_t nf = 0;
    tkmi_strmap have;
    TKM_FORWARD_IF_ERROR(tkmi_strmap_init(&have, room + n_req));
    float minsc = FLT_MAX;
    for (size_t i = 0; i < U->np; i++) {
        if (U->p[i].score < minsc) minsc = U->p[i].score;
        tkmi_strmap_put(&have, U->p[i].s, U->p[i].len, (int32_t)i);
    }
    float pen = 0;
    for (size_t i = 0; i < n_req; i++) {
        int l = tkmi_utf8_encode(vb->chars[i].cp, cbuf[i]);
        int32_t id = tkmi_strmap_get(&have, cbuf[i], (size_t)l);
        float sc = id >= 0 ? U->p[id].score : minsc - pen;
        if (id < 0) pen += 0.0001f;
        fin[nf++] = (fin_t){cbuf[i], (uint32_t)l, sc};
    }
    tkmi_strmap_free(&have);
    tkmi_strmap chars_set;
    int rc = tkmi_strmap_init(&chars_set, n_req + 1);
    if (rc == 0) {
        for (size_t i = 0; i < nf; i++) tkmi_strmap_put(&chars_set, fin[i].s, fin[i].len, (int32_t)i);
        fin_t *rest = tkmi_malloc((U->np + 1) * sizeof *rest);
        size_t nr = 0;
        if (!rest) rc = tkmi_error(TKM_ENOMEM, "out of memory");
        for (size_t i = 0; rc == 0 && i < U->np; i++)
            if (tkmi_strmap_get(&chars_set, U->p[i].s, U->p[i].len) < 0)
                rest[nr++] = (fin_t){U->p[i].s, U->p[i].len, U->p[i].score};
        if (rc == 0) {
            qsort(rest, nr, sizeof *rest, cmp_fin);
            for (size_t i = 0; i < nr && nf < room; i++) fin[nf++] = rest[i];
        }
        tkmi_free(rest);
        tkmi_strmap_free(&chars_set);
    }
    *nf_out = nf;
    return rc;
}

/* The model from the final pieces (sorted by score here): the vocabulary
 * size check, scores on the 1/256 grid, vocab_common.c's writer. */
static int write_model(struct tkm_trainer *t, tkmi_vbase *vb, fin_t *fin, size_t nf, size_t n_req, size_t room,
                       size_t n_seeds, tkm_model **out)
{
    const tkm_train_options *o = &t->o;
    int vocab = o->vocab_size;
    qsort(fin, nf, sizeof *fin, cmp_fin);
    if (nf < room) {
        TKM_RETURN_ERROR_IF(o->hard_vocab_limit, TKM_EVOCAB,
                            "vocab size %d cannot be reached: the corpus yields only %zu pieces "
                            "(use --vocab-size %zu or --hard-vocab-limit=false; a larger --seed-size "
                            "keeps more seed pieces: %zu here)",
                            vocab, (size_t)vb->n_meta + nf, (size_t)vb->n_meta + nf, n_seeds);
        vocab = (int)(vb->n_meta + (int)nf);
    }
    const char **fs = tkmi_malloc((nf + 1) * sizeof *fs);
    uint32_t *fl = tkmi_malloc((nf + 1) * sizeof *fl);
    float *fsc = tkmi_malloc((nf + 1) * sizeof *fsc);
    int rc = (!fs || !fl || !fsc) ? tkmi_error(TKM_ENOMEM, "out of memory") : 0;
    for (size_t i = 0; rc == 0 && i < nf; i++) {
        fs[i] = fin[i].s;
        fl[i] = fin[i].len;
        /* scores on a grid of 1/256: every Viterbi sum (|sum| < 65536)
         * is then exact in float (sentencepiece) and in double (HF
         * tokenizers), so both break exact ties the same way */
        fsc[i] = roundf(fin[i].score * 256.0f) / 256.0f;
    }
    t->stats.pieces_char = (int)n_req;
    t->stats.pieces_normal = (int)(nf - n_req);
    if (rc == 0) rc = tkmi_vbase_write(t, vb, vocab, fs, fl, fsc, nf, out);
    tkmi_free(fs);
    tkmi_free(fl);
    tkmi_free(fsc);
    return rc;
}

static void uni_free(uni *U)
{
    utrie_free(&U->trie);
    for (int k = 0; k < 64; k++) tkmi_free(U->seg[k].lat);
    tkmi_free(U->lat_off);
    tkmi_free(U->pend);
    tkmi_free(U->clen);
    tkmi_free(U->clen_old);
    tkmi_free(U->ftab);
    for (int t = 0; t < U->an_t; t++) tkmi_free(U->abuf[t]);
    tkmi_free(U->aoff);
    tkmi_free(U->amap);
    tkmi_free(U->p);
    tkmi_free(U->parena);
    tkmi_uwords_free(&U->W);
}

int tkmi_unigram_train(struct tkm_trainer *t, tkmi_counts *counts, tkm_model **out)
{
    const tkm_train_options *o = &t->o;
    TKM_RETURN_ERROR_IF(counts->n == 0, TKM_EEMPTY, "no input: the corpus has no text to learn from");
    TKM_RETURN_ERROR_IF(o->max_piece_length * 4 > CNODE_MAXLEN, TKM_EINVAL,
                        "Unigram: --max-piece-length %d is too long (at most %d characters)", o->max_piece_length,
                        CNODE_MAXLEN / 4);
    /* sentencepiece's differential privacy: noise and clipping on the
     * counts before anything is counted from them (dp.c) */
    TKM_FORWARD_IF_ERROR(tkmi_dp_apply(o, counts, &t->stats.dp_dropped_unique, &t->stats.dp_dropped_occurrences));
    TKM_RETURN_ERROR_IF(counts->n == 0, TKM_EEMPTY,
                        "differential privacy left no input: all %llu pre-tokens were dropped (noise level %g, "
                        "clipping threshold %llu)",
                        (unsigned long long)t->stats.dp_dropped_unique, o->differential_privacy_noise_level,
                        (unsigned long long)o->differential_privacy_clipping_threshold);
    uni U;
    memset(&U, 0, sizeof U);
    U.o = o;
    U.debug = getenv("TKM_DEBUG_UNIGRAM") != NULL;
    const char *ex = getenv("TKM_UNIGRAM_ESTEP"); /* internal: the tests compare both E-step paths */
    U.estep_exact = ex && !strcmp(ex, "exact");
    U.t_start = t->t_start;
    U.cpu0 = 0; /* process CPU time: reading and counting included */
    U.threads = o->threads < 1 ? 1 : o->threads > 64 ? 64 : o->threads;
    tkmi_vbase vb;
    size_t n_req = 0;
    int rc = tkmi_vbase_init(t, counts, &vb);
    if (rc == 0) rc = required_chars(t, &vb, &n_req);
    /* the words (pre-tokens cut at characters outside the vocabulary), the
     * seeds, then EM and pruning */
    if (rc == 0) dbg(&U, "%zu pre-tokens", counts->n);
    tkmi_uw_sample smp = {0};
    if (rc == 0) rc = word_budget(t, counts, &smp.tau);
    if (rc == 0) rc = build_words(&U, counts, &vb.cm, &smp);
    if (rc == 0 && smp.tau) { /* (after a spill, those left out are counted already) */
        t->stats.merge_dropped_unique += smp.left_unique;
        t->stats.merge_dropped_occurrences += smp.left_occ;
        t->stats.sampled_unique = smp.sampled;
        if (U.nw == 0) rc = tkmi_mb_none_kept(t, TKM_MODEL_UNIGRAM, tkmi_mb_budget(t, TKM_MODEL_UNIGRAM));
    }
    tkmi_counts_free(counts); /* (build_words drained it) */
    dbg(&U, "%zu words", U.nw);
    size_t n_sub = 0;
    uint32_t passes = 1;
    double n_cand = 0;
    if (rc == 0) rc = make_seeds(&U, &vb, n_req, vb.chars, t->seed_table_max, &n_sub, &passes, &n_cand);
    t->stats.seed_candidates = (uint64_t)llround(n_cand);
    if (rc == 0) {
        t->stats.seeds = n_sub;
        t->stats.seed_passes = (int)passes;
    }
    size_t n_seeds = U.np;
    dbg(&U, "%zu words, %zu seeds", U.nw, U.np);
    if (rc == 0) rc = em_and_prune(t, &U, (size_t)((double)o->vocab_size * 1.1));
    /* finalize: required characters, then the best-scoring pieces */
    size_t room = (size_t)(o->vocab_size - vb.n_meta), nf = 0;
    fin_t *fin = NULL;
    char (*cbuf)[4] = NULL;
    if (rc == 0) {
        fin = tkmi_malloc((room + n_req + 1) * sizeof *fin);
        cbuf = tkmi_malloc((n_req + 1) * sizeof *cbuf);
        rc = !fin || !cbuf ? tkmi_error(TKM_ENOMEM, "out of memory") : final_pieces(&U, &vb, n_req, room, fin, cbuf, &nf);
    }
    if (rc == 0) rc = write_model(t, &vb, fin, nf, n_req, room, n_seeds, out);
    tkmi_free(fin);
    tkmi_free(cbuf);
    uni_free(&U);
    tkmi_vbase_free(&vb);
    return rc < 0 ? rc : 0;
}
