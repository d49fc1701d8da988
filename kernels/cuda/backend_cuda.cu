/* The CUDA backend: one GPU per process, bf16 weights, KV cache and activations around an fp32
 * residual stream; or, in the fp32 precision, everything in fp32 with every product in fp32, as
 * the CPU computes. Memory
 * and copies go through checked CUDA calls; the operations live one per file beside this. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/convert.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#ifdef STARINFER_HAVE_CUDNN
#include "kernels/cuda/cudnn_api.h"
#endif
#include "kernels/mem_track.h"

static void *scratch[SCRATCH_COUNT];
static size_t scratch_bytes[SCRATCH_COUNT];

void *cuda_scratch(int slot, size_t bytes)
{
    if (bytes > scratch_bytes[slot]) {
        cudaCheck(cudaDeviceSynchronize()); /* the old buffer may still be read */
        mem_track_remove(scratch[slot]);
        cudaCheck(cudaFree(scratch[slot]));
        size_t grown = bytes + bytes / 4;
        cudaCheck(cudaMalloc(&scratch[slot], grown));
        mem_track_add(scratch[slot], grown);
        scratch_bytes[slot] = grown;
    }
    return scratch[slot];
}

/* Each forward pass uploads its token ids and positions first. A cudaMemcpy from pageable memory
 * would wait for all the work queued before it, so the host could never run ahead of the GPU:
 * at every chunk the GPU would drain, then idle while the host built the next chunk's cuDNN plan
 * (about 50 ms on a first request) or launched its first kernels. Instead the ints go through a
 * pinned staging buffer per slot, copied in order with the operations; the staging is reused
 * once its previous copy has been made, which keeps the host at most a pass or two ahead. */
const int *cuda_upload_ints(int slot, const int *host, int n)
{
    static int *staging[SCRATCH_COUNT];
    static size_t staged[SCRATCH_COUNT]; /* ints of room */
    static cudaEvent_t copied[SCRATCH_COUNT];
    size_t count = (size_t)(n > 0 ? n : 1);
    int *dev = (int *)cuda_scratch(slot, sizeof(int) * count);
    if (!copied[slot])
        cudaCheck(cudaEventCreateWithFlags(&copied[slot], cudaEventDisableTiming));
    cudaCheck(cudaEventSynchronize(copied[slot])); /* the staging's last copy is made */
    if (count > staged[slot]) {
        if (staging[slot])
            cudaCheck(cudaFreeHost(staging[slot]));
        staged[slot] = count + count / 4;
        cudaCheck(cudaMallocHost((void **)&staging[slot], sizeof(int) * staged[slot]));
    }
    memcpy(staging[slot], host, sizeof(int) * (size_t)n);
    cudaCheck(
        cudaMemcpyAsync(dev, staging[slot], sizeof(int) * (size_t)n, cudaMemcpyHostToDevice, 0));
    cudaCheck(cudaEventRecord(copied[slot], 0));
    return dev;
}

/* The query, key and value products in bf16 before their rotation (SCRATCH_QKV: at most
 * 3 * Q_DIM per row), cuDNN attention's bf16 output and its statistics (at most one float per 16
 * query values: head_dim >= 16), and 8 MiB for the rest (split partials, cuDNN's workspace,
 * sampling), each grown by a quarter as cuda_scratch grows them. */
static size_t cuda_scratch_bytes(int n, int widest, int q_dim)
{
    (void)widest;
    size_t rows = (size_t)(n > 0 ? n : 1);
    size_t bytes = rows * q_dim * 3 * 2 + rows * q_dim * 2 + rows * q_dim / 16 * 4;
    return bytes + bytes / 4 + (8u << 20);
}

/* Activations to and from the host: rounded to bf16 there, or fp32 as they are. */
static void cuda_act_copy_in(void *dst, const float *src, size_t count, size_t act_size)
{
    if (act_size == sizeof(float)) {
        cudaCheck(cudaMemcpy(dst, src, sizeof(float) * count, cudaMemcpyHostToDevice));
        return;
    }
    uint16_t *h = (uint16_t *)mallocCheck(sizeof(uint16_t) * (count ? count : 1), "activations");
    f32_to_bf16_array(h, src, count);
    cudaCheck(cudaMemcpy(dst, h, sizeof(uint16_t) * count, cudaMemcpyHostToDevice));
    free(h);
}

