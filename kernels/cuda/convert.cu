/* Conversions on the device, rounding to nearest even: fp32 -> bf16 for the gated rows of a
 * one-token MLP where the GEMV does not fit, and kv_write's keys and values (kept in fp32 in the
 * fp32 precision; the model writes its keys and values through qkv, benchmarks and tests through
 * kv_write); F16 -> bf16 in place for an F16 checkpoint's weights (weight_upload.cu). */
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

/* The host's f32_to_bf16(f16_to_f32(H)) bit for bit (kernels/convert.c), NaN payloads included. */
__device__ static uint16_t f16_bits_to_bf16(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, x;
    if (exp == 0) /* zero or subnormal: man * 2^-24, exact in fp32 */
        x = sign | __float_as_uint((float)man * 0x1p-24f);
    else if (exp == 31) /* infinity or NaN */
        x = sign | 0x7f800000u | (man << 13);
    else
        x = sign | ((exp + 127 - 15) << 23) | (man << 13);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: keep sign and top payload, force quiet */
        return (uint16_t)((x >> 16) | 0x0040);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

__global__ void f16_to_bf16_inplace_kernel(uint16_t *v, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        v[i] = f16_bits_to_bf16(v[i]);
}

void cuda_f16_to_bf16_inplace(void *v, size_t n)
{
    f16_to_bf16_inplace_kernel<<<grid_for(n), 256>>>((uint16_t *)v, n);
    cudaCheckLaunch("f16_to_bf16_inplace");
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
