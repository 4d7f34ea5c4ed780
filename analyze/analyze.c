/* analyze.c - compression of corpora by tokenizers: corpus specs (file,
 * directory, glob) and a streaming, multi-threaded count of tokens, bytes,
 * characters, words and fallback tokens per model. */
#include <dirent.h>
#include <glob.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/model_internal.h"
#include "tokenmill_analyze.h"

/* ---- corpus specs ---- */

static int str_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int list_push(char ***v, int *n, size_t *cap, const char *s)
{
    if (tkmi_grow((void **)v, cap, (size_t)*n + 1, sizeof **v) < 0) return TKM_ENOMEM;
    char *d = tkmi_strdup(s);
    if (!d) return TKM_ENOMEM;
    (*v)[(*n)++] = d;
    return 0;
}

static int is_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int tkm_analyze_files(const char *spec, char ***files, int *n)
{
    char **v = NULL;
    size_t cap = 0;
    int k = 0, rc = 0;
    struct stat st;
    *files = NULL;
    *n = 0;
    if (!strcmp(spec, "-") || (stat(spec, &st) == 0 && !S_ISDIR(st.st_mode))) {
        rc = list_push(&v, &k, &cap, spec);
    } else if (stat(spec, &st) == 0) {
        DIR *d = opendir(spec);
        TKM_RETURN_ERROR_IF(!d, TKM_EIO, "%s: cannot read directory", spec);
        size_t sl = strlen(spec);
        struct dirent *e;
        char *path = NULL;
        size_t pcap = 0;
        while (rc == 0 && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') continue; /* ., .., hidden files */
            size_t need = sl + strlen(e->d_name) + 2;
            if (tkmi_grow((void **)&path, &pcap, need, 1) < 0) { rc = TKM_ENOMEM; break; }
            snprintf(path, need, "%s%s%s", spec, sl && spec[sl - 1] == '/' ? "" : "/", e->d_name);
            if (is_regular(path)) rc = list_push(&v, &k, &cap, path);
        }
        closedir(d);
        tkmi_free(path);
        if (rc == 0) qsort(v, (size_t)k, sizeof *v, str_cmp);
    } else {
        glob_t g;
        int gr = glob(spec, 0, NULL, &g);
        if (gr == 0) {
            for (size_t i = 0; i < g.gl_pathc && rc == 0; i++)
                if (is_regular(g.gl_pathv[i])) rc = list_push(&v, &k, &cap, g.gl_pathv[i]);
            globfree(&g);
        } else if (gr != GLOB_NOMATCH) {
            rc = tkmi_error(TKM_EIO, "%s: cannot expand the pattern", spec);
        }
    }
    if (rc == 0 && k == 0) rc = tkmi_error(TKM_EIO, "%s: no such file, no files in the directory, or no match", spec);
    if (rc == TKM_ENOMEM) tkmi_error(rc, "%s: out of memory", spec);
    if (rc < 0) {
        tkm_analyze_files_free(v, k);
        return rc;
    }
    *files = v;
    *n = k;
    return 0;
}

void tkm_analyze_files_free(char **files, int n)
{
    if (!files) return;
    for (int i = 0; i < n; i++) tkmi_free(files[i]);
    tkmi_free(files);
}

/* ---- compression ----
 *
 * The caller's thread reads batch k+1 while the workers encode batch k:
 *
 *     reader:  [fill 0] [fill 1 ] [fill 2 ] ...
 *     workers:          [enc 0  ] [enc 1  ] ...
 *
 * Each worker takes a contiguous slice of the batch's lines and encodes them
 * with every model (one encoder per model per worker), adding to private
 * counters and private used-id maps; both are summed/OR-ed at the end, so the
 * result does not depend on the thread count. */

#define BATCH_BYTES (4u << 20)

typedef struct {
    char *text;
    size_t n, cap;
    size_t *off, *len;
    size_t nl, lcap;
    int file;           /* file of the first line, for messages */
    uint64_t lineno0;   /* its line number */
} batch_t;

typedef struct {
    const tkm_model *const *models;
    int nmodels;
    tkm_encoder **enc;        /* per model */
    tkm_analyze_counts *cnt;  /* per model */
    uint8_t **used;           /* per model, or NULL */
    const batch_t *b;
    size_t from, to;
    int rc;
    char err[256];
} worker_t;

