#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "kernels/check.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/mem_track.h"

static void *cpu_alloc(size_t bytes, const char *what)
{
    void *p = mallocCheck(bytes, what);
    mem_track_add(p, bytes);
    return p;
}

static void cpu_free(void *p)
{
    mem_track_remove(p);
    free(p);
}

static void cpu_synchronize(void) {}

static void cpu_copy(void *dst, const void *src, size_t bytes)
{
    memcpy(dst, src, bytes);
}

static void cpu_weight_upload(void *dst, const void *src, elem_type type, size_t count)
{
    elems_to_f32(dst, src, type, count);
}

static void cpu_act_upload(void *dst, const float *src, size_t count)
{
    memcpy(dst, src, sizeof(float) * count);
}

static void cpu_act_download(float *dst, const void *src, size_t count)
{
    memcpy(dst, src, sizeof(float) * count);
}

static void cpu_kv_write(void *k_dst, void *v_dst, const float *k, const float *v, size_t count)
{
    memcpy(k_dst, k, sizeof(float) * count);
    memcpy(v_dst, v, sizeof(float) * count);
}

/* Host memory this node could still give, from the kernel's MemAvailable. */
/* The CPU's operations work in the caller's buffers. */
static size_t cpu_scratch_bytes(int n, int widest, int q_dim)
{
    (void)n;
    (void)widest;
    (void)q_dim;
    return 0;
}

static size_t cpu_mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    size_t kib = 0;
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %zu kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib ? kib * 1024 : (size_t)-1;
}

static const backend cpu_backend = {
    .name = "cpu",
    .host_memory = 1,
    .weight_size = sizeof(float),
    .kv_size = sizeof(float),
    .act_size = sizeof(float),
    .mem_available = cpu_mem_available,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .host_alloc = cpu_alloc,
    .host_free = cpu_free,
    .to_device = cpu_copy,
    .to_host = cpu_copy,
    .to_device_async = cpu_copy,
    .to_host_async = cpu_copy,
    .weight_upload = cpu_weight_upload,
    .act_upload = cpu_act_upload,
    .act_download = cpu_act_download,
    .kv_write = cpu_kv_write,
    .embedding = cpu_embedding,
    .rmsnorm = cpu_rmsnorm,
    .matmul = cpu_matmul,
    .matmul_logits = cpu_matmul_logits,
    .matmul_add = cpu_matmul_add,
    .qkv = cpu_qkv,
    .matmul_swiglu = cpu_matmul_swiglu,
    .mlp = cpu_mlp,
    .attn_init = cpu_attn_init,
    .attn_accumulate = cpu_attn_accumulate,
    .attn_finalize = cpu_attn_finalize,
    .attend_project = cpu_attend_project,
    .weight_random = cpu_weight_random,
    .synchronize = cpu_synchronize,
    .mem_peak = mem_track_peak,
    .mem_peak_reset = mem_track_reset_peak,
    .scratch_bytes = cpu_scratch_bytes,
    .matmul_rate = cpu_matmul_rate,
    .copy_rate = cpu_copy_rate,
    .device_name = cpu_device_name,
    .sample = cpu_sample,
};

const backend *backend_cpu(void)
{
    return &cpu_backend;
}

#ifndef STARINFER_HAVE_CUDA
/* Built without the CUDA toolkit: there is no CUDA backend to start. */
const backend *backend_cuda(int device, cuda_precision precision, char *err, size_t err_len)
{
    (void)precision;
    snprintf(err, err_len,
             "device %d: this starinfer was built without CUDA (no toolkit found "
             "at build time)",
             device);
    return NULL;
}

int backend_cuda_device_count(void)
{
    return 0;
}

int backend_cuda_pci_bus_id(int device, char *buf, size_t len)
{
    (void)device;
    (void)buf;
    (void)len;
    return -1;
}

int backend_cuda_cudnn_version(void)
{
    return 0;
}
#endif
