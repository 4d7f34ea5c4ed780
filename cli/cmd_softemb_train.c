/* cmd_softemb_train.c - `tokenmill softemb train`: train a byte-level encoder on
 * a teacher's embedding rows (then evaluate it, cli/cmd_softemb_eval.c). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "softemb_cli.h"
#include "tokenmill_softemb.h"

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

/* What the command line asked for; unset values are negative (iset: given). */
typedef struct {
    teacher_arg ta;
    const char *out, *resume, *ckpt, *device, *pool, *head;
    float w[4], temp, lr, minlr, wd, clip;
    double test_frac, valid_frac;
    long iv[T_NOEVAL + 1];
    int iset[T_NOEVAL + 1];
    int tf32, noeval;
} train_args;

/* Parses argv into a: -1 to go on, or the exit status to return (--help: EXIT_OK). */
static int parse_train_args(int argc, char **argv, train_args *a)
{
    memset(a, 0, sizeof(*a));
    a->device = "auto";
    for (int i = 0; i < 4; i++)
        a->w[i] = -1;
    a->temp = a->lr = a->minlr = a->wd = a->clip = -1;
    a->test_frac = a->valid_frac = -1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", train_opts, NULL)) != -1) {
        long lo = 0, hi = 0;
        switch (c) {
        case T_TEACHER: a->ta.path = optarg; continue;
        case T_VOCAB: a->ta.o.vocab = optarg; continue;
        case T_TENSOR: a->ta.o.tensor = optarg; continue;
        case T_POOL: a->pool = optarg; continue;
        case T_HEAD: a->head = optarg; continue;
        case T_DEVICE: a->device = optarg; continue;
        case T_TF32: a->tf32 = 1; continue;
        case T_CKPT: a->ckpt = optarg; continue;
        case T_RESUME: a->resume = optarg; continue;
        case T_NOEVAL: a->noeval = 1; continue;
        case 'o': a->out = optarg; continue;
        case 'h': train_usage(stdout); return EXIT_OK;
        case T_MSE: case T_L1: case T_COS: case T_CTR:
            if (parse_float("train", train_opts[c - T_TEACHER].name, optarg, 0, 1e6, &a->w[c - T_MSE]) < 0)
                return EXIT_USAGE;
            continue;
        case T_TEMP: if (parse_float("train", "temperature", optarg, 1e-4, 100, &a->temp) < 0) return EXIT_USAGE; continue;
        case T_LR: if (parse_float("train", "lr", optarg, 1e-8, 10, &a->lr) < 0) return EXIT_USAGE; continue;
        case T_MINLR: if (parse_float("train", "min-lr-ratio", optarg, 0, 1, &a->minlr) < 0) return EXIT_USAGE; continue;
        case T_WD: if (parse_float("train", "weight-decay", optarg, 0, 10, &a->wd) < 0) return EXIT_USAGE; continue;
        case T_CLIP: if (parse_float("train", "clip", optarg, 0, 1e6, &a->clip) < 0) return EXIT_USAGE; continue;
        case T_TESTFRAC: {
            float x;
            if (parse_float("train", "test-frac", optarg, 0.001, 0.999, &x) < 0) return EXIT_USAGE;
            a->test_frac = strtod(optarg, NULL);
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
            a->valid_frac = strtod(optarg, NULL);
            continue;
        }
        default: train_usage(stderr); return EXIT_USAGE;
        }
        if (cli_int(optarg, lo, hi, &a->iv[c]) < 0) {
            fprintf(stderr, "tokenmill softemb train: --%s must be an integer in [%ld, %ld] (got '%s')\n",
                    train_opts[c - T_TEACHER].name, lo, hi, optarg);
            return EXIT_USAGE;
        }
        a->iset[c] = 1;
    }
    if (optind < argc) {
        fprintf(stderr, "tokenmill softemb train: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!a->out) {
        fprintf(stderr, "tokenmill softemb train: no output given (-o FILE)\n");
        return EXIT_USAGE;
    }
    if (a->iset[T_STEPS] && a->iset[T_EPOCHS]) {
        fprintf(stderr, "tokenmill softemb train: give --steps or --epochs, not both\n");
        return EXIT_USAGE;
    }
    if (a->pool && strcmp(a->pool, "end") && strcmp(a->pool, "mean")) {
        fprintf(stderr, "tokenmill softemb train: --pool must be end or mean\n");
        return EXIT_USAGE;
    }
    if (a->head && strcmp(a->head, "linear") && strcmp(a->head, "mlp")) {
        fprintf(stderr, "tokenmill softemb train: --head must be linear or mlp\n");
        return EXIT_USAGE;
    }
    return -1;
}