static void count_text(tkm_analyze_counts *c, const uint8_t *s, size_t n)
{
    uint64_t chars = 0, words = 0;
    int in_word = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = s[i];
        chars += (b & 0xC0) != 0x80;
        int ws = b == ' ' || b == '\t' || b == '\r' || b == '\v' || b == '\f';
        words += !ws && !in_word;
        in_word = !ws;
    }
    c->lines++;
    c->bytes += n;
    c->chars += chars;
    c->words += words;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    const batch_t *b = w->b;
    for (size_t i = w->from; i < w->to && w->rc == 0; i++) {
        const char *s = b->text + b->off[i];
        size_t n = b->len[i];
        count_text(&w->cnt[0], (const uint8_t *)s, n);
        for (int k = 0; k < w->nmodels; k++) {
            const int32_t *ids;
            size_t nid;
            int rc = tkm_encode(w->enc[k], s, n, &ids, &nid);
            if (rc < 0) {
                w->rc = rc;
                snprintf(w->err, sizeof w->err, "%s", tkm_last_error());
                break;
            }
            const tkm_model *m = w->models[k];
            tkm_analyze_counts *c = &w->cnt[k];
            c->tokens += nid;
            for (size_t j = 0; j < nid; j++) {
                uint8_t t = m->type[ids[j]];
                c->byte_tokens += t == TKM_PIECE_BYTE;
                c->unk_tokens += t == TKM_PIECE_UNKNOWN;
            }
            if (w->used)
                for (size_t j = 0; j < nid; j++) w->used[k][ids[j]] = 1;
        }
    }
    return NULL;
}

/* Fills b with lines up to BATCH_BYTES, moving on through the files.
 * @return 0 (b->nl == 0 at the end of all input) or <0. */
static int fill_batch(batch_t *b, tkm_reader **r, const char *const *files, int nfiles, int *fi)
{
    b->n = b->nl = 0;
    while (b->n < BATCH_BYTES && *fi < nfiles) {
        if (!*r) TKM_FORWARD_IF_ERROR(tkm_reader_open(files[*fi], r));
        const char *s;
        size_t n;
        int rc = tkm_reader_next(*r, &s, &n);
        if (rc < 0) return rc;
        if (rc == 0) {
            tkm_reader_close(*r);
            *r = NULL;
            ++*fi;
            continue;
        }
        if (b->nl == 0) {
            b->file = *fi;
            b->lineno0 = tkm_reader_lineno(*r);
        }
        if (b->nl == b->lcap) {
            size_t c1 = b->lcap, c2 = b->lcap;
            if (tkmi_grow((void **)&b->off, &c1, b->nl + 1, sizeof *b->off) < 0 ||
                tkmi_grow((void **)&b->len, &c2, b->nl + 1, sizeof *b->len) < 0)
                return tkmi_error(TKM_ENOMEM, "%s: out of memory", files[*fi]);
            b->lcap = c1 < c2 ? c1 : c2;
        }
        if (tkmi_grow((void **)&b->text, &b->cap, b->n + n + 1, 1) < 0)
            return tkmi_error(TKM_ENOMEM, "%s: out of memory", files[*fi]);
        memcpy(b->text + b->n, s, n);
        b->off[b->nl] = b->n;
        b->len[b->nl++] = n;
        b->n += n;
    }
    return 0;
}