static void cuda_act_copy_out(float *dst, const void *src, size_t count, size_t act_size)
{
    if (act_size == sizeof(float)) {
        cudaCheck(cudaMemcpy(dst, src, sizeof(float) * count, cudaMemcpyDeviceToHost));
        return;
    }
    uint16_t *h = (uint16_t *)mallocCheck(sizeof(uint16_t) * (count ? count : 1), "activations");
    cudaCheck(cudaMemcpy(h, src, sizeof(uint16_t) * count, cudaMemcpyDeviceToHost));
    bf16_to_f32_array(dst, h, count);
    free(h);
}

void cuda_act_upload(void *dst, const float *src, size_t count)
{
    cuda_act_copy_in(dst, src, count, 2);
}

void cuda_act_download(float *dst, const void *src, size_t count)
{
    cuda_act_copy_out(dst, src, count, 2);
}

static void cuda_act_upload_f32(void *dst, const float *src, size_t count)
{
    cuda_act_copy_in(dst, src, count, sizeof(float));
}

static void cuda_act_download_f32(float *dst, const void *src, size_t count)
{
    cuda_act_copy_out(dst, src, count, sizeof(float));
}

static size_t cuda_mem_available(void)
{
    size_t free_bytes = 0, total = 0;
    cudaCheck(cudaMemGetInfo(&free_bytes, &total));
    return free_bytes;
}

static void *cuda_alloc(size_t bytes, const char *what)
{
    void *p = NULL;
    cudaError_t rc = cudaMalloc(&p, bytes ? bytes : 1);
    if (rc != cudaSuccess) {
        int dev = -1;
        cudaGetDevice(&dev);
        si_fatal("cannot allocate %.1f MiB on GPU %d for %s: %s\n"
                 "  HINT: use more GPUs, a smaller --block-size or --chunk",
                 bytes / 1048576.0, dev, what, cudaGetErrorString(rc));
    }
    mem_track_add(p, bytes);
    return p;
}

static void cuda_free(void *p)
{
    mem_track_remove(p);
    cudaCheck(cudaFree(p));
}

static void cuda_synchronize(void)
{
    cudaCheck(cudaDeviceSynchronize());
}

static void *cuda_host_alloc(size_t bytes, const char *what)
{
    void *p = NULL;
    if (cudaMallocHost(&p, bytes ? bytes : 1) != cudaSuccess)
        si_fatal("cannot allocate %.1f MiB of pinned host memory for %s", bytes / 1048576.0, what);
    return p;
}

static void cuda_host_free(void *p)
{
    cudaCheck(cudaFreeHost(p));
}

static void cuda_to_device(void *dst, const void *src, size_t bytes)
{
    cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

static void cuda_to_host(void *dst, const void *src, size_t bytes)
{
    cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

/* On the stream the operations run on; from or to pinned memory, so the call returns at once. */
static void cuda_to_device_async(void *dst, const void *src, size_t bytes)
{
    cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, 0));
}

static void cuda_to_host_async(void *dst, const void *src, size_t bytes)
{
    cudaCheck(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, 0));
}

/* The fp32 precision's scratch: the query, key and value products before their rotation, and
 * 8 MiB for the split partials and sampling (no cuDNN). */
static size_t cuda_scratch_bytes_f32(int n, int widest, int q_dim)
{
    (void)widest;
    size_t bytes = (size_t)(n > 0 ? n : 1) * q_dim * 3 * sizeof(float);
    return bytes + bytes / 4 + (8u << 20);
}

