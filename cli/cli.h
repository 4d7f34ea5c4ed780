/* cli.h - helpers shared by the tokenmill subcommands. */
#ifndef TKM_CLI_H
#define TKM_CLI_H

#include <stdio.h>

#include "tokenmill.h"

/* exit statuses (documented in tokenmill(1)) */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

int cmd_train(int argc, char **argv);
int cmd_spm_train(int argc, char **argv);
/* tokenmill count (cmd_count.c): counting runs cmd_train with cli_count_mode = 1 */
int cmd_count(int argc, char **argv);
extern int cli_count_mode;
/* MPI (cli/mpi_train.c; stubs without configure --with-mpi). cli_mpi_start:
 * MPI_Init when started by mpirun/mpiexec (1), else nothing (0). cli_mpi_count
 * counts the files over all ranks into rank 0's trainer: 0 on rank 0 (go on
 * and train), 1 on the other ranks (stop, successfully), -1 on every rank
 * when any failed (rank 0 printed why). cli_mpi_end: the exit code every
 * rank returns (rank 0's when this rank succeeded), MPI_Finalize. */
int cli_mpi_start(int *argc, char ***argv);
int cli_mpi_active(void);
int cli_mpi_count(tkm_trainer *t, const char *cmd, int n, const char *const *files, const double *weights, int quiet);
int cli_mpi_end(int code);
int cmd_encode(int argc, char **argv);
int cmd_decode(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_softemb(int argc, char **argv);
/* softemb subcommands (cli/cmd_softemb_<name>.c) */
int softemb_train(int argc, char **argv);
int softemb_eval(int argc, char **argv);
int softemb_apply(int argc, char **argv);
int softemb_splice(int argc, char **argv); /* cli/cmd_softemb_splice.c */

/* Rewrites sentencepiece spellings (--vocab_size=8) to GNU ones (--vocab-size=8). */
void cli_normalize_args(int argc, char **argv);
/* Parses an optional boolean argument: NULL (flag given) -> 1. -1 if invalid. */
int cli_bool(const char *arg);
int cli_int(const char *arg, long lo, long hi, long *out);
/* Prints "tokenmill CMD: message" with the library's last error detail. */
void cli_error(const char *cmd, int rc);
long cli_peak_rss_kb(void);
/* Prints "tokenmill CMD: warning: ..." when a loaded .model looks damaged
 * (tkm_model_warning: truncated, or pieces missing); the command goes on. */
void cli_model_warning(const char *cmd, const tkm_model *m);
/* Outputs go to PATH.tmp.PID and are renamed into place, except when PATH
 * is "-" (standard output) or exists and is not a regular file (/dev/null, a
 * FIFO): then it is written directly (the temp name is PATH itself) and
 * never renamed or removed. */
int cli_special_output(const char *path);
char *cli_tmp_path(const char *path);                /* malloc'd PATH.tmp.PID, or PATH; NULL: no memory */
int cli_commit(const char *tmp, const char *path);   /* rename unless tmp is path */
/* Text formats (cli/escape.c): the length of the valid UTF-8 sequence at b
 * (n bytes left; 0 if invalid); a JSON string with its quotes, HTML text, a
 * CSV field; invalid UTF-8 becomes U+FFFD in each. */
size_t cli_utf8_len(const unsigned char *b, size_t n);
void cli_json_str(FILE *f, const char *s);
void cli_html_str(FILE *f, const char *s);
void cli_csv_str(FILE *f, const char *s);
/* "--name" (or "-c") of the option getopt_long returned as c. */
struct option;
const char *cli_opt_name(const struct option *opts, int c);
/* -q/--quiet given to a command that has no option of its own for it
 * (export, analyze, softemb): informational messages are left out. */
extern int cli_quiet;
void cli_discard(const char *tmp, const char *path); /* unlink unless tmp is path */
/* PATH.tmp.PID is the one temp-file pattern (tokenmill(1), FILES), also used
 * by the library's writers. cli_tmp_path first removes stale PATH.tmp.N of
 * processes that no longer exist (SIGKILL), and remembers the name until
 * cli_commit / cli_discard: SIGINT, SIGTERM, SIGHUP and SIGQUIT remove it.
 * For outputs the library writes, wrap the call in cli_guard_output(PATH)
 * (same as cli_tmp_path) and cli_unguard_output(tmp) (forgets and frees). */
char *cli_guard_output(const char *path);
void cli_unguard_output(char *tmp);

/* tokenmill train --sweep (cli/cmd_sweep.c): one counting pass, a model per
 * point of the list, each evaluated on the held-out corpora. */
typedef struct { const char *name; const char *const *files; int n; } cli_eval;
typedef struct {
    const char *spec;     /* --sweep LIST */
    const char *keep_dir; /* --keep-models DIR (NULL: none) */
    const char *report;   /* --sweep-report FILE (NULL: none) */
    const char *out;      /* -o: the chosen model (NULL: none) */
    cli_eval eval[16];
    int n_eval, threads, quiet;
} cli_sweep_cfg;
/* Counting must have been fed (tkm_trainer_add_*); returns an exit status. */
int cli_sweep_run(tkm_trainer *t, const tkm_train_options *o, const cli_sweep_cfg *cfg);

#endif
