/* bpe_sweep.c - many budget-balanced BPE models from one merge loop's
 * shared prefix (train --sweep).
 *
 * With --balance-method budget, a balanced run's merge loop is the
 * unbalanced one until the first popped entry whose new piece belongs to a
 * class that has used its budget: the state before that step is the same
 * in both (same pairs, counts, heap array, words, merges), since the
 * budgets only ever act by blocking. So one unbalanced trunk runs, counting
 * the pieces each class gets (used[]); at the first step some pending
 * point would block, the trunk's state is cloned, the clone takes that
 * point's budgets, stats and options, and continues on its own from
 * exactly that popped entry (which it blocks), to the end. The trunk stops
 * once every balanced point has forked, unless an unbalanced point wants
 * its model. Every model is byte-identical to a separate run's, whatever
 * the thread count: the forks are at fixed steps of a deterministic loop.
 *
 * Threads: branches run on their own threads while the trunk continues, at
 * most threads - 1 at once (the trunk waits for one to end), so at most
 * `threads` merge states are in memory; with one thread each branch runs
 * to its end before the trunk goes on. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bpe_state.h"

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- clone ---- */

#define DUP(f, n, cap)                                                                                                \
    do {                                                                                                              \
        if (S->f) {                                                                                                   \
            D->f = tkmi_malloc(((cap) ? (cap) : 1) * sizeof *S->f);                                                   \
            if (!D->f) goto oom;                                                                                      \
            memcpy(D->f, S->f, (n) * sizeof *S->f);                                                                   \
        }                                                                                                             \
    } while (0)

/* Between steps: no pair is dirty, and the memo holds only entries of past
 * merges (stamps below the next one), so a zeroed memo is the same cache.
 * The words (2- or 4-byte symbols, handles into the array) and the heap
 * (entries with their pieces' prefixes) copy as bytes. Each live posting
 * list keeps its entries in order: the merges visit the same words in the
 * same order; only where the lists live changes (slab lists, post_k 0, full,
 * so the first append moves one to the pool or to malloc, as in B). */
int tkmi_bpe_clone(const bpe *S, bpe *D)
{
    *D = *S;
    /* nothing of S's is D's to free until copied */
    D->s_off = NULL; D->s_len = NULL; D->s_nchars = D->s_nws = NULL; D->s_first = D->s_last = NULL; D->s_flags = NULL;
    D->arena = NULL;
    D->by_str = (tkmi_strmap){0};
    D->wa = NULL;
    D->memo = NULL;
    D->H = NULL;
    D->P = NULL;
    D->n_pairs = D->p_cap = 0; /* (until P is copied: tkmi_bpe_free walks it) */
    D->dirty = NULL;
    D->n_dirty = D->dirty_cap = 0;
    D->slab = NULL;
    D->slab_n = D->slab_live = 0;
    memset(D->pool_free, 0, sizeof D->pool_free);
    D->pool_chunks = NULL;
    D->pool_n = D->pool_cap = 0;
    D->bump = NULL;
    D->bump_left = 0;
    D->heap = NULL;
    D->blocked = NULL;
    D->n_blocked = D->blocked_cap = 0;
    D->final = NULL;
    /* symbols (capacity kept: sym_add grows by doubling from sym_cap) */
    DUP(s_off, S->n_sym, S->n_sym); DUP(s_len, S->n_sym, S->n_sym); DUP(s_nchars, S->n_sym, S->n_sym);
    DUP(s_nws, S->n_sym, S->n_sym); DUP(s_first, S->n_sym, S->n_sym); DUP(s_last, S->n_sym, S->n_sym);
    DUP(s_flags, S->n_sym, S->n_sym);
    D->sym_cap = S->n_sym;
    D->arena = tkmi_malloc(S->arena_cap);
    if (!D->arena) goto oom;
    memcpy(D->arena, S->arena, S->arena_n);
    /* the piece map: keys point into the arena */
    D->by_str.slots = tkmi_malloc(S->by_str.cap * sizeof *D->by_str.slots);
    if (!D->by_str.slots) goto oom;
    memcpy(D->by_str.slots, S->by_str.slots, S->by_str.cap * sizeof *D->by_str.slots);
    D->by_str.cap = S->by_str.cap;
    D->by_str.n = S->by_str.n;
    for (size_t i = 0; i < D->by_str.cap; i++) {
        const char *k = D->by_str.slots[i].key;
        if (k && k >= S->arena && k < S->arena + S->arena_cap) D->by_str.slots[i].key = D->arena + (k - S->arena);
    }
    DUP(wa, S->wa_n + 1, S->wa_n + 1);
    DUP(H, S->h_cap, S->h_cap);
    DUP(heap, S->heap_n, S->heap_cap);
    DUP(blocked, S->n_blocked, S->n_blocked);
    D->n_blocked = D->blocked_cap = S->n_blocked;
    D->final = tkmi_malloc(((size_t)S->target + 1) * sizeof *D->final);
    if (!D->final) goto oom;
    memcpy(D->final, S->final, (size_t)S->merges * sizeof *D->final);
    if (S->memo) {
        D->memo = tkmi_calloc(S->memo_n, sizeof *D->memo);
        if (!D->memo) goto oom;
    }
    /* pair records; their postings (slab, pool or malloc lists in S) in one
     * exactly sized slab */
    size_t tot = 0;
    for (size_t p = 0; p < S->n_pairs; p++)
        if (S->P[p].post) tot += S->P[p].post_n;
    D->slab = tkmi_malloc((tot + 1) * sizeof *D->slab);
    if (!D->slab) goto oom;
    DUP(P, S->n_pairs, S->n_pairs);
    D->n_pairs = D->p_cap = S->n_pairs;
    D->slab_n = D->slab_live = tot;
    size_t off = 0;
    for (size_t p = 0; p < S->n_pairs; p++) {
        uint32_t n = S->P[p].post ? S->P[p].post_n : 0;
        D->P[p].post = n ? D->slab + off : NULL;
        D->P[p].post_n = n;
        D->P[p].post_k = 0;
        if (n) memcpy(D->slab + off, S->P[p].post, n * sizeof *D->slab);
        off += n;
    }
    return 0;
oom:
    tkmi_bpe_free(D);
    memset(D, 0, sizeof *D);
    return tkmi_error(TKM_ENOMEM, "out of memory (copy of the merge state)");
}
#undef DUP

