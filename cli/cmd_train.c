/* cmd_train.c - `tokenmill train`: options (GNU and sentencepiece spellings,
 * one table: train_opts, which also writes --help), streamed input,
 * progress, summary. `tokenmill count` (cmd_count.c) runs the same code up
 * to the counts. */
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "tokenmill_analyze.h"

/* Named inputs (--input NAME=PATH) and their weights (--weight NAME=W);
 * held-out corpora (--eval NAME=PATH, weight unused). */
typedef struct { char *name; char **files; int n; double weight; } named_t;

/* Everything the command line sets: the library's options (o) and the
 * command's own. */
typedef struct {
    tkm_train_options o;
    const char *out;                /* -o, or prefix_path */
    char *prefix_path;              /* --model-prefix P: "P.model" */
    const char **inputs, **user, **control; /* point into argv */
    int n_inputs, n_user, n_control;
    int quiet, user_given, contractions, weighted, hf_ties;
    int prog;                       /* --progress: PROG_*, -1 when not given */
    int preset;                     /* --preset given (applied before parsing) */
    const char *hf_json, *hf_dir;
    named_t named[64];
    int n_named;
    named_t eval[16];
    int n_eval;
    char **counts;                  /* --counts: the count files found */
    int n_counts;
    cli_sweep_cfg sw;
} train_cli;

/* tokenmill count (cmd_count.c): stop at the counts. */
int cli_count_mode;

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

static int is_named(const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) return 0;
    for (const char *p = arg; p < eq; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return 0;
    return 1;
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

/* ---- option handlers ------------------------------------------------------
 * An option of kind OPT_FN calls its handler with the argument (NULL when an
 * optional one is absent). A handler returns 0, OPT_INVALID (the command
 * says "invalid value ... for --name" and exits 2), or an exit status after
 * printing its own message. */
enum { OPT_INVALID = -1 };

static int opt_model_prefix(train_cli *c, char *arg)
{
    free(c->prefix_path);
    c->prefix_path = malloc(strlen(arg) + 7);
    if (!c->prefix_path) return EXIT_FAIL;
    sprintf(c->prefix_path, "%s.model", arg);
    c->out = c->prefix_path;
    return 0;
}

static int add_named(train_cli *c, char *arg)
{
    char *eq = strchr(arg, '=');
    *eq = 0;
    if (c->n_named == 64) {
        fprintf(stderr, "tokenmill train: too many named inputs (at most 64)\n");
        return EXIT_FAIL;
    }
    named_t *n = &c->named[c->n_named++];
    n->name = arg;
    n->weight = 1.0;
    int rc = tkm_analyze_files(eq + 1, &n->files, &n->n);
    if (rc < 0) {
        cli_error("train", rc);
        return EXIT_FAIL;
    }
    return 0;
}

/* --input A,B or --input NAME=PATH */
static int opt_input(train_cli *c, char *arg)
{
    if (is_named(arg)) return add_named(c, arg);
    return split_list(arg, &c->inputs, &c->n_inputs) ? EXIT_FAIL : 0;
}

/* --weight NAME=W[,NAME=W]: NAME given by an --input before it */
static int opt_weight(train_cli *c, char *arg)
{
    for (char *tok = strtok(arg, ","); tok; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '='), *end;
        if (!eq) return OPT_INVALID;
        *eq = 0;
        double w = strtod(eq + 1, &end);
        if (*end || !(w > 0 && w <= 1000)) return OPT_INVALID;
        int found = 0;
        for (int i = 0; i < c->n_named; i++)
            if (!strcmp(c->named[i].name, tok)) { c->named[i].weight = w; found = 1; }
        if (!found) {
            fprintf(stderr, "tokenmill train: --weight %s: no --input %s=PATH given before it\n", tok, tok);
            return EXIT_USAGE;
        }
    }
    c->weighted = 1;
    return 0;
}

static int opt_model_type(train_cli *c, char *arg)
{
    if (!strcmp(arg, "bpe")) c->o.model_type = TKM_MODEL_BPE;
    else if (!strcmp(arg, "unigram")) c->o.model_type = TKM_MODEL_UNIGRAM;
    else {
        fprintf(stderr, "tokenmill train: unknown model type '%s' (bpe or unigram)\n", arg);
        return EXIT_USAGE;
    }
    return 0;
}

static int opt_user(train_cli *c, char *arg)
{
    c->user_given = 1;
    return split_list(arg, &c->user, &c->n_user) ? EXIT_FAIL : 0;
}

static int opt_control(train_cli *c, char *arg)
{
    return split_list(arg, &c->control, &c->n_control) ? EXIT_FAIL : 0;
}

/* --preset: applied before parsing (see apply_preset), options override it */
static int opt_preset(train_cli *c, char *arg)
{
    (void)c, (void)arg;
    return 0;
}

/* --balance latin=0.44,japanese=0.44 */
static int opt_balance(train_cli *c, char *arg)
{
    for (char *tok = strtok(arg, ","); tok; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '='), *end;
        if (!eq) return OPT_INVALID;
        *eq = 0;
        double d = strtod(eq + 1, &end);
        if (*end || !(d >= 0 && d <= 1)) return OPT_INVALID;
        if (!strcmp(tok, "latin")) c->o.balance_latin = (float)d;
        else if (!strcmp(tok, "japanese")) c->o.balance_japanese = (float)d;
        else {
            fprintf(stderr, "tokenmill train: --balance: unknown class '%s' (latin, japanese)\n", tok);
            return EXIT_USAGE;
        }
    }
    return 0;
}

