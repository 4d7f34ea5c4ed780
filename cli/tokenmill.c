/* tokenmill.c - the tokenmill program: dispatches to subcommands. */
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tokenmill COMMAND [OPTIONS]\n"
            "\n"
            "commands:\n"
            "  train    learn a BPE vocabulary from text and write a sentencepiece .model\n"
            "  encode   turn text into token ids or pieces (ids identical to sentencepiece)\n"
            "  decode   turn ids or pieces back into text\n"
            "  analyze  compare tokenizers: compression on corpora, vocabulary categories\n"
            "  export   write a model in another format (--hf-json: HF tokenizer.json)\n"
            "  softemb  soft embeddings: predict a teacher model's embedding rows from token\n"
            "           bytes and give a new vocabulary embeddings\n"
            "\n"
            "Run 'tokenmill COMMAND --help' for the options of a command; see tokenmill(1).\n");
}

void cli_normalize_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (strcmp(a, "--") == 0) break;
        if (a[0] != '-' || a[1] != '-') continue;
        for (char *p = a + 2; *p && *p != '='; p++)
            if (*p == '_') *p = '-';
    }
}

int cli_bool(const char *arg)
{
    if (!arg) return 1;
    if (!strcmp(arg, "true") || !strcmp(arg, "1") || !strcmp(arg, "yes")) return 1;
    if (!strcmp(arg, "false") || !strcmp(arg, "0") || !strcmp(arg, "no")) return 0;
    return -1;
}

int cli_int(const char *arg, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (!*arg || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

void cli_error(const char *cmd, int rc)
{
    const char *d = tkm_last_error();
    fprintf(stderr, "tokenmill %s: %s\n", cmd, d && *d ? d : tkm_strerror(rc));
}

int cli_quiet = 0;

int cli_special_output(const char *path)
{
    struct stat st;
    return !strcmp(path, "-") || (stat(path, &st) == 0 && !S_ISREG(st.st_mode));
}

const char *cli_opt_name(const struct option *opts, int c)
{
    static char buf[80];
    for (const struct option *o = opts; o->name; o++)
        if (!o->flag && o->val == c && (c < 32 || c > 126)) {
            snprintf(buf, sizeof buf, "--%s", o->name);
            return buf;
        }
    /* a short option: also its long spelling when there is one */
    for (const struct option *o = opts; o->name; o++)
        if (!o->flag && o->val == c) {
            snprintf(buf, sizeof buf, "-%c/--%s", c, o->name);
            return buf;
        }
    snprintf(buf, sizeof buf, "-%c", c);
    return buf;
}

char *cli_tmp_path(const char *path)
{
    char *tmp = malloc(strlen(path) + 32);
    if (!tmp) return NULL;
    if (cli_special_output(path)) strcpy(tmp, path);
    else sprintf(tmp, "%s.tmp.%ld", path, (long)getpid());
    return tmp;
}

int cli_commit(const char *tmp, const char *path)
{
    return strcmp(tmp, path) ? rename(tmp, path) : 0;
}

void cli_discard(const char *tmp, const char *path)
{
    if (strcmp(tmp, path)) unlink(tmp);
}

long cli_peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

int main(int argc, char **argv)
{
    /* Large tables grow by realloc; a fixed mmap threshold keeps them in
     * their own mappings (grown with mremap, returned on free) instead of
     * fragmenting the heap, which glibc's adaptive threshold would do. */
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("tokenmill %s\n", TKM_VERSION);
        return EXIT_OK;
    }
    cli_normalize_args(argc - 1, argv + 1);
    /* every command: --version; export, analyze and softemb take -q/--quiet
     * here (train, encode and decode parse it themselves) */
    int strip_q = !strcmp(cmd, "export") || !strcmp(cmd, "analyze") || !strcmp(cmd, "softemb"), k = 2;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            while (i < argc) argv[k++] = argv[i++];
            break;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("tokenmill %s\n", TKM_VERSION);
            return EXIT_OK;
        }
        if (strip_q && (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet"))) {
            cli_quiet = 1;
            continue;
        }
        argv[k++] = argv[i];
    }
    argv[k] = NULL;
    argc = k;
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "encode")) return cmd_encode(argc - 1, argv + 1);
    if (!strcmp(cmd, "decode")) return cmd_decode(argc - 1, argv + 1);
    if (!strcmp(cmd, "analyze")) return cmd_analyze(argc - 1, argv + 1);
    if (!strcmp(cmd, "export")) return cmd_export(argc - 1, argv + 1);
    if (!strcmp(cmd, "softemb")) return cmd_softemb(argc - 1, argv + 1);
    fprintf(stderr, "tokenmill: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
