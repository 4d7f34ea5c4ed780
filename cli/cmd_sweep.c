/* cmd_sweep.c - tokenmill train --sweep: one counting pass, then one model
 * per point of a list of balance targets and model types (the merge loops
 * run in parallel, one per thread, from the one counted table), each
 * evaluated on the held-out --eval corpora: a table of shares, bytes/token
 * per corpus and time, models written on request, and an HTML report with
 * the Pareto chart of held-out compression against the Japanese share. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "tokenmill_analyze.h"

#define MAX_POINTS 256

typedef struct {
    char label[64];
    tkm_train_options o;
    tkm_model *m;
    tkm_train_stats st;
    double wall, cpu;
    int rc;
    double *bpt; /* bytes/token per eval corpus */
} point_t;


static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double process_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One point alone (the unbalanced one that Japanese-only points need). */
static void train_point(tkm_trainer *t, point_t *p)
{
    double w0 = mono_s(), c0 = thread_cpu_s();
    p->rc = tkm_trainer_retrain(t, &p->o, &p->m, &p->st);
    p->wall = mono_s() - w0;
    p->cpu = thread_cpu_s() - c0;
}

static int parse_share(const char *s, const char *end, float *out)
{
    char buf[32];
    size_t n = (size_t)(end - s);
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    char *e;
    double d = strtod(buf, &e);
    if (*e || !(d >= 0 && d <= 1)) return -1;
    *out = (float)d;
    return 0;
}

static int add_point(point_t *pts, int *n, const tkm_train_options *base, int type, float l, float j, int method)
{
    if (*n >= MAX_POINTS) {
        fprintf(stderr, "tokenmill train: --sweep: more than %d points\n", MAX_POINTS);
        return -1;
    }
    point_t *p = &pts[(*n)++];
    memset(p, 0, sizeof *p);
    p->o = *base;
    p->o.model_type = type;
    p->o.balance_latin = l;
    p->o.balance_japanese = j;
    p->o.balance_method = method;
    const char *mname = method == TKM_BALANCE_WEIGHTS ? "w" : "b";
    if (type == TKM_MODEL_UNIGRAM) snprintf(p->label, sizeof p->label, "unigram");
    else if (l < 0 && j < 0) snprintf(p->label, sizeof p->label, "bpe");
    else if (l < 0) snprintf(p->label, sizeof p->label, "j%.3g%s", j, mname);
    else if (j < 0) snprintf(p->label, sizeof p->label, "l%.3g%s", l, mname);
    else snprintf(p->label, sizeof p->label, "l%.3g-j%.3g%s", l, j, mname);
    return 0;
}

/* none | bpe | unigram | J | L/J | A:B:STEP (japanese A..B), each number
 * item optionally @budget or @weights */
