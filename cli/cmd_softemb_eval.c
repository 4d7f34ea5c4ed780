/* cmd_softemb_eval.c - `tokenmill softemb eval`: held-out metrics of an encoder
 * beside baselines, and the evaluation table that `softemb train` also prints
 * after training (softemb_run_eval). */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "softemb_cli.h"
#include "tokenmill_softemb.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- evaluation table ---------------------------------------------------------- */

typedef struct {
    const char *name;
    tkm_se_metrics m;
    double seconds;
} eval_row;

static void print_metrics_header(FILE *f, const char *title)
{
    fprintf(f, "%-28s %8s %9s %8s %9s %7s %8s %7s %8s\n", title, "top1-cos", "top10-cos", "top1-dot",
            "top10-dot", "MRR", "mean-cos", "rel-L2", "time-s");
}

static void print_metrics_row(FILE *f, const eval_row *r)
{
    fprintf(f, "  %-26s %8.4f %9.4f %8.4f %9.4f %7.4f %8.4f %7.4f %8.1f\n", r->name, r->m.top1_cos,
            r->m.top10_cos, r->m.top1_dot, r->m.top10_dot, r->m.mrr_cos, r->m.mean_cos, r->m.rel_l2,
            r->seconds);
}

static void json_metrics(FILE *f, const eval_row *r)
{
    fprintf(f,
            "{\"name\": \"%s\", \"n\": %zu, \"top1_cos\": %.6f, \"top10_cos\": %.6f, \"top1_dot\": %.6f, "
            "\"top10_dot\": %.6f, \"mrr_cos\": %.6f, \"mean_cos\": %.6f, \"rel_l2\": %.6f, \"seconds\": %.3f}",
            r->name, r->m.n, r->m.top1_cos, r->m.top10_cos, r->m.top1_dot, r->m.top10_dot, r->m.mrr_cos,
            r->m.mean_cos, r->m.rel_l2, r->seconds);
}

/* Rows with split[row] == want, all of them or an evenly spaced sample of `limit`. */
static uint32_t *rows_of(const uint8_t *split, size_t rows, uint8_t want, size_t limit, size_t *n, size_t *total)
{
    size_t k = 0;
    for (size_t r = 0; r < rows; r++)
        k += split[r] == want;
    *total = k;
    size_t take = limit && limit < k ? limit : k;
    uint32_t *out = malloc((take ? take : 1) * sizeof(uint32_t));
    if (!out)
        return NULL;
    size_t i = 0, seen = 0;
    for (size_t r = 0; r < rows && i < take; r++) {
        if (split[r] != want)
            continue;
        /* the i-th sample is the floor(i * k / take)-th matching row */
        if (seen == (size_t)((double)i * (double)k / (double)take))
            out[i++] = (uint32_t)r;
        seen++;
    }
    *n = i;
    return out;
}

