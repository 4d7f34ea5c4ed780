/* tokenmill.c - the tokenmill program: dispatches to subcommands. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
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
            "  count    count pre-tokens into a count file (.tkc), or merge count files\n"
            "  spm-train  spm_train's flags and defaults: writes P.model and P.vocab\n"
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

/* ---- temporary outputs ----------------------------------------------------
 * Every output is written to PATH.tmp.PID (PID: the writer's process id, in
 * decimal) and renamed to PATH when complete, by the CLI and by the library
 * (tkmi_write_file_atomic, the softemb writers) alike. The names are kept in a
 * small table while the file may exist; SIGINT, SIGTERM, SIGHUP and SIGQUIT
 * remove them before the signal takes its course. SIGXFSZ is ignored, so a
 * file-size limit is an ordinary write error (EFBIG) and the temp file is
 * removed on the error path. What no handler sees (SIGKILL, a power cut)
 * is cleaned by the next run writing the same PATH: a PATH.tmp.N whose
 * process N no longer exists is removed. */
enum { MAX_GUARDED = 16 };
static char *volatile g_guarded[MAX_GUARDED];
static int g_handlers;

static void on_fatal_signal(int sig)
{
    int saved = errno;
    for (int i = 0; i < MAX_GUARDED; i++) {
        const char *p = g_guarded[i];
        if (p) unlink(p);
    }
    errno = saved;
    raise(sig); /* SA_RESETHAND: the default action, once this returns */
}

static void install_handlers(void)
{
    if (g_handlers) return;
    g_handlers = 1;
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old, sa;
        /* a signal ignored by whoever started us (nohup) stays ignored */
        if (sigaction(sigs[i], NULL, &old) != 0 || old.sa_handler == SIG_IGN) continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sigfillset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND;
        sigaction(sigs[i], &sa, NULL);
    }
}

static void guard_add(const char *tmp)
{
    char *c = strdup(tmp);
    if (!c) return;
    install_handlers();
    for (int i = 0; i < MAX_GUARDED; i++)
        if (!g_guarded[i]) { g_guarded[i] = c; return; }
    free(c); /* table full: only the signal cleanup is lost */
}

static void guard_remove(const char *tmp)
{
    for (int i = 0; i < MAX_GUARDED; i++) {
        char *p = g_guarded[i];
        if (p && !strcmp(p, tmp)) {
            g_guarded[i] = NULL;
            free(p);
        }
    }
}

/* Removes PATH.tmp.N (regular files) whose process N is gone. A process of
 * another user (EPERM) or one that reused N counts as alive: kept. */
static void remove_stale(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + 1) : strdup("./");
    const char *base = slash ? slash + 1 : path;
    size_t bl = strlen(base);
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) { free(dir); return; }
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, base, bl) != 0 || strncmp(n + bl, ".tmp.", 5) != 0) continue;
        const char *q = n + bl + 5;
        long pid = 0;
        for (; *q >= '0' && *q <= '9' && pid < (1L << 31); q++) pid = pid * 10 + (*q - '0');
        if (*q || q == n + bl + 5 || pid <= 0 || pid >= (1L << 31) || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char *full = malloc(strlen(dir) + strlen(n) + 1);
        struct stat st;
        if (full) {
            sprintf(full, "%s%s", dir, n);
            if (lstat(full, &st) == 0 && S_ISREG(st.st_mode)) unlink(full);
            free(full);
        }
    }
    closedir(d);
    free(dir);
}

char *cli_guard_output(const char *path)
{
    char *tmp = malloc(strlen(path) + 32);
    if (!tmp) return NULL;
    if (cli_special_output(path)) {
        strcpy(tmp, path);
        return tmp;
    }
    sprintf(tmp, "%s.tmp.%ld", path, (long)getpid());
    remove_stale(path);
    guard_add(tmp);
    return tmp;
}

void cli_unguard_output(char *tmp)
{
    if (!tmp) return;
    guard_remove(tmp);
    free(tmp);
}

char *cli_tmp_path(const char *path) { return cli_guard_output(path); }

int cli_commit(const char *tmp, const char *path)
{
    if (!strcmp(tmp, path)) return 0;
    int rc = rename(tmp, path);
    guard_remove(tmp);
    return rc;
}

void cli_discard(const char *tmp, const char *path)
{
    if (!strcmp(tmp, path)) return;
    unlink(tmp);
    guard_remove(tmp);
}

void cli_model_warning(const char *cmd, const tkm_model *m)
{
    const char *w = m ? tkm_model_warning(m) : NULL;
    if (w) fprintf(stderr, "tokenmill %s: warning: %s\n", cmd, w);
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
    /* a file-size limit makes writes fail with EFBIG (reported, temp file
     * removed) instead of killing us with a partial PATH.tmp.PID */
    signal(SIGXFSZ, SIG_IGN);
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
    /* every command: --version; export, analyze, softemb and spm-train take
     * -q/--quiet here (train, encode and decode parse it themselves) */
    int strip_q = !strcmp(cmd, "export") || !strcmp(cmd, "analyze") || !strcmp(cmd, "softemb") ||
                  !strcmp(cmd, "spm-train"), k = 2;
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
    if (!strcmp(cmd, "train") || !strcmp(cmd, "count")) { /* under mpirun: all ranks (cli/mpi_train.c) */
        if (cli_mpi_start(&argc, &argv) < 0) return EXIT_FAIL;
        return cli_mpi_end(!strcmp(cmd, "train") ? cmd_train(argc - 1, argv + 1) : cmd_count(argc - 1, argv + 1));
    }
    if (!strcmp(cmd, "spm-train")) return cmd_spm_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "encode")) return cmd_encode(argc - 1, argv + 1);
    if (!strcmp(cmd, "decode")) return cmd_decode(argc - 1, argv + 1);
    if (!strcmp(cmd, "analyze")) return cmd_analyze(argc - 1, argv + 1);
    if (!strcmp(cmd, "export")) return cmd_export(argc - 1, argv + 1);
    if (!strcmp(cmd, "softemb")) return cmd_softemb(argc - 1, argv + 1);
    fprintf(stderr, "tokenmill: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