static int parse_spec(const char *spec, const tkm_train_options *base, point_t *pts, int *n)
{
    char *dup = strdup(spec);
    if (!dup) return -1;
    int rc = 0;
    for (char *save = NULL, *tok = strtok_r(dup, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
        int method = base->balance_method;
        char *at = strchr(tok, '@');
        if (at) {
            *at = 0;
            if (!strcmp(at + 1, "weights")) method = TKM_BALANCE_WEIGHTS;
            else if (!strcmp(at + 1, "budget")) method = TKM_BALANCE_BUDGET;
            else { rc = -1; break; }
        }
        int type = base->model_type == TKM_MODEL_UNIGRAM ? TKM_MODEL_UNIGRAM : TKM_MODEL_BPE;
        char *colon = strchr(tok, ':'), *slash = strchr(tok, '/');
        float a, b, st, l;
        if (!strcmp(tok, "none")) rc = add_point(pts, n, base, type, -1, -1, method);
        else if (!strcmp(tok, "bpe")) rc = add_point(pts, n, base, TKM_MODEL_BPE, -1, -1, method);
        else if (!strcmp(tok, "unigram")) rc = add_point(pts, n, base, TKM_MODEL_UNIGRAM, -1, -1, method);
        else if (colon) {
            char *c2 = strchr(colon + 1, ':');
            if (!c2 || parse_share(tok, colon, &a) || parse_share(colon + 1, c2, &b) ||
                parse_share(c2 + 1, c2 + strlen(c2), &st) || !(st > 0) || b < a) { rc = -1; break; }
            long k = lround(((double)b - a) / st);
            if (fabs(a + k * (double)st - b) > 1e-6 || k > MAX_POINTS) { rc = -1; break; }
            for (long i = 0; i <= k && rc == 0; i++) rc = add_point(pts, n, base, TKM_MODEL_BPE, -1, (float)(a + i * (double)st), method);
        } else if (slash) {
            if (parse_share(tok, slash, &l) || parse_share(slash + 1, slash + strlen(slash), &b) || l + b > 1.0f) { rc = -1; break; }
            rc = add_point(pts, n, base, TKM_MODEL_BPE, l, b, method);
        } else {
            if (parse_share(tok, tok + strlen(tok), &b)) { rc = -1; break; }
            rc = add_point(pts, n, base, TKM_MODEL_BPE, -1, b, method);
        }
    }
    if (rc < 0) fprintf(stderr, "tokenmill train: --sweep: invalid list '%s' (items: none, bpe, unigram, J, L/J, A:B:STEP, "
                                "each optionally @budget or @weights)\n", spec);
    free(dup);
    return rc;
}

static double share(const point_t *p, int k)
{
    int n = p->m ? tkm_model_size(p->m) : 0;
    return n ? 100.0 * p->st.class_pieces[k] / n : 0;
}

/* The chosen point: the one at --balance's settings when given, else the
 * one whose worst held-out loss against the best point of each corpus is
 * smallest (ties: the earlier point). */
static int choose(const point_t *p, int n, int n_eval, const tkm_train_options *o)
{
    if (o->balance_latin >= 0 || o->balance_japanese >= 0) {
        for (int i = 0; i < n; i++)
            if (p[i].o.model_type == TKM_MODEL_BPE && p[i].o.balance_latin == o->balance_latin &&
                p[i].o.balance_japanese == o->balance_japanese && p[i].o.balance_method == o->balance_method)
                return i;
    }
    if (!n_eval) return 0;
    int best = 0;
    double bw = -INFINITY;
    for (int i = 0; i < n; i++) {
        double worst = INFINITY;
        for (int e = 0; e < n_eval; e++) {
            double mx = 0;
            for (int k = 0; k < n; k++) if (p[k].bpt[e] > mx) mx = p[k].bpt[e];
            double r = mx > 0 ? p[i].bpt[e] / mx : 0;
            if (r < worst) worst = r;
        }
        if (worst > bw) { bw = worst; best = i; }
    }
    return best;
}

/* not dominated: no other point at least as good on every corpus and
 * better on one */
static int on_front(const point_t *p, int n, int n_eval, int i)
{
    for (int k = 0; k < n; k++) {
        if (k == i) continue;
        int ge = 1, gt = 0;
        for (int e = 0; e < n_eval; e++) {
            if (p[k].bpt[e] < p[i].bpt[e]) ge = 0;
            if (p[k].bpt[e] > p[i].bpt[e]) gt = 1;
        }
        if (ge && gt) return 0;
    }
    return 1;
}

static const char *const series_color[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};

/* 1, 2 or 5 times a power of ten, at least raw */
static double nice_step(double raw)
{
    double p = pow(10, floor(log10(raw)));
    return raw <= p ? p : raw <= 2 * p ? 2 * p : raw <= 5 * p ? 5 * p : 10 * p;
}

static void svg_pareto(FILE *f, const point_t *p, int n, const cli_sweep_cfg *cfg, int chosen, int base)
{
    const int W = 720, H = 400, L = 70, R = 150, T = 40, B = 50;
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (share(&p[i], 1) < xmin) xmin = share(&p[i], 1);
        if (share(&p[i], 1) > xmax) xmax = share(&p[i], 1);
        for (int e = 0; e < cfg->n_eval; e++) {
            double y = 100.0 * (p[i].bpt[e] / p[base].bpt[e] - 1);
            if (y < ymin) ymin = y;
            if (y > ymax) ymax = y;
        }
    }
    if (xmax - xmin < 1) { xmin -= 1; xmax += 1; }
    if (ymax - ymin < 0.5) { ymin -= 0.5; ymax += 0.5; }
    double ypad = (ymax - ymin) * 0.08;
    ymin -= ypad;
    ymax += ypad;
#define SX(x) (L + ((x) - xmin) / (xmax - xmin) * (W - L - R))
#define SY(y) (T + (ymax - (y)) / (ymax - ymin) * (H - T - B))
    fprintf(f, "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\">\n", W, H);
    fprintf(f, "<text x=\"%d\" y=\"20\" font-weight=\"bold\">held-out bytes/token vs the %s point (%%, higher = better) "
               "against the Japanese share of the vocabulary</text>\n", L, p[base].label);
    /* grid and axis labels at round values */
    double ys = nice_step((ymax - ymin) / 5), xs = nice_step((xmax - xmin) / 6);
    for (double y = ceil(ymin / ys) * ys; y <= ymax + 1e-9; y += ys) {
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, SY(y), W - R, SY(y));
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%+.*f%%</text>\n", L - 6, SY(y) + 4, ys < 0.1 ? 2 : 1,
                fabs(y) < ys / 2 ? 0.0 : y);
    }
    for (double x = ceil(xmin / xs) * xs; x <= xmax + 1e-9; x += xs)
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.*f%%</text>\n", SX(x), H - B + 18, xs < 1 ? 1 : 0, x);
    if (0 >= ymin && 0 <= ymax)
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#888\"/>\n", L, SY(0), W - R, SY(0));
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">Japanese pieces (%% of the vocabulary)</text>\n",
            (L + W - R) / 2, H - 10);
    /* points in order of the Japanese share, one line per corpus */
    int ord[MAX_POINTS];
    for (int i = 0; i < n; i++) ord[i] = i;
    for (int i = 1; i < n; i++)
        for (int k = i; k > 0 && share(&p[ord[k]], 1) < share(&p[ord[k - 1]], 1); k--) {
            int t = ord[k]; ord[k] = ord[k - 1]; ord[k - 1] = t;
        }
    for (int e = 0; e < cfg->n_eval; e++) {
        const char *col = series_color[e % 6];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", col);
        for (int i = 0; i < n; i++)
            fprintf(f, "%.1f,%.1f ", SX(share(&p[ord[i]], 1)), SY(100.0 * (p[ord[i]].bpt[e] / p[base].bpt[e] - 1)));
        fputs("\"/>\n", f);
        for (int i = 0; i < n; i++) {
            const point_t *q = &p[ord[i]];
            double x = SX(share(q, 1)), y = SY(100.0 * (q->bpt[e] / p[base].bpt[e] - 1));
            int front = on_front(p, n, cfg->n_eval, ord[i]);
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\" stroke=\"%s\"><title>", x, y,
                    front ? col : "white", col);
            cli_html_str(f, q->label);
            fprintf(f, ": %.3f bytes/token on ", q->bpt[e]);
            cli_html_str(f, cfg->eval[e].name);
            fprintf(f, ", Japanese %.1f%%%s</title></circle>\n", share(q, 1), front ? " (Pareto front)" : "");
            if (ord[i] == chosen)
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"9\" fill=\"none\" stroke=\"black\" stroke-width=\"2\"/>\n", x, y);
        }
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">", W - R + 12,
                T + 18 * e, col, W - R + 30, T + 18 * e + 11);
        cli_html_str(f, cfg->eval[e].name);
        fputs("</text>\n", f);
    }
    fprintf(f, "<circle cx=\"%d\" cy=\"%d\" r=\"8\" fill=\"none\" stroke=\"black\" stroke-width=\"2\"/><text x=\"%d\" y=\"%d\">chosen</text>\n",
            W - R + 18, T + 18 * cfg->n_eval + 14, W - R + 30, T + 18 * cfg->n_eval + 18);
    fputs("</svg><figcaption>Filled points are on the Pareto front (no other point is at least as good on every "
          "held-out corpus and better on one); hollow points are dominated; the ringed point is the chosen model."
          "</figcaption></figure>\n", f);
