/* softemb_cli.h - what the softemb subcommands share: the teacher options
 * (loaded by softemb_load_teacher, cli/softemb_cli.c) and the evaluation that
 * train (after training) and eval print (softemb_run_eval, cli/cmd_softemb_eval.c). */
#ifndef TKM_SOFTEMB_CLI_H
#define TKM_SOFTEMB_CLI_H

#include <stdio.h>

#include "tokenmill_softemb.h"

typedef struct {
    const char *path;
    tkm_teacher_opts o;
} teacher_arg;

/* Loads the teacher; prints "tokenmill softemb CMD: ..." and returns NULL on failure. */
tkm_teacher *softemb_load_teacher(const char *cmd, const teacher_arg *ta);

typedef struct {
    int json, baselines, threads;
    size_t train_sample;
} eval_opts;

/* Evaluates e on the split it was trained with; prints a table or JSON. */
int softemb_run_eval(const char *cmd, const tkm_teacher *t, const tkm_se_encoder *e, const eval_opts *eo, FILE *f);

#endif
