/* cmd_train.c - `tokenmill train`: options (GNU and sentencepiece spellings),
 * streamed input, progress, summary. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "tokenmill_analyze.h"

static void train_usage(FILE *f)
{
    fprintf(f,
            "usage: tokenmill train [OPTIONS] -o OUT.model FILE...\n"
            "\n"
            "Learns a BPE vocabulary from text files (plain or .gz, '-' for stdin) and\n"
            "writes a sentencepiece .model. sentencepiece spellings (--vocab_size=8000,\n"
            "--model_type=bpe, --split_digits=true, --input=a,b, --model_prefix=P) work too.\n"
            "\n"
            "  -o, --output FILE               model to write (atomically)\n"
            "      --model-prefix P            write P.model (sentencepiece style)\n"
            "      --input A,B                 comma-separated input files (besides FILE...)\n"
            "      --input NAME=PATH           a named input: file, directory or glob (repeatable)\n"
            "      --counts GLOB                count files (.tkc) from tokenmill count: their counts\n"
            "                                  are added (same counting options; repeatable)\n"
            "      --weight NAME=W[,NAME=W]    count a named input W times (e.g. ja=1.5)\n"
            "      --model-type bpe|unigram    model type (bpe)\n"
            "      --vocab-size N              total pieces including specials (8000)\n"
            "      --character-coverage F      share of characters kept (0.9995)\n"
            "      --max-piece-length N        characters per piece (16)\n"
            "      --split-digits[=BOOL]       digits are pieces of their own (false)\n"
            "      --split-by-unicode-script[=BOOL]  no piece spans two scripts (true)\n"
            "      --split-by-number[=BOOL]    digits do not join letters (true)\n"
            "      --allow-whitespace-only-pieces[=BOOL]  runs of spaces become pieces (false)\n"
            "      --byte-fallback[=BOOL]      add <0x00>..<0xFF>; rare chars become bytes (false)\n"
            "      --add-dummy-prefix[=BOOL]   prepend a space to each line (false)\n"
            "      --remove-extra-whitespaces[=BOOL]  squeeze/strip spaces (false)\n"
            "      --hard-vocab-limit[=BOOL]   fail when vocab size is out of reach (true)\n"
            "      --user-defined-symbols A,B  pieces never split nor merged\n"
            "      --control-symbols A,B       control pieces (no surface)\n"
            "      --unk-id N --bos-id N --eos-id N --pad-id N   special ids (0 1 2 -1; -1 disables)\n"
            "      --unk-piece S --bos-piece S --eos-piece S --pad-piece S --unk-surface S\n"
            "      --normalization-rule-name R identity (default), nmt_nfkc, nfkc, nmt_nfkc_cf, nfkc_cf\n"
            "      --normalization-rule-tsv F  normalization rules from a TSV (sentencepiece's format)\n"
            "      --seed-size N               Unigram: seed pieces (1000000)\n"
            "      --shrinking-factor F        Unigram: share kept per pruning round (0.75)\n"
            "      --num-sub-iterations N      Unigram: EM rounds per pruning round (2)\n"
            "      --balance latin=S,japanese=S  BPE: target shares of all pieces for Latin\n"
            "                                  (>= 2 letters) and Japanese pieces, reached in\n"
            "                                  one run; other pieces take the rest\n"
            "      --balance-method M          budget (per-class merge budgets, the default)\n"
            "                                  or weights (searched per-class count weights)\n"
            "      --sweep LIST                one counting pass, then one model per point of\n"
            "                                  LIST (none, bpe, unigram, J, L/J, A:B:STEP;\n"
            "                                  @weights/@budget), compared on --eval corpora\n"
            "      --keep-models DIR           --sweep: write each point's model to DIR\n"
            "      --sweep-report FILE         --sweep: HTML report with the Pareto chart\n"
            "      --preset nerdstash          NovelAI nerdstash settings (65535 pieces, ids\n"
            "                                  pad 0 unk 1 bos 2 eos 3, byte fallback, digits\n"
            "                                  split, whitespace runs as pieces; see man page)\n"
            "      --contractions[=BOOL]       add 's 't 'll 're 've 'd 'm as user-defined pieces\n"
            "      --eval NAME=PATH            held-out corpus (file, directory, glob): report the\n"
            "                                  new model's compression on it (repeatable)\n"
            "      --hf-json FILE              also write a HF tokenizer.json (tokenmill-export(1))\n"
            "      --hf-dir DIR                also write a transformers folder (tokenmill-export(1))\n"
            "      --hf-allow-ties             with --hf-json/--hf-dir and a Unigram model: write it although\n"
            "                                  HF can order exact score ties differently\n"
            "  -t, --threads N                 counting threads (number of CPUs)\n"
            "      --max-memory SIZE           memory for the pre-token tables while counting\n"
            "                                  (e.g. 8G, 500M; default half of physical RAM);\n"
            "                                  past it counting spills sorted runs to $TMPDIR\n"
            "                                  and merges them: same counts, same model; BPE's\n"
            "                                  merge loop leaves out the rarest pre-tokens if\n"
            "                                  they would not fit (reported)\n"
            "      --progress[=tty|plain|none] progress on stderr: tty (default when stderr is a\n"
            "                                  terminal) redraws one line, plain writes a line\n"
            "                                  every 5 s (default otherwise: none)\n"
            "  -q, --quiet                     no progress or summary\n"
            "  -h, --help\n");
}

enum {
    O_MODEL_TYPE = 256, O_VOCAB, O_COVERAGE, O_MAXLEN, O_SPLIT_DIGITS, O_SPLIT_SCRIPT, O_SPLIT_NUMBER,
    O_SPLIT_WS, O_WS_ONLY, O_BYTE_FALLBACK, O_DUMMY, O_REMOVE_WS, O_HARD, O_USER, O_CONTROL, O_UNK_ID, O_BOS_ID,
    O_EOS_ID, O_PAD_ID, O_UNK_P, O_BOS_P, O_EOS_P, O_PAD_P, O_UNK_SURF, O_PREFIX, O_INPUT, O_NORM, O_IGNORED,
    O_PRESET, O_NORM_TSV, O_CONTRACTIONS, O_SEED, O_SHRINK, O_SUBIT, O_BALANCE, O_WEIGHT, O_HF_JSON, O_HF_TIES, O_EVAL, O_HF_DIR,
    O_BALANCE_METHOD, O_SWEEP, O_KEEP_MODELS, O_SWEEP_REPORT,
    O_MAX_MEMORY, O_PROGRESS, O_COUNTS
};

/* --preset nerdstash: NovelAI's nerdstash settings (see tokenmill-train(1)). */
static const char *const nerdstash_user[] = {
    "\xE2\x96\x81\xE2\x96\x81",                                   /* ▁ x2 */
    "\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81",             /* ▁ x4 */
    "\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81",
    "\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81"
    "\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81",
    "\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81"
    "\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81",
    "\n",             /* newline: one token between lines of a u16 document */
    "\t", "\t\t",     /* tabs (code) */
    "\xE3\x80\x80",   /* U+3000 ideographic (full-width) space */
    "\xE2\x80\x83",   /* U+2003 em space */
    "\xE2\x80\x82",   /* U+2002 en space */
};
static const char *const contractions[] = {"'s", "'t", "'ll", "'re", "'ve", "'d", "'m"};

