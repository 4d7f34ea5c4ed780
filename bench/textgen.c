/* textgen.c - deterministic generator of English + Japanese text of any size
 * for the scale benchmark (bench/scale.sh): a code-point n-gram model of a
 * real corpus (DIR/en/ *.txt, DIR/ja/ *.txt) with word mutations, so that the
 * number of unique pre-tokens keeps growing with size as in real text
 * (repeating real text would flatter a counter).
 *
 *   textgen [-s SEED] [-b BYTES] [-o OUT] [--en-share F] [--order N]
 *           [--mut F] [--heaps F] [--curve STEP] [-t THREADS] [--lanes K]
 *           CORPUS_DIR
 *
 * Model: for each language, P(next code point | previous N code points),
 * lines start from a context of N newlines and end at a sampled newline.
 * Every context reached by sampling was seen in the corpus, so no backoff is
 * needed. Mutations: a word (run between spaces) of the English stream, and
 * a character of the Japanese stream, is edited (substitution, insertion,
 * deletion, transposition; characters drawn from the language's character
 * distribution) with a probability that falls as words are generated,
 * p(n) = min(mut, heaps_k * n^(heaps-1)): novel words then accumulate like
 * Heaps' law, U ~ n^heaps, on top of what the n-gram itself invents.
 * Languages alternate line by line to keep the byte shares (--en-share,
 * 0.6). Same seed and options => same bytes. Output is written to
 * OUT.tmp.PID and renamed. --curve STEP prints to stderr, every STEP bytes,
 * the number of unique whitespace-separated words so far (a cheap growth
 * check; bench/scale.sh measures real pre-tokens with tokenmill). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* madvise */
#endif
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MAXORD 8
#define MAXLINE 4000 /* bytes: a sampled line is cut here */

static char *g_tmp; /* the output being written (removed on an error) */
/* SIGUSR1: end the stream early, at the end of the current line (default
 * mode) or block (block mode), so that a streamed run that would not end in
 * time reads a prefix of the stream and still completes */
static volatile sig_atomic_t g_stop_early;
static void on_usr1(int sig)
{
    (void)sig;
    g_stop_early = 1;
}

static void die(const char *what, const char *arg)
{
    fprintf(stderr, "textgen: %s%s\n", what, arg);
    if (g_tmp) unlink(g_tmp);
    _exit(1); /* stderr is unbuffered; no exit handlers (a leak checker's would replace the status) */
}

static void die_errno(const char *what, const char *arg)
{
    int e = errno;
    fprintf(stderr, "textgen: %s%s: %s\n", what, arg, strerror(e));
    if (g_tmp) unlink(g_tmp);
    _exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory", "");
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) die("out of memory", "");
    return p;
}

/* Memory for the model's continuations, read at random on every step: on
 * 2 MB pages where the kernel gives them (madvise), so that a step misses
 * the cache but not the TLB as well. */
static void *xmalloc_huge(size_t n)
{
    size_t hp = (size_t)2 << 20, sz = (n + hp - 1) / hp * hp;
    void *p = NULL;
    if (posix_memalign(&p, hp, sz ? sz : hp)) die("out of memory", "");
#ifdef MADV_HUGEPAGE
    madvise(p, sz, MADV_HUGEPAGE); /* advice only: fine if refused */
#endif
    return p;
}

/* ---- PRNG: splitmix64, one state per stream (the whole output in the
 * default mode, one per block in the block mode) ---- */
static uint64_t sm_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint64_t rnd(uint64_t *st) { return sm_mix(*st += 0x9E3779B97F4A7C15ull); }
static double rnd01(uint64_t *st) { return (double)(rnd(st) >> 11) * (1.0 / 9007199254740992.0); }
static uint64_t rndn(uint64_t *st, uint64_t n) { return n ? rnd(st) % n : 0; }

/* ---- UTF-8 ---- */
static int utf8_dec(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (!len || (size_t)len > n) { *cp = 0xFFFD; return 1; }
    uint32_t v = c & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) { *cp = 0xFFFD; return 1; }
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

static int utf8_enc(uint32_t cp, char *o)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- the n-gram model of one language ---- */
/* A state machine: a state is a context (the previous N code points); its
 * continuations are (code point, cumulative count, next state), so sampling
 * costs one binary search and no hashing. Contexts are identified by a
 * 64-bit hash while the model is built. */