static int predict_rows(const tkm_se_encoder *e, const tkm_teacher *t, const uint32_t *rows, size_t n,
                        int threads, float *out)
{
    const unsigned char **bp = malloc((n ? n : 1) * sizeof(*bp));
    size_t *bl = malloc((n ? n : 1) * sizeof(size_t));
    if (!bp || !bl) {
        free(bp);
        free(bl);
        return TKM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        bp[i] = tkm_teacher_bytes(t, rows[i], &bl[i]);
    int rc = tkm_se_predict(e, bp, bl, n, threads, out);
    free(bp);
    free(bl);
    return rc;
}

/* Held-out and train-sample tables: rows[part][0] the encoder, then the baselines. */
typedef struct {
    size_t ntest, ntr, ntest_all, ntr_all, excluded;
    int nvalid;
    eval_row res[2][1 + TKM_BASE_COUNT];
    int nres[2];
} eval_tables;

/* The encoder fits the teacher and the build's split rule: -1 (said why) if not. */
static int check_encoder(const char *cmd, const tkm_teacher *t, const tkm_se_info *ip, size_t dim)
{
    if ((size_t)ip->out_dim != dim) {
        fprintf(stderr, "tokenmill softemb %s: the encoder predicts %d-wide rows, the teacher has %zu\n", cmd,
                ip->out_dim, dim);
        return -1;
    }
    if (ip->split_version != TKM_SE_SPLIT_VERSION) {
        fprintf(stderr,
                "tokenmill softemb %s: the encoder was trained under split rule %u, this build holds out rows by "
                "rule %u: rows it trained on may be in the held-out part, so its held-out numbers would not be "
                "honest; train it again\n",
                cmd, ip->split_version, TKM_SE_SPLIT_VERSION);
        return -1;
    }
    if (ip->teacher_hash != tkm_se_teacher_hash(t))
        fprintf(stderr, "tokenmill softemb %s: warning: this is not the teacher the encoder was trained on;"
                        " the split below is recomputed on it\n", cmd);
    return 0;
}

/* Scores the encoder, then the baselines when asked, on the n rows rr into res
 * (*nres rows); a negative TKM_E* code on failure. */
static int eval_part(const tkm_teacher *t, const tkm_se_encoder *e, const uint8_t *split, const uint32_t *rr,
                     size_t n, const eval_opts *eo, float *pred, eval_row *res, int *nres)
{
    double t0 = now_s();
    int rc = predict_rows(e, t, rr, n, eo->threads, pred);
    if (rc == 0)
        rc = tkm_se_metrics_compute(t, pred, rr, n, eo->threads, &res[0].m);
    if (rc < 0)
        return rc;
    res[0].name = "softemb";
    res[0].seconds = now_s() - t0;
    *nres = 1;
    if (!eo->baselines)
        return 0;
    for (int b = 0; b < TKM_BASE_COUNT; b++) {
        t0 = now_s();
        rc = tkm_se_baseline_predict(t, split, (tkm_se_baseline)b, rr, n, eo->threads, pred);
        if (rc == 0)
            rc = tkm_se_metrics_compute(t, pred, rr, n, eo->threads, &res[*nres].m);
        if (rc < 0)
            return rc;
        res[*nres].name = tkm_se_baseline_name((tkm_se_baseline)b);
        res[*nres].seconds = now_s() - t0;
        (*nres)++;
    }
    return 0;
}

static void print_eval_json(FILE *f, const tkm_teacher *t, const tkm_se_info *ip, const eval_tables *r)
{
    const size_t rows = tkm_teacher_rows(t), dim = tkm_teacher_dim(t);
    fprintf(f, "{\"teacher\": {\"rows\": %zu, \"dim\": %zu, \"format\": \"%s\", \"vocab_style\": \"%s\"},\n",
            rows, dim, tkm_teacher_format(t), tkm_teacher_vocab_style(t));
    fprintf(f, " \"split\": {\"test_frac\": %g, \"seed\": %llu, \"train\": %zu, \"test\": %zu, \"excluded\": %zu,"
               " \"validation\": %d, \"selected_step\": %ld},\n",
            ip->test_frac, (unsigned long long)ip->split_seed, r->ntr_all, r->ntest_all, r->excluded, r->nvalid,
            ip->best_step);
    fprintf(f, " \"encoder\": {\"layers\": %d, \"heads\": %d, \"width\": %d, \"max_bytes\": %d, \"pool\": \"%s\","
               " \"head\": \"%s\", \"ngram_buckets\": %d, \"ngram_max\": %d, \"params\": %zu, \"steps\": %ld,"
               " \"backend\": \"%s\"},\n",
            ip->layers, ip->heads, ip->width, ip->max_bytes, ip->pool_mean ? "mean" : "end",
            ip->head_mlp ? "mlp" : "linear", ip->ngram_buckets, ip->ngram_max, ip->nparams, ip->steps_done,
            ip->backend);
    for (int part = 0; part < 2; part++) {
        fprintf(f, " \"%s\": {\"rows\": %zu, \"results\": [", part ? "train_sample" : "heldout",
                part ? r->ntr : r->ntest);
        for (int i = 0; i < r->nres[part]; i++) {
            fprintf(f, "%s\n  ", i ? "," : "");
            json_metrics(f, &r->res[part][i]);
        }
        fprintf(f, "]}%s\n", part ? "" : ",");
    }
    fprintf(f, "}\n");
}

static void print_eval_table(FILE *f, const tkm_teacher *t, const tkm_se_info *ip, const eval_tables *r)
{
    const size_t rows = tkm_teacher_rows(t), dim = tkm_teacher_dim(t);
    fprintf(f, "teacher: %zu rows x %zu (%s, %s vocabulary); grouped split %.0f/%.0f, seed %llu: "
               "%zu train, %zu held-out, %zu special/unused excluded\n",
            rows, dim, tkm_teacher_format(t), tkm_teacher_vocab_style(t), 100 * (1 - ip->test_frac),
            100 * ip->test_frac, (unsigned long long)ip->split_seed, r->ntr_all, r->ntest_all, r->excluded);
    char bag[64] = "no n-gram bag";
    if (ip->ngram_buckets > 0)
        snprintf(bag, sizeof(bag), "n-gram bag %d x 1..%d", ip->ngram_buckets, ip->ngram_max);
    fprintf(f, "encoder: %d layers, %d heads, width %d, %d bytes, %s pooling, %s head, %s, %zu parameters, "
               "%ld steps (%s)\n",
            ip->layers, ip->heads, ip->width, ip->max_bytes, ip->pool_mean ? "mean" : "end",
            ip->head_mlp ? "MLP" : "linear", bag, ip->nparams, ip->steps_done, ip->backend);
    if (r->nvalid > 0)
        fprintf(f, "validation: %d of the train rows held back (in neither table below); weights of step %ld "
                   "kept (validation MRR %.4f)\n",
                r->nvalid, ip->best_step, ip->best_mrr);
    fprintf(f, "\n");
    char title[96];
    snprintf(title, sizeof(title), "held-out (%zu rows)", r->ntest);
    print_metrics_header(f, title);
    for (int i = 0; i < r->nres[0]; i++)
        print_metrics_row(f, &r->res[0][i]);
    if (r->nres[1]) {
        snprintf(title, sizeof(title), "train (%zu of %zu rows)", r->ntr, r->ntr_all);
        fprintf(f, "\n");
        print_metrics_header(f, title);
        for (int i = 0; i < r->nres[1]; i++)
            print_metrics_row(f, &r->res[1][i]);
    }
    fprintf(f, "\nretrieval ranks each prediction among all %zu teacher rows; baselines see only the train rows\n",
            rows);
}

/* Evaluates e on the split it was trained with; prints a table or JSON. */
int softemb_run_eval(const char *cmd, const tkm_teacher *t, const tkm_se_encoder *e, const eval_opts *eo, FILE *f)
{
    tkm_se_info info;
    tkm_se_get_info(e, &info);
    eval_tables r = { 0 };
    const size_t rows = tkm_teacher_rows(t), dim = tkm_teacher_dim(t);
    if (check_encoder(cmd, t, &info, dim) < 0)
        return EXIT_FAIL;
    uint8_t *split = malloc(rows ? rows : 1);
    if (!split)
        return EXIT_FAIL;
    int rc = tkm_se_split(t, info.test_frac, info.split_seed, split);
    if (rc < 0) {
        free(split);
        cli_error(cmd, rc);
        return EXIT_FAIL;
    }
    /* the training rows the encoder held back for validation are in neither
     * table; the baselines still learn from every training row */
    uint8_t *fit = malloc(rows ? rows : 1);
    if (!fit) {
        free(split);
        return EXIT_FAIL;
    }
    memcpy(fit, split, rows);
    r.nvalid = tkm_se_split_valid(t, info.valid_frac, info.split_seed, fit);
    if (r.nvalid < 0) {
        free(split);
        free(fit);
        cli_error(cmd, r.nvalid);
        return EXIT_FAIL;
    }
    uint32_t *test = rows_of(split, rows, 1, 0, &r.ntest, &r.ntest_all);
    uint32_t *trs = rows_of(fit, rows, 0, eo->train_sample, &r.ntr, &r.ntr_all);
    free(fit);
    size_t nmax = r.ntest > r.ntr ? r.ntest : r.ntr;
    float *pred = malloc((nmax ? nmax : 1) * dim * sizeof(float));
    int status = EXIT_FAIL;
    if (!test || !trs || !pred)
        goto done;
    if (r.ntest == 0) {
        fprintf(stderr, "tokenmill softemb %s: the split has no held-out rows (test fraction %g)\n", cmd,
                info.test_frac);
        goto done;
    }
    for (int part = 0; part < 2; part++) {
        const uint32_t *rr = part == 0 ? test : trs;
        size_t n = part == 0 ? r.ntest : r.ntr;
        if (n == 0)
            continue;
        rc = eval_part(t, e, split, rr, n, eo, pred, r.res[part], &r.nres[part]);
        if (rc < 0)
            goto fail;
    }
    r.excluded = rows - r.ntest_all - r.ntr_all - (size_t)r.nvalid;
    if (eo->json)
        print_eval_json(f, t, &info, &r);
    else
        print_eval_table(f, t, &info, &r);
    status = EXIT_OK;
    goto done;
fail:
    cli_error(cmd, rc);
done:
    free(split);
    free(test);
    free(trs);
    free(pred);
    return status;
}

/* ---- eval ---------------------------------------------------------------------------- */

static void eval_usage(FILE *f)
{
    fprintf(f,
            "usage: tokenmill softemb eval --teacher FILE --encoder FILE [OPTIONS]\n"
            "\n"
            "Evaluates an encoder on the held-out split it was trained with: retrieval over\n"
            "the whole teacher vocabulary, cosine and relative error, beside baselines that\n"
            "see only the training rows (subtoken mean, n-gram ridge, nearest string,\n"
            "global mean), and the same on a sample of training rows.\n"
            "\n"
            "      --teacher FILE --teacher-vocab FILE --tensor NAME   as for train\n"
            "      --encoder FILE         a .tkse written by softemb train\n"
            "      --no-baselines         skip the baselines\n"
            "      --train-sample N       training rows to evaluate (default 2000; 0: all)\n"
            "      --threads N\n"
            "      --json                 JSON instead of a table\n"
            "  -h, --help\n");
}

enum { E_TEACHER = 256, E_VOCAB, E_TENSOR, E_ENCODER, E_NOBASE, E_SAMPLE, E_THREADS, E_JSON };

static const struct option eval_opts_l[] = {
    {"teacher", required_argument, 0, E_TEACHER}, {"teacher-vocab", required_argument, 0, E_VOCAB},
    {"tensor", required_argument, 0, E_TENSOR}, {"encoder", required_argument, 0, E_ENCODER},
    {"no-baselines", no_argument, 0, E_NOBASE}, {"train-sample", required_argument, 0, E_SAMPLE},
    {"threads", required_argument, 0, E_THREADS}, {"json", no_argument, 0, E_JSON},
    {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};

int softemb_eval(int argc, char **argv)
{
    teacher_arg ta = {0};
    const char *enc = NULL;
    eval_opts eo = { .json = 0, .baselines = 1, .threads = 0, .train_sample = 2000 };
    long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", eval_opts_l, NULL)) != -1) {
        switch (c) {
        case E_TEACHER: ta.path = optarg; break;
        case E_VOCAB: ta.o.vocab = optarg; break;
        case E_TENSOR: ta.o.tensor = optarg; break;
        case E_ENCODER: enc = optarg; break;
        case E_NOBASE: eo.baselines = 0; break;
        case E_JSON: eo.json = 1; break;
        case E_SAMPLE:
            if (cli_int(optarg, 0, 100000000, &v) < 0) {
                fprintf(stderr, "tokenmill softemb eval: bad --train-sample '%s'\n", optarg);
                return EXIT_USAGE;
            }
            eo.train_sample = (size_t)v;
            break;
        case E_THREADS:
            if (cli_int(optarg, 0, 1024, &v) < 0) {
                fprintf(stderr, "tokenmill softemb eval: bad --threads '%s'\n", optarg);
                return EXIT_USAGE;
            }
            eo.threads = (int)v;
            break;
        case 'h': eval_usage(stdout); return EXIT_OK;
        default: eval_usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tokenmill softemb eval: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!enc) {
        fprintf(stderr, "tokenmill softemb eval: no encoder given (--encoder FILE)\n");
        return EXIT_USAGE;
    }
    tkm_se_encoder *e = NULL;
    int rc = tkm_se_load(enc, &e);
    if (rc < 0) {
        cli_error("softemb eval", rc);
        return EXIT_FAIL;
    }
    tkm_teacher *t = softemb_load_teacher("eval", &ta);
    if (!t) {
        tkm_se_free(e);
        return EXIT_FAIL;
    }
    int status = softemb_run_eval("eval", t, e, &eo, stdout);
    tkm_teacher_free(t);
    tkm_se_free(e);
    return status;
}