#undef SX
#undef SY
}

static int write_report(const char *path, const point_t *p, int n, const cli_sweep_cfg *cfg, int chosen, int base,
                        double count_s)
{
    char *tmp = cli_tmp_path(path);
    if (!tmp) return -1;
    FILE *f = cli_special_output(path) && !strcmp(path, "-") ? stdout : fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "tokenmill train: %s: %s\n", tmp, strerror(errno));
        cli_discard(tmp, path);
        free(tmp);
        return -1;
    }
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tokenmill sweep report</title>\n"
          "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
          "padding:2px 8px;text-align:right}svg text{font-family:sans-serif;font-size:13px}</style></head><body>\n"
          "<h1>tokenmill sweep report</h1>\n", f);
    fprintf(f, "<p>One counting pass (%.2f s), then %d models from the same counts.</p>\n", count_s, n);
    if (cfg->n_eval) svg_pareto(f, p, n, cfg, chosen, base);
    fputs("<table><tr><th>point</th><th>pieces</th><th>latin</th><th>japanese</th><th>other</th>", f);
    for (int e = 0; e < cfg->n_eval; e++) {
        fputs("<th>", f);
        cli_html_str(f, cfg->eval[e].name);
        fputs(" bytes/token</th>", f);
    }
    fputs("<th>train s</th></tr>\n", f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "<tr%s><td>", i == chosen ? " style=\"font-weight:bold\"" : "");
        cli_html_str(f, p[i].label);
        fprintf(f, "%s</td><td>%d</td><td>%.1f%%</td><td>%.1f%%</td><td>%.1f%%</td>", i == chosen ? " (chosen)" : "",
                tkm_model_size(p[i].m), share(&p[i], 0), share(&p[i], 1), share(&p[i], 2));
        for (int e = 0; e < cfg->n_eval; e++)
            fprintf(f, "<td>%.3f (%+.2f%%)</td>", p[i].bpt[e], 100.0 * (p[i].bpt[e] / p[base].bpt[e] - 1));
        fprintf(f, "<td>%.2f</td></tr>\n", p[i].wall);
    }
    fputs("</table>\n<p>Shares are of all pieces; latin: pieces of >= 2 Latin letters, japanese: Han, Hiragana, "
          "Katakana and U+30FC only (a leading U+2581 allowed), other: the rest (specials, bytes, digits, mixed).</p>\n"
          "</body></html>\n", f);
    int bad = ferror(f);
    if (f != stdout) bad |= fclose(f) != 0;
    if (bad) {
        fprintf(stderr, "tokenmill train: %s: write error\n", path);
        cli_discard(tmp, path);
        free(tmp);
        return -1;
    }
    int rc = f == stdout ? 0 : cli_commit(tmp, path);
    free(tmp);
    if (rc) fprintf(stderr, "tokenmill train: %s: cannot rename into place: %s\n", path, strerror(errno));
    return rc ? -1 : 0;
}