typedef struct { uint64_t ctx, next_ctx; uint32_t cp; } obs_t;
typedef struct { uint32_t start, n; uint64_t total; } state_t;
/* one continuation, 16 bytes: its code point, the cumulative count within
 * its state, and the state it leads to (its first continuation and count),
 * so a step reads one cache line in the common case */
typedef struct { uint32_t cp, cum, next, next_n; } cont_t;
typedef struct {
    int order;
    state_t *st;
    uint32_t start_state; /* N newlines: where every line starts */
    uint32_t *next_cp, *next_state;
    uint64_t *next_cum; /* cumulative counts within a state's continuations */
    cont_t *cont;
    /* characters for mutations: the language's letters, as a flat sample */
    uint32_t *chars;
    size_t n_chars;
    int ja;
} model_t;

static uint64_t mix(uint64_t h, uint32_t cp)
{
    h ^= cp + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xFF51AFD7ED558CCDull;
    return h ^ (h >> 33);
}

static uint64_t ctx_hash(const uint32_t *hist, int order)
{
    uint64_t h = 0x12345678ull;
    for (int i = 0; i < order; i++) h = mix(h, hist[i]);
    return h | 1;
}

static int cmp_obs(const void *a, const void *b)
{
    const obs_t *x = a, *y = b;
    if (x->ctx != y->ctx) return x->ctx < y->ctx ? -1 : 1;
    return x->cp < y->cp ? -1 : x->cp > y->cp;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The .txt files of DIR/sub in C-locale order. */
static char **list_txt(const char *dir, const char *sub, int *n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    DIR *d = opendir(path);
    if (!d) die("cannot open directory ", path);
    char **v = NULL;
    int k = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".txt")) continue;
        v = xrealloc(v, (size_t)(k + 1) * sizeof *v);
        v[k] = xmalloc(strlen(path) + l + 2);
        sprintf(v[k], "%s/%s", path, e->d_name);
        k++;
    }
    closedir(d);
    if (!k) die("no .txt files in ", path);
    qsort(v, (size_t)k, sizeof *v, cmp_str);
    *n = k;
    return v;
}

/* context hash -> state id, while building */
typedef struct { uint64_t *key; uint32_t *val; size_t cap; } idmap;
static uint32_t idmap_get(const idmap *m, uint64_t k)
{
    size_t j = k & (m->cap - 1);
    while (m->key[j] != k) {
        if (!m->key[j]) die("internal error: unseen context", "");
        j = (j + 1) & (m->cap - 1);
    }
    return m->val[j];
}