/* --device: -2 auto, -1 cpu, N cuda:N; -3 (with a message) when malformed. */
static int parse_device(const char *device)
{
    if (!strcmp(device, "auto"))
        return -2;
    if (!strcmp(device, "cpu"))
        return -1;
    if (!strcmp(device, "cuda"))
        return 0;
    if (!strncmp(device, "cuda:", 5)) {
        long d;
        if (cli_int(device + 5, 0, 1024, &d) < 0) {
            fprintf(stderr, "tokenmill softemb train: bad --device '%s'\n", device);
            return -3;
        }
        return (int)d;
    }
    fprintf(stderr, "tokenmill softemb train: --device must be auto, cpu, cuda or cuda:N\n");
    return -3;
}

/* The options given on the command line over the teacher-width defaults. */
static void apply_train_args(const train_args *a, int dev, tkm_se_options *o)
{
    const long *iv = a->iv;
    const int *iset = a->iset;
    if (iset[T_LAYERS]) o->layers = (int)iv[T_LAYERS];
    if (iset[T_HEADS]) o->heads = (int)iv[T_HEADS];
    if (iset[T_WIDTH]) o->width = (int)iv[T_WIDTH];
    if (iset[T_MAXB]) o->max_bytes = (int)iv[T_MAXB];
    if (iset[T_BATCH]) o->batch = (int)iv[T_BATCH];
    if (iset[T_WARMUP]) o->warmup = iv[T_WARMUP];
    if (iset[T_SEED]) o->seed = (uint64_t)iv[T_SEED];
    if (iset[T_SPLITSEED]) o->split_seed = (uint64_t)iv[T_SPLITSEED];
    if (iset[T_THREADS]) o->threads = (int)iv[T_THREADS];
    if (iset[T_LOGEVERY]) o->log_every = iv[T_LOGEVERY];
    if (iset[T_CKPTEVERY]) o->checkpoint_every = iv[T_CKPTEVERY];
    if (iset[T_STEPS]) o->steps = iv[T_STEPS];
    if (iset[T_NGRAMB]) o->ngram_buckets = (int)iv[T_NGRAMB];
    if (iset[T_NGRAMN]) o->ngram_max = (int)iv[T_NGRAMN];
    if (iset[T_VALIDEVERY]) o->valid_every = iv[T_VALIDEVERY];
    if (a->valid_frac >= 0) o->valid_frac = a->valid_frac;
    if (a->pool) o->pool_mean = !strcmp(a->pool, "mean");
    if (a->head) o->head_mlp = !strcmp(a->head, "mlp");
    const float *w = a->w;
    if (w[0] >= 0 || w[1] >= 0 || w[2] >= 0 || w[3] >= 0) { /* any weight given: unset ones are 0 */
        o->w_mse = w[0] > 0 ? w[0] : 0;
        o->w_l1 = w[1] > 0 ? w[1] : 0;
        o->w_cos = w[2] > 0 ? w[2] : 0;
        o->w_ctr = w[3] > 0 ? w[3] : 0;
    }
    if (a->temp > 0) o->temperature = a->temp;
    if (a->lr > 0) o->lr = a->lr;
    if (a->minlr >= 0) o->min_lr_ratio = a->minlr;
    if (a->wd >= 0) o->weight_decay = a->wd;
    if (a->clip >= 0) o->clip = a->clip;
    if (a->test_frac > 0) o->test_frac = a->test_frac;
    o->device = dev;
    o->tf32 = a->tf32;
    o->checkpoint = a->ckpt;
    if (a->ckpt && !o->checkpoint_every)
        o->checkpoint_every = 500;
    o->progress = cli_quiet ? NULL : progress_line;
}