static int opt_balance_method(train_cli *c, char *arg)
{
    if (!strcmp(arg, "budget")) c->o.balance_method = TKM_BALANCE_BUDGET;
    else if (!strcmp(arg, "weights")) c->o.balance_method = TKM_BALANCE_WEIGHTS;
    else return OPT_INVALID;
    return 0;
}

/* --shrinking-factor F: 0 < F < 1 */
static int opt_shrink(train_cli *c, char *arg)
{
    char *end;
    double d = strtod(arg, &end);
    if (*end || !(d > 0 && d < 1)) return OPT_INVALID;
    c->o.shrinking_factor = (float)d;
    return 0;
}

static int opt_eval(train_cli *c, char *arg)
{
    if (!is_named(arg)) {
        fprintf(stderr, "tokenmill train: --eval wants NAME=PATH (got '%s')\n", arg);
        return EXIT_USAGE;
    }
    char *eq = strchr(arg, '=');
    *eq = 0;
    if (c->n_eval == 16) {
        fprintf(stderr, "tokenmill train: too many --eval corpora (at most 16)\n");
        return EXIT_FAIL;
    }
    named_t *n = &c->eval[c->n_eval];
    n->name = arg;
    int rc = tkm_analyze_files(eq + 1, &n->files, &n->n);
    if (rc < 0) {
        cli_error("train", rc);
        return EXIT_FAIL;
    }
    c->n_eval++;
    return 0;
}

static int opt_max_memory(train_cli *c, char *arg)
{
    return parse_size(arg, &c->o.max_memory) ? OPT_INVALID : 0;
}

enum { PROG_NONE, PROG_TTY, PROG_PLAIN };

static int opt_progress(train_cli *c, char *arg)
{
    if (!arg || !strcmp(arg, "tty")) c->prog = PROG_TTY;
    else if (!strcmp(arg, "plain")) c->prog = PROG_PLAIN;
    else if (!strcmp(arg, "none")) c->prog = PROG_NONE;
    else return OPT_INVALID;
    return 0;
}

/* --counts GLOB: the count files it names, in order */
static int opt_counts(train_cli *c, char *arg)
{
    char **cf = NULL;
    int ncf = 0;
    int rc = tkm_analyze_files(arg, &cf, &ncf);
    if (rc < 0) {
        cli_error(cli_count_mode ? "count" : "train", rc);
        return EXIT_FAIL;
    }
    for (int i = 0; i < ncf; i++) {
        char **ng = realloc(c->counts, (size_t)(c->n_counts + 1) * sizeof *ng);
        if (!ng) return EXIT_FAIL;
        c->counts = ng;
        c->counts[c->n_counts++] = cf[i];
    }
    free(cf);
    return 0;
}

/* ---- the option table -----------------------------------------------------
 * One row per option, in --help order: its name, how its argument is read
 * and where it goes, and its help line. getopt_long's table and short
 * options are built from it, so an option is added in one place. */
enum {
    OPT_STR,     /* const char * field = the argument */
    OPT_INT,     /* int field = the argument, lo..hi */
    OPT_REAL,    /* float field = the argument, lo < value <= hi */
    OPT_BOOL,    /* int field = [=BOOL] (cli_bool: true/false, 1/0, yes/no; absent: true) */
    OPT_FLAG,    /* int field = 1 (no argument) */
    OPT_FN,      /* the handler reads it */
    OPT_IGNORED, /* a sentencepiece option without effect here: a note */
    OPT_HELP,    /* -h: the help on standard output, exit 0 */
    OPT_ALIAS,   /* another name of the row above (not in --help) */
    OPT_DOC      /* not an option: a second help line of the row above (another form) */
};

typedef struct {
    const char *name;   /* the long name; NULL ends the table */
    const char *arg;    /* the argument in --help ("N"; "[=BOOL]" follows the name directly) */
    const char *help;   /* --help text, '\n' continues it below; NULL: not listed */
    int kind;           /* OPT_* */
    int has_arg;        /* getopt_long's no_argument, required_argument, optional_argument */
    char shortopt;      /* 'o' for -o, or 0 */
    char join;          /* --help: the next row shares this row's line */
    size_t off;         /* OPT_STR, OPT_INT, OPT_REAL, OPT_BOOL, OPT_FLAG: the field in train_cli */
    double lo, hi;      /* OPT_INT, OPT_REAL: the range */
    int (*fn)(train_cli *c, char *arg); /* OPT_FN */
} train_opt;

#define FIELD(f) .off = offsetof(train_cli, f)
#define STR(f) .kind = OPT_STR, .has_arg = required_argument, FIELD(f)
#define INT(f, l, h) .kind = OPT_INT, .has_arg = required_argument, FIELD(f), .lo = (l), .hi = (h)
#define REAL(f, l, h) .kind = OPT_REAL, .has_arg = required_argument, FIELD(f), .lo = (l), .hi = (h)
#define BOOL(f) .kind = OPT_BOOL, .has_arg = optional_argument, FIELD(f)
#define FLAG(f) .kind = OPT_FLAG, .has_arg = no_argument, FIELD(f)
#define FN(h) .kind = OPT_FN, .has_arg = required_argument, .fn = (h)
#define FN_OPT(h) .kind = OPT_FN, .has_arg = optional_argument, .fn = (h)
#define IGNORED(a) .kind = OPT_IGNORED, .has_arg = (a)
#define ALIAS .kind = OPT_ALIAS
#define DOC .kind = OPT_DOC

