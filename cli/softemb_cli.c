/* softemb_cli.c - what the softemb subcommands share (softemb_cli.h): loading
 * the teacher named by --teacher and its options. */
#include <stdio.h>

#include "cli.h"
#include "softemb_cli.h"
#include "tokenmill_softemb.h"

tkm_teacher *softemb_load_teacher(const char *cmd, const teacher_arg *ta)
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
