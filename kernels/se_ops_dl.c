/* se_ops_dl.c - the CUDA backend, opened on demand: tokenmill-cuda.so (built
 * from se_ops_cuda.cu where nvcc exists) is loaded with dlopen the first time
 * a GPU run is asked for, so no other command pays for loading cuBLAS.
 * Search order: $TKM_CUDA_MODULE, the installed module in pkglibdir, the one
 * in the build tree. */
#include "se_ops.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/tkm_internal.h"
#include "tokenmill.h"

typedef int (*err_fn)(int code, const char *fmt, ...);
typedef int (*create_fn)(int device, tkmi_se_backend **out, err_fn report);
typedef void (*tf32_fn)(tkmi_se_backend *be, int on);

static tf32_fn g_tf32;

#ifdef TKM_CUDA_MODULE
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static create_fn g_create;
static char g_why[512];

static int try_open(const char *path)
{
    if (!path || !*path || access(path, R_OK) != 0)
        return 0;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL); /* kept open: backends point into it */
    if (!h) {
        const char *e = dlerror();
        snprintf(g_why, sizeof(g_why), "cannot load %s: %s", path, e ? e : "?");
        return 0;
    }
    g_create = (create_fn)(uintptr_t)dlsym(h, "tkmi_se_cuda_module_create");
    g_tf32 = (tf32_fn)(uintptr_t)dlsym(h, "tkmi_se_cuda_module_set_tf32");
    if (!g_create) {
        snprintf(g_why, sizeof(g_why), "%s is not a tokenmill CUDA module", path);
        return 0;
    }
    return 1;
}
#endif

int tkmi_se_backend_cuda(int device, tkmi_se_backend **out)
{
    *out = NULL;
#ifndef TKM_CUDA_MODULE
    (void)device;
    return tkmi_error(TKM_ENOTSUP, "this tokenmill was built without CUDA");
#else
    pthread_mutex_lock(&g_lock);
    if (!g_create) {
        snprintf(g_why, sizeof(g_why), "the CUDA module (tokenmill-cuda.so) was not found; set TKM_CUDA_MODULE");
        if (!try_open(getenv("TKM_CUDA_MODULE")) && !try_open(TKM_CUDA_MODULE_DIR "/tokenmill-cuda.so"))
            try_open(TKM_CUDA_MODULE_BUILD);
    }
    create_fn create = g_create;
    pthread_mutex_unlock(&g_lock);
    if (!create)
        return tkmi_error(TKM_ENOTSUP, "%s", g_why);
    return create(device, out, tkmi_error);
#endif
}

void tkmi_se_backend_cuda_set_tf32(tkmi_se_backend *be, int on)
{
    if (be && g_tf32 && strcmp(be->name, "cuda") == 0)
        g_tf32(be, on);
}