static void apply_preset_nerdstash(tkm_train_options *o)
{
    o->vocab_size = 65535;
    o->character_coverage = 0.9999985f;
    o->add_dummy_prefix = 0;
    o->remove_extra_whitespaces = 0;
    o->byte_fallback = 1;
    o->split_by_unicode_script = 1;
    o->split_by_number = 1;
    o->split_digits = 1;
    o->allow_whitespace_only_pieces = 1;
    o->max_piece_length = 16;
    o->pad_id = 0;
    o->unk_id = 1;
    o->bos_id = 2;
    o->eos_id = 3;
    o->pad_piece = "<|pad|>";
    o->unk_piece = "<|unknown|>";
    o->bos_piece = "<|startoftext|>";
    o->eos_piece = "<|endoftext|>";
}

static const struct option train_opts[] = {
    {"output", required_argument, 0, 'o'},
    {"model-prefix", required_argument, 0, O_PREFIX},
    {"input", required_argument, 0, O_INPUT},
    {"model-type", required_argument, 0, O_MODEL_TYPE},
    {"vocab-size", required_argument, 0, O_VOCAB},
    {"character-coverage", required_argument, 0, O_COVERAGE},
    {"max-piece-length", required_argument, 0, O_MAXLEN},
    {"max-sentencepiece-length", required_argument, 0, O_MAXLEN},
    {"split-digits", optional_argument, 0, O_SPLIT_DIGITS},
    {"split-by-unicode-script", optional_argument, 0, O_SPLIT_SCRIPT},
    {"split-by-number", optional_argument, 0, O_SPLIT_NUMBER},
    {"split-by-whitespace", optional_argument, 0, O_SPLIT_WS},
    {"allow-whitespace-only-pieces", optional_argument, 0, O_WS_ONLY},
    {"byte-fallback", optional_argument, 0, O_BYTE_FALLBACK},
    {"add-dummy-prefix", optional_argument, 0, O_DUMMY},
    {"remove-extra-whitespaces", optional_argument, 0, O_REMOVE_WS},
    {"hard-vocab-limit", optional_argument, 0, O_HARD},
    {"user-defined-symbols", required_argument, 0, O_USER},
    {"control-symbols", required_argument, 0, O_CONTROL},
    {"unk-id", required_argument, 0, O_UNK_ID},
    {"bos-id", required_argument, 0, O_BOS_ID},
    {"eos-id", required_argument, 0, O_EOS_ID},
    {"pad-id", required_argument, 0, O_PAD_ID},
    {"unk-piece", required_argument, 0, O_UNK_P},
    {"bos-piece", required_argument, 0, O_BOS_P},
    {"eos-piece", required_argument, 0, O_EOS_P},
    {"pad-piece", required_argument, 0, O_PAD_P},
    {"unk-surface", required_argument, 0, O_UNK_SURF},
    {"normalization-rule-name", required_argument, 0, O_NORM},
    {"normalization-rule-tsv", required_argument, 0, O_NORM_TSV},
    {"threads", required_argument, 0, 't'},
    {"num-threads", required_argument, 0, 't'},
    {"max-memory", required_argument, 0, O_MAX_MEMORY},
    {"progress", optional_argument, 0, O_PROGRESS},
    {"counts", required_argument, 0, O_COUNTS},
    /* sentencepiece options that have no effect here (tokenmill reads all input) */
    {"input-sentence-size", required_argument, 0, O_IGNORED},
    {"shuffle-input-sentence", optional_argument, 0, O_IGNORED},
    {"max-sentence-length", required_argument, 0, O_IGNORED},
    {"train-extremely-large-corpus", optional_argument, 0, O_IGNORED},
    {"preset", required_argument, 0, O_PRESET},
    {"balance", required_argument, 0, O_BALANCE},
    {"weight", required_argument, 0, O_WEIGHT},
    {"seed-size", required_argument, 0, O_SEED},
    {"seed-sentencepiece-size", required_argument, 0, O_SEED},
    {"shrinking-factor", required_argument, 0, O_SHRINK},
    {"num-sub-iterations", required_argument, 0, O_SUBIT},
    {"contractions", optional_argument, 0, O_CONTRACTIONS},
    {"hf-json", required_argument, 0, O_HF_JSON},
    {"hf-dir", required_argument, 0, O_HF_DIR},
    {"hf-allow-ties", no_argument, 0, O_HF_TIES},
    {"eval", required_argument, 0, O_EVAL},
    {"balance-method", required_argument, 0, O_BALANCE_METHOD},
    {"sweep", required_argument, 0, O_SWEEP},
    {"keep-models", required_argument, 0, O_KEEP_MODELS},
    {"sweep-report", required_argument, 0, O_SWEEP_REPORT},
    {"quiet", no_argument, 0, 'q'},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0}};

