#include <stdlib.h>
#include <string.h>

#include "kernels/check.h"
#include "kernels/cpu/cpu_ops.h"

static void *cpu_alloc(size_t bytes, const char *what)
{
    return mallocCheck(bytes, what);
}

static void cpu_copy(void *dst, const void *src, size_t bytes)
{
    memcpy(dst, src, bytes);
}

static const backend cpu_backend = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = free,
    .to_device = cpu_copy,
    .to_host = cpu_copy,
    .copy = cpu_copy,
    .embedding = cpu_embedding,
    .rmsnorm = cpu_rmsnorm,
    .matmul = cpu_matmul,
    .rope = cpu_rope,
    .swiglu = cpu_swiglu,
    .add = cpu_add,
    .attn_init = cpu_attn_init,
    .attn_accumulate = cpu_attn_accumulate,
    .attn_finalize = cpu_attn_finalize,
};

const backend *backend_cpu(void)
{
    return &cpu_backend;
}