int cli_sweep_run(tkm_trainer *t, const tkm_train_options *o, const cli_sweep_cfg *cfg)
{
    point_t *pts = calloc(MAX_POINTS, sizeof *pts);
    int n = 0, status = EXIT_FAIL, rc;
    double w_start = mono_s();
    if (!pts) return EXIT_FAIL;
    if (parse_spec(cfg->spec, o, pts, &n) < 0) { free(pts); return EXIT_USAGE; }
    if (n == 0) {
        fprintf(stderr, "tokenmill train: --sweep: empty list\n");
        free(pts);
        return EXIT_USAGE;
    }
    if ((rc = tkm_trainer_finish_counting(t)) < 0) { cli_error("train", rc); goto out; }
    tkm_train_stats cst;
    tkm_trainer_stats(t, &cst);
    /* reading and counting ran while the inputs were added: since the start */
    double count_s = cst.seconds_count, count_cpu = process_cpu_s();
    /* the merge loops: one per thread. Points given only a Japanese share
     * need the unbalanced model's latin:other proportion, so that one runs
     * first (it is the baseline of the table anyway). */
    double w0 = mono_s(), c0 = process_cpu_s();
    int base = -1, need_base = 0, n_shared = 0;
    long merges_shared = 0;
    for (int i = 0; i < n; i++) {
        if (base < 0 && pts[i].o.model_type == TKM_MODEL_BPE && pts[i].o.balance_latin < 0 && pts[i].o.balance_japanese < 0) base = i;
        if (pts[i].o.balance_latin < 0 && pts[i].o.balance_japanese >= 0) need_base = 1;
    }
    if (need_base && base < 0) {
        fprintf(stderr, "tokenmill train: --sweep: points with a Japanese share only (J, A:B:STEP) need the unbalanced "
                        "point in the list (none)\n");
        status = EXIT_USAGE;
        goto out;
    }
    if (need_base) {
        train_point(t, &pts[base]);
        if (pts[base].rc < 0) {
            cli_error("train", pts[base].rc);
            goto out;
        }
        double lo = pts[base].st.class_pieces[0] + pts[base].st.class_pieces[2];
        double rl = lo > 0 ? pts[base].st.class_pieces[0] / lo : 1;
        for (int i = 0; i < n; i++)
            if (pts[i].o.balance_latin < 0 && pts[i].o.balance_japanese >= 0) {
                /* rounded to 4 decimals, so that a separate run given
                 * --balance latin=L,japanese=J makes the same model */
                pts[i].o.balance_latin = (float)(round((1.0 - pts[i].o.balance_japanese) * rl * 1e4) / 1e4);
                snprintf(pts[i].label + strlen(pts[i].label), sizeof pts[i].label - strlen(pts[i].label), "-l%.4g",
                         pts[i].o.balance_latin);
            }
    }
    {
        /* the rest at once: points that differ only in budget balance
         * targets share the merge loop's common prefix
         * (tkm_trainer_retrain_many), the others run one per thread */
        int todo[MAX_POINTS], nt0 = 0;
        for (int i = 0; i < n; i++)
            if (!(need_base && i == base)) todo[nt0++] = i;
        tkm_train_options *ro = calloc((size_t)nt0 + 1, sizeof *ro);
        tkm_model **rm = calloc((size_t)nt0 + 1, sizeof *rm);
        tkm_train_stats *rs = calloc((size_t)nt0 + 1, sizeof *rs);
        int *rrc = calloc((size_t)nt0 + 1, sizeof *rrc);
        if (!ro || !rm || !rs || !rrc) {
            free(ro); free(rm); free(rs); free(rrc);
            fprintf(stderr, "tokenmill train: out of memory\n");
            goto out;
        }
        for (int k = 0; k < nt0; k++) ro[k] = pts[todo[k]].o;
        tkm_trainer_retrain_many(t, nt0, ro, rm, rs, rrc, cfg->threads);
        for (int k = 0; k < nt0; k++) {
            point_t *p = &pts[todo[k]];
            p->m = rm[k];
            p->st = rs[k];
            p->rc = rrc[k];
            p->wall = rs[k].seconds_merge;
            p->cpu = rs[k].seconds_merge_cpu;
            if (rs[k].merges_shared) { n_shared++; merges_shared += rs[k].merges_shared; }
        }
        free(ro); free(rm); free(rs); free(rrc);
    }
    double train_wall = mono_s() - w0, train_cpu = process_cpu_s() - c0;
    for (int i = 0; i < n; i++)
        if (pts[i].rc < 0) {
            fprintf(stderr, "tokenmill train: --sweep point %s: ", pts[i].label);
            cli_error("train", pts[i].rc);
            goto out;
        }
    /* held-out compression: every model over each corpus in one pass */
    w0 = mono_s();
    c0 = process_cpu_s();
    const tkm_model **models = calloc((size_t)n, sizeof *models);
    tkm_analyze_counts *cnt = calloc((size_t)n, sizeof *cnt);
    double *bpt = calloc((size_t)n * (cfg->n_eval ? cfg->n_eval : 1), sizeof *bpt);
    if (!models || !cnt || !bpt) { free(models); free(cnt); free(bpt); goto out; }
    for (int i = 0; i < n; i++) { models[i] = pts[i].m; pts[i].bpt = bpt + (size_t)i * (cfg->n_eval ? cfg->n_eval : 1); }
    for (int e = 0; e < cfg->n_eval && rc >= 0; e++) {
        rc = tkm_analyze_compression(models, n, cfg->eval[e].files, cfg->eval[e].n, cfg->threads, cnt, NULL);
        for (int i = 0; rc >= 0 && i < n; i++) pts[i].bpt[e] = cnt[i].tokens ? (double)cnt[i].bytes / (double)cnt[i].tokens : 0;
    }
    free(models);
    free(cnt);
    if (rc < 0) { cli_error("train", rc); goto out_bpt; }
    double eval_wall = mono_s() - w0, eval_cpu = process_cpu_s() - c0;
    if (base < 0) base = 0;
    int chosen = choose(pts, n, cfg->n_eval, o);
    /* the table */
    printf("%-18s %7s %7s %7s %7s", "point", "pieces", "latin", "japan.", "other");
    for (int e = 0; e < cfg->n_eval; e++) printf(" %17.17s", cfg->eval[e].name);
    printf(" %8s %8s\n", "train s", "cpu s");
    for (int i = 0; i < n; i++) {
        printf("%-18s %7d %6.1f%% %6.1f%% %6.1f%%", pts[i].label, tkm_model_size(pts[i].m), share(&pts[i], 0),
               share(&pts[i], 1), share(&pts[i], 2));
        for (int e = 0; e < cfg->n_eval; e++)
            printf(" %7.3f (%+6.2f%%)", pts[i].bpt[e], 100.0 * (pts[i].bpt[e] / pts[base].bpt[e] - 1));
        printf(" %8.2f %8.2f%s\n", pts[i].wall, pts[i].cpu, i == chosen ? "  <- chosen" : "");
    }
    if (!cfg->quiet)
        fprintf(stderr,
                "tokenmill train: sweep of %d models: counting %.2f s (%.2f s CPU), merge loops %.2f s (%.2f s CPU, "
                "%d threads; %d points from a shared merge prefix, %ld merges shared), evaluation %.2f s (%.2f s CPU); "
                "total %.2f s, %.2f s CPU; bytes/token in %% against %s\n",
                n, count_s, count_cpu, train_wall, train_cpu, cfg->threads < n ? cfg->threads : n, n_shared,
                merges_shared, eval_wall, eval_cpu, count_s + (mono_s() - w_start), process_cpu_s(), pts[base].label);
    fflush(stdout);
    if (cfg->keep_dir) {
        if (mkdir(cfg->keep_dir, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "tokenmill train: --keep-models %s: %s\n", cfg->keep_dir, strerror(errno));
            goto out_bpt;
        }
        for (int i = 0; i < n; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%02d-%s.model", cfg->keep_dir, i + 1, pts[i].label);
            char *g = cli_guard_output(path);
            rc = tkm_model_save(pts[i].m, path);
            cli_unguard_output(g);
            if (rc < 0) { cli_error("train", rc); goto out_bpt; }
        }
    }
    if (cfg->out) {
        char *g = cli_guard_output(cfg->out);
        rc = tkm_model_save(pts[chosen].m, cfg->out);
        cli_unguard_output(g);
        if (rc < 0) { cli_error("train", rc); goto out_bpt; }
        if (!cfg->quiet) fprintf(stderr, "tokenmill train: wrote %s (sweep point %s)\n", cfg->out, pts[chosen].label);
    }
    if (cfg->report && write_report(cfg->report, pts, n, cfg, chosen, base, count_s) < 0) goto out_bpt;
    status = EXIT_OK;
out_bpt:
    free(bpt);
out:
    for (int i = 0; i < n; i++) tkm_model_free(pts[i].m);
    free(pts);
    return status;
}
