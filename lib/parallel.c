/* parallel.c - thread count and the parallel-for over jobs (lib/parallel.h). */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "parallel.h"

int tkmi_thread_count(int requested, int max)
{
    if (max <= 0 || max > TKMI_MAX_THREADS) max = TKMI_MAX_THREADS;
    if (requested <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        requested = c > 0 ? (int)c : 1;
    }
    return requested > max ? max : requested;
}

typedef struct {
    void *job;
    size_t rc_offset;
    void *(*fn)(void *);
    char *msg; /* the job's error message, when it failed (msg_cap bytes) */
} par_slot;
enum { MSG_CAP = 1024 };

static void *par_main(void *p)
{
    par_slot *s = p;
    s->fn(s->job);
    int rc;
    memcpy(&rc, (char *)s->job + s->rc_offset, sizeof rc);
    if (rc < 0 && s->msg) snprintf(s->msg, MSG_CAP, "%s", tkm_last_error());
    return NULL;
}

void tkmi_par_jobs(void *jobs, int n, size_t job_size, size_t rc_offset, void *(*fn)(void *))
{
    if (n > TKMI_MAX_THREADS) n = TKMI_MAX_THREADS;
    if (n < 1) return;
    pthread_t th[TKMI_MAX_THREADS];
    int started[TKMI_MAX_THREADS] = {0};
    par_slot slot[TKMI_MAX_THREADS];
    /* without memory for the messages the jobs still run; only the text of
     * a worker's error is lost */
    char *msgs = tkmi_malloc((size_t)n * MSG_CAP);
    for (int t = 0; t < n; t++) {
        slot[t] = (par_slot){(char *)jobs + (size_t)t * job_size, rc_offset, fn, msgs ? msgs + (size_t)t * MSG_CAP : NULL};
        if (slot[t].msg) slot[t].msg[0] = 0;
    }
    for (int t = 1; t < n; t++) started[t] = pthread_create(&th[t], NULL, par_main, &slot[t]) == 0;
    par_main(&slot[0]);
    for (int t = 1; t < n; t++) {
        if (started[t]) pthread_join(th[t], NULL);
        else par_main(&slot[t]);
    }
    for (int t = 0; msgs && t < n; t++) {
        int rc;
        memcpy(&rc, (char *)slot[t].job + rc_offset, sizeof rc);
        if (rc < 0) {
            tkmi_error(rc, "%s", slot[t].msg);
            break;
        }
    }
    tkmi_free(msgs);
}