static const train_opt train_opts[] = {
    {"output", "FILE", "model to write (atomically)", STR(out), .shortopt = 'o'},
    {"model-prefix", "P", "write P.model (sentencepiece style)", FN(opt_model_prefix)},
    {"input", "A,B", "comma-separated input files (besides FILE...)", FN(opt_input)},
    {"input", "NAME=PATH", "a named input: file, directory or glob (repeatable)", DOC},
    {"counts", "GLOB", "count files (.tkc) from tokenmill count: their counts\n"
                       "are added (same counting options; repeatable)", FN(opt_counts)},
    {"weight", "NAME=W[,NAME=W]", "count a named input W times (e.g. ja=1.5)", FN(opt_weight)},
    {"model-type", "bpe|unigram", "model type (bpe)", FN(opt_model_type)},
    {"vocab-size", "N", "total pieces including specials (8000)", INT(o.vocab_size, 1, 1 << 20)},
    {"character-coverage", "F", "share of characters kept (0.9995)", REAL(o.character_coverage, 0, 1)},
    {"max-piece-length", "N", "characters per piece (16)", INT(o.max_piece_length, 1, 1024)},
    {"max-sentencepiece-length", NULL, NULL, ALIAS},
    {"split-digits", "[=BOOL]", "digits are pieces of their own (false)", BOOL(o.split_digits)},
    {"split-by-unicode-script", "[=BOOL]", "no piece spans two scripts (true)", BOOL(o.split_by_unicode_script)},
    {"split-by-number", "[=BOOL]", "digits do not join letters (true)", BOOL(o.split_by_number)},
    {"split-by-whitespace", NULL, NULL, BOOL(o.split_by_whitespace)},
    /* a sentencepiece option that has no effect here (as those below) */
    {"shuffle-input-sentence", NULL, NULL, IGNORED(optional_argument)},
    {"allow-whitespace-only-pieces", "[=BOOL]", "runs of spaces become pieces (false)",
     BOOL(o.allow_whitespace_only_pieces)},
    {"byte-fallback", "[=BOOL]", "add <0x00>..<0xFF>; rare chars become bytes (false)", BOOL(o.byte_fallback)},
    {"add-dummy-prefix", "[=BOOL]", "prepend a space to each line (false)", BOOL(o.add_dummy_prefix)},
    {"remove-extra-whitespaces", "[=BOOL]", "squeeze/strip spaces (false)", BOOL(o.remove_extra_whitespaces)},
    {"hard-vocab-limit", "[=BOOL]", "fail when vocab size is out of reach (true)", BOOL(o.hard_vocab_limit)},
    {"user-defined-symbols", "A,B", "pieces never split nor merged", FN(opt_user)},
    {"control-symbols", "A,B", "control pieces (no surface)", FN(opt_control)},
    {"unk-id", "N", "", INT(o.unk_id, -1, 1 << 20), .join = 1},
    {"bos-id", "N", "", INT(o.bos_id, -1, 1 << 20), .join = 1},
    {"eos-id", "N", "", INT(o.eos_id, -1, 1 << 20), .join = 1},
    {"pad-id", "N", "special ids (0 1 2 -1; -1 disables)", INT(o.pad_id, -1, 1 << 20)},
    {"unk-piece", "S", "", STR(o.unk_piece), .join = 1},
    {"bos-piece", "S", "", STR(o.bos_piece), .join = 1},
    {"eos-piece", "S", "", STR(o.eos_piece), .join = 1},
    {"pad-piece", "S", "", STR(o.pad_piece), .join = 1},
    {"unk-surface", "S", "", STR(o.unk_surface)},
    {"normalization-rule-name", "R", "identity (default), nmt_nfkc, nfkc, nmt_nfkc_cf, nfkc_cf",
     STR(o.normalization_rule_name)},
    {"normalization-rule-tsv", "F", "normalization rules from a TSV (sentencepiece's format)",
     STR(o.normalization_rule_tsv)},
    {"seed-size", "N", "Unigram: seed pieces (1000000)", INT(o.seed_size, 1, 100000000)},
    {"seed-sentencepiece-size", NULL, NULL, ALIAS},
    {"shrinking-factor", "F", "Unigram: share kept per pruning round (0.75)", FN(opt_shrink)},
    {"num-sub-iterations", "N", "Unigram: EM rounds per pruning round (2)", INT(o.num_sub_iterations, 1, 100)},
    {"balance", "latin=S,japanese=S", "BPE: target shares of all pieces for Latin\n"
                                      "(>= 2 letters) and Japanese pieces, reached in\n"
                                      "one run; other pieces take the rest", FN(opt_balance)},
    {"balance-method", "M", "budget (per-class merge budgets, the default)\n"
                            "or weights (searched per-class count weights)", FN(opt_balance_method)},
    {"sweep", "LIST", "one counting pass, then one model per point of\n"
                      "LIST (none, bpe, unigram, J, L/J, A:B:STEP;\n"
                      "@weights/@budget), compared on --eval corpora", STR(sw.spec)},
    {"keep-models", "DIR", "--sweep: write each point's model to DIR", STR(sw.keep_dir)},
    {"sweep-report", "FILE", "--sweep: HTML report with the Pareto chart", STR(sw.report)},
    {"preset", "nerdstash", "NovelAI nerdstash settings (65535 pieces, ids\n"
                            "pad 0 unk 1 bos 2 eos 3, byte fallback, digits\n"
                            "split, whitespace runs as pieces; see man page)", FN(opt_preset)},
    {"contractions", "[=BOOL]", "add 's 't 'll 're 've 'd 'm as user-defined pieces", BOOL(contractions)},
    {"eval", "NAME=PATH", "held-out corpus (file, directory, glob): report the\n"
                          "new model's compression on it (repeatable)", FN(opt_eval)},
    {"hf-json", "FILE", "also write a HF tokenizer.json (tokenmill-export(1))", STR(hf_json)},
    {"hf-dir", "DIR", "also write a transformers folder (tokenmill-export(1))", STR(hf_dir)},
    {"hf-allow-ties", NULL, "with --hf-json/--hf-dir and a Unigram model: write it although\n"
                            "HF can order exact score ties differently", FLAG(hf_ties)},
    {"threads", "N", "counting threads (number of CPUs)", INT(o.threads, 1, 256), .shortopt = 't'},
    {"num-threads", NULL, NULL, ALIAS},
    {"max-memory", "SIZE", "memory for the pre-token tables while counting\n"
                           "(e.g. 8G, 500M; default half of physical RAM);\n"
                           "past it counting spills sorted runs to $TMPDIR\n"
                           "and merges them: same counts, same model; BPE's\n"
                           "merge loop leaves out the rarest pre-tokens if\n"
                           "they would not fit (reported)", FN(opt_max_memory)},
    {"progress", "[=tty|plain|none]", "progress on stderr: tty (default when stderr is a\n"
                                      "terminal) redraws one line, plain writes a line\n"
                                      "every 5 s (default otherwise: none)", FN_OPT(opt_progress)},
    /* sentencepiece options that have no effect here (tokenmill reads all input) */
    {"input-sentence-size", NULL, NULL, IGNORED(required_argument)},
    {"max-sentence-length", NULL, NULL, IGNORED(required_argument)},
    {"train-extremely-large-corpus", NULL, NULL, IGNORED(optional_argument)},
    {"quiet", NULL, "no progress or summary", FLAG(quiet), .shortopt = 'q'},
    {"help", NULL, "", .kind = OPT_HELP, .has_arg = no_argument, .shortopt = 'h'},
    {0}};

