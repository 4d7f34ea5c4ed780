/* skip.h - visible skips for Check suites: a test whose fixture (a reference
 * model, the MiniLM teacher, a GPU) is missing is not added to its TCase but
 * listed with the reason, and skip_report() prints the count at the end, so
 * a run never PASSes a test that checked nothing without saying so.
 * Header-only: each suite includes it once. */
#ifndef TKM_TESTS_SKIP_H
#define TKM_TESTS_SKIP_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int skip_count;

/* Adds test tf to tc when ok; else prints "SKIP: tf: why" and counts it. */
#define ADD_TEST_IF(tc, tf, ok, why)                                     \
    do {                                                                 \
        if (ok) tcase_add_test(tc, tf);                                  \
        else {                                                           \
            fprintf(stderr, "SKIP: %s: %s\n", #tf, (why));               \
            skip_count++;                                                \
        }                                                                \
    } while (0)

/* Adds tf when the file at path (a fixture_path) is readable. */
#define ADD_TEST_IF_FILE(tc, tf, path)                                           \
    do {                                                                         \
        const char *p_ = (path);                                                 \
        char why_[4200];                                                         \
        snprintf(why_, sizeof why_, "%s absent", p_);                            \
        ADD_TEST_IF(tc, tf, readable(p_), why_);                                 \
    } while (0)

/* $env/rel, or dflt/rel when env is unset (static buffer, one at a time). */
static inline const char *fixture_path(const char *env, const char *dflt, const char *rel)
{
    static char buf[4096];
    const char *dir = getenv(env);
    snprintf(buf, sizeof buf, "%s/%s", dir && *dir ? dir : dflt, rel);
    return buf;
}

static inline int readable(const char *path) { return access(path, R_OK) == 0; }

/* After srunner_run_all: the count of tests not run, on stdout and stderr. */
static void skip_report(const char *prog)
{
    if (!skip_count) return;
    printf("%s: %d test%s SKIPPED (see the SKIP lines above)\n", prog, skip_count,
           skip_count > 1 ? "s" : "");
    fprintf(stderr, "%s: %d test%s SKIPPED\n", prog, skip_count, skip_count > 1 ? "s" : "");
}

#endif