/* Named inputs (--input NAME=PATH) and their weights (--weight NAME=W). */
typedef struct { char *name; char **files; int n; double weight; } named_t;
static named_t g_named[64];
static int g_n_named;

static int is_named(const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) return 0;
    for (const char *p = arg; p < eq; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

static int add_named(char *arg)
{
    char *eq = strchr(arg, '=');
    *eq = 0;
    if (g_n_named == 64) {
        fprintf(stderr, "tokenmill train: too many named inputs (at most 64)\n");
        return -1;
    }
    named_t *n = &g_named[g_n_named++];
    n->name = arg;
    n->weight = 1.0;
    int rc = tkm_analyze_files(eq + 1, &n->files, &n->n);
    if (rc < 0) {
        cli_error("train", rc);
        return -1;
    }
    return 0;
}

static int set_weights(char *arg)
{
    for (char *tok = strtok(arg, ","); tok; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '='), *end;
        if (!eq) return -1;
        *eq = 0;
        double w = strtod(eq + 1, &end);
        if (*end || !(w > 0 && w <= 1000)) return -1;
        int found = 0;
        for (int i = 0; i < g_n_named; i++)
            if (!strcmp(g_named[i].name, tok)) { g_named[i].weight = w; found = 1; }
        if (!found) {
            fprintf(stderr, "tokenmill train: --weight %s: no --input %s=PATH given before it\n", tok, tok);
            return -2;
        }
    }
    return 0;
}

/* Count files (--counts GLOB), and count mode (tokenmill count, cmd_count.c). */
static char **g_counts;
static int g_n_counts;
int cli_count_mode;

/* Held-out corpora for the closing report (--eval NAME=PATH). */
static named_t g_eval[16];
static int g_n_eval;

static int add_eval(char *arg)
{
    char *eq = strchr(arg, '=');
    *eq = 0;
    if (g_n_eval == 16) {
        fprintf(stderr, "tokenmill train: too many --eval corpora (at most 16)\n");
        return -1;
    }
    named_t *n = &g_eval[g_n_eval];
    n->name = arg;
    int rc = tkm_analyze_files(eq + 1, &n->files, &n->n);
    if (rc < 0) {
        cli_error("train", rc);
        return -1;
    }
    g_n_eval++;
    return 0;
}

/* The closing report's analysis lines: the piece categories of the new model
 * (as `tokenmill analyze vocab` counts them) and its compression on each
 * --eval corpus (as `tokenmill analyze compression`). */
static int report_analysis(const tkm_model *m, int threads)
{
    tkm_analyze_vocab v;
    int rc = tkm_analyze_vocab_stats(m, &v);
    if (rc < 0) return rc;
    fprintf(stderr, "  categories");
    for (int k = 0; k < TKM_CAT_COUNT; k++)
        fprintf(stderr, " %s %d%s", tkm_analyze_category_name(k), v.category[k], k + 1 < TKM_CAT_COUNT ? "," : "\n");
    tkm_analyze_vocab_clear(&v);
    for (int i = 0; i < g_n_eval; i++) {
        tkm_analyze_counts c;
        rc = tkm_analyze_compression(&m, 1, (const char *const *)g_eval[i].files, g_eval[i].n, threads, &c, NULL);
        if (rc < 0) return rc;
        fprintf(stderr, "  eval %-5s %.3f bytes/token, %.3f chars/token, %.3f tokens/word, %.2f%% byte tokens "
                        "(%.1f MB, %d file%s)\n",
                g_eval[i].name, c.tokens ? (double)c.bytes / (double)c.tokens : 0.0,
                c.tokens ? (double)c.chars / (double)c.tokens : 0.0,
                c.words ? (double)c.tokens / (double)c.words : 0.0,
                c.tokens ? 100.0 * (double)c.byte_tokens / (double)c.tokens : 0.0, c.bytes / 1e6, g_eval[i].n,
                g_eval[i].n == 1 ? "" : "s");
    }
    return 0;
}

/* Splits a comma-separated list in place (sentencepiece's syntax). */
static int split_list(char *s, const char ***out, int *n)
{
    int cap = *n + 8;
    const char **v = realloc((void *)*out, (size_t)cap * sizeof *v);
    if (!v) return -1;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
        if (*n == cap) {
            cap *= 2;
            const char **nv = realloc((void *)v, (size_t)cap * sizeof *v);
            if (!nv) { free((void *)v); return -1; }
            v = nv;
        }
        v[(*n)++] = tok;
    }
    *out = v;
    return 0;
}