#define N_OPTS (sizeof train_opts / sizeof *train_opts - 1)
#define HELP_COL 34 /* where the help text starts */

/* --help: the text above the options, then one line per row (rows that
 * join share one), the help text from column HELP_COL. */
static void train_usage(FILE *f)
{
    fputs("usage: tokenmill train [OPTIONS] -o OUT.model FILE...\n"
          "\n"
          "Learns a BPE vocabulary from text files (plain or .gz, '-' for stdin) and\n"
          "writes a sentencepiece .model. sentencepiece spellings (--vocab_size=8000,\n"
          "--model_type=bpe, --split_digits=true, --input=a,b, --model_prefix=P) work too.\n"
          "\n",
          f);
    for (const train_opt *r = train_opts; r->name; r++) {
        if (!r->help) continue;
        char line[256];
        int n = snprintf(line, sizeof line, "  %c%c%c ", r->shortopt ? '-' : ' ', r->shortopt ? r->shortopt : ' ',
                         r->shortopt ? ',' : ' ');
        for (;; r++) {
            const char *a = r->arg ? r->arg : "";
            n += snprintf(line + n, sizeof line - (size_t)n, "--%s%s%s", r->name, *a && *a != '[' ? " " : "", a);
            if (!r->join) break;
            n += snprintf(line + n, sizeof line - (size_t)n, " ");
        }
        fputs(line, f);
        if (*r->help) {
            fprintf(f, "%*s", n < HELP_COL ? HELP_COL - n : 2, "");
            for (const char *h = r->help; *h; h++) {
                fputc(*h, f);
                if (*h == '\n') fprintf(f, "%*s", HELP_COL, "");
            }
        }
        fputc('\n', f);
    }
}

/* The row an option returned by getopt_long belongs to (its value: the
 * short option, or 256 + the row; an alias has its row's value). */
static const train_opt *opt_row(int val)
{
    if (val >= 256) return &train_opts[val - 256];
    for (const train_opt *r = train_opts; r->name; r++)
        if (r->shortopt == val) return r;
    return NULL;
}

/* Applies one option; returns 0, OPT_INVALID or an exit status. */
static int apply_opt(train_cli *c, const train_opt *r, char *arg)
{
    char *field = (char *)c + r->off, *end;
    long v;
    int b;
    switch (r->kind) {
    case OPT_STR: *(const char **)(void *)field = arg; return 0;
    case OPT_INT:
        if (cli_int(arg, (long)r->lo, (long)r->hi, &v)) return OPT_INVALID;
        *(int *)(void *)field = (int)v;
        return 0;
    case OPT_REAL: {
        double d = strtod(arg, &end);
        if (*end || !(d > r->lo && d <= r->hi)) return OPT_INVALID;
        *(float *)(void *)field = (float)d;
        return 0;
    }
    case OPT_BOOL:
        if ((b = cli_bool(arg)) < 0) return OPT_INVALID;
        *(int *)(void *)field = b;
        return 0;
    case OPT_FLAG: *(int *)(void *)field = 1; return 0;
    case OPT_FN: return r->fn(c, arg);
    case OPT_IGNORED:
        fprintf(stderr, "tokenmill train: note: option ignored (tokenmill always reads all input)\n");
        return 0;
    case OPT_HELP: train_usage(stdout); return EXIT_OK;
    }
    return OPT_INVALID;
}