static void model_build(model_t *m, const char *dir, const char *sub, int order, int ja)
{
    int nf;
    char **files = list_txt(dir, sub, &nf);
    obs_t *obs = NULL;
    size_t n_obs = 0, cap_obs = 0;
    m->order = order;
    m->ja = ja;
    m->chars = NULL;
    m->n_chars = 0;
    size_t cap_chars = 0;
    char *line = NULL;
    size_t lcap = 0;
    uint32_t hist[MAXORD];
    for (int i = 0; i < order; i++) hist[i] = '\n';
    uint64_t start_ctx = ctx_hash(hist, order);
    for (int f = 0; f < nf; f++) {
        FILE *fp = fopen(files[f], "rb");
        if (!fp) die("cannot open ", files[f]);
        ssize_t len;
        while ((len = getline(&line, &lcap, fp)) >= 0) {
            if (len && line[len - 1] == '\n') len--;
            for (int i = 0; i < order; i++) hist[i] = '\n';
            uint64_t h = start_ctx;
            size_t i = 0;
            for (;;) {
                uint32_t cp = '\n';
                int mb = 1;
                if (i < (size_t)len) mb = utf8_dec((const unsigned char *)line + i, (size_t)len - i, &cp);
                if (cp == '\n' && i < (size_t)len) cp = ' ';
                if (n_obs == cap_obs) {
                    cap_obs = cap_obs ? cap_obs * 2 : (1u << 20);
                    obs = xrealloc(obs, cap_obs * sizeof *obs);
                }
                memmove(hist, hist + 1, (size_t)(order - 1) * sizeof *hist);
                hist[order - 1] = cp;
                uint64_t nh = i >= (size_t)len ? start_ctx : ctx_hash(hist, order);
                obs[n_obs++] = (obs_t){h, nh, cp};
                h = nh;
                /* letters for mutations: ASCII letters (en), non-ASCII (ja) */
                int letter = ja ? cp >= 0x3000 : ((cp | 32) >= 'a' && (cp | 32) <= 'z');
                if (letter) {
                    if (m->n_chars == cap_chars) {
                        cap_chars = cap_chars ? cap_chars * 2 : (1u << 16);
                        m->chars = xrealloc(m->chars, cap_chars * sizeof *m->chars);
                    }
                    m->chars[m->n_chars++] = cp;
                }
                if (i >= (size_t)len) break;
                i += (size_t)mb;
            }
        }
        fclose(fp);
        free(files[f]);
    }
    free(files);
    free(line);
    if (!m->n_chars) die("no letters in ", sub);
    qsort(obs, n_obs, sizeof *obs, cmp_obs);
    size_t n_ctx = 0, n_next = 0;
    for (size_t i = 0; i < n_obs; i++) {
        if (i == 0 || obs[i].ctx != obs[i - 1].ctx) n_ctx++;
        if (i == 0 || obs[i].ctx != obs[i - 1].ctx || obs[i].cp != obs[i - 1].cp) n_next++;
    }
    idmap ids;
    ids.cap = 16;
    while (ids.cap < n_ctx * 2) ids.cap <<= 1;
    ids.key = calloc(ids.cap, sizeof *ids.key);
    ids.val = xmalloc(ids.cap * sizeof *ids.val);
    if (!ids.key) die("out of memory", "");
    m->st = xmalloc(n_ctx * sizeof *m->st);
    m->next_cp = xmalloc(n_next * sizeof *m->next_cp);
    m->next_cum = xmalloc(n_next * sizeof *m->next_cum);
    m->next_state = xmalloc(n_next * sizeof *m->next_state);
    uint64_t *next_ctx = xmalloc(n_next * sizeof *next_ctx);
    size_t k = 0, s = 0;
    for (size_t i = 0; i < n_obs; i++) {
        if (i == 0 || obs[i].ctx != obs[i - 1].ctx) {
            size_t j = obs[i].ctx & (ids.cap - 1);
            while (ids.key[j]) j = (j + 1) & (ids.cap - 1);
            ids.key[j] = obs[i].ctx;
            ids.val[j] = (uint32_t)s;
            m->st[s++] = (state_t){(uint32_t)k, 0, 0};
        }
        state_t *cur = &m->st[s - 1];
        if (i == 0 || obs[i].ctx != obs[i - 1].ctx || obs[i].cp != obs[i - 1].cp) {
            m->next_cp[k] = obs[i].cp;
            next_ctx[k] = obs[i].next_ctx;
            cur->n++;
            k++;
        }
        cur->total++;
        m->next_cum[k - 1] = cur->total;
    }
    free(obs);
    for (size_t q = 0; q < n_next; q++) m->next_state[q] = idmap_get(&ids, next_ctx[q]);
    m->start_state = idmap_get(&ids, start_ctx);
    if (n_obs >= UINT32_MAX) die("corpus too large for the model", "");
    m->cont = xmalloc_huge(n_next * sizeof *m->cont);
    for (size_t q = 0; q < n_next; q++) {
        const state_t *ns = &m->st[m->next_state[q]];
        m->cont[q] = (cont_t){m->next_cp[q], (uint32_t)m->next_cum[q], ns->start, ns->n};
    }
    free(m->next_cp);
    free(m->next_cum);
    free(m->next_state);
    free(next_ctx);
    free(ids.key);
    free(ids.val);
    fprintf(stderr, "textgen: %s model: order %d, %zu contexts, %zu continuations, %zu letters\n", sub, order, n_ctx,
            n_next, m->n_chars);
}

static void model_free(model_t *m)
{
    free(m->st);
    free(m->cont);
    free(m->chars);
}

/* Where a line is in the model: its state, whose continuations are
 * cont[start, start + n). */
typedef struct {
    uint32_t start, n;
} walk_t;

/* Samples a continuation of the current state: the first continuation
 * whose cumulative count exceeds r, r uniform in [0, total); returns its
 * code point and moves to its state, whose continuations it prefetches: in
 * the block mode other lanes run before this one's next step, so the cache
 * misses of several lanes overlap (memory-level parallelism). */