/* ---- trunk and branches ---- */

typedef struct sweep sweep;
typedef struct {
    sweep *S;
    int i; /* the point */
    bpe B;
    bpe_entry e; /* the entry the point blocks first */
    pthread_t th;
    int threaded;
} branch;

struct sweep {
    struct tkm_trainer *const *pt;
    tkm_model **out;
    int *rc;
    tkmi_vbase *vb;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int live, max_live;
};

/* A point's own part: the blocked entry, then the loop to the end. */
static void branch_run(branch *br)
{
    double w0 = tkmi_now(), c0 = thread_cpu();
    struct tkm_trainer *t = br->S->pt[br->i];
    bpe *B = &br->B;
    bpe_entry e;
    int rc = tkmi_bpe_step(B, &br->e);
    while (rc >= 0 && B->merges < B->target && (rc = tkmi_bpe_pop(B, &e)) > 0) rc = tkmi_bpe_step(B, &e);
    if (rc >= 0) rc = tkmi_bpe_finish(B, t, br->S->vb, &br->S->out[br->i]);
    tkmi_bpe_free(B);
    br->S->rc[br->i] = rc < 0 ? rc : 0;
    t->stats.seconds_merge = tkmi_now() - w0;
    t->stats.seconds_merge_cpu = thread_cpu() - c0;
}

static void *branch_thread(void *arg)
{
    branch *br = arg;
    branch_run(br);
    pthread_mutex_lock(&br->S->mu);
    br->S->live--;
    pthread_cond_signal(&br->S->cv);
    pthread_mutex_unlock(&br->S->mu);
    return NULL;
}

/* Clones the trunk for point i at the popped entry e and starts it. */
static int fork_point(sweep *S, const bpe *T, int i, const long budget[TKMI_N_CLASSES],
                      const int closed[TKMI_N_CLASSES], const bpe_entry *e, branch **brp)
{
    struct tkm_trainer *t = S->pt[i];
    if (S->max_live > 0) { /* wait for a free thread first: bounded memory */
        pthread_mutex_lock(&S->mu);
        while (S->live >= S->max_live) pthread_cond_wait(&S->cv, &S->mu);
        S->live++;
        pthread_mutex_unlock(&S->mu);
    }
    double c0 = thread_cpu();
    branch *br = tkmi_calloc(1, sizeof *br);
    int rc = br ? tkmi_bpe_clone(T, &br->B) : tkmi_error(TKM_ENOMEM, "out of memory");
    if (rc < 0) {
        tkmi_free(br);
        S->rc[i] = rc;
        if (S->max_live > 0) {
            pthread_mutex_lock(&S->mu);
            S->live--;
            pthread_mutex_unlock(&S->mu);
        }
        return rc;
    }
    br->S = S;
    br->i = i;
    br->e = *e;
    br->B.t = t;
    br->B.o = &t->o;
    br->B.balancing = 1;
    br->B.track_used = 0;
    memcpy(br->B.budget, budget, sizeof br->B.budget);
    memcpy(br->B.closed, closed, sizeof br->B.closed);
    t->stats.merges_shared = (int)T->merges;
    if (getenv("TKM_DEBUG_SWEEP"))
        fprintf(stderr, "debug: sweep point %d forks from the trunk after %ld merges (class %d; copy %.3f s CPU)\n", i,
                T->merges, tkmi_bpe_new_class(T, e), thread_cpu() - c0);
    *brp = br;
    if (S->max_live > 0 && pthread_create(&br->th, NULL, branch_thread, br) == 0) {
        br->threaded = 1;
        return 0;
    }
    branch_run(br);
    if (S->max_live > 0) {
        pthread_mutex_lock(&S->mu);
        S->live--;
        pthread_mutex_unlock(&S->mu);
    }
    return 0;
}