/* --preset is applied first, whatever its position: the options override it.
 * Returns GO_ON or an exit status. */
enum { GO_ON = -1 };

static int apply_preset(train_cli *c, int argc, char **argv)
{
    const char *preset = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--preset=", 9)) preset = argv[i] + 9;
        else if (!strcmp(argv[i], "--preset") && i + 1 < argc) preset = argv[i + 1];
    }
    if (preset) {
        if (strcmp(preset, "nerdstash") != 0) {
            fprintf(stderr, "tokenmill train: unknown preset '%s' (available: nerdstash)\n", preset);
            return EXIT_USAGE;
        }
        apply_preset_nerdstash(&c->o);
        c->preset = 1;
    }
    return GO_ON;
}

/* Reads the options in order and the FILE arguments; returns GO_ON or an
 * exit status (messages printed). */
static int parse_args(train_cli *c, int argc, char **argv)
{
    struct option lopts[N_OPTS + 1];
    char shorts[16];
    int n = 0, ns = 0, prev = 0;
    for (size_t i = 0; i < N_OPTS; i++) {
        const train_opt *r = &train_opts[i];
        if (r->kind == OPT_DOC) continue;
        if (r->kind == OPT_ALIAS) {
            lopts[n] = lopts[prev];
            lopts[n++].name = r->name;
            continue;
        }
        prev = n;
        lopts[n++] = (struct option){r->name, r->has_arg, NULL, r->shortopt ? r->shortopt : 256 + (int)i};
        if (r->shortopt) {
            shorts[ns++] = r->shortopt;
            if (r->has_arg == required_argument) shorts[ns++] = ':';
        }
    }
    lopts[n] = (struct option){0, 0, 0, 0};
    shorts[ns] = 0;
    int rc = apply_preset(c, argc, argv), opt;
    if (rc != GO_ON) return rc;
    optind = 1;
    while ((opt = getopt_long(argc, argv, shorts, lopts, NULL)) != -1) {
        const train_opt *r = opt_row(opt);
        if (!r) { /* getopt_long printed why */
            train_usage(stderr);
            return EXIT_USAGE;
        }
        rc = apply_opt(c, r, optarg);
        if (rc == OPT_INVALID) {
            fprintf(stderr, "tokenmill train: invalid value '%s' for %s\n", optarg ? optarg : "",
                    cli_opt_name(lopts, opt));
            return EXIT_USAGE;
        }
        if (rc != 0 || r->kind == OPT_HELP) return rc;
    }
    for (int i = optind; i < argc; i++)
        if (split_list(argv[i], &c->inputs, &c->n_inputs)) return EXIT_FAIL;
    return GO_ON;
}

/* The checks that need all options, then the options the library gets from
 * several of them (the user-defined pieces: the preset's, the list given,
 * contractions). Returns GO_ON or an exit status. */
static int finish_options(train_cli *c)
{
    if ((c->sw.keep_dir || c->sw.report) && !c->sw.spec) {
        fprintf(stderr, "tokenmill train: --keep-models and --sweep-report need --sweep\n");
        return EXIT_USAGE;
    }
    if (!c->out && !c->sw.spec) {
        fprintf(stderr, "tokenmill train: no output given (-o FILE.model)\n");
        return EXIT_USAGE;
    }
    if (c->n_inputs == 0 && c->n_named == 0 && c->n_counts == 0) {
        fprintf(stderr, "tokenmill train: no input files given\n");
        return EXIT_USAGE;
    }
    const int preset_user = c->preset && !c->user_given; /* the preset's symbols unless a list was given */
    if (preset_user || c->contractions) {
        int extra = (preset_user ? (int)(sizeof nerdstash_user / sizeof *nerdstash_user) : 0) +
                    (c->contractions ? (int)(sizeof contractions / sizeof *contractions) : 0);
        const char **nu = realloc((void *)c->user, (size_t)(c->n_user + extra) * sizeof *nu);
        if (!nu) return EXIT_FAIL;
        c->user = nu;
        if (preset_user)
            for (size_t i = 0; i < sizeof nerdstash_user / sizeof *nerdstash_user; i++)
                c->user[c->n_user++] = nerdstash_user[i];
        if (c->contractions)
            for (size_t i = 0; i < sizeof contractions / sizeof *contractions; i++)
                c->user[c->n_user++] = contractions[i];
    }
    c->o.user_defined_symbols = c->user;
    c->o.n_user_defined = c->n_user;
    c->o.weighted = c->weighted;
    c->o.control_symbols = c->control;
    c->o.n_control = c->n_control;
    return GO_ON;
}

/* Progress: bytes read out of the inputs' total size (regular files; 0 when
 * unknown: stdin, .gz), rate and ETA; merges done out of the target. tty
 * mode redraws one line (at most 10 times a second), plain mode writes a
 * line every 5 s and at the end of each phase. */
static int g_prog;
static uint64_t g_total_bytes;
static double g_prog_t0, g_prog_last, g_phase_t0, g_read_t0; /* (reading: its rate from its start, across the spills' lines) */
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
    if (reading && !g_read_t0) g_read_t0 = t;
    double el = t - (reading ? g_read_t0 : g_phase_t0);
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

