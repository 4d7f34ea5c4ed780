/* cmd_softemb.c - `tokenmill softemb`: dispatches to train, eval, apply
 * (cmd_softemb_train.c, cmd_softemb_eval.c, cmd_softemb_apply.c) and splice,
 * and provides info (what a teacher file holds) and import (a teacher
 * rewritten as GGUF). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tokenmill_softemb.h"

static void softemb_usage(FILE *f)
{
    fprintf(f,
            "usage: tokenmill softemb COMMAND [OPTIONS]\n"
            "\n"
            "Soft embeddings: learn a byte-level encoder that predicts a teacher model's\n"
            "input-embedding rows from token bytes, and give a new vocabulary embeddings.\n"
            "\n"
            "commands:\n"
            "  train    train an encoder on a teacher (GGUF, safetensors, .npy)\n"
            "  eval     held-out metrics of an encoder beside baselines\n"
            "  apply    predict embeddings for every piece of a .model (GGUF or .npy)\n"
            "  splice   give a llama.cpp model (GGUF) a new vocabulary, rows kept or predicted\n"
            "  info     what a teacher file holds: format, vocabulary, rows, kinds\n"
            "  import   rewrite a teacher (matrix + vocabulary) as one GGUF file\n"
            "\n"
            "Run 'tokenmill softemb COMMAND --help'; see tokenmill-softemb(1).\n");
}

enum { I_TEACHER = 256, I_VOCAB, I_TENSOR, I_DTYPE, I_CHECKSUM, I_ROWS };

static const struct option io_opts[] = {
    {"teacher", required_argument, 0, I_TEACHER}, {"teacher-vocab", required_argument, 0, I_VOCAB},
    {"tensor", required_argument, 0, I_TENSOR}, {"dtype", required_argument, 0, I_DTYPE},
    {"checksum", no_argument, 0, I_CHECKSUM}, {"rows", required_argument, 0, I_ROWS},
    {"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};

/* Bytes as text: control characters, backslash and bytes that are not valid
 * UTF-8 (a lone byte piece such as <0xE3>) become \xNN, so each row stays one
 * line; with quotes, '"' is escaped too. */
static void print_escaped(FILE *f, const unsigned char *b, size_t n, int quote)
{
    if (quote)
        fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned char c = b[i];
        size_t k = cli_utf8_len(b + i, n - i);
        if (c == '\\' || (quote && c == '"'))
            fprintf(f, "\\%c", c);
        else if (k == 0 || c < 0x20 || c == 0x7F)
            fprintf(f, "\\x%02x", c);
        else
            fwrite(b + i, 1, k, f);
        i += k ? k : 1;
    }
    if (quote)
        fputc('"', f);
}

