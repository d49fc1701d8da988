/* fp32 -> bf16 (round to nearest even) on the device: the gated rows of a one-token MLP where the
 * GEMV does not fit, and kv_write's keys and values (kept in fp32 in the fp32 precision; the
 * model writes its keys and values through qkv, benchmarks and tests through kv_write). */
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/overlap.cuh"
#include "kernels/cuda/weight_format.cuh"

__global__ void f32_to_bf16_kernel(__nv_bfloat16 *dst, const float *src, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(src[i]);
}

static int grid_for(size_t n)
{
    size_t blocks = (n + 255) / 256;
    return (int)(blocks < 65536 ? (blocks ? blocks : 1) : 65536);
}

void cuda_f32_to_bf16(__nv_bfloat16 *dst, const float *src, size_t n)
{
    f32_to_bf16_kernel<<<grid_for(n), 256>>>(dst, src, n);
    cudaCheckLaunch("f32_to_bf16");
}

template <typename W>
__global__ void kv_write_kernel(W *k_dst, W *v_dst, const float *k, const float *v, size_t n)
{
    overlap_release();
    overlap_wait();
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        k_dst[i] = from_f32<W>(k[i]);
        v_dst[i] = from_f32<W>(v[i]);
    }
}

/* Keys and values in one launch. */
void cuda_kv_write(void *k_dst, void *v_dst, const float *k, const float *v, size_t count)
{
    launch_overlapped("kv_write", kv_write_kernel<__nv_bfloat16>, grid_for(count), 256, 0,
                      (__nv_bfloat16 *)k_dst, (__nv_bfloat16 *)v_dst, k, v, count);
}

void cuda_kv_write_f32(void *k_dst, void *v_dst, const float *k, const float *v, size_t count)
{
    launch_overlapped("kv_write", kv_write_kernel<float>, grid_for(count), 256, 0, (float *)k_dst,
                      (float *)v_dst, k, v, count);
}
