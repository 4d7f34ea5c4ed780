/* parallel.h - threads, one policy (lib/parallel.c): how many threads a
 * request means, and a parallel-for over jobs in which every job runs once
 * (a job whose thread cannot start runs on the caller's thread) and a failed
 * job's error message comes back to the caller. */
#ifndef TKM_PARALLEL_H
#define TKM_PARALLEL_H

#include "tkm_internal.h"

enum { TKMI_MAX_THREADS = 256 };

/* requested <= 0: the number of CPUs online; then clamped to [1, max]
 * (max <= 0: TKMI_MAX_THREADS). */
int tkmi_thread_count(int requested, int max);

/* Runs fn on each of n jobs (job_size bytes apart; at most TKMI_MAX_THREADS),
 * jobs 1.. on threads of their own and job 0 on the caller's thread; a job
 * whose thread cannot start runs on the caller's thread afterwards. Each job
 * records its result in the int at rc_offset (negative: failed, with its
 * thread's tkm_last_error()); the message of the lowest-numbered failed job
 * becomes the caller's tkm_last_error(). */
void tkmi_par_jobs(void *jobs, int n, size_t job_size, size_t rc_offset, void *(*fn)(void *));

#endif