/* The progress mode, and the inputs' total size when all are regular files. */
static void start_progress(const train_cli *c)
{
    g_prog = c->quiet ? PROG_NONE : c->prog >= 0 ? c->prog : isatty(2) ? PROG_TTY : PROG_NONE;
    g_prog_t0 = now_s();
    for (int i = 0; i < c->n_inputs; i++) {
        uint64_t sz = input_size(c->inputs[i]);
        if (!sz) { g_total_bytes = 0; break; }
        g_total_bytes += sz;
    }
    for (int k = 0; g_total_bytes && k < c->n_named; k++)
        for (int i = 0; i < c->named[k].n; i++) {
            uint64_t sz = input_size(c->named[k].files[i]);
            if (!sz) { g_total_bytes = 0; break; }
            g_total_bytes += sz;
        }
}

/* Under mpirun the ranks share the files (cli/mpi_train.c). Returns GO_ON
 * on rank 0 (the counts are in t: go on), else the exit status: another
 * rank's work is done, or the run failed (reported). */
static int feed_mpi(const train_cli *c, tkm_trainer *t)
{
    int nf = c->n_inputs, mr = -1;
    for (int k = 0; k < c->n_named; k++) nf += c->named[k].n;
    const char **mf = malloc(((size_t)nf + 1) * sizeof *mf);
    double *mw = malloc(((size_t)nf + 1) * sizeof *mw);
    if (mf && mw) {
        nf = 0;
        for (int i = 0; i < c->n_inputs; i++) { mf[nf] = c->inputs[i]; mw[nf++] = 1.0; }
        for (int k = 0; k < c->n_named; k++)
            for (int i = 0; i < c->named[k].n; i++) { mf[nf] = c->named[k].files[i]; mw[nf++] = c->named[k].weight; }
        mr = cli_mpi_count(t, cli_count_mode ? "count" : "train", nf, mf, mw, c->quiet);
    }
    free((void *)mf);
    free(mw);
    return mr == 0 ? GO_ON : mr > 0 ? EXIT_OK : EXIT_FAIL;
}

/* Counts the inputs in this process: FILE arguments, named inputs (with
 * their weights), count files. */
static int feed_local(const train_cli *c, tkm_trainer *t)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < c->n_inputs; i++)
        rc = c->weighted ? tkm_trainer_add_file_weighted(t, c->inputs[i], 1.0) : tkm_trainer_add_file(t, c->inputs[i]);
    for (int k = 0; rc == 0 && k < c->n_named; k++)
        for (int i = 0; rc == 0 && i < c->named[k].n; i++)
            rc = c->weighted ? tkm_trainer_add_file_weighted(t, c->named[k].files[i], c->named[k].weight)
                             : tkm_trainer_add_file(t, c->named[k].files[i]);
    return rc;
}

static void end_progress_line(void)
{
    if (g_tty) { fputc('\n', stderr); g_tty = 0; }
}

/* tokenmill count: the counts to the output, and a summary. */
static int write_counts(const train_cli *c, tkm_trainer *t)
{
    char *g = cli_guard_output(c->out);
    int rc = tkm_trainer_write_counts(t, c->out);
    cli_unguard_output(g);
    end_progress_line();
    if (rc == 0 && !c->quiet) {
        tkm_train_stats s;
        tkm_trainer_stats(t, &s);
        fprintf(stderr, "tokenmill count: wrote %s\n  input      %llu lines, %.1f MB, %llu pre-tokens (%llu unique)\n"
                        "  time       %.2f s counting, %.2f s total (%d threads); peak RSS %.1f MB\n",
                c->out, (unsigned long long)s.lines, s.bytes / 1e6, (unsigned long long)s.pretokens_total,
                (unsigned long long)s.pretokens_unique, s.seconds_count, s.seconds_total, c->o.threads,
                cli_peak_rss_kb() / 1024.0);
    }
    return rc;
}

/* --sweep: one model per point (cli/cmd_sweep.c); returns its exit status. */
static int run_sweep(train_cli *c, tkm_trainer *t)
{
    c->sw.out = c->out;
    c->sw.threads = c->o.threads;
    c->sw.quiet = c->quiet;
    for (int i = 0; i < c->n_eval; i++) {
        c->sw.eval[i].name = c->eval[i].name;
        c->sw.eval[i].files = (const char *const *)c->eval[i].files;
        c->sw.eval[i].n = c->eval[i].n;
    }
    c->sw.n_eval = c->n_eval;
    end_progress_line();
    return cli_sweep_run(t, &c->o, &c->sw);
}

/* The model, then the HF exports asked for. */
static int save_outputs(const train_cli *c, const tkm_model *m)
{
    unsigned hf_flags = c->hf_ties ? TKM_EXPORT_UNIGRAM_TIES : 0;
    char *g = cli_guard_output(c->out); /* PATH.tmp.PID removed on SIGINT/SIGTERM */
    int rc = tkm_model_save(m, c->out);
    cli_unguard_output(g);
    if (rc == 0 && c->hf_json) {
        g = cli_guard_output(c->hf_json);
        rc = tkm_model_export_hf_json_flags(m, c->hf_json, hf_flags);
        cli_unguard_output(g);
    }
    if (rc == 0 && c->hf_dir) rc = tkm_model_export_hf_dir(m, c->hf_dir, hf_flags);
    return rc;
}

/* The closing summary (not with -q): input, characters, pieces, time,
 * memory, and for Unigram the seeds. */
