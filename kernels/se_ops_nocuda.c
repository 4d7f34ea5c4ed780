/* se_ops_nocuda.c - the CUDA entry points in a build without CUDA: they say so. */
#include "se_ops.h"

#include "../lib/tkm_internal.h"
#include "tokenmill.h"

int tkmi_se_backend_cuda(int device, tkmi_se_backend **out)
{
    (void)device;
    *out = NULL;
    return tkmi_error(TKM_ENOTSUP, "this tokenmill was built without CUDA");
}

void tkmi_se_backend_cuda_set_tf32(tkmi_se_backend *be, int on)
{
    (void)be;
    (void)on;
}