/* FNV-1a over the float32 bit patterns: equal for bit-identical matrices. */
static unsigned long long matrix_checksum(const float *m, size_t n)
{
    unsigned long long h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)m;
    for (size_t i = 0; i < n * sizeof(float); i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int io_cmd(const char *cmd, int argc, char **argv)
{
    const char *path = NULL, *out = NULL, *dtype = "f32";
    tkm_teacher_opts o = {0};
    int checksum = 0, c;
    long nrows = 8;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", io_opts, NULL)) != -1) {
        switch (c) {
        case I_TEACHER: path = optarg; break;
        case I_VOCAB: o.vocab = optarg; break;
        case I_TENSOR: o.tensor = optarg; break;
        case I_DTYPE: dtype = optarg; break;
        case I_CHECKSUM: checksum = 1; break;
        case I_ROWS:
            if (cli_int(optarg, 0, 1000000000, &nrows) < 0) {
                fprintf(stderr, "tokenmill softemb %s: bad --rows '%s'\n", cmd, optarg);
                return EXIT_USAGE;
            }
            break;
        case 'o': out = optarg; break;
        case 'h':
            printf(!strcmp(cmd, "info")
                       ? "usage: tokenmill softemb info --teacher FILE [--teacher-vocab FILE] [--tensor NAME]\n"
                         "                              [--rows N] [--checksum]\n"
                       : "usage: tokenmill softemb import --teacher FILE [--teacher-vocab FILE] [--tensor NAME]\n"
                         "                                [--dtype f32|f16|bf16] -o OUT.gguf\n");
            return EXIT_OK;
        default: return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tokenmill softemb %s: unexpected argument '%s'\n", cmd, argv[optind]);
        return EXIT_USAGE;
    }
    if (!path) {
        fprintf(stderr, "tokenmill softemb %s: no teacher given (--teacher FILE)\n", cmd);
        return EXIT_USAGE;
    }
    int imp = !strcmp(cmd, "import");
    if (imp && !out) {
        fprintf(stderr, "tokenmill softemb import: no output given (-o FILE.gguf)\n");
        return EXIT_USAGE;
    }
    tkm_dtype dt = !strcmp(dtype, "f32") ? TKM_DTYPE_F32 : !strcmp(dtype, "f16") ? TKM_DTYPE_F16
                 : !strcmp(dtype, "bf16") ? TKM_DTYPE_BF16 : (tkm_dtype)-1;
    if ((int)dt < 0) {
        fprintf(stderr, "tokenmill softemb %s: --dtype must be f32, f16 or bf16\n", cmd);
        return EXIT_USAGE;
    }
    tkm_teacher *t = NULL;
    int rc = tkm_teacher_load(path, &o, &t);
    char what[32];
    snprintf(what, sizeof(what), "softemb %s", cmd);
    if (rc < 0) {
        cli_error(what, rc);
        return EXIT_FAIL;
    }
    size_t R = tkm_teacher_rows(t), D = tkm_teacher_dim(t);
    if (imp) {
        const char **pieces = malloc(R * sizeof(*pieces));
        tkm_row_kind *kinds = malloc(R * sizeof(*kinds));
        if (!pieces || !kinds) {
            free(pieces);
            free(kinds);
            tkm_teacher_free(t);
            return EXIT_FAIL;
        }
        for (size_t r = 0; r < R; r++) {
            pieces[r] = tkm_teacher_piece(t, r);
            kinds[r] = tkm_teacher_row_kind(t, r);
        }
        char *g = cli_guard_output(out); /* PATH.tmp.PID removed on SIGINT/SIGTERM */
        rc = tkm_emb_write_gguf(out, R, D, tkm_teacher_matrix(t), pieces, tkm_teacher_vocab_style(t), kinds, dt);
        cli_unguard_output(g);
        free(pieces);
        free(kinds);
        if (rc < 0) {
            cli_error(what, rc);
            tkm_teacher_free(t);
            return EXIT_FAIL;
        }
        if (!cli_quiet)
            fprintf(stderr, "tokenmill softemb import: wrote %s (%zu x %zu, %s)\n", out, R, D, dtype);
        tkm_teacher_free(t);
        return EXIT_OK;
    }
    size_t kinds[3] = { 0, 0, 0 };
    for (size_t r = 0; r < R; r++)
        kinds[tkm_teacher_row_kind(t, r)]++;
    printf("file         %s\nformat       %s\nvocabulary   %s\nrows         %zu\nwidth        %zu\n"
           "normal rows  %zu\nspecial rows %zu\nunused rows  %zu\n",
           path, tkm_teacher_format(t), tkm_teacher_vocab_style(t), R, D, kinds[0], kinds[1], kinds[2]);
    if (checksum)
        printf("checksum     %016llx\n", matrix_checksum(tkm_teacher_matrix(t), R * D));
    static const char *const kn[] = { "normal", "special", "unused" };
    for (size_t r = 0; r < R && r < (size_t)nrows; r++) {
        size_t n;
        const unsigned char *b = tkm_teacher_bytes(t, r, &n);
        const char *p = tkm_teacher_piece(t, r);
        printf("row %-8zu %-8s ", r, kn[tkm_teacher_row_kind(t, r)]);
        print_escaped(stdout, (const unsigned char *)p, strlen(p), 0);
        printf(" -> ");
        print_escaped(stdout, b, n, 1);
        printf("\n");
    }
    tkm_teacher_free(t);
    return EXIT_OK;
}

static int softemb_info(int argc, char **argv) { return io_cmd("info", argc, argv); }
static int softemb_import(int argc, char **argv) { return io_cmd("import", argc, argv); }

static const struct {
    const char *name;
    int (*fn)(int, char **);
} subcommands[] = {
    {"train", softemb_train}, {"eval", softemb_eval}, {"apply", softemb_apply},
    {"splice", softemb_splice}, {"info", softemb_info}, {"import", softemb_import},
};

int cmd_softemb(int argc, char **argv)
{
    if (argc < 2) {
        softemb_usage(stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
        softemb_usage(stdout);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        if (!strcmp(sub, subcommands[i].name))
            return subcommands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "tokenmill softemb: unknown command '%s'\n", sub);
    softemb_usage(stderr);
    return EXIT_USAGE;
}