/* Progress: bytes read out of the inputs' total size (regular files; 0 when
 * unknown: stdin, .gz), rate and ETA; merges done out of the target. tty
 * mode redraws one line (at most 10 times a second), plain mode writes a
 * line every 5 s and at the end of each phase. */
enum { PROG_NONE, PROG_TTY, PROG_PLAIN };
static int g_prog;
static uint64_t g_total_bytes;
static double g_prog_t0, g_prog_last, g_phase_t0;
static char g_phase[32];
static int g_tty; /* a progress line is open on a terminal */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fmt_eta(char *buf, size_t n, double s)
{
    if (!(s >= 0) || s > 1e7) snprintf(buf, n, "?");
    else if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else if (s >= 60) snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(buf, n, "%ds", (int)s);
}

static void progress(void *ctx, const char *phase, uint64_t done, uint64_t total)
{
    (void)ctx;
    if (g_prog == PROG_NONE) return;
    double t = now_s();
    /* "Unigram round k of n: ...": one phase, the line is the text */
    int rounds = !strncmp(phase, "Unigram round", 13);
    const char *key = rounds ? "Unigram round" : phase;
    if (strcmp(key, g_phase) != 0) {
        snprintf(g_phase, sizeof g_phase, "%s", key);
        g_phase_t0 = t;
        g_prog_last = 0;
    }
    int reading = !strcmp(phase, "reading");
    if (reading) total = g_total_bytes;
    int last = total && done >= total;
    if (!last && t - g_prog_last < (g_prog == PROG_TTY ? 0.1 : 5.0)) return;
    g_prog_last = t;
    double el = t - g_phase_t0;
    char line[200], eta[32];
    if (reading) {
        double rate = el > 0 ? done / el / 1e6 : 0;
        if (total) {
            fmt_eta(eta, sizeof eta, rate > 0 ? (total - (double)done) / 1e6 / rate : -1);
            snprintf(line, sizeof line, "reading: %.1f / %.1f MB (%.1f%%), %.1f MB/s, ETA %s", done / 1e6, total / 1e6,
                     100.0 * done / total, rate, eta);
        } else {
            snprintf(line, sizeof line, "reading: %.1f MB, %.1f MB/s", done / 1e6, rate);
        }
    } else if (rounds) { /* the rounds get shorter: an ETA from the round rate is an upper bound */
        double rate = el > 0 ? done / el : 0;
        fmt_eta(eta, sizeof eta, rate > 0 && total ? (total - (double)done) / rate : -1);
        snprintf(line, sizeof line, "%s, ETA %s", phase, eta);
    } else {
        double rate = el > 0 ? done / el : 0;
        fmt_eta(eta, sizeof eta, rate > 0 && total ? (total - (double)done) / rate : -1);
        snprintf(line, sizeof line, "%s: %llu / %llu (%.1f%%), %.0f/s, ETA %s", phase, (unsigned long long)done,
                 (unsigned long long)total, total ? 100.0 * done / total : 0.0, rate, eta);
    }
    if (g_prog == PROG_TTY) {
        fprintf(stderr, "\r%s\033[K", line);
        g_tty = 1;
        if (last) { fputc('\n', stderr); g_tty = 0; }
    } else {
        fprintf(stderr, "tokenmill train: [%.0f s] %s\n", t - g_prog_t0, line);
    }
    fflush(stderr);
}

/* bytes of the regular files among the inputs (0 if any is not one) */
static uint64_t input_size(const char *path)
{
    struct stat st;
    size_t n = strlen(path);
    if (!strcmp(path, "-") || (n > 3 && !strcmp(path + n - 3, ".gz"))) return 0;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    return (uint64_t)st.st_size;
}

/* "8G", "500M", "1.5G", "123456" (bytes) */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    double v = strtod(s, &end);
    double mul = 1;
    if (*end == 'k' || *end == 'K') mul = 1024.0, end++;
    else if (*end == 'm' || *end == 'M') mul = 1024.0 * 1024, end++;
    else if (*end == 'g' || *end == 'G') mul = 1024.0 * 1024 * 1024, end++;
    else if (*end == 't' || *end == 'T') mul = 1024.0 * 1024 * 1024 * 1024, end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end || !(v > 0) || v * mul > 1e18) return -1;
    *out = (uint64_t)(v * mul);
    return 0;
}

