/* error.c - error codes, thread-local error messages and the allocation
 * wrappers every module uses. */
#include <stdatomic.h>
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
    case TKM_ETIES: return "exact score ties would resolve differently";
    default: return "unknown error";
    }
}

/* Allocation-failure injection for tests (tkmi_alloc_fail_at): while armed,
 * every allocation through these wrappers is numbered (1, 2, ...) and the
 * chosen one returns NULL; live blocks are counted so a test can see that a
 * failed call freed what it had taken. Disarmed (the normal case) it costs
 * one relaxed atomic load per allocation. */
static _Atomic int hook_on;
static _Atomic long hook_count, hook_fail_at, hook_live, hook_failed;

void tkmi_alloc_fail_at(long n)
{
    atomic_store(&hook_count, 0);
    atomic_store(&hook_failed, 0);
    atomic_store(&hook_fail_at, n);
    atomic_store(&hook_live, 0);
    atomic_store(&hook_on, 1);
}

void tkmi_alloc_hook_off(void) { atomic_store(&hook_on, 0); }
long tkmi_alloc_count(void) { return atomic_load(&hook_count); }
long tkmi_alloc_failed(void) { return atomic_load(&hook_failed); }
long tkmi_alloc_live(void) { return atomic_load(&hook_live); }

/* 1 when this allocation is to fail (the hook is armed and it is number n). */
static int hook_fails(void)
{
    if (TKMI_LIKELY(!atomic_load_explicit(&hook_on, memory_order_relaxed))) return 0;
    long k = atomic_fetch_add(&hook_count, 1) + 1;
    if (k == atomic_load(&hook_fail_at)) {
        atomic_fetch_add(&hook_failed, 1);
        return 1;
    }
    return 0;
}

static void *hook_took(void *p)
{
    if (p && atomic_load_explicit(&hook_on, memory_order_relaxed)) atomic_fetch_add(&hook_live, 1);
    return p;
}

void *tkmi_malloc(size_t n) { return hook_fails() ? NULL : hook_took(malloc(n ? n : 1)); }
void *tkmi_calloc(size_t n, size_t size)
{
    return hook_fails() ? NULL : hook_took(calloc(n ? n : 1, size ? size : 1));
}
/* Zeroed memory whose pages are written now. calloc's fresh pages map the
 * shared zero page on the first read; the first write after that copies the
 * page and flushes the TLB of every core running a thread of the process
 * (an interrupt each): a hash table that is probed before it is filled paid
 * this once per page, 18% of the counting threads' time. */
void *tkmi_calloc_touched(size_t n, size_t size)
{
    char *p = tkmi_calloc(n, size);
    if (!p) return NULL;
    /* one volatile write per page (GCC turns malloc + memset into calloc) */
    size_t bytes = (n ? n : 1) * (size ? size : 1);
    for (size_t i = 0; i < bytes; i += 4096) ((volatile char *)p)[i] = 0;
    return p;
}
void *tkmi_realloc(void *p, size_t n)
{
    if (hook_fails()) return NULL;
    void *np = realloc(p, n ? n : 1);
    return p ? np : hook_took(np);
}
void tkmi_free(void *p)
{
    if (p && atomic_load_explicit(&hook_on, memory_order_relaxed)) atomic_fetch_sub(&hook_live, 1);
    free(p);
}
void tkm_free(void *p) { tkmi_free(p); }

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