static uint32_t model_next(const model_t *m, uint64_t *rng, walk_t *w)
{
    size_t lo = w->start, hi = w->start + w->n - 1; /* first cum > r */
    if (lo < hi) {
        /* r uniform in [0, total): multiply-shift (totals are below 2^32) */
        uint64_t r = ((rnd(rng) >> 32) * m->cont[hi].cum) >> 32;
        /* branch-free (the comparisons are coin flips): cont[hi].cum > r */
        size_t len = hi - lo + 1;
        while (len > 1) {
            size_t half = len / 2;
            lo = m->cont[lo + half - 1].cum <= r ? lo + half : lo;
            len -= half;
        }
    }
    const cont_t *c = &m->cont[lo];
    w->start = c->next;
    w->n = c->next_n;
    const cont_t *f = &m->cont[c->next], *l = f + c->next_n - 1;
    if (c->next_n <= 16) {
        for (const char *q = (const char *)f; q <= (const char *)l; q += 64) __builtin_prefetch(q);
        __builtin_prefetch(l);
    } else { /* the first probes of its binary search */
        __builtin_prefetch(l);
        __builtin_prefetch(f + (c->next_n - 1) / 2);
        __builtin_prefetch(f + (c->next_n - 1) / 4);
        __builtin_prefetch(f + 3 * (c->next_n - 1) / 4);
    }
    return c->cp;
}

/* ---- mutations ---- */
static double g_mut = 0.02, g_heaps = 0.6, g_heaps_k = 1.0;

/* words: the index of the word in the whole stream (in the block mode, the
 * block's estimated first index plus the words generated in it) */
static double mut_prob(uint64_t words)
{
    double p = g_heaps_k * pow((double)(words + 1), g_heaps - 1.0);
    return p < g_mut ? p : g_mut;
}

/* The block mode's mut_prob, recomputed every 64 words (the default mode
 * computes it for every word): p(n) changes by under 0.03% over 64 words
 * once n passes 10^5, the first block's size. */
typedef struct {
    double p;
    uint64_t next;
} mutp_t;

/* One edit of w[0..n) (code points), letters only; returns the new length. */
static size_t mutate(const model_t *m, uint64_t *rng, uint32_t *w, size_t n, size_t cap)
{
    size_t pos[256], np = 0;
    for (size_t i = 0; i < n && np < 256; i++) {
        int letter = m->ja ? w[i] >= 0x3000 : ((w[i] | 32) >= 'a' && (w[i] | 32) <= 'z');
        if (letter) pos[np++] = i;
    }
    if (!np) return n;
    size_t i = pos[rndn(rng, np)];
    uint32_t c = m->chars[rndn(rng, m->n_chars)];
    switch (rndn(rng, 4)) {
    case 0: w[i] = c; break; /* substitution */
    case 1:                  /* insertion */
        if (n + 1 > cap) break;
        memmove(w + i + 1, w + i, (n - i) * sizeof *w);
        w[i] = c;
        n++;
        break;
    case 2: /* deletion (a word keeps one letter) */
        if (np < 2) { w[i] = c; break; }
        memmove(w + i, w + i + 1, (n - i - 1) * sizeof *w);
        n--;
        break;
    default: /* transposition with the next letter */
        if (i + 1 < n && (m->ja ? w[i + 1] >= 0x3000 : ((w[i + 1] | 32) >= 'a' && (w[i + 1] | 32) <= 'z'))) {
            uint32_t t = w[i];
            w[i] = w[i + 1];
            w[i + 1] = t;
        } else {
            w[i] = c;
        }
    }
    return n;
}

/* One line being generated: the model's state, the current word (code
 * points) and the bytes written so far to out. line_step advances it by one
 * code point, so that the block mode can interleave lines of several lanes. */
typedef struct {
    const model_t *m;
    walk_t w;
    uint32_t word[300];
    size_t nw, o;
    char *out;
} line_t;

static void line_begin(line_t *L, const model_t *m, char *out)
{
    L->m = m;
    L->w.start = m->st[m->start_state].start;
    L->w.n = m->st[m->start_state].n;
    L->nw = L->o = 0;
    L->out = out;
}

/* One code point of the line; returns 1 when the line has ended (L->o
 * bytes, without the newline). *words counts the words of the stream. */