static backend cuda_backend = {
    .name = "cuda",
    .host_memory = 0,
    .weight_size = 2,
    .kv_size = 2,
    .act_size = 2,
    .mem_available = cuda_mem_available,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .host_alloc = cuda_host_alloc,
    .host_free = cuda_host_free,
    .to_device = cuda_to_device,
    .to_host = cuda_to_host,
    .to_device_async = cuda_to_device_async,
    .to_host_async = cuda_to_host_async,
    .weight_upload = cuda_weight_upload,
    .act_upload = cuda_act_upload,
    .act_download = cuda_act_download,
    .kv_write = cuda_kv_write,
    .embedding = cuda_embedding,
    .rmsnorm = cuda_rmsnorm,
    .matmul = cuda_matmul,
    .matmul_logits = cuda_matmul_logits,
    .matmul_add = cuda_matmul_add,
    .qkv = cuda_qkv,
    .matmul_swiglu = cuda_matmul_swiglu,
    .mlp = cuda_mlp,
    .attn_init = cuda_attn_init,
    .attn_accumulate = cuda_attn_accumulate,
    .attn_finalize = cuda_attn_finalize,
    .attend_project = cuda_attend_project,
    .weight_random = cuda_weight_random,
    .synchronize = cuda_synchronize,
    .mem_peak = mem_track_peak,
    .mem_peak_reset = mem_track_reset_peak,
    .scratch_bytes = cuda_scratch_bytes,
    .matmul_rate = cuda_matmul_rate,
    .copy_rate = cuda_copy_rate,
    .prepare = cuda_prepare,
    .prepare_wait = cuda_prepare_wait,
    .device_name = cuda_device_name,
    .sample = cuda_sample,
};

extern "C" int backend_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* no driver or no GPU: clear the sticky error */
        return 0;
    }
    return n;
}

extern "C" int backend_cuda_pci_bus_id(int device, char *buf, size_t len)
{
    return cudaDeviceGetPCIBusId(buf, (int)len, device) == cudaSuccess ? 0 : -1;
}

extern "C" int backend_cuda_cudnn_version(void)
{
#ifdef STARINFER_HAVE_CUDNN
    const cudnn_api *api = cudnn_api_get();
    return api ? (int)api->version : 0;
#else
    return 0;
#endif
}

/* The bf16 backend with the slots that read or write weights, the KV cache or activations in
 * fp32. */
static backend fp32_backend(void)
{
    backend b = cuda_backend;
    b.name = "cuda-fp32";
    b.weight_size = sizeof(float);
    b.kv_size = sizeof(float);
    b.act_size = sizeof(float);
    b.weight_upload = cuda_weight_upload_f32;
    b.prepare = cuda_prepare_f32;
    b.act_upload = cuda_act_upload_f32;
    b.act_download = cuda_act_download_f32;
    b.kv_write = cuda_kv_write_f32;
    b.embedding = cuda_embedding_f32;
    b.rmsnorm = cuda_rmsnorm_f32;
    b.matmul = cuda_matmul_f32;
    b.matmul_logits = cuda_matmul_logits_f32;
    b.matmul_add = cuda_matmul_add_f32;
    b.qkv = cuda_qkv_f32;
    b.matmul_swiglu = cuda_matmul_swiglu_f32;
    b.mlp = cuda_mlp_f32;
    b.attn_accumulate = cuda_attn_accumulate_f32;
    b.attn_finalize = cuda_attn_finalize_f32;
    b.attend_project = cuda_attend_project_f32;
    b.weight_random = cuda_weight_random_f32;
    b.scratch_bytes = cuda_scratch_bytes_f32;
    b.matmul_rate = cuda_matmul_rate_f32;
    return b;
}

extern "C" const backend *backend_cuda(int device, cuda_precision precision, char *err,
                                       size_t err_len)
{
    static int started = -1;
    static cuda_precision started_precision;
    static backend fp32;
    static const backend *be = &cuda_backend;
    if (started == device && started_precision == precision)
        return be;
    if (started >= 0) {
        snprintf(err, err_len, "this process already runs on GPU %d in %s", started,
                 started_precision == CUDA_FP32 ? "fp32" : "bf16");
        return NULL;
    }
    cudaError_t rc = cudaSetDevice(device);
    if (rc == cudaSuccess)
        rc = cudaFree(0); /* create the context now, so that a broken device shows here */
    if (rc != cudaSuccess) {
        snprintf(err, err_len, "cannot start GPU %d: %s", device, cudaGetErrorString(rc));
        return NULL;
    }
    cuda_gemm_init();
    started = device;
    started_precision = precision;
    fp32 = fp32_backend();
    be = cuda_op_profile_wrap(precision == CUDA_FP32 ? &fp32 : &cuda_backend);
    return be;
}