/* The held-out split (*split: malloc'd, 0 = train) and, with --epochs, the
 * step count; prints the run's summary line. 0 or a TKM_E* code. */
static int make_split(const tkm_teacher *t, const train_args *a, tkm_se_options *o, uint8_t **split)
{
    size_t rows = tkm_teacher_rows(t);
    *split = malloc(rows ? rows : 1);
    int rc = *split ? tkm_se_split(t, o->test_frac, o->split_seed, *split) : TKM_ENOMEM;
    if (rc < 0)
        return rc;
    int ntest = rc, nvalid = 0;
    uint8_t *fit = malloc(rows ? rows : 1);
    if (fit) {
        memcpy(fit, *split, rows);
        nvalid = tkm_se_split_valid(t, o->valid_frac, o->split_seed, fit);
        free(fit);
    }
    if (!fit || nvalid < 0)
        return fit ? nvalid : TKM_ENOMEM;
    size_t ntrain = 0; /* rows trained on */
    for (size_t r = 0; r < rows; r++)
        ntrain += (*split)[r] == 0;
    ntrain -= (size_t)nvalid;
    if (a->iset[T_EPOCHS]) {
        size_t per = (ntrain + (size_t)o->batch - 1) / (size_t)o->batch;
        o->steps = a->iv[T_EPOCHS] * (long)(per ? per : 1);
    }
    if (o->warmup > o->steps / 2)
        o->warmup = o->steps / 2;
    if (!cli_quiet)
        fprintf(stderr, "tokenmill softemb train: %zu rows x %zu, %zu train / %d validation / %d held-out; %d layers, "
                        "%d heads, width %d, %d bytes, n-gram bag %d; %ld steps of %d\n",
                rows, tkm_teacher_dim(t), ntrain, nvalid, ntest, o->layers, o->heads, o->width, o->max_bytes,
                o->ngram_buckets, o->steps, o->batch);
    return 0;
}

int softemb_train(int argc, char **argv)
{
    train_args a;
    int st = parse_train_args(argc, argv, &a);
    if (st >= 0)
        return st;
    int dev = parse_device(a.device);
    if (dev == -3)
        return EXIT_USAGE;
    tkm_teacher *t = softemb_load_teacher("train", &a.ta);
    if (!t)
        return EXIT_FAIL;
    tkm_se_options o;
    tkm_se_options_default(&o, tkm_teacher_dim(t));
    apply_train_args(&a, dev, &o);
    uint8_t *split = NULL;
    int rc = make_split(t, &a, &o, &split);
    if (rc < 0) {
        cli_error("softemb train", rc);
        free(split);
        tkm_teacher_free(t);
        return EXIT_FAIL;
    }
    tkm_se_encoder *e = NULL;
    char *gc = a.ckpt ? cli_guard_output(a.ckpt) : NULL; /* checkpoints are written as PATH.tmp.PID too */
    rc = tkm_se_train(t, split, &o, a.resume, &e);
    cli_unguard_output(gc);
    free(split);
    if (rc < 0) {
        cli_error("softemb train", rc);
        tkm_teacher_free(t);
        return EXIT_FAIL;
    }
    char *g = cli_guard_output(a.out); /* PATH.tmp.PID removed on SIGINT/SIGTERM */
    rc = tkm_se_save(e, a.out, 0);
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
        fprintf(stderr, "tokenmill softemb train: wrote %s (%zu parameters, trained on %s)\n", a.out, info.nparams,
                info.backend);
    if (info.truncated)
        fprintf(stderr, "tokenmill softemb train: %zu training rows were longer than %d bytes and were truncated\n",
                info.truncated, info.max_bytes);
    int status = EXIT_OK;
    if (!a.noeval) {
        eval_opts eo = { .json = 0, .baselines = 0, .threads = o.threads, .train_sample = 2000 };
        status = softemb_run_eval("train", t, e, &eo, stdout);
    }
    tkm_se_free(e);
    tkm_teacher_free(t);
    return status;
}