int tkmi_bpe_sweep(struct tkm_trainer *const *pt, int n, tkmi_counts *counts, tkm_model **out, int *rcs, int threads)
{
    struct tkm_trainer *tt = tkmi_malloc(sizeof *tt); /* the trunk's: unbalanced */
    long (*budget)[TKMI_N_CLASSES] = tkmi_calloc((size_t)n, sizeof *budget);
    int (*closed)[TKMI_N_CLASSES] = tkmi_calloc((size_t)n, sizeof *closed);
    int *pending = tkmi_calloc((size_t)n, sizeof *pending);
    branch **br = tkmi_calloc((size_t)n, sizeof *br);
    if (!tt || !budget || !closed || !pending || !br) {
        tkmi_free(tt); tkmi_free(budget); tkmi_free(closed); tkmi_free(pending); tkmi_free(br);
        tkmi_counts_free(counts);
        int rc = tkmi_error(TKM_ENOMEM, "out of memory");
        for (int i = 0; i < n; i++) rcs[i] = rc;
        return rc;
    }
    memcpy(tt, pt[0], sizeof *tt);
    tt->o.balance_latin = tt->o.balance_japanese = -1;
    sweep S = {.pt = pt, .out = out, .rc = rcs, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    S.max_live = threads > 1 ? threads - 1 : 0;
    bpe T;
    tkmi_vbase vb;
    S.vb = &vb;
    double w0 = tkmi_now(), c0 = thread_cpu();
    int rc = tkmi_bpe_setup(tt, counts, &T, &vb);
    T.track_used = 1;
    int n_pending = 0, want_trunk = 0;
    for (int i = 0; i < n; i++) {
        rcs[i] = rc;
        if (rc < 0) continue;
        pt[i]->stats = tt->stats; /* what the setup wrote */
        pending[i] = tkmi_bpe_budgets(&T, &pt[i]->o, &pt[i]->stats, budget[i], closed[i]);
        if (pending[i]) n_pending++;
        else want_trunk = 1;
    }
    bpe_entry e;
    while (rc >= 0 && T.merges < T.target && (n_pending || want_trunk) && (rc = tkmi_bpe_pop(&T, &e)) > 0) {
        int cls = tkmi_bpe_new_class(&T, &e);
        for (int i = 0; cls >= 0 && i < n; i++) {
            if (!pending[i] || T.used[cls] < budget[i][cls]) continue;
            pending[i] = 0;
            n_pending--;
            fork_point(&S, &T, i, budget[i], closed[i], &e, &br[i]); /* (an error is the point's) */
        }
        if (n_pending || want_trunk) rc = tkmi_bpe_step(&T, &e);
    }
    /* the points that never blocked have the trunk's model, as do the
     * unbalanced ones */
    for (int i = 0; i < n; i++) {
        if (br[i] || S.rc[i] < 0) continue;
        if (rc < 0) { rcs[i] = rc; continue; }
        if (pending[i]) pt[i]->stats.merges_shared = (int)T.merges;
        rcs[i] = tkmi_bpe_finish(&T, pt[i], &vb, &out[i]);
        pt[i]->stats.seconds_merge = tkmi_now() - w0;
        pt[i]->stats.seconds_merge_cpu = thread_cpu() - c0;
    }
    tkmi_bpe_free(&T);
    for (int i = 0; i < n; i++)
        if (br[i] && br[i]->threaded) pthread_join(br[i]->th, NULL);
    for (int i = 0; i < n; i++) tkmi_free(br[i]);
    tkmi_vbase_free(&vb);
    tkmi_free(tt);
    tkmi_free(budget);
    tkmi_free(closed);
    tkmi_free(pending);
    tkmi_free(br);
    for (int i = 0; i < n; i++)
        if (rcs[i] < 0) return rcs[i];
    return 0;
}