int tkm_analyze_compression(const tkm_model *const *models, int nmodels, const char *const *files, int nfiles,
                            int threads, tkm_analyze_counts *counts, uint8_t *const *used)
{
    TKM_RETURN_ERROR_IF(nmodels < 1 || nfiles < 1 || threads < 1, TKM_EINVAL,
                        "analyze: need at least one model, one file and one thread");
    memset(counts, 0, (size_t)nmodels * sizeof *counts);
    size_t usz = 0;
    if (used)
        for (int k = 0; k < nmodels; k++) usz += (size_t)tkm_model_size(models[k]);
    /* one allocation per worker: encoders, counters, used pointers, used maps */
    size_t per = (size_t)nmodels * (sizeof(tkm_encoder *) + sizeof(tkm_analyze_counts) + sizeof(uint8_t *));
    /* each worker's part starts aligned for its counters and pointers */
    size_t stride = (per + usz + 15) & ~(size_t)15;
    worker_t *w = tkmi_calloc((size_t)threads, sizeof *w);
    pthread_t *th = tkmi_calloc((size_t)threads, sizeof *th);
    uint8_t *slab = tkmi_calloc((size_t)threads, stride);
    batch_t b[2];
    memset(b, 0, sizeof b);
    tkm_reader *r = NULL;
    int rc = 0, fi = 0, cur = 0;
    if (!w || !th || !slab) {
        rc = tkmi_error(TKM_ENOMEM, "analyze: out of memory");
        goto done;
    }
    for (int t = 0; t < threads; t++) {
        uint8_t *p = slab + (size_t)t * stride;
        w[t].models = models;
        w[t].nmodels = nmodels;
        w[t].cnt = (tkm_analyze_counts *)p;
        p += (size_t)nmodels * sizeof(tkm_analyze_counts);
        w[t].enc = (tkm_encoder **)p;
        p += (size_t)nmodels * sizeof(tkm_encoder *);
        if (used) {
            w[t].used = (uint8_t **)p;
            p += (size_t)nmodels * sizeof(uint8_t *);
            for (int k = 0; k < nmodels; k++) {
                w[t].used[k] = p;
                p += tkm_model_size(models[k]);
            }
        }
        for (int k = 0; k < nmodels && rc == 0; k++) {
            rc = tkm_encoder_new(models[k], &w[t].enc[k]);
            if (rc < 0) {
                char msg[256];
                snprintf(msg, sizeof msg, "%s", tkm_last_error());
                tkmi_error(rc, "%s: %s", models[k]->name ? models[k]->name : "model",
                           rc == TKM_ENOTSUP ? "this model type is not supported yet by the encoder" : msg);
            }
        }
        if (rc < 0) goto done;
    }
    if ((rc = fill_batch(&b[0], &r, files, nfiles, &fi)) < 0) goto done;
    while (b[cur].nl > 0) {
        size_t nl = b[cur].nl, sl = (nl + (size_t)threads - 1) / (size_t)threads;
        for (int t = 0; t < threads; t++) {
            w[t].b = &b[cur];
            w[t].from = (size_t)t * sl < nl ? (size_t)t * sl : nl;
            w[t].to = (size_t)(t + 1) * sl < nl ? (size_t)(t + 1) * sl : nl;
            if (w[t].from == w[t].to) continue;
            if (pthread_create(&th[t], NULL, worker_main, &w[t]) != 0) {
                worker_main(&w[t]); /* no thread: do it here, mark it joined */
                w[t].to = w[t].from;
            }
        }
        int frc = fill_batch(&b[cur ^ 1], &r, files, nfiles, &fi);
        for (int t = 0; t < threads; t++)
            if (w[t].from < w[t].to) pthread_join(th[t], NULL);
        for (int t = 0; t < threads && rc == 0; t++)
            if (w[t].rc < 0)
                rc = tkmi_error(w[t].rc, "%s: near line %llu: %s", files[b[cur].file],
                                (unsigned long long)b[cur].lineno0, w[t].err);
        if (rc == 0 && frc < 0) rc = frc;
        if (rc < 0) goto done;
        cur ^= 1;
    }
    for (int t = 0; t < threads; t++) {
        for (int k = 0; k < nmodels; k++) {
            tkm_analyze_counts *a = &counts[k], *c = &w[t].cnt[k];
            a->tokens += c->tokens;
            a->byte_tokens += c->byte_tokens;
            a->unk_tokens += c->unk_tokens;
            if (used) {
                int n = tkm_model_size(models[k]);
                for (int i = 0; i < n; i++) used[k][i] |= w[t].used[k][i];
            }
        }
        counts[0].lines += w[t].cnt[0].lines;
        counts[0].bytes += w[t].cnt[0].bytes;
        counts[0].chars += w[t].cnt[0].chars;
        counts[0].words += w[t].cnt[0].words;
    }
    for (int k = 1; k < nmodels; k++) {
        counts[k].lines = counts[0].lines;
        counts[k].bytes = counts[0].bytes;
        counts[k].chars = counts[0].chars;
        counts[k].words = counts[0].words;
    }
done:
    tkm_reader_close(r);
    if (w) /* workers not yet set up (an allocation failed) have no encoder array */
        for (int t = 0; t < threads; t++)
            for (int k = 0; w[t].enc && k < nmodels; k++) tkm_encoder_free(w[t].enc[k]);
    for (int i = 0; i < 2; i++) {
        tkmi_free(b[i].text);
        tkmi_free(b[i].off);
        tkmi_free(b[i].len);
    }
    tkmi_free(slab);
    tkmi_free(th);
    tkmi_free(w);
    return rc;
}