int cmd_train(int argc, char **argv)
{
    tkm_train_options o;
    tkm_train_options_init(&o);
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    o.threads = nproc > 0 ? (int)(nproc > 64 ? 64 : nproc) : 1;
    const char *out = NULL;
    char *prefix_path = NULL;
    const char **inputs = NULL, **user = NULL, **control = NULL;
    int n_inputs = 0, n_user = 0, n_control = 0, quiet = 0, c, b, user_given = 0, contr = 0;
    int weighted = 0, prog = -1;
    const char *preset = NULL, *hf_json = NULL, *hf_dir = NULL;
    cli_sweep_cfg sw = {0};
    {
        long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        o.max_memory = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz / 2 : 0;
    }
    unsigned hf_flags = 0;
    /* The preset is applied first, whatever its position: options override it. */
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--preset=", 9)) preset = argv[i] + 9;
        else if (!strcmp(argv[i], "--preset") && i + 1 < argc) preset = argv[i + 1];
    }
    if (preset) {
        if (strcmp(preset, "nerdstash") != 0) {
            fprintf(stderr, "tokenmill train: unknown preset '%s' (available: nerdstash)\n", preset);
            return EXIT_USAGE;
        }
        apply_preset_nerdstash(&o);
    }
    long v;
    double d;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:t:qh", train_opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case O_PREFIX:
            free(prefix_path);
            prefix_path = malloc(strlen(optarg) + 7);
            if (!prefix_path) return EXIT_FAIL;
            sprintf(prefix_path, "%s.model", optarg);
            out = prefix_path;
            break;
        case O_INPUT:
            if (is_named(optarg)) {
                if (add_named(optarg)) return EXIT_FAIL;
            } else if (split_list(optarg, &inputs, &n_inputs)) {
                return EXIT_FAIL;
            }
            break;
        case O_WEIGHT: {
            int wr = set_weights(optarg);
            if (wr == -2) return EXIT_USAGE;
            if (wr) goto bad;
            weighted = 1;
            break;
        }
        case O_MODEL_TYPE:
            if (!strcmp(optarg, "bpe")) o.model_type = TKM_MODEL_BPE;
            else if (!strcmp(optarg, "unigram")) o.model_type = TKM_MODEL_UNIGRAM;
            else {
                fprintf(stderr, "tokenmill train: unknown model type '%s' (bpe or unigram)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case O_VOCAB:
            if (cli_int(optarg, 1, 1 << 20, &v)) goto bad;
            o.vocab_size = (int)v;
            break;
        case O_COVERAGE:
            d = strtod(optarg, &end);
            if (*end || !(d > 0 && d <= 1)) goto bad;
            o.character_coverage = (float)d;
            break;
        case O_MAXLEN:
            if (cli_int(optarg, 1, 1024, &v)) goto bad;
            o.max_piece_length = (int)v;
            break;
#define BOOLOPT(K, F) case K: if ((b = cli_bool(optarg)) < 0) goto bad; o.F = b; break;
        BOOLOPT(O_SPLIT_DIGITS, split_digits)
        BOOLOPT(O_SPLIT_SCRIPT, split_by_unicode_script)
        BOOLOPT(O_SPLIT_NUMBER, split_by_number)
        BOOLOPT(O_SPLIT_WS, split_by_whitespace)
        BOOLOPT(O_WS_ONLY, allow_whitespace_only_pieces)
        BOOLOPT(O_BYTE_FALLBACK, byte_fallback)
        BOOLOPT(O_DUMMY, add_dummy_prefix)
        BOOLOPT(O_REMOVE_WS, remove_extra_whitespaces)
        BOOLOPT(O_HARD, hard_vocab_limit)
#undef BOOLOPT
        case O_USER: user_given = 1; if (split_list(optarg, &user, &n_user)) return EXIT_FAIL; break;
        case O_PRESET: break; /* applied above */
        case O_BALANCE: {
            /* latin=0.44,japanese=0.44 */
            for (char *tok = strtok(optarg, ","); tok; tok = strtok(NULL, ",")) {
                char *eq = strchr(tok, '=');
                if (!eq) goto bad;
                *eq = 0;
                d = strtod(eq + 1, &end);
                if (*end || !(d >= 0 && d <= 1)) goto bad;
                if (!strcmp(tok, "latin")) o.balance_latin = (float)d;
                else if (!strcmp(tok, "japanese")) o.balance_japanese = (float)d;
                else {
                    fprintf(stderr, "tokenmill train: --balance: unknown class '%s' (latin, japanese)\n", tok);
                    return EXIT_USAGE;
                }
            }
            break;
        }
        case O_SEED: if (cli_int(optarg, 1, 100000000, &v)) goto bad; o.seed_size = (int)v; break;
        case O_SHRINK:
            d = strtod(optarg, &end);
            if (*end || !(d > 0 && d < 1)) goto bad;
            o.shrinking_factor = (float)d;
            break;
        case O_SUBIT: if (cli_int(optarg, 1, 100, &v)) goto bad; o.num_sub_iterations = (int)v; break;
        case O_HF_JSON: hf_json = optarg; break;
        case O_HF_DIR: hf_dir = optarg; break;
        case O_HF_TIES: hf_flags |= TKM_EXPORT_UNIGRAM_TIES; break;
        case O_BALANCE_METHOD:
            if (!strcmp(optarg, "budget")) o.balance_method = TKM_BALANCE_BUDGET;
            else if (!strcmp(optarg, "weights")) o.balance_method = TKM_BALANCE_WEIGHTS;
            else goto bad;
            break;
        case O_SWEEP: sw.spec = optarg; break;
        case O_KEEP_MODELS: sw.keep_dir = optarg; break;
        case O_SWEEP_REPORT: sw.report = optarg; break;
        case O_EVAL:
            if (!is_named(optarg)) {
                fprintf(stderr, "tokenmill train: --eval wants NAME=PATH (got '%s')\n", optarg);
                return EXIT_USAGE;
            }
            if (add_eval(optarg) < 0) return EXIT_FAIL;
            break;
        case O_CONTRACTIONS:
            if ((b = cli_bool(optarg)) < 0) goto bad;
            contr = b;
            break;
        case O_CONTROL: if (split_list(optarg, &control, &n_control)) return EXIT_FAIL; break;
        case O_UNK_ID: if (cli_int(optarg, -1, 1 << 20, &v)) goto bad; o.unk_id = (int)v; break;
        case O_BOS_ID: if (cli_int(optarg, -1, 1 << 20, &v)) goto bad; o.bos_id = (int)v; break;
        case O_EOS_ID: if (cli_int(optarg, -1, 1 << 20, &v)) goto bad; o.eos_id = (int)v; break;
        case O_PAD_ID: if (cli_int(optarg, -1, 1 << 20, &v)) goto bad; o.pad_id = (int)v; break;
        case O_UNK_P: o.unk_piece = optarg; break;
        case O_BOS_P: o.bos_piece = optarg; break;
        case O_EOS_P: o.eos_piece = optarg; break;
        case O_PAD_P: o.pad_piece = optarg; break;
        case O_UNK_SURF: o.unk_surface = optarg; break;
        case O_NORM: o.normalization_rule_name = optarg; break;
        case O_NORM_TSV: o.normalization_rule_tsv = optarg; break;
        case 't': if (cli_int(optarg, 1, 256, &v)) goto bad; o.threads = (int)v; break;
        case O_MAX_MEMORY: if (parse_size(optarg, &o.max_memory)) goto bad; break;
        case O_PROGRESS:
            if (!optarg || !strcmp(optarg, "tty")) prog = PROG_TTY;
            else if (!strcmp(optarg, "plain")) prog = PROG_PLAIN;
            else if (!strcmp(optarg, "none")) prog = PROG_NONE;
            else goto bad;
            break;
        case O_COUNTS: {
            char **cf = NULL;
            int ncf = 0;
            int crc = tkm_analyze_files(optarg, &cf, &ncf);
            if (crc < 0) {
                cli_error(cli_count_mode ? "count" : "train", crc);
                return EXIT_FAIL;
            }
            for (int i = 0; i < ncf; i++) {
                char **ng = realloc(g_counts, (size_t)(g_n_counts + 1) * sizeof *ng);
                if (!ng) return EXIT_FAIL;
                g_counts = ng;
                g_counts[g_n_counts++] = cf[i];
            }
            free(cf);
            break;
        }
        case O_IGNORED:
            fprintf(stderr, "tokenmill train: note: option ignored (tokenmill always reads all input)\n");
            break;
        case 'q': quiet = 1; break;
        case 'h': train_usage(stdout); return EXIT_OK;
        default: train_usage(stderr); return EXIT_USAGE;
        }
        continue;
    bad:
        fprintf(stderr, "tokenmill train: invalid value '%s' for %s\n", optarg ? optarg : "", cli_opt_name(train_opts, c));
        return EXIT_USAGE;
    }
    for (int i = optind; i < argc; i++)
        if (split_list(argv[i], &inputs, &n_inputs)) return EXIT_FAIL;
    if ((sw.keep_dir || sw.report) && !sw.spec) {
        fprintf(stderr, "tokenmill train: --keep-models and --sweep-report need --sweep\n");
        free((void *)inputs); free((void *)user); free((void *)control); free(prefix_path);
        return EXIT_USAGE;
    }
    if (!out && !sw.spec) {
        fprintf(stderr, "tokenmill train: no output given (-o FILE.model)\n");
        free((void *)inputs); free((void *)user); free((void *)control); free(prefix_path);
        return EXIT_USAGE;
    }
    if (n_inputs == 0 && g_n_named == 0 && g_n_counts == 0) {
        fprintf(stderr, "tokenmill train: no input files given\n");
        free((void *)inputs); free((void *)user); free((void *)control); free(prefix_path);
        return EXIT_USAGE;
    }
    if ((preset && !user_given) || contr) {
        /* preset symbols unless the user gave a list; contractions on top */
        int extra = (preset && !user_given ? (int)(sizeof nerdstash_user / sizeof *nerdstash_user) : 0) +
                    (contr ? (int)(sizeof contractions / sizeof *contractions) : 0);
        const char **nu = realloc((void *)user, (size_t)(n_user + extra) * sizeof *nu);
        if (!nu) return EXIT_FAIL;
        user = nu;
        if (preset && !user_given)
            for (size_t i = 0; i < sizeof nerdstash_user / sizeof *nerdstash_user; i++) user[n_user++] = nerdstash_user[i];
        if (contr)
            for (size_t i = 0; i < sizeof contractions / sizeof *contractions; i++) user[n_user++] = contractions[i];
    }
    o.user_defined_symbols = user;
    o.n_user_defined = n_user;
    o.weighted = weighted;
    o.control_symbols = control;
    o.n_control = n_control;
    g_prog = quiet ? PROG_NONE : prog >= 0 ? prog : isatty(2) ? PROG_TTY : PROG_NONE;
    g_prog_t0 = now_s();
    for (int i = 0; i < n_inputs; i++) {
        uint64_t sz = input_size(inputs[i]);
        if (!sz) { g_total_bytes = 0; break; }
        g_total_bytes += sz;
    }
    for (int k = 0; g_total_bytes && k < g_n_named; k++)
        for (int i = 0; i < g_named[k].n; i++) {
            uint64_t sz = input_size(g_named[k].files[i]);
            if (!sz) { g_total_bytes = 0; break; }
            g_total_bytes += sz;
        }

    tkm_trainer *t = NULL;
    tkm_model *m = NULL;
    int rc = tkm_trainer_new(&o, &t);
    if (rc == 0) tkm_trainer_set_progress(t, progress, NULL);
    int mpi_done = 0;
    if (rc == 0 && cli_mpi_active()) { /* mpirun: ranks share the files (cli/mpi_train.c) */
        int nf = n_inputs, mr = -1;
        for (int k = 0; k < g_n_named; k++) nf += g_named[k].n;
        const char **mf = malloc(((size_t)nf + 1) * sizeof *mf);
        double *mw = malloc(((size_t)nf + 1) * sizeof *mw);
        if (mf && mw) {
            nf = 0;
            for (int i = 0; i < n_inputs; i++) { mf[nf] = inputs[i]; mw[nf++] = 1.0; }
            for (int k = 0; k < g_n_named; k++)
                for (int i = 0; i < g_named[k].n; i++) { mf[nf] = g_named[k].files[i]; mw[nf++] = g_named[k].weight; }
            mr = cli_mpi_count(t, cli_count_mode ? "count" : "train", nf, mf, mw, quiet);
        }
        free((void *)mf);
        free(mw);
        if (mr != 0) { /* another rank's work is done, or the run failed (reported) */
            tkm_trainer_free(t);
            free((void *)inputs); free((void *)user); free((void *)control); free(prefix_path);
            return mr > 0 ? EXIT_OK : EXIT_FAIL;
        }
        mpi_done = 1;
    }
    for (int i = 0; rc == 0 && !mpi_done && i < n_inputs; i++)
        rc = weighted ? tkm_trainer_add_file_weighted(t, inputs[i], 1.0) : tkm_trainer_add_file(t, inputs[i]);
    for (int k = 0; rc == 0 && !mpi_done && k < g_n_named; k++)
        for (int i = 0; rc == 0 && i < g_named[k].n; i++)
            rc = weighted ? tkm_trainer_add_file_weighted(t, g_named[k].files[i], g_named[k].weight)
                          : tkm_trainer_add_file(t, g_named[k].files[i]);
    for (int i = 0; rc == 0 && i < g_n_counts; i++) rc = tkm_trainer_add_counts(t, g_counts[i]);
    if (rc == 0 && cli_count_mode) { /* tokenmill count: the counts, not a model */
        char *g = cli_guard_output(out);
        rc = tkm_trainer_write_counts(t, out);
        cli_unguard_output(g);
        if (g_tty) { fputc('\n', stderr); g_tty = 0; }
        if (rc == 0 && !quiet) {
            tkm_train_stats s;
            tkm_trainer_stats(t, &s);
            fprintf(stderr, "tokenmill count: wrote %s\n  input      %llu lines, %.1f MB, %llu pre-tokens (%llu unique)\n"
                            "  time       %.2f s counting, %.2f s total (%d threads); peak RSS %.1f MB\n",
                    out, (unsigned long long)s.lines, s.bytes / 1e6, (unsigned long long)s.pretokens_total,
                    (unsigned long long)s.pretokens_unique, s.seconds_count, s.seconds_total, o.threads,
                    cli_peak_rss_kb() / 1024.0);
        }
        if (rc < 0) goto fail;
        tkm_trainer_free(t);
        free((void *)inputs); free((void *)user); free((void *)control); free(prefix_path);
        return EXIT_OK;
    }
    if (rc == 0 && sw.spec) { /* cli/cmd_sweep.c */
        sw.out = out;
        sw.threads = o.threads;
        sw.quiet = quiet;
        for (int i = 0; i < g_n_eval; i++) {
            sw.eval[i].name = g_eval[i].name;
            sw.eval[i].files = (const char *const *)g_eval[i].files;
            sw.eval[i].n = g_eval[i].n;
        }
        sw.n_eval = g_n_eval;
        if (g_tty) { fputc('\n', stderr); g_tty = 0; }
        int src = cli_sweep_run(t, &o, &sw);
        tkm_trainer_free(t);
        free((void *)inputs); free((void *)user); free((void *)control); free(prefix_path);
        return src;
    }
    if (rc == 0) rc = tkm_trainer_train(t, &m);
    if (g_tty) { fputc('\n', stderr); g_tty = 0; }
    if (rc == 0) {
        char *g = cli_guard_output(out); /* PATH.tmp.PID removed on SIGINT/SIGTERM */
        rc = tkm_model_save(m, out);
        cli_unguard_output(g);
    }
    if (rc == 0 && hf_json) {
        char *g = cli_guard_output(hf_json);
        rc = tkm_model_export_hf_json_flags(m, hf_json, hf_flags);
        cli_unguard_output(g);
    }
    if (rc == 0 && hf_dir) rc = tkm_model_export_hf_dir(m, hf_dir, hf_flags);
    if (rc < 0) goto fail;
    if (!quiet) {
        tkm_train_stats s;
        tkm_trainer_stats(t, &s);
        char spill_note[128];
        if (s.spill_runs)
            snprintf(spill_note, sizeof spill_note, "spilled %llu sorted runs (%.1f MB) to disk, merged exactly",
                     (unsigned long long)s.spill_runs, s.spill_bytes / 1e6);
        else
            snprintf(spill_note, sizeof spill_note, "fit in memory");
        fprintf(stderr,
                "tokenmill train: wrote %s\n"
                "  input      %llu lines, %.1f MB, %llu pre-tokens (%llu unique)\n"
                "  characters %llu unique, %llu kept (coverage %.4f%%), %llu occurrences dropped\n",
                out, (unsigned long long)s.lines, s.bytes / 1e6, (unsigned long long)s.pretokens_total,
                (unsigned long long)s.pretokens_unique, (unsigned long long)s.chars_unique,
                (unsigned long long)s.chars_required,
                s.chars_total ? 100.0 * (double)(s.chars_total - s.chars_dropped_occurrences) / (double)s.chars_total : 0.0,
                (unsigned long long)s.chars_dropped_occurrences);
        for (int k = 0; k < g_n_named; k++)
            fprintf(stderr, "  input %-4s %d file%s, weight %g\n", g_named[k].name, g_named[k].n,
                    g_named[k].n == 1 ? "" : "s", g_named[k].weight);
        if (s.balance_trials)
            fprintf(stderr, "  weights    latin %.3f, japanese %.3f, other %.3f (balance-method weights: %d merge loops searched)\n",
                    s.balance_weight[0], s.balance_weight[1], s.balance_weight[2], s.balance_trials);
        if (s.invalid_utf8_bytes || s.nul_bytes)
            fprintf(stderr, "  warning    %llu invalid UTF-8 bytes (read as U+FFFD), %llu NUL bytes (never in a piece)\n",
                    (unsigned long long)s.invalid_utf8_bytes, (unsigned long long)s.nul_bytes);
        fprintf(stderr,
                "  pieces     %d total: %d %s, %d characters, %d special, %d user-defined, %d bytes\n"
                "  time       %.2f s counting, %.2f s %s, %.2f s total (%d threads); peak RSS %.1f MB\n"
                "  memory     --max-memory %.2f GB for counting tables: %s\n"
                "  skipped    0 lines (tokenmill never drops input)\n",
                tkm_model_size(m), s.pieces_normal, o.model_type == TKM_MODEL_UNIGRAM ? "learned" : "merged",
                s.pieces_char, s.pieces_meta, s.pieces_user, s.pieces_byte,
                s.seconds_count, s.seconds_merge, o.model_type == TKM_MODEL_UNIGRAM ? "EM and pruning" : "merging",
                s.seconds_total, o.threads, cli_peak_rss_kb() / 1024.0, o.max_memory / 1073741824.0, spill_note);
        if (o.model_type == TKM_MODEL_UNIGRAM)
            fprintf(stderr, "  seeds      %llu of about %llu candidate substrings (exact counts, %d pass%s)\n",
                    (unsigned long long)s.seeds, (unsigned long long)s.seed_candidates, s.seed_passes,
                    s.seed_passes == 1 ? "" : "es");
    }
    {
        /* BPE under --max-memory: what the merge loop left out, even with -q */
        tkm_train_stats s;
        tkm_trainer_stats(t, &s);
        if (s.merge_drop_below > 0)
            fprintf(stderr,
                    "  dropped    %llu unique pre-tokens counted under %lld times (%llu occurrences, %.3f%% of all) "
                    "left out of the merges to fit --max-memory %.1f MB (merge loop about %.1f MB)\n",
                    (unsigned long long)s.merge_dropped_unique, (long long)s.merge_drop_below,
                    (unsigned long long)s.merge_dropped_occurrences,
                    s.pretokens_total ? 100.0 * (double)s.merge_dropped_occurrences / (double)s.pretokens_total : 0.0,
                    o.max_memory / 1048576.0, s.merge_bytes_estimate / 1e6);
    }
    if (!quiet || o.balance_latin >= 0 || o.balance_japanese >= 0) {
        tkm_train_stats s;
        tkm_trainer_stats(t, &s);
        static const char *names[3] = {"latin", "japanese", "other"};
        int n = tkm_model_size(m);
        if (!quiet) {
            fprintf(stderr, "  classes   ");
            for (int k = 0; k < 3; k++) {
                fprintf(stderr, " %s %d (%.1f%%", names[k], s.class_pieces[k], 100.0 * s.class_pieces[k] / n);
                if (s.class_target[k] >= 0) fprintf(stderr, ", target %.1f%%", 100.0 * s.class_target[k] / n);
                fprintf(stderr, ")%s", k < 2 ? "," : "\n");
            }
        }
        for (int k = 0; k < 3; k++)
            if (s.class_target[k] >= 0 && s.balance_short[k])
                fprintf(stderr,
                        "tokenmill train: warning: the %s target (%.1f%%) cannot be reached: %.1f%% achieved "
                        "(%s)\n",
                        names[k], 100.0 * s.class_target[k] / n, 100.0 * s.class_pieces[k] / n,
                        s.class_pieces[k] < s.class_target[k] ? "not enough distinct text of that class in the corpus"
                                                              : "the required characters alone exceed it");
        int gained = 0;
        for (int k = 0; k < 3; k++) gained += s.balance_gained[k];
        if (gained > 0) {
            fprintf(stderr, "tokenmill train: the %d pieces left by short classes went to", gained);
            for (int k = 0, first = 1; k < 3; k++)
                if (s.balance_gained[k] > 0) {
                    fprintf(stderr, "%s %s +%d", first ? "" : ",", names[k], s.balance_gained[k]);
                    first = 0;
                }
            fprintf(stderr, " (in proportion to their targets)\n");
        }
    }
    if (!quiet || g_n_eval) {
        rc = report_analysis(m, o.threads);
        if (rc < 0) goto fail;
    }
    tkm_model_free(m);
    tkm_trainer_free(t);
    free((void *)inputs); free((void *)user); free((void *)control); free(prefix_path);
    return EXIT_OK;
fail:
    cli_error(cli_count_mode ? "count" : "train", rc);
    tkm_model_free(m);
    tkm_trainer_free(t);
    free((void *)inputs); free((void *)user); free((void *)control); free(prefix_path);
    return EXIT_FAIL;
}
