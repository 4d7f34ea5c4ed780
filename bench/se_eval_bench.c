/* se_eval_bench.c - times and reports the softemb evaluation (tkm_se_split,
 * metrics, the four baselines) on a real teacher, e.g. the MiniLM one from
 * corpora/teacher.sh. Not part of make check: `make bench/se_eval_bench`.
 *
 * usage: bench/se_eval_bench TEACHER [--vocab V] [--threads N] [--test-frac F]
 *        [--seed S] [--queries N] [--ngram-dim D] [--only-metrics] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/tkm_internal.h"
#include "../softemb/eval_internal.h"
#include "tokenmill_softemb.h"

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void row(const char *name, const tkm_se_metrics *m, double sec, const char *extra)
{
    printf("%-15s %6zu  %6.4f %6.4f  %6.4f %6.4f  %6.4f  %6.4f %6.4f  %8.2f  %s\n", name, m->n, m->top1_cos,
           m->top10_cos, m->top1_dot, m->top10_dot, m->mrr_cos, m->mean_cos, m->rel_l2, sec, extra);
}

int main(int argc, char **argv)
{
    const char *path = NULL, *vocab = NULL;
    int threads = 0, only_metrics = 0, ngram_dim = 0;
    double frac = 0.1;
    unsigned long long seed = 1;
    size_t maxq = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--vocab") && i + 1 < argc)
            vocab = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--test-frac") && i + 1 < argc)
            frac = atof(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--queries") && i + 1 < argc)
            maxq = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--ngram-dim") && i + 1 < argc)
            ngram_dim = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only-metrics"))
            only_metrics = 1;
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf(stderr, "se_eval_bench: bad argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: se_eval_bench TEACHER [--vocab V] [--threads N] [--test-frac F] [--seed S]"
                        " [--queries N] [--ngram-dim D] [--only-metrics]\n");
        return 2;
    }
    tkm_teacher_opts to = { .vocab = vocab };
    tkm_teacher *t;
    double t0 = tkmi_now();
    int rc = tkm_teacher_load(path, &to, &t);
    if (rc < 0) {
        fprintf(stderr, "se_eval_bench: %s\n", tkm_last_error());
        return 1;
    }
    const size_t R = tkm_teacher_rows(t), E = tkm_teacher_dim(t);
    printf("teacher %s: %zu x %zu (%s, %s), loaded in %.2f s\n", path, R, E, tkm_teacher_format(t),
           tkm_teacher_vocab_style(t), tkmi_now() - t0);
    uint8_t *split = malloc(R);
    t0 = tkmi_now();
    int ntest = tkm_se_split(t, frac, seed, split);
    double tsplit = tkmi_now() - t0;
    if (ntest < 0) {
        fprintf(stderr, "se_eval_bench: %s\n", tkm_last_error());
        return 1;
    }
    size_t ntrain = 0, nx = 0;
    for (size_t r = 0; r < R; r++) {
        ntrain += split[r] == 0;
        nx += split[r] == 2;
    }
    printf("split (test fraction %g, seed %llu): %zu train, %d test, %zu excluded, %.3f s\n", frac, seed, ntrain,
           ntest, nx, tsplit);
    uint32_t *rows = malloc((size_t)ntest * sizeof(uint32_t));
    size_t n = 0;
    for (size_t r = 0; r < R; r++)
        if (split[r] == 1 && (!maxq || n < maxq))
            rows[n++] = (uint32_t)r;
    float *pred = malloc(n * E * sizeof(float));
    tkm_se_metrics m;
    /* the metrics alone: the targets themselves as predictions */
    for (size_t i = 0; i < n; i++)
        memcpy(pred + i * E, tkm_teacher_matrix(t) + (size_t)rows[i] * E, E * sizeof(float));
    t0 = tkmi_now();
    double c0 = cpu_s();
    rc = tkm_se_metrics_compute(t, pred, rows, n, threads, &m);
    double tm = tkmi_now() - t0, cm = cpu_s() - c0;
    if (rc < 0) {
        fprintf(stderr, "se_eval_bench: %s\n", tkm_last_error());
        return 1;
    }
    printf("metrics of %zu queries against %zu x %zu: %.3f s wall, %.3f s CPU (%.1f GFLOP/s)\n\n", n, R, E, tm,
           cm, 2.0 * (double)n * (double)R * (double)E / tm * 1e-9);
    printf("%-15s %6s  %6s %6s  %6s %6s  %6s  %6s %6s  %8s\n", "held-out", "n", "top1c", "top10c", "top1d",
           "top10d", "MRR", "cos", "relL2", "seconds");
    row("teacher itself", &m, tm, "");
    if (only_metrics)
        return 0;
    tkmi_se_view v = { R, E, tkm_teacher_matrix(t), NULL, NULL, NULL };
    const unsigned char **bytes = malloc(R * sizeof(*bytes));
    size_t *lens = malloc(R * sizeof(size_t));
    for (size_t r = 0; r < R; r++)
        bytes[r] = tkm_teacher_bytes(t, r, &lens[r]);
    v.bytes = bytes;
    v.lens = lens;
    tkmi_se_base_opts bo = { .ngram_dim = ngram_dim };
    for (int b = 0; b < TKM_BASE_COUNT; b++) {
        tkmi_se_base_stats st;
        t0 = tkmi_now();
        c0 = cpu_s();
        rc = tkmi_se_baseline_view(&v, split, (tkm_se_baseline)b, rows, n, threads, &bo, &st, pred);
        double tp = tkmi_now() - t0, cp = cpu_s() - c0;
        if (rc == 0)
            rc = tkm_se_metrics_compute(t, pred, rows, n, threads, &m);
        if (rc < 0) {
            fprintf(stderr, "se_eval_bench: %s: %s\n", tkm_se_baseline_name((tkm_se_baseline)b), tkm_last_error());
            return 1;
        }
        char extra[240];
        int k = snprintf(extra, sizeof(extra), "CPU %.2f s; ", cp);
        if (b == TKM_BASE_NGRAM_RIDGE)
            snprintf(extra + k, sizeof(extra) - (size_t)k, "lambda %g (validation cos %.4f on %zu rows, fit %zu), fit %.1f s",
                     st.lambda, st.val_cos, st.nval, st.nfit, st.seconds_fit);
        else if (b == TKM_BASE_SUBTOKEN_MEAN)
            snprintf(extra + k, sizeof(extra) - (size_t)k, "%zu queries without pieces", st.no_pieces);
        row(tkm_se_baseline_name((tkm_se_baseline)b), &m, tp, extra);
    }
    printf("\nseconds: prediction only (metrics add the time on the first line)\n");
    free(bytes);
    free(lens);
    free(pred);
    free(rows);
    free(split);
    tkm_teacher_free(t);
    return 0;
}
