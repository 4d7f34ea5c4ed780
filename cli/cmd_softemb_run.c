/* cmd_softemb_run.c - `tokenmill softemb train|eval|apply`: train a byte-level
 * encoder on a teacher's embedding rows, evaluate it on the held-out split
 * beside baselines, and predict embeddings for a new vocabulary. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "tokenmill_softemb.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- shared: teacher options -------------------------------------------------- */

typedef struct {
    const char *path;
    tkm_teacher_opts o;
} teacher_arg;

static tkm_teacher *load_teacher(const char *cmd, const teacher_arg *ta)
{
    if (!ta->path) {
        fprintf(stderr, "tokenmill softemb %s: no teacher given (--teacher FILE)\n", cmd);
        return NULL;
    }
    tkm_teacher *t = NULL;
    int rc = tkm_teacher_load(ta->path, &ta->o, &t);
    if (rc < 0) {
        char what[64];
        snprintf(what, sizeof(what), "softemb %s", cmd);
        cli_error(what, rc);
        return NULL;
    }
    return t;
}

static int parse_float(const char *cmd, const char *opt, const char *arg, double lo, double hi, float *out)
{
    char *end;
    double v = strtod(arg, &end);
    if (!*arg || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "tokenmill softemb %s: --%s must be a number in [%g, %g] (got '%s')\n", cmd, opt, lo,
                hi, arg);
        return -1;
    }
    *out = (float)v;
    return 0;
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

typedef struct {
    int json, baselines, threads;
    size_t train_sample;
} eval_opts;