static void print_summary(const train_cli *c, const tkm_model *m, const tkm_train_stats *s)
{
    const tkm_train_options *o = &c->o;
    char spill_note[256];
    if (s->spill_runs)
        snprintf(spill_note, sizeof spill_note,
                 "spilled %llu sorted runs (%.1f MB) to disk (%.1f s of spills), merged exactly (%.1f s)",
                 (unsigned long long)s->spill_runs, s->spill_bytes / 1e6, s->seconds_spill, s->seconds_spill_merge);
    else
        snprintf(spill_note, sizeof spill_note, "fit in memory");
    fprintf(stderr,
            "tokenmill train: wrote %s\n"
            "  input      %llu lines, %.1f MB, %llu pre-tokens (%llu unique)\n"
            "  characters %llu unique, %llu kept (coverage %.4f%%), %llu occurrences dropped\n",
            c->out, (unsigned long long)s->lines, s->bytes / 1e6, (unsigned long long)s->pretokens_total,
            (unsigned long long)s->pretokens_unique, (unsigned long long)s->chars_unique,
            (unsigned long long)s->chars_required,
            s->chars_total ? 100.0 * (double)(s->chars_total - s->chars_dropped_occurrences) / (double)s->chars_total : 0.0,
            (unsigned long long)s->chars_dropped_occurrences);
    for (int k = 0; k < c->n_named; k++)
        fprintf(stderr, "  input %-4s %d file%s, weight %g\n", c->named[k].name, c->named[k].n,
                c->named[k].n == 1 ? "" : "s", c->named[k].weight);
    if (s->balance_trials)
        fprintf(stderr, "  weights    latin %.3f, japanese %.3f, other %.3f (balance-method weights: %d merge loops searched)\n",
                s->balance_weight[0], s->balance_weight[1], s->balance_weight[2], s->balance_trials);
    if (s->invalid_utf8_bytes || s->nul_bytes)
        fprintf(stderr, "  warning    %llu invalid UTF-8 bytes (read as U+FFFD), %llu NUL bytes (never in a piece)\n",
                (unsigned long long)s->invalid_utf8_bytes, (unsigned long long)s->nul_bytes);
    fprintf(stderr,
            "  pieces     %d total: %d %s, %d characters, %d special, %d user-defined, %d bytes\n"
            "  time       %.2f s counting, %.2f s %s, %.2f s total (%d threads); peak RSS %.1f MB\n"
            "  memory     --max-memory %.2f GB, %.2f GB of it for counting tables: %s\n"
            "  skipped    0 lines (tokenmill never drops input)\n",
            tkm_model_size(m), s->pieces_normal, o->model_type == TKM_MODEL_UNIGRAM ? "learned" : "merged",
            s->pieces_char, s->pieces_meta, s->pieces_user, s->pieces_byte,
            s->seconds_count, s->seconds_merge, o->model_type == TKM_MODEL_UNIGRAM ? "EM and pruning" : "merging",
            s->seconds_total, o->threads, cli_peak_rss_kb() / 1024.0, o->max_memory / 1073741824.0,
            s->count_table_bytes / 1073741824.0, spill_note);
    if (o->model_type == TKM_MODEL_UNIGRAM)
        fprintf(stderr, "  seeds      %llu of about %llu candidate substrings (exact counts, %d pass%s)\n",
                (unsigned long long)s->seeds, (unsigned long long)s->seed_candidates, s->seed_passes,
                s->seed_passes == 1 ? "" : "es");
}

/* Under --max-memory: the sample of the rare pre-tokens that BPE's merge
 * loop or the Unigram words were trained on (even with -q). */
static void print_dropped(const train_cli *c, const tkm_train_stats *s)
{
    if (s->merge_drop_below <= 0) return;
    int uni = c->o.model_type == TKM_MODEL_UNIGRAM;
    fprintf(stderr,
            "  sampled    pre-tokens counted under %lld times: %llu kept, each counted %lld times (kept with "
            "probability count/%lld), %llu left out (%llu occurrences, %.3f%% of all), to fit --max-memory %.1f MB "
            "(%s about %.1f MB)\n",
            (long long)s->merge_drop_below, (unsigned long long)s->sampled_unique, (long long)s->merge_drop_below,
            (long long)s->merge_drop_below, (unsigned long long)s->merge_dropped_unique,
            (unsigned long long)s->merge_dropped_occurrences,
            s->pretokens_total ? 100.0 * (double)s->merge_dropped_occurrences / (double)s->pretokens_total : 0.0,
            c->o.max_memory / 1048576.0, uni ? "words at their peak" : "merge loop", s->merge_bytes_estimate / 1e6);
}

/* The pieces per script class (not with -q); the --balance targets that
 * could not be reached and where their pieces went (even with -q). */
static void print_classes(const train_cli *c, const tkm_model *m, const tkm_train_stats *s)
{
    static const char *names[3] = {"latin", "japanese", "other"};
    int n = tkm_model_size(m);
    if (!c->quiet) {
        fprintf(stderr, "  classes   ");
        for (int k = 0; k < 3; k++) {
            fprintf(stderr, " %s %d (%.1f%%", names[k], s->class_pieces[k], 100.0 * s->class_pieces[k] / n);
            if (s->class_target[k] >= 0) fprintf(stderr, ", target %.1f%%", 100.0 * s->class_target[k] / n);
            fprintf(stderr, ")%s", k < 2 ? "," : "\n");
        }
    }
    for (int k = 0; k < 3; k++)
        if (s->class_target[k] >= 0 && s->balance_short[k])
            fprintf(stderr,
                    "tokenmill train: warning: the %s target (%.1f%%) cannot be reached: %.1f%% achieved "
                    "(%s)\n",
                    names[k], 100.0 * s->class_target[k] / n, 100.0 * s->class_pieces[k] / n,
                    s->class_pieces[k] < s->class_target[k] ? "not enough distinct text of that class in the corpus"
                                                            : "the required characters alone exceed it");
    int gained = 0;
    for (int k = 0; k < 3; k++) gained += s->balance_gained[k];
    if (gained > 0) {
        fprintf(stderr, "tokenmill train: the %d pieces left by short classes went to", gained);
        for (int k = 0, first = 1; k < 3; k++)
            if (s->balance_gained[k] > 0) {
                fprintf(stderr, "%s %s +%d", first ? "" : ",", names[k], s->balance_gained[k]);
                first = 0;
            }
        fprintf(stderr, " (in proportion to their targets)\n");
    }
}

