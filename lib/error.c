/* error.c - error codes, thread-local error messages and the allocation
 * wrappers every module uses. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tkm_internal.h"

static _Thread_local char tkmi_errbuf[1024];

int tkmi_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tkmi_errbuf, sizeof tkmi_errbuf, fmt, ap);
    va_end(ap);
    return code;
}

const char *tkm_last_error(void) { return tkmi_errbuf; }

const char *tkm_strerror(int code)
{
    switch (code) {
    case TKM_OK: return "success";
    case TKM_ENOMEM: return "out of memory";
    case TKM_EIO: return "input/output error";
    case TKM_EFORMAT: return "malformed input";
    case TKM_EINVAL: return "invalid argument";
    case TKM_ENOTSUP: return "not supported";
    case TKM_ERANGE: return "out of range";
    case TKM_EEMPTY: return "no usable input";
    case TKM_EVOCAB: return "vocabulary size cannot be reached";
    default: return "unknown error";
    }
}

void *tkmi_malloc(size_t n) { return malloc(n ? n : 1); }
void *tkmi_calloc(size_t n, size_t size) { return calloc(n ? n : 1, size ? size : 1); }
/* Zeroed memory whose pages are written now. calloc's fresh pages map the
 * shared zero page on the first read; the first write after that copies the
 * page and flushes the TLB of every core running a thread of the process
 * (an interrupt each): a hash table that is probed before it is filled paid
 * this once per page, 18% of the counting threads' time. */
void *tkmi_calloc_touched(size_t n, size_t size)
{
    char *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) return NULL;
    /* one volatile write per page (GCC turns malloc + memset into calloc) */
    size_t bytes = (n ? n : 1) * (size ? size : 1);
    for (size_t i = 0; i < bytes; i += 4096) ((volatile char *)p)[i] = 0;
    return p;
}
void *tkmi_realloc(void *p, size_t n) { return realloc(p, n ? n : 1); }
void tkmi_free(void *p) { free(p); }
void tkm_free(void *p) { free(p); }

char *tkmi_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = tkmi_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int tkmi_grow(void **p, size_t *cap, size_t need, size_t es)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) nc += nc / 2 + 16;
    void *np = tkmi_realloc(*p, nc * es);
    if (!np) return tkmi_error(TKM_ENOMEM, "out of memory (%zu bytes)", nc * es);
    *p = np;
    *cap = nc;
    return 0;
}

double tkmi_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
