/* textgen.c - deterministic generator of English + Japanese text of any size
 * for the scale benchmark (bench/scale.sh): a code-point n-gram model of a
 * real corpus (DIR/en/ *.txt, DIR/ja/ *.txt) with word mutations, so that the
 * number of unique pre-tokens keeps growing with size as in real text
 * (repeating real text would flatter a counter).
 *
 *   textgen [-s SEED] [-b BYTES] [-o OUT] [--en-share F] [--order N]
 *           [--mut F] [--heaps F] [--curve STEP] CORPUS_DIR
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
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXORD 8
#define MAXLINE 4000 /* bytes: a sampled line is cut here */

static void die(const char *what, const char *arg)
{
    fprintf(stderr, "textgen: %s%s\n", what, arg);
    exit(1);
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

/* ---- PRNG: splitmix64 ---- */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rnd01(void) { return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0); }
static uint64_t rndn(uint64_t n) { return n ? rnd() % n : 0; }

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
    m->cont = xmalloc(n_next * sizeof *m->cont);
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

/* Samples a continuation of the state whose continuations are
 * cont[*start, *start + *n): returns its code point, moves to its state. */
static uint32_t model_next(const model_t *m, uint32_t *start, uint32_t *n)
{
    size_t lo = *start, hi = *start + *n - 1; /* first cum > r */
    if (lo < hi) {
        /* r uniform in [0, total): multiply-shift (totals are below 2^32) */
        uint64_t r = ((rnd() >> 32) * m->cont[hi].cum) >> 32;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (m->cont[mid].cum > r) hi = mid;
            else lo = mid + 1;
        }
    }
    const cont_t *c = &m->cont[lo];
    *start = c->next;
    *n = c->next_n;
    return c->cp;
}

/* ---- mutations ---- */
static double g_mut = 0.02, g_heaps = 0.6, g_heaps_k = 1.0;
static uint64_t g_words;

static double mut_prob(void)
{
    double p = g_heaps_k * pow((double)(g_words + 1), g_heaps - 1.0);
    return p < g_mut ? p : g_mut;
}

/* One edit of w[0..n) (code points), letters only; returns the new length. */
static size_t mutate(const model_t *m, uint32_t *w, size_t n, size_t cap)
{
    size_t pos[256], np = 0;
    for (size_t i = 0; i < n && np < 256; i++) {
        int letter = m->ja ? w[i] >= 0x3000 : ((w[i] | 32) >= 'a' && (w[i] | 32) <= 'z');
        if (letter) pos[np++] = i;
    }
    if (!np) return n;
    size_t i = pos[rndn(np)];
    uint32_t c = m->chars[rndn(m->n_chars)];
    switch (rndn(4)) {
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

/* One line of language m into out (bytes, without the newline). */
static size_t gen_line(const model_t *m, char *out)
{
    uint32_t word[300], st_start = m->st[m->start_state].start, st_n = m->st[m->start_state].n;
    size_t nw = 0, o = 0;
    for (;;) {
        uint32_t cp = model_next(m, &st_start, &st_n);
        int end = cp == '\n' || o + 4 * (nw + 2) >= MAXLINE;
        /* English: mutate whole words; Japanese: words are long script runs,
         * so runs of up to 8 characters between spaces are the unit */
        if (cp == ' ' || end || nw == (m->ja ? 8u : 290u)) {
            if (nw) {
                g_words++;
                if (rnd01() < mut_prob()) nw = mutate(m, word, nw, 300);
                for (size_t i = 0; i < nw; i++) o += (size_t)utf8_enc(word[i], out + o);
                nw = 0;
            }
            if (end) break;
            if (cp != ' ') { word[nw++] = cp; continue; }
            out[o++] = ' ';
            continue;
        }
        word[nw++] = cp;
    }
    return o;
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

int main(int argc, char **argv)
{
    uint64_t seed = 1, bytes = 100000000, curve = 0;
    const char *out = NULL, *dir = NULL;
    double en_share = 0.6;
    int order_en = 6, order_ja = 5;
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
        else if (a[0] == '-') die("unknown option (see the comment at the top of bench/textgen.c): ", a);
        else dir = a;
#undef ARG
    }
    if (!dir) die("usage: textgen [-s SEED] [-b BYTES] [-o OUT] CORPUS_DIR", "");
    if (order_en < 1 || order_en > MAXORD || order_ja < 1 || order_ja > MAXORD) die("order out of range (1..8)", "");
    rng_state = seed * 0x2545F4914F6CDD1Dull + 7;
    model_t en, ja;
    model_build(&en, dir, "en", order_en, 0);
    model_build(&ja, dir, "ja", order_ja, 1);
    char *tmp = NULL;
    FILE *fo = stdout;
    if (out) {
        tmp = xmalloc(strlen(out) + 32);
        sprintf(tmp, "%s.tmp.%ld", out, (long)getpid());
        fo = fopen(tmp, "wb");
        if (!fo) die("cannot write ", tmp);
    }
    static char buf[MAXLINE + 64];
    uint64_t done = 0, done_en = 0, next_curve = curve;
    hset seen = {0};
    while (done < bytes) {
        int use_en = (double)done_en <= en_share * (double)(done + 1);
        size_t n = gen_line(use_en ? &en : &ja, buf);
        if (done + n + 1 > bytes) n = bytes - done > 1 ? (size_t)(bytes - done - 1) : 0;
        /* never cut inside a UTF-8 sequence */
        while (n && ((unsigned char)buf[n] & 0xC0) == 0x80) n--;
        buf[n] = '\n';
        if (fwrite(buf, 1, n + 1, fo) != n + 1) die("write error on ", tmp ? tmp : "stdout");
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
    if (out) {
        if (fclose(fo) != 0) die("write error on ", tmp);
        if (rename(tmp, out) != 0) die("cannot rename to ", out);
        free(tmp);
    }
    fprintf(stderr, "textgen: %llu bytes (%.1f%% English), %llu words, seed %llu\n", (unsigned long long)done,
            100.0 * (double)done_en / (double)(done ? done : 1), (unsigned long long)g_words, (unsigned long long)seed);
    return 0;
}