/* The closing report's analysis lines: the piece categories of the new model
 * (as `tokenmill analyze vocab` counts them) and its compression on each
 * --eval corpus (as `tokenmill analyze compression`). */
static int report_analysis(const train_cli *c, const tkm_model *m)
{
    tkm_analyze_vocab v;
    int rc = tkm_analyze_vocab_stats(m, &v);
    if (rc < 0) return rc;
    fprintf(stderr, "  categories");
    for (int k = 0; k < TKM_CAT_COUNT; k++)
        fprintf(stderr, " %s %d%s", tkm_analyze_category_name(k), v.category[k], k + 1 < TKM_CAT_COUNT ? "," : "\n");
    tkm_analyze_vocab_clear(&v);
    for (int i = 0; i < c->n_eval; i++) {
        const named_t *e = &c->eval[i];
        tkm_analyze_counts a;
        rc = tkm_analyze_compression(&m, 1, (const char *const *)e->files, e->n, c->o.threads, &a, NULL);
        if (rc < 0) return rc;
        fprintf(stderr, "  eval %-5s %.3f bytes/token, %.3f chars/token, %.3f tokens/word, %.2f%% byte tokens "
                        "(%.1f MB, %d file%s)\n",
                e->name, a.tokens ? (double)a.bytes / (double)a.tokens : 0.0,
                a.tokens ? (double)a.chars / (double)a.tokens : 0.0,
                a.words ? (double)a.tokens / (double)a.words : 0.0,
                a.tokens ? 100.0 * (double)a.byte_tokens / (double)a.tokens : 0.0, a.bytes / 1e6, e->n,
                e->n == 1 ? "" : "s");
    }
    return 0;
}

/* Counting, then (tokenmill count) the counts, (--sweep) the sweep, or the
 * model, its exports and the summary. Returns the exit status. */
static int run_train(train_cli *c)
{
    tkm_trainer *t = NULL;
    tkm_model *m = NULL;
    int status = GO_ON;
    start_progress(c);
    int rc = tkm_trainer_new(&c->o, &t);
    if (rc == 0) {
        tkm_trainer_set_progress(t, progress, NULL);
        if (cli_mpi_active()) status = feed_mpi(c, t);
        else rc = feed_local(c, t);
    }
    for (int i = 0; status == GO_ON && rc == 0 && i < c->n_counts; i++) rc = tkm_trainer_add_counts(t, c->counts[i]);
    if (status == GO_ON && rc == 0 && cli_count_mode) {
        rc = write_counts(c, t);
        if (rc == 0) status = EXIT_OK;
    } else if (status == GO_ON && rc == 0 && c->sw.spec) {
        status = run_sweep(c, t);
    } else if (status == GO_ON) {
        if (rc == 0) rc = tkm_trainer_train(t, &m);
        end_progress_line();
        if (rc == 0) rc = save_outputs(c, m);
        if (rc == 0) {
            tkm_train_stats s;
            tkm_trainer_stats(t, &s);
            if (!c->quiet) print_summary(c, m, &s);
            print_dropped(c, &s);
            if (!c->quiet || c->o.balance_latin >= 0 || c->o.balance_japanese >= 0) print_classes(c, m, &s);
            if (!c->quiet || c->n_eval) rc = report_analysis(c, m);
        }
        if (rc == 0) status = EXIT_OK;
    }
    if (status == GO_ON) { /* rc < 0 */
        cli_error(cli_count_mode ? "count" : "train", rc);
        status = EXIT_FAIL;
    }
    tkm_model_free(m);
    tkm_trainer_free(t);
    return status;
}

static void train_cli_init(train_cli *c)
{
    memset(c, 0, sizeof *c);
    tkm_train_options_init(&c->o);
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    c->o.threads = nproc > 0 ? (int)(nproc > 64 ? 64 : nproc) : 1;
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    c->o.max_memory = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz / 2 : 0;
    c->prog = -1;
}

static void train_cli_free(train_cli *c)
{
    free((void *)c->inputs);
    free((void *)c->user);
    free((void *)c->control);
    free(c->prefix_path);
    for (int k = 0; k < c->n_named; k++) {
        for (int i = 0; i < c->named[k].n; i++) free(c->named[k].files[i]);
        free(c->named[k].files);
    }
    for (int k = 0; k < c->n_eval; k++) {
        for (int i = 0; i < c->eval[k].n; i++) free(c->eval[k].files[i]);
        free(c->eval[k].files);
    }
    for (int i = 0; i < c->n_counts; i++) free(c->counts[i]);
    free(c->counts);
}

int cmd_train(int argc, char **argv)
{
    train_cli c;
    train_cli_init(&c);
    int status = parse_args(&c, argc, argv);
    if (status == GO_ON) status = finish_options(&c);
    if (status == GO_ON) status = run_train(&c);
    train_cli_free(&c);
    return status;
}