/* Evaluates e on the split it was trained with; prints a table or JSON. */
static int run_eval(const char *cmd, const tkm_teacher *t, const tkm_se_encoder *e, const eval_opts *eo, FILE *f)
{
    tkm_se_info info;
    tkm_se_get_info(e, &info);
    const size_t rows = tkm_teacher_rows(t), dim = tkm_teacher_dim(t);
    if ((size_t)info.out_dim != dim) {
        fprintf(stderr, "tokenmill softemb %s: the encoder predicts %d-wide rows, the teacher has %zu\n", cmd,
                info.out_dim, dim);
        return EXIT_FAIL;
    }
    if (info.split_version != TKM_SE_SPLIT_VERSION) {
        fprintf(stderr,
                "tokenmill softemb %s: the encoder was trained under split rule %u, this build holds out rows by "
                "rule %u: rows it trained on may be in the held-out part, so its held-out numbers would not be "
                "honest; train it again\n",
                cmd, info.split_version, TKM_SE_SPLIT_VERSION);
        return EXIT_FAIL;
    }
    if (info.teacher_hash != tkm_se_teacher_hash(t))
        fprintf(stderr, "tokenmill softemb %s: warning: this is not the teacher the encoder was trained on;"
                        " the split below is recomputed on it\n", cmd);
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
    int nvalid = tkm_se_split_valid(t, info.valid_frac, info.split_seed, fit);
    if (nvalid < 0) {
        free(split);
        free(fit);
        cli_error(cmd, nvalid);
        return EXIT_FAIL;
    }
    size_t ntest, ntr, ntest_all, ntr_all;
    uint32_t *test = rows_of(split, rows, 1, 0, &ntest, &ntest_all);
    uint32_t *trs = rows_of(fit, rows, 0, eo->train_sample, &ntr, &ntr_all);
    free(fit);
    size_t nmax = ntest > ntr ? ntest : ntr;
    float *pred = malloc((nmax ? nmax : 1) * dim * sizeof(float));
    eval_row res[2][1 + TKM_BASE_COUNT];
    int nres[2] = { 0, 0 };
    int status = EXIT_FAIL;
    if (!test || !trs || !pred)
        goto done;
    if (ntest == 0) {
        fprintf(stderr, "tokenmill softemb %s: the split has no held-out rows (test fraction %g)\n", cmd,
                info.test_frac);
        goto done;
    }
    for (int part = 0; part < 2; part++) {
        const uint32_t *rr = part == 0 ? test : trs;
        size_t n = part == 0 ? ntest : ntr;
        if (n == 0)
            continue;
        double t0 = now_s();
        rc = predict_rows(e, t, rr, n, eo->threads, pred);
        if (rc == 0)
            rc = tkm_se_metrics_compute(t, pred, rr, n, eo->threads, &res[part][0].m);
        if (rc < 0)
            goto fail;
        res[part][0].name = "softemb";
        res[part][0].seconds = now_s() - t0;
        nres[part] = 1;
        if (!eo->baselines)
            continue;
        for (int b = 0; b < TKM_BASE_COUNT; b++) {
            t0 = now_s();
            rc = tkm_se_baseline_predict(t, split, (tkm_se_baseline)b, rr, n, eo->threads, pred);
            if (rc == 0)
                rc = tkm_se_metrics_compute(t, pred, rr, n, eo->threads, &res[part][nres[part]].m);
            if (rc < 0)
                goto fail;
            res[part][nres[part]].name = tkm_se_baseline_name((tkm_se_baseline)b);
            res[part][nres[part]].seconds = now_s() - t0;
            nres[part]++;
        }
    }
    size_t excluded = rows - ntest_all - ntr_all - (size_t)nvalid;
    if (eo->json) {
        fprintf(f, "{\"teacher\": {\"rows\": %zu, \"dim\": %zu, \"format\": \"%s\", \"vocab_style\": \"%s\"},\n",
                rows, dim, tkm_teacher_format(t), tkm_teacher_vocab_style(t));
        fprintf(f, " \"split\": {\"test_frac\": %g, \"seed\": %llu, \"train\": %zu, \"test\": %zu, \"excluded\": %zu,"
                   " \"validation\": %d, \"selected_step\": %ld},\n",
                info.test_frac, (unsigned long long)info.split_seed, ntr_all, ntest_all, excluded, nvalid,
                info.best_step);
        fprintf(f, " \"encoder\": {\"layers\": %d, \"heads\": %d, \"width\": %d, \"max_bytes\": %d, \"pool\": \"%s\","
                   " \"head\": \"%s\", \"ngram_buckets\": %d, \"ngram_max\": %d, \"params\": %zu, \"steps\": %ld,"
                   " \"backend\": \"%s\"},\n",
                info.layers, info.heads, info.width, info.max_bytes, info.pool_mean ? "mean" : "end",
                info.head_mlp ? "mlp" : "linear", info.ngram_buckets, info.ngram_max, info.nparams, info.steps_done,
                info.backend);
        for (int part = 0; part < 2; part++) {
            fprintf(f, " \"%s\": {\"rows\": %zu, \"results\": [", part ? "train_sample" : "heldout",
                    part ? ntr : ntest);
            for (int i = 0; i < nres[part]; i++) {
                fprintf(f, "%s\n  ", i ? "," : "");
                json_metrics(f, &res[part][i]);
            }
            fprintf(f, "]}%s\n", part ? "" : ",");
        }
        fprintf(f, "}\n");
    } else {
        fprintf(f, "teacher: %zu rows x %zu (%s, %s vocabulary); grouped split %.0f/%.0f, seed %llu: "
                   "%zu train, %zu held-out, %zu special/unused excluded\n",
                rows, dim, tkm_teacher_format(t), tkm_teacher_vocab_style(t), 100 * (1 - info.test_frac),
                100 * info.test_frac, (unsigned long long)info.split_seed, ntr_all, ntest_all, excluded);
        char bag[64] = "no n-gram bag";
        if (info.ngram_buckets > 0)
            snprintf(bag, sizeof(bag), "n-gram bag %d x 1..%d", info.ngram_buckets, info.ngram_max);
        fprintf(f, "encoder: %d layers, %d heads, width %d, %d bytes, %s pooling, %s head, %s, %zu parameters, "
                   "%ld steps (%s)\n",
                info.layers, info.heads, info.width, info.max_bytes, info.pool_mean ? "mean" : "end",
                info.head_mlp ? "MLP" : "linear", bag, info.nparams, info.steps_done, info.backend);
        if (nvalid > 0)
            fprintf(f, "validation: %d of the train rows held back (in neither table below); weights of step %ld "
                       "kept (validation MRR %.4f)\n",
                    nvalid, info.best_step, info.best_mrr);
        fprintf(f, "\n");
        char title[96];
        snprintf(title, sizeof(title), "held-out (%zu rows)", ntest);
        print_metrics_header(f, title);
        for (int i = 0; i < nres[0]; i++)
            print_metrics_row(f, &res[0][i]);
        if (nres[1]) {
            snprintf(title, sizeof(title), "train (%zu of %zu rows)", ntr, ntr_all);
            fprintf(f, "\n");
            print_metrics_header(f, title);
            for (int i = 0; i < nres[1]; i++)
                print_metrics_row(f, &res[1][i]);
        }
        fprintf(f, "\nretrieval ranks each prediction among all %zu teacher rows; baselines see only the train rows\n",
                rows);
    }
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

/* ---- train -------------------------------------------------------------------------- */

static void train_usage(FILE *f)
{
    fprintf(f,
            "usage: tokenmill softemb train --teacher FILE [OPTIONS] -o ENCODER.tkse\n"
            "\n"
            "Trains a byte-level transformer encoder that maps a token's UTF-8 bytes to the\n"
            "teacher's embedding row, on a grouped train split of the teacher's vocabulary,\n"
            "then evaluates it on the held-out rows (see tokenmill-softemb(1)).\n"
            "\n"
            "teacher:\n"
            "      --teacher FILE          GGUF, safetensors or .npy embedding matrix\n"
            "      --teacher-vocab FILE    its vocabulary (.model, tokenizer.json, vocab.txt)\n"
            "      --tensor NAME           tensor name inside the file\n"
            "encoder (defaults depend on the teacher width; see the man page):\n"
            "      --layers N --heads N --width N --max-bytes N\n"
            "      --pool end|mean         pooled position (default end)\n"
            "      --head linear|mlp       output head (default linear)\n"
            "      --ngram-buckets N       hashed byte n-gram bag added to the pooled vector\n"
            "                              (rows of the table, default 131072; 0: none)\n"
            "      --ngram-max N           longest n-gram in the bag (1..8, default 5)\n"
            "loss (weights, >= 0):\n"
            "      --mse W --l1 W --cos W --contrastive W   (default mse 1, cos 4, contrastive 1)\n"
            "      --temperature T         contrastive temperature (default 0.05)\n"
            "optimisation:\n"
            "      --steps N | --epochs N  (default 1200 steps)\n"
            "      --batch N --lr X --warmup N --min-lr-ratio X --weight-decay X --clip X --seed N\n"
            "split:\n"
            "      --test-frac X --split-seed N   (default 0.1 and 1)\n"
            "      --valid-frac X          share of the training rows held back to pick the best\n"
            "                              step by validation MRR (e.g. 0.05; default 0: the last)\n"
            "      --valid-every N         validation interval in steps (default: steps / 12)\n"
            "execution:\n"
            "      --device auto|cpu|cuda[:N]  (default auto: CUDA when a device is present)\n"
            "      --tf32                  allow TF32 tensor cores on CUDA\n"
            "      --threads N             CPU threads (default: all cores)\n"
            "      --log-every N           progress line every N steps (default 50; 0: none)\n"
            "      --checkpoint FILE --checkpoint-every N   resumable checkpoints\n"
            "      --resume FILE           continue from a checkpoint\n"
            "      --no-eval               skip the held-out evaluation at the end\n"
            "  -o, --output FILE           encoder to write (atomically)\n"
            "  -h, --help\n");
}

enum {
    T_TEACHER = 256, T_VOCAB, T_TENSOR, T_LAYERS, T_HEADS, T_WIDTH, T_MAXB, T_POOL, T_HEAD, T_MSE, T_L1, T_COS,
    T_CTR, T_TEMP, T_STEPS, T_EPOCHS, T_BATCH, T_LR, T_WARMUP, T_MINLR, T_WD, T_CLIP, T_SEED, T_TESTFRAC,
    T_SPLITSEED, T_DEVICE, T_TF32, T_THREADS, T_LOGEVERY, T_CKPT, T_CKPTEVERY, T_RESUME, T_NGRAMB, T_NGRAMN, T_VALIDFRAC, T_VALIDEVERY, T_NOEVAL
};

static const struct option train_opts[] = {
    {"teacher", required_argument, 0, T_TEACHER}, {"teacher-vocab", required_argument, 0, T_VOCAB},
    {"tensor", required_argument, 0, T_TENSOR}, {"layers", required_argument, 0, T_LAYERS},
    {"heads", required_argument, 0, T_HEADS}, {"width", required_argument, 0, T_WIDTH},
    {"max-bytes", required_argument, 0, T_MAXB}, {"pool", required_argument, 0, T_POOL},
    {"head", required_argument, 0, T_HEAD}, {"mse", required_argument, 0, T_MSE},
    {"l1", required_argument, 0, T_L1}, {"cos", required_argument, 0, T_COS},
    {"contrastive", required_argument, 0, T_CTR}, {"temperature", required_argument, 0, T_TEMP},
    {"steps", required_argument, 0, T_STEPS}, {"epochs", required_argument, 0, T_EPOCHS},
    {"batch", required_argument, 0, T_BATCH}, {"lr", required_argument, 0, T_LR},
    {"warmup", required_argument, 0, T_WARMUP}, {"min-lr-ratio", required_argument, 0, T_MINLR},
    {"weight-decay", required_argument, 0, T_WD}, {"clip", required_argument, 0, T_CLIP},
    {"seed", required_argument, 0, T_SEED}, {"test-frac", required_argument, 0, T_TESTFRAC},
    {"split-seed", required_argument, 0, T_SPLITSEED}, {"device", required_argument, 0, T_DEVICE},
    {"tf32", no_argument, 0, T_TF32}, {"threads", required_argument, 0, T_THREADS},
    {"log-every", required_argument, 0, T_LOGEVERY}, {"checkpoint", required_argument, 0, T_CKPT},
    {"checkpoint-every", required_argument, 0, T_CKPTEVERY}, {"resume", required_argument, 0, T_RESUME},
    {"ngram-buckets", required_argument, 0, T_NGRAMB}, {"ngram-max", required_argument, 0, T_NGRAMN},
    {"valid-frac", required_argument, 0, T_VALIDFRAC}, {"valid-every", required_argument, 0, T_VALIDEVERY},
    {"no-eval", no_argument, 0, T_NOEVAL}, {"output", required_argument, 0, 'o'},
    {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};

static void progress_line(void *ud, const tkm_se_progress *p)
{
    (void)ud;
    if (p->valid) {
        fprintf(stderr, "valid  %6ld/%ld  top-1 %.4f  MRR %.4f%s\n", p->step, p->steps, p->valid_top1, p->valid_mrr,
                p->valid_best ? "  (best so far: kept)" : "");
        return;
    }
    fprintf(stderr, "step %6ld/%ld  epoch %3d  loss %.5f  lr %.2e  |g| %.3f  %7.0f rows/s  %8.0f tokens/s  %7.1f GFLOP/s  %6.1f s\n",
            p->step, p->steps, p->epoch, p->loss, p->lr, p->gnorm, p->seqs_per_s, p->tokens_per_s, p->gflops_per_s,
            p->elapsed_s);
}

int softemb_train(int argc, char **argv)
{
    teacher_arg ta = {0};
    const char *out = NULL, *resume = NULL, *ckpt = NULL, *device = "auto";
    const char *pool = NULL, *head = NULL;
    float w[4] = { -1, -1, -1, -1 }, temp = -1, lr = -1, minlr = -1, wd = -1, clip = -1;
    double test_frac = -1, valid_frac = -1;
    long iv[T_NOEVAL + 1];
    int iset[T_NOEVAL + 1];
    memset(iset, 0, sizeof(iset));
    int tf32 = 0, noeval = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", train_opts, NULL)) != -1) {
        long lo = 0, hi = 0;
        switch (c) {
        case T_TEACHER: ta.path = optarg; continue;
        case T_VOCAB: ta.o.vocab = optarg; continue;
        case T_TENSOR: ta.o.tensor = optarg; continue;
        case T_POOL: pool = optarg; continue;
        case T_HEAD: head = optarg; continue;
        case T_DEVICE: device = optarg; continue;
        case T_TF32: tf32 = 1; continue;
        case T_CKPT: ckpt = optarg; continue;
        case T_RESUME: resume = optarg; continue;
        case T_NOEVAL: noeval = 1; continue;
        case 'o': out = optarg; continue;
        case 'h': train_usage(stdout); return EXIT_OK;
        case T_MSE: case T_L1: case T_COS: case T_CTR:
            if (parse_float("train", train_opts[c - T_TEACHER].name, optarg, 0, 1e6, &w[c - T_MSE]) < 0)
                return EXIT_USAGE;
            continue;
        case T_TEMP: if (parse_float("train", "temperature", optarg, 1e-4, 100, &temp) < 0) return EXIT_USAGE; continue;
        case T_LR: if (parse_float("train", "lr", optarg, 1e-8, 10, &lr) < 0) return EXIT_USAGE; continue;
        case T_MINLR: if (parse_float("train", "min-lr-ratio", optarg, 0, 1, &minlr) < 0) return EXIT_USAGE; continue;
        case T_WD: if (parse_float("train", "weight-decay", optarg, 0, 10, &wd) < 0) return EXIT_USAGE; continue;
        case T_CLIP: if (parse_float("train", "clip", optarg, 0, 1e6, &clip) < 0) return EXIT_USAGE; continue;
        case T_TESTFRAC: {
            float x;
            if (parse_float("train", "test-frac", optarg, 0.001, 0.999, &x) < 0) return EXIT_USAGE;
            test_frac = strtod(optarg, NULL);
            continue;
        }
        case T_LAYERS: lo = 1; hi = 64; break;
        case T_HEADS: lo = 1; hi = 256; break;
        case T_WIDTH: lo = 8; hi = 8192; break;
        case T_MAXB: lo = 1; hi = 1022; break;
        case T_STEPS: lo = 1; hi = 1000000000; break;
        case T_EPOCHS: lo = 1; hi = 100000; break;
        case T_BATCH: lo = 1; hi = 65536; break;
        case T_WARMUP: lo = 0; hi = 1000000000; break;
        case T_SEED: case T_SPLITSEED: lo = 0; hi = 0x7fffffffffffffffL; break;
        case T_THREADS: lo = 0; hi = 1024; break;
        case T_LOGEVERY: case T_CKPTEVERY: lo = 0; hi = 1000000000; break;
        case T_NGRAMB: lo = 0; hi = 1 << 24; break;
        case T_NGRAMN: lo = 1; hi = 8; break;
        case T_VALIDEVERY: lo = 0; hi = 1000000000; break;
        case T_VALIDFRAC: {
            float x;
            if (parse_float("train", "valid-frac", optarg, 0, 0.5, &x) < 0) return EXIT_USAGE;
            valid_frac = strtod(optarg, NULL);
            continue;
        }
        default: train_usage(stderr); return EXIT_USAGE;
        }
        if (cli_int(optarg, lo, hi, &iv[c]) < 0) {
            fprintf(stderr, "tokenmill softemb train: --%s must be an integer in [%ld, %ld] (got '%s')\n",
                    train_opts[c - T_TEACHER].name, lo, hi, optarg);
            return EXIT_USAGE;
        }
        iset[c] = 1;
    }
    if (optind < argc) {
        fprintf(stderr, "tokenmill softemb train: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!out) {
        fprintf(stderr, "tokenmill softemb train: no output given (-o FILE)\n");
        return EXIT_USAGE;
    }
    if (iset[T_STEPS] && iset[T_EPOCHS]) {
        fprintf(stderr, "tokenmill softemb train: give --steps or --epochs, not both\n");
        return EXIT_USAGE;
    }
    if (pool && strcmp(pool, "end") && strcmp(pool, "mean")) {
        fprintf(stderr, "tokenmill softemb train: --pool must be end or mean\n");
        return EXIT_USAGE;
    }
    if (head && strcmp(head, "linear") && strcmp(head, "mlp")) {
        fprintf(stderr, "tokenmill softemb train: --head must be linear or mlp\n");
        return EXIT_USAGE;
    }
    int dev;
    if (!strcmp(device, "auto"))
        dev = -2;
    else if (!strcmp(device, "cpu"))
        dev = -1;
    else if (!strcmp(device, "cuda"))
        dev = 0;
    else if (!strncmp(device, "cuda:", 5)) {
        long d;
        if (cli_int(device + 5, 0, 1024, &d) < 0) {
            fprintf(stderr, "tokenmill softemb train: bad --device '%s'\n", device);
            return EXIT_USAGE;
        }
        dev = (int)d;
    } else {
        fprintf(stderr, "tokenmill softemb train: --device must be auto, cpu, cuda or cuda:N\n");
        return EXIT_USAGE;
    }
    tkm_teacher *t = load_teacher("train", &ta);
    if (!t)
        return EXIT_FAIL;
    tkm_se_options o;
    tkm_se_options_default(&o, tkm_teacher_dim(t));
    if (iset[T_LAYERS]) o.layers = (int)iv[T_LAYERS];
    if (iset[T_HEADS]) o.heads = (int)iv[T_HEADS];
    if (iset[T_WIDTH]) o.width = (int)iv[T_WIDTH];
    if (iset[T_MAXB]) o.max_bytes = (int)iv[T_MAXB];
    if (iset[T_BATCH]) o.batch = (int)iv[T_BATCH];
    if (iset[T_WARMUP]) o.warmup = iv[T_WARMUP];
    if (iset[T_SEED]) o.seed = (uint64_t)iv[T_SEED];
    if (iset[T_SPLITSEED]) o.split_seed = (uint64_t)iv[T_SPLITSEED];
    if (iset[T_THREADS]) o.threads = (int)iv[T_THREADS];
    if (iset[T_LOGEVERY]) o.log_every = iv[T_LOGEVERY];
    if (iset[T_CKPTEVERY]) o.checkpoint_every = iv[T_CKPTEVERY];
    if (iset[T_STEPS]) o.steps = iv[T_STEPS];
    if (iset[T_NGRAMB]) o.ngram_buckets = (int)iv[T_NGRAMB];
    if (iset[T_NGRAMN]) o.ngram_max = (int)iv[T_NGRAMN];
    if (iset[T_VALIDEVERY]) o.valid_every = iv[T_VALIDEVERY];
    if (valid_frac >= 0) o.valid_frac = valid_frac;
    if (pool) o.pool_mean = !strcmp(pool, "mean");
    if (head) o.head_mlp = !strcmp(head, "mlp");
    if (w[0] >= 0 || w[1] >= 0 || w[2] >= 0 || w[3] >= 0) { /* any weight given: unset ones are 0 */
        o.w_mse = w[0] > 0 ? w[0] : 0;
        o.w_l1 = w[1] > 0 ? w[1] : 0;
        o.w_cos = w[2] > 0 ? w[2] : 0;
        o.w_ctr = w[3] > 0 ? w[3] : 0;
    }
    if (temp > 0) o.temperature = temp;
    if (lr > 0) o.lr = lr;
    if (minlr >= 0) o.min_lr_ratio = minlr;
    if (wd >= 0) o.weight_decay = wd;
    if (clip >= 0) o.clip = clip;
    if (test_frac > 0) o.test_frac = test_frac;
    o.device = dev;
    o.tf32 = tf32;
    o.checkpoint = ckpt;
    if (ckpt && !o.checkpoint_every)
        o.checkpoint_every = 500;
    o.progress = cli_quiet ? NULL : progress_line;

    size_t rows = tkm_teacher_rows(t);
    uint8_t *split = malloc(rows ? rows : 1);
    int rc = split ? tkm_se_split(t, o.test_frac, o.split_seed, split) : TKM_ENOMEM;
    if (rc < 0) {
        cli_error("softemb train", rc);
        free(split);
        tkm_teacher_free(t);
        return EXIT_FAIL;
    }
    int ntest = rc, nvalid = 0;
    uint8_t *fit = malloc(rows ? rows : 1);
    if (fit) {
        memcpy(fit, split, rows);
        nvalid = tkm_se_split_valid(t, o.valid_frac, o.split_seed, fit);
        free(fit);
    }
    if (!fit || nvalid < 0) {
        cli_error("softemb train", fit ? nvalid : TKM_ENOMEM);
        free(split);
        tkm_teacher_free(t);
        return EXIT_FAIL;
    }
    size_t ntrain = 0; /* rows trained on */
    for (size_t r = 0; r < rows; r++)
        ntrain += split[r] == 0;
    ntrain -= (size_t)nvalid;
    if (iset[T_EPOCHS]) {
        size_t per = (ntrain + (size_t)o.batch - 1) / (size_t)o.batch;
        o.steps = iv[T_EPOCHS] * (long)(per ? per : 1);
    }
    if (o.warmup > o.steps / 2)
        o.warmup = o.steps / 2;
    if (!cli_quiet)
        fprintf(stderr, "tokenmill softemb train: %zu rows x %zu, %zu train / %d validation / %d held-out; %d layers, "
                        "%d heads, width %d, %d bytes, n-gram bag %d; %ld steps of %d\n",
                rows, tkm_teacher_dim(t), ntrain, nvalid, ntest, o.layers, o.heads, o.width, o.max_bytes,
                o.ngram_buckets, o.steps, o.batch);
    tkm_se_encoder *e = NULL;
    char *gc = ckpt ? cli_guard_output(ckpt) : NULL; /* checkpoints are written as PATH.tmp.PID too */
    rc = tkm_se_train(t, split, &o, resume, &e);
    cli_unguard_output(gc);
    free(split);
    if (rc < 0) {
        cli_error("softemb train", rc);
        tkm_teacher_free(t);
        return EXIT_FAIL;
    }
    char *g = cli_guard_output(out); /* PATH.tmp.PID removed on SIGINT/SIGTERM */
    rc = tkm_se_save(e, out, 0);
    cli_unguard_output(g);
    if (rc < 0) {
        cli_error("softemb train", rc);
        tkm_se_free(e);
        tkm_teacher_free(t);
        return EXIT_FAIL;
    }
    tkm_se_info info;
    tkm_se_get_info(e, &info);
    if (!cli_quiet)
        fprintf(stderr, "tokenmill softemb train: wrote %s (%zu parameters, trained on %s)\n", out, info.nparams,
                info.backend);
    if (info.truncated)
        fprintf(stderr, "tokenmill softemb train: %zu training rows were longer than %d bytes and were truncated\n",
                info.truncated, info.max_bytes);
    int status = EXIT_OK;
    if (!noeval) {
        eval_opts eo = { .json = 0, .baselines = 0, .threads = o.threads, .train_sample = 2000 };
        status = run_eval("train", t, e, &eo, stdout);
    }
    tkm_se_free(e);
    tkm_teacher_free(t);
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
    tkm_teacher *t = load_teacher("eval", &ta);
    if (!t) {
        tkm_se_free(e);
        return EXIT_FAIL;
    }
    int status = run_eval("eval", t, e, &eo, stdout);
    tkm_teacher_free(t);
    tkm_se_free(e);
    return status;
}

/* ---- apply ----------------------------------------------------------------------------- */

static void apply_usage(FILE *f)
{
    fprintf(f,
            "usage: tokenmill softemb apply --encoder FILE -m NEW.model -o OUT.gguf|OUT.npy [OPTIONS]\n"
            "\n"
            "Predicts an embedding row for every piece of a sentencepiece model (U+2581 is a\n"
            "space, <0xNN> is that byte) and writes them as GGUF (token_embd.weight and the\n"
            "model's tokenizer in llama.cpp's keys: pieces, types, scores, special ids) or\n"
            ".npy, in the model's id order. Control, unknown and unused pieces get\n"
            "zero rows. With --teacher, pieces whose bytes equal a teacher token's bytes take\n"
            "the teacher's own row instead of a prediction.\n"
            "\n"
            "      --encoder FILE         a .tkse written by softemb train\n"
            "  -m, --model FILE           the new vocabulary (.model)\n"
            "      --teacher FILE [--teacher-vocab FILE --tensor NAME]   copy exact matches\n"
            "      --format gguf|npy      (default: from the output name, else gguf)\n"
            "      --dtype f32|f16|bf16   GGUF tensor type (default f32)\n"
            "      --threads N\n"
            "  -o, --output FILE          file to write (atomically)\n"
            "  -h, --help\n");
}

enum { A_ENCODER = 256, A_TEACHER, A_VOCAB, A_TENSOR, A_FORMAT, A_DTYPE, A_THREADS };

static const struct option apply_opts[] = {
    {"encoder", required_argument, 0, A_ENCODER}, {"model", required_argument, 0, 'm'},
    {"teacher", required_argument, 0, A_TEACHER}, {"teacher-vocab", required_argument, 0, A_VOCAB},
    {"tensor", required_argument, 0, A_TENSOR}, {"format", required_argument, 0, A_FORMAT},
    {"dtype", required_argument, 0, A_DTYPE}, {"threads", required_argument, 0, A_THREADS},
    {"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};

static int cmp_bytes(const unsigned char *a, size_t la, const unsigned char *b, size_t lb)
{
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : la < lb ? -1 : la > lb;
}

static const tkm_teacher *g_sort_teacher; /* qsort context: the CLI is single-threaded */

static int cmp_teacher_rows(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    size_t la, lb;
    const unsigned char *pa = tkm_teacher_bytes(g_sort_teacher, a, &la);
    const unsigned char *pb = tkm_teacher_bytes(g_sort_teacher, b, &lb);
    int c = cmp_bytes(pa, la, pb, lb);
    return c ? c : a < b ? -1 : a > b;
}

int softemb_apply(int argc, char **argv)
{
    teacher_arg ta = {0};
    const char *enc = NULL, *model = NULL, *out = NULL, *format = NULL, *dtype = "f32";
    int threads = 0, c;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:h", apply_opts, NULL)) != -1) {
        switch (c) {
        case A_ENCODER: enc = optarg; break;
        case 'm': model = optarg; break;
        case 'o': out = optarg; break;
        case A_TEACHER: ta.path = optarg; break;
        case A_VOCAB: ta.o.vocab = optarg; break;
        case A_TENSOR: ta.o.tensor = optarg; break;
        case A_FORMAT: format = optarg; break;
        case A_DTYPE: dtype = optarg; break;
        case A_THREADS:
            if (cli_int(optarg, 0, 1024, &v) < 0) {
                fprintf(stderr, "tokenmill softemb apply: bad --threads '%s'\n", optarg);
                return EXIT_USAGE;
            }
            threads = (int)v;
            break;
        case 'h': apply_usage(stdout); return EXIT_OK;
        default: apply_usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tokenmill softemb apply: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!enc || !model || !out) {
        fprintf(stderr, "tokenmill softemb apply: %s\n",
                !enc ? "no encoder given (--encoder FILE)" : !model ? "no model given (-m FILE)" : "no output given (-o FILE)");
        return EXIT_USAGE;
    }
    if (!format) {
        size_t k = strlen(out);
        format = k > 4 && !strcmp(out + k - 4, ".npy") ? "npy" : "gguf";
    }
    if (strcmp(format, "gguf") && strcmp(format, "npy")) {
        fprintf(stderr, "tokenmill softemb apply: --format must be gguf or npy\n");
        return EXIT_USAGE;
    }
    tkm_dtype dt = !strcmp(dtype, "f32") ? TKM_DTYPE_F32 : !strcmp(dtype, "f16") ? TKM_DTYPE_F16
                 : !strcmp(dtype, "bf16") ? TKM_DTYPE_BF16 : (tkm_dtype)-1;
    if ((int)dt < 0) {
        fprintf(stderr, "tokenmill softemb apply: --dtype must be f32, f16 or bf16\n");
        return EXIT_USAGE;
    }
    int status = EXIT_FAIL, rc;
    tkm_se_encoder *e = NULL;
    tkm_model *m = NULL;
    tkm_teacher *t = NULL;
    unsigned char *bytes = NULL;
    const unsigned char **bp = NULL;
    size_t *bl = NULL, *bo = NULL;
    float *rowsv = NULL, *pred = NULL;
    if ((rc = tkm_se_load(enc, &e)) < 0 || (rc = tkm_model_load(model, &m)) < 0) {
        cli_error("softemb apply", rc);
        goto done;
    }
    cli_model_warning("softemb apply", m);
    if (ta.path && !(t = load_teacher("apply", &ta)))
        goto done;
    tkm_se_info info;
    tkm_se_get_info(e, &info);
    if (t && tkm_teacher_dim(t) != (size_t)info.out_dim) {
        fprintf(stderr, "tokenmill softemb apply: the teacher is %zu wide, the encoder predicts %d\n",
                tkm_teacher_dim(t), info.out_dim);
        goto done;
    }
    size_t n = (size_t)tkm_model_size(m), total = 0, D = (size_t)info.out_dim;
    for (size_t i = 0; i < n; i++) {
        size_t k;
        tkm_model_piece(m, (int)i, &k);
        total += k;
    }
    bytes = malloc(total + 1);
    bp = calloc(n, sizeof(*bp));
    bl = calloc(n, sizeof(size_t));
    bo = calloc(n, sizeof(size_t));
    rowsv = calloc(n * D, sizeof(float));
    pred = malloc(n * D * sizeof(float));
    if (!bytes || !bp || !bl || !bo || !rowsv || !pred) {
        fprintf(stderr, "tokenmill softemb apply: out of memory\n");
        goto done;
    }
    /* pieces to predict, packed */
    size_t off = 0, npred = 0, nspecial = 0, ncopied = 0;
    size_t *pidx = bo; /* positions of predicted pieces */
    for (size_t i = 0; i < n; i++) {
        size_t k;
        const char *p = tkm_model_piece(m, (int)i, &k);
        tkm_piece_type ty = tkm_model_piece_type(m, (int)i);
        if (ty == TKM_PIECE_CONTROL || ty == TKM_PIECE_UNKNOWN || ty == TKM_PIECE_UNUSED) {
            nspecial++;
            continue;
        }
        size_t nb = tkm_se_sp_piece_bytes(p, k, ty == TKM_PIECE_BYTE, bytes + off);
        bp[npred] = bytes + off;
        bl[npred] = nb;
        pidx[npred++] = i;
        off += nb;
    }
    rc = tkm_se_predict(e, bp, bl, npred, threads, pred);
    if (rc < 0) {
        cli_error("softemb apply", rc);
        goto done;
    }
    for (size_t j = 0; j < npred; j++)
        memcpy(rowsv + pidx[j] * D, pred + j * D, D * sizeof(float));
    if (t) { /* exact byte matches take the teacher's row (the lowest NORMAL row with those bytes) */
        size_t tr = tkm_teacher_rows(t), nt = 0;
        uint32_t *ord = malloc((tr ? tr : 1) * sizeof(uint32_t));
        if (!ord) {
            fprintf(stderr, "tokenmill softemb apply: out of memory\n");
            goto done;
        }
        for (size_t r = 0; r < tr; r++)
            if (tkm_teacher_row_kind(t, r) == TKM_ROW_NORMAL)
                ord[nt++] = (uint32_t)r;
        g_sort_teacher = t;
        qsort(ord, nt, sizeof(uint32_t), cmp_teacher_rows);
        for (size_t j = 0; j < npred; j++) {
            size_t lo = 0, hi = nt; /* first row with bytes >= the piece's */
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                size_t tl;
                const unsigned char *tb = tkm_teacher_bytes(t, ord[mid], &tl);
                if (cmp_bytes(tb, tl, bp[j], bl[j]) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            size_t tl;
            if (lo < nt) {
                const unsigned char *tb = tkm_teacher_bytes(t, ord[lo], &tl);
                if (cmp_bytes(tb, tl, bp[j], bl[j]) == 0) {
                    memcpy(rowsv + pidx[j] * D, tkm_teacher_matrix(t) + (size_t)ord[lo] * D, D * sizeof(float));
                    ncopied++;
                }
            }
        }
        free(ord);
    }
    char *g = cli_guard_output(out); /* PATH.tmp.PID removed on SIGINT/SIGTERM */
    rc = !strcmp(format, "npy") ? tkm_emb_write_npy(out, n, D, rowsv) : tkm_emb_write_gguf_model(out, m, D, rowsv, dt);
    cli_unguard_output(g);
    if (rc < 0) {
        cli_error("softemb apply", rc);
        goto done;
    }
    if (!cli_quiet)
        fprintf(stderr, "tokenmill softemb apply: wrote %s: %zu rows x %zu (%zu predicted, %zu copied from the "
                        "teacher, %zu control/unknown/unused rows left at zero)\n",
                out, n, D, npred - ncopied, ncopied, nspecial);
    status = EXIT_OK;
done:
    free(bytes);
    free(bp);
    free(bl);
    free(bo);
    free(rowsv);
    free(pred);
    tkm_teacher_free(t);
    tkm_model_free(m);
    tkm_se_free(e);
    return status;
}