static int line_step(line_t *L, uint64_t *rng, uint64_t *words, mutp_t *mp)
{
    const model_t *m = L->m;
    uint32_t cp = model_next(m, rng, &L->w);
    int end = cp == '\n' || L->o + 4 * (L->nw + 2) >= MAXLINE;
    /* English: mutate whole words; Japanese: words are long script runs,
     * so runs of up to 8 characters between spaces are the unit */
    if (cp == ' ' || end || L->nw == (m->ja ? 8u : 290u)) {
        if (L->nw) {
            ++*words;
            double p;
            if (!mp) p = mut_prob(*words);
            else {
                if (*words >= mp->next) {
                    mp->p = mut_prob(*words);
                    mp->next = *words + 64;
                }
                p = mp->p;
            }
            if (rnd01(rng) < p) L->nw = mutate(m, rng, L->word, L->nw, 300);
            for (size_t i = 0; i < L->nw; i++) L->o += (size_t)utf8_enc(L->word[i], L->out + L->o);
            L->nw = 0;
        }
        if (end) return 1;
        if (cp != ' ') {
            L->word[L->nw++] = cp;
            return 0;
        }
        L->out[L->o++] = ' ';
        return 0;
    }
    L->word[L->nw++] = cp;
    return 0;
}

/* ---- growth check: unique whitespace-separated words ---- */
typedef struct { uint64_t *h; size_t cap, n; } hset;
static void hset_add(hset *s, uint64_t h)
{
    if (!h) h = 1;
    if ((s->n + 1) * 2 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : (1u << 16);
        uint64_t *nh = calloc(nc, sizeof *nh);
        if (!nh) die("out of memory", "");
        for (size_t i = 0; i < s->cap; i++)
            if (s->h[i]) {
                size_t j = s->h[i] & (nc - 1);
                while (nh[j]) j = (j + 1) & (nc - 1);
                nh[j] = s->h[i];
            }
        free(s->h);
        s->h = nh;
        s->cap = nc;
    }
    size_t j = h & (s->cap - 1);
    while (s->h[j]) {
        if (s->h[j] == h) return;
        j = (j + 1) & (s->cap - 1);
    }
    s->h[j] = h;
    s->n++;
}

static void words_of(hset *s, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && p[i] == ' ') i++;
        size_t st = i;
        uint64_t h = 1469598103934665603ull;
        while (i < n && p[i] != ' ') h = (h ^ (uint8_t)p[i++]) * 1099511628211ull;
        if (i > st) hset_add(s, h);
    }
}

static uint64_t parse_size(const char *s)
{
    char *e;
    double v = strtod(s, &e);
    double mul = 1;
    if (*e == 'k' || *e == 'K') mul = 1e3, e++;
    else if (*e == 'M') mul = 1e6, e++;
    else if (*e == 'G') mul = 1e9, e++;
    if (*e || !(v >= 0)) die("bad size: ", s);
    return (uint64_t)(v * mul);
}

/* ---- the block mode (-t N / --lanes K) ----
 * The stream is a sequence of blocks: block b is lines generated from its
 * own PRNG state (a hash of the seed and b) until it holds at least BLOCK
 * bytes, its en/ja alternation counted within the block, and its words
 * numbered from b * BLOCK * (words per byte of block 0) for the mutation
 * schedule, so the statistics by position in the stream are those of the
 * default mode. A thread generates K consecutive blocks at once, one lane
 * each, advanced one code point at a time in turn: each step is a chain of
 * dependent loads into the model, and with K lanes their cache misses
 * overlap. Blocks are written in order, so the bytes depend on the seed,
 * the options and BLOCK only, never on K or the thread count. */
#define BLOCK 1000000
#define MAXLANES 64

static const model_t *g_en, *g_ja;
static double g_en_share = 0.6, g_wpb;
static uint64_t g_seed;

typedef struct {
    uint64_t rng, words, words0, done_en;
    mutp_t mp;
    size_t len; /* bytes of the block so far, whole lines */
    int en;     /* the current line's language */
    line_t L;
    char *buf;
    char line[MAXLINE + 64]; /* as the default mode's buf (see its cut) */
} lane_t;

static void lane_line(lane_t *z)
{
    z->en = (double)z->done_en <= g_en_share * (double)(z->len + 1);
    line_begin(&z->L, z->en ? g_en : g_ja, z->line);
}

/* Blocks first .. first + k - 1 into bufs[i], their lengths, words and
 * English bytes. */
static void gen_blocks(uint64_t first, int k, char **bufs, size_t *lens, uint64_t *words, uint64_t *en)
{
    lane_t lanes[MAXLANES];
    int act[MAXLANES], na = 0;
    for (int i = 0; i < k; i++) {
        lane_t *z = &lanes[i];
        uint64_t b = first + (uint64_t)i;
        z->rng = sm_mix(sm_mix(g_seed * 0x2545F4914F6CDD1Dull + 7) ^ (b * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull));
        /* test hook (tests/cli/textgen.sh): block 0 with the default mode's
         * PRNG state gives its bytes, up to where the mutation probability
         * is first recomputed (after 17,677 words it is below the cap) */
        if (b == 0 && getenv("TEXTGEN_BLOCK0_AS_DEFAULT")) z->rng = g_seed * 0x2545F4914F6CDD1Dull + 7;
        memset(z->line, 0, sizeof z->line);
        z->words = z->words0 = (uint64_t)((double)b * BLOCK * g_wpb + 0.5);
        z->done_en = 0;
        z->mp.next = 0;
        z->len = 0;
        z->buf = bufs[i];
        lane_line(z);
        act[na++] = i;
    }
    while (na) {
        for (int j = 0; j < na;) {
            lane_t *z = &lanes[act[j]];
            if (line_step(&z->L, &z->rng, &z->words, &z->mp)) {
                size_t n = z->L.o;
                while (n && ((unsigned char)z->line[n] & 0xC0) == 0x80) n--;
                z->line[n] = '\n';
                memcpy(z->buf + z->len, z->line, n + 1);
                z->len += n + 1;
                if (z->en) z->done_en += n + 1;
                if (z->len >= BLOCK) {
                    act[j] = act[--na];
                    continue;
                }
                lane_line(z);
            }
            j++;
        }
    }
    for (int i = 0; i < k; i++) {
        lens[i] = lanes[i].len;
        words[i] = lanes[i].words - lanes[i].words0;
        en[i] = lanes[i].done_en;
    }
}

/* blocks in flight: slot b % n_slots holds block b once ready[slot] == b */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t ready_cv, free_cv;
    uint64_t next_group, written, n_blocks;
    int stop, lanes, n_slots;
    char **buf;
    size_t *len;
    uint64_t *ready, *words, *en;
} P = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

static void *worker(void *arg)
{
    (void)arg;
    char *bufs[MAXLANES];
    size_t lens[MAXLANES];
    uint64_t words[MAXLANES], en[MAXLANES];
    pthread_mutex_lock(&P.mu);
    for (;;) {
        uint64_t first = 1 + P.next_group++ * (uint64_t)P.lanes; /* block 0 is made before */
        if (P.stop || first >= P.n_blocks) break;
        int k = P.n_blocks - first < (uint64_t)P.lanes ? (int)(P.n_blocks - first) : P.lanes;
        while (!P.stop && first + (uint64_t)k > P.written + (uint64_t)P.n_slots) pthread_cond_wait(&P.free_cv, &P.mu);
        if (P.stop) break;
        for (int i = 0; i < k; i++) bufs[i] = P.buf[(first + (uint64_t)i) % (uint64_t)P.n_slots];
        pthread_mutex_unlock(&P.mu);
        gen_blocks(first, k, bufs, lens, words, en);
        pthread_mutex_lock(&P.mu);
        for (int i = 0; i < k; i++) {
            size_t s = (first + (uint64_t)i) % (uint64_t)P.n_slots;
            P.len[s] = lens[i];
            P.words[s] = words[i];
            P.en[s] = en[i];
            P.ready[s] = first + (uint64_t)i;
        }
        pthread_cond_broadcast(&P.ready_cv);
    }
    pthread_mutex_unlock(&P.mu);
    return NULL;
}

int main(int argc, char **argv)
{
    uint64_t seed = 1, bytes = 100000000, curve = 0;
    const char *out = NULL, *dir = NULL;
    double en_share = 0.6;
    int order_en = 6, order_ja = 5, threads = 0, lanes = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (!strcmp(a, name) && v && (i++, 1))
        if (ARG("-s")) seed = strtoull(v, NULL, 10);
        else if (ARG("-b")) bytes = parse_size(v);
        else if (ARG("-o")) out = v;
        else if (ARG("--en-share")) en_share = atof(v);
        else if (ARG("--order")) order_en = atoi(v);
        else if (ARG("--order-ja")) order_ja = atoi(v);
        else if (ARG("--mut")) g_mut = atof(v);
        else if (ARG("--heaps")) g_heaps = atof(v);
        else if (ARG("--heaps-k")) g_heaps_k = atof(v);
        else if (ARG("--curve")) curve = parse_size(v);
        else if (ARG("-t")) threads = atoi(v);
        else if (ARG("--lanes")) lanes = atoi(v);
        else if (a[0] == '-' && a[1]) die("unknown option (see the comment at the top of bench/textgen.c): ", a);
        else dir = a;
#undef ARG
    }
    if (!dir) die("usage: textgen [-s SEED] [-b BYTES] [-o OUT] [-t THREADS] [--lanes K] CORPUS_DIR", "");
    if (order_en < 1 || order_en > MAXORD || order_ja < 1 || order_ja > MAXORD) die("order out of range (1..8)", "");
    int blocks = threads || lanes;
    if (threads < 0 || threads > 256 || lanes < 0 || lanes > MAXLANES) die("-t must be 1..256 and --lanes 1..64", "");
    if (blocks && !threads) threads = 1;
    if (blocks && !lanes) lanes = 16;
    /* a closed pipe is a write error with a message, not a silent death */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGUSR1, on_usr1);
    uint64_t rng_state = seed * 0x2545F4914F6CDD1Dull + 7;
    model_t en, ja;
    model_build(&en, dir, "en", order_en, 0);
    model_build(&ja, dir, "ja", order_ja, 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    FILE *fo = stdout;
    if (out && strcmp(out, "-")) {
        g_tmp = xmalloc(strlen(out) + 32);
        sprintf(g_tmp, "%s.tmp.%ld", out, (long)getpid());
        fo = fopen(g_tmp, "wb");
        if (!fo) die("cannot write ", g_tmp);
    }
    const char *oname = g_tmp ? g_tmp : "stdout";
    uint64_t done = 0, done_en = 0, next_curve = curve, words = 0;
    hset seen = {0};
    if (!blocks) {
        static char buf[MAXLINE + 64];
        line_t L;
        while (done < bytes && !g_stop_early) {
            int use_en = (double)done_en <= en_share * (double)(done + 1);
            line_begin(&L, use_en ? &en : &ja, buf);
            while (!line_step(&L, &rng_state, &words, NULL)) {}
            size_t n = L.o;
            if (done + n + 1 > bytes) n = bytes - done > 1 ? (size_t)(bytes - done - 1) : 0;
            /* never cut inside a UTF-8 sequence (for every line, this also
             * shortens a line when the byte after it, left in buf by a
             * longer earlier line, is a UTF-8 continuation byte: 0.3% fewer
             * lines and 1% more unique pre-tokens than without; kept, as
             * the files made with this mode have it, and the block mode
             * does the same) */
            while (n && ((unsigned char)buf[n] & 0xC0) == 0x80) n--;
            buf[n] = '\n';
            if (fwrite(buf, 1, n + 1, fo) != n + 1) die_errno("write error on ", oname);
            if (curve) {
                words_of(&seen, buf, n);
                if (done + n + 1 >= next_curve) {
                    fprintf(stderr, "curve %llu bytes %zu unique words\n", (unsigned long long)(done + n + 1), seen.n);
                    next_curve += curve;
                }
            }
            done += n + 1;
            if (use_en) done_en += n + 1;
        }
    } else {
        g_en = &en;
        g_ja = &ja;
        g_en_share = en_share;
        g_seed = seed;
        P.lanes = lanes;
        P.n_slots = 2 * threads * lanes;
        /* a block holds at least BLOCK bytes; a cut that falls inside a
         * UTF-8 sequence writes less, and the next block's first bytes
         * fill the rest, as the default mode's next line does (a few more) */
        P.n_blocks = bytes / BLOCK + 5;
        P.buf = xmalloc((size_t)P.n_slots * sizeof *P.buf);
        P.len = xmalloc((size_t)P.n_slots * sizeof *P.len);
        P.ready = xmalloc((size_t)P.n_slots * sizeof *P.ready);
        P.words = xmalloc((size_t)P.n_slots * sizeof *P.words);
        P.en = xmalloc((size_t)P.n_slots * sizeof *P.en);
        for (int i = 0; i < P.n_slots; i++) {
            P.buf[i] = xmalloc(BLOCK + 2 * MAXLINE);
            P.ready[i] = UINT64_MAX;
        }
        /* block 0 first: its words per byte number the words of the others */
        gen_blocks(0, 1, P.buf, P.len, P.words, P.en);
        P.ready[0] = 0;
        g_wpb = (double)P.words[0] / (double)P.len[0];
        pthread_t *tid = xmalloc((size_t)threads * sizeof *tid);
        for (int i = 0; i < threads; i++)
            if (pthread_create(&tid[i], NULL, worker, NULL)) die("cannot start a thread", "");
        for (uint64_t b = 0; done < bytes && !g_stop_early; b++) {
            size_t s = b % (uint64_t)P.n_slots;
            pthread_mutex_lock(&P.mu);
            while (P.ready[s] != b) pthread_cond_wait(&P.ready_cv, &P.mu);
            pthread_mutex_unlock(&P.mu);
            char *buf = P.buf[s];
            size_t n = P.len[s];
            uint64_t wn = P.words[s], en_n = P.en[s];
            if (n > bytes - done) { /* the last block: cut as the default mode cuts its last line */
                size_t full = n;
                n = bytes - done > 1 ? (size_t)(bytes - done - 1) : 0;
                while (n && ((unsigned char)buf[n] & 0xC0) == 0x80) n--;
                buf[n++] = '\n';
                wn = (uint64_t)((double)wn * (double)n / (double)full);
                en_n = (uint64_t)((double)en_n * (double)n / (double)full);
            }
            if (fwrite(buf, 1, n, fo) != n) die_errno("write error on ", oname);
            if (curve) {
                words_of(&seen, buf, n);
                if (done + n >= next_curve) {
                    fprintf(stderr, "curve %llu bytes %zu unique words\n", (unsigned long long)(done + n), seen.n);
                    while (next_curve <= done + n) next_curve += curve;
                }
            }
            done += n;
            done_en += en_n;
            words += wn;
            pthread_mutex_lock(&P.mu);
            P.written = b + 1;
            P.ready[s] = UINT64_MAX;
            pthread_cond_broadcast(&P.free_cv);
            pthread_mutex_unlock(&P.mu);
        }
        pthread_mutex_lock(&P.mu);
        P.stop = 1;
        pthread_cond_broadcast(&P.free_cv);
        pthread_mutex_unlock(&P.mu);
        for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);
        free(tid);
        for (int i = 0; i < P.n_slots; i++) free(P.buf[i]);
        free(P.buf);
        free(P.len);
        free(P.ready);
        free(P.words);
        free(P.en);
    }
    if (fflush(fo) != 0) die_errno("write error on ", oname);
    if (g_tmp) {
        if (fclose(fo) != 0) die_errno("write error on ", g_tmp);
        if (rename(g_tmp, out) != 0) die_errno("cannot rename to ", out);
        free(g_tmp);
        g_tmp = NULL;
    }
    if (g_stop_early && done < bytes)
        fprintf(stderr, "textgen: stopped early (SIGUSR1) after %llu of %llu bytes, at a line end\n", (unsigned long long)done,
                (unsigned long long)bytes);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    double cpu = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    fprintf(stderr, "textgen: generated in %.2f s CPU after the models (%.1f MB per CPU second)\n", cpu,
            (double)done / 1e6 / (cpu > 0 ? cpu : 1e-9));
    if (blocks)
        fprintf(stderr, "textgen: %llu bytes (%.1f%% English), %llu words, seed %llu, block mode: %d thread(s), %d lanes\n",
                (unsigned long long)done, 100.0 * (double)done_en / (double)(done ? done : 1), (unsigned long long)words,
                (unsigned long long)seed, threads, lanes);
    else
        fprintf(stderr, "textgen: %llu bytes (%.1f%% English), %llu words, seed %llu\n", (unsigned long long)done,
                100.0 * (double)done_en / (double)(done ? done : 1), (unsigned long long)words, (unsigned long long)seed);
    model_free(&en);
    model_free(&ja);
    free(seen.h);
    return 0;
}
