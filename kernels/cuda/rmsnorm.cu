/* HF LlamaRMSNorm in fp32: x * rsqrt(mean(x^2) + eps) * w, one block per row of the fp32
 * residual stream X; a few rows (decoding) get blocks of 1024 threads, so that one row's loads are
 * not a long series. W and the normed rows are bf16, or fp32 in the fp32 precision: the normed
 * rows are rounded once, as the products read them. (The residual adds are the products' own:
 * cuda_matmul_add.)
 *
 * Where a row is a whole number of four-value groups per thread (4096 values over 256 or 1024
 * threads), the bf16 form keeps the row in registers and moves it in 16-byte pieces: one read of
 * X, one write of the normed row (bench/NOTES.md entry 14). Other rows take the general form,
 * which reads X twice (the second time from the cache). */
#include <stdint.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/overlap.cuh"
#include "kernels/cuda/weight_format.cuh"

typedef __nv_bfloat16 bf16;

/* The block's sum of every thread's SS. */
static __device__ __forceinline__ float block_sum(float ss)
{
    __shared__ float partial[32];
    for (int off = 16; off > 0; off >>= 1)
        ss += __shfl_xor_sync(0xffffffffu, ss, off);
    if ((threadIdx.x & 31) == 0)
        partial[threadIdx.x >> 5] = ss;
    __syncthreads();
    if (threadIdx.x < 32) {
        ss = threadIdx.x < (blockDim.x >> 5) ? partial[threadIdx.x] : 0.0f;
        for (int off = 16; off > 0; off >>= 1)
            ss += __shfl_xor_sync(0xffffffffu, ss, off);
        if (threadIdx.x == 0)
            partial[0] = ss;
    }
    __syncthreads();
    return partial[0];
}

template <typename W, typename A>
__global__ void rmsnorm_kernel(A *out, const float *x, const W *w, int dim, float eps)
{
    overlap_release();
    overlap_wait();
    const float *xr = x + (size_t)blockIdx.x * dim;
    float ss = 0.0f;
    for (int c = threadIdx.x; c < dim; c += blockDim.x)
        ss += xr[c] * xr[c];
    float inv = rsqrtf(block_sum(ss) / dim + eps);
    for (int c = threadIdx.x; c < dim; c += blockDim.x)
        out[(size_t)blockIdx.x * dim + c] = from_f32<A>(to_f32(w[c]) * (xr[c] * inv));
}

/* Four bf16 values from their 8 bytes, and back. */
static __device__ __forceinline__ float4 bf16x4_to_f32(uint2 v)
{
    float2 a = __bfloat1622float2(*(const __nv_bfloat162 *)&v.x),
           b = __bfloat1622float2(*(const __nv_bfloat162 *)&v.y);
    return make_float4(a.x, a.y, b.x, b.y);
}

static __device__ __forceinline__ uint2 f32_to_bf16x4(float4 v)
{
    __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
    uint2 r;
    r.x = *(const unsigned *)&lo;
    r.y = *(const unsigned *)&hi;
    return r;
}

/* A row of G * 4 * blockDim.x values, thread t holding groups t, t + blockDim.x, ... */
template <int G>
__global__ void rmsnorm_rows_kernel(bf16 *out, const float *x, const bf16 *w, int dim, float eps)
{
    overlap_release();
    overlap_wait();
    const float4 *xr = (const float4 *)(x + (size_t)blockIdx.x * dim);
    float4 v[G];
    float ss = 0.0f;
#pragma unroll
    for (int g = 0; g < G; g++) {
        v[g] = xr[g * blockDim.x + threadIdx.x];
        ss += v[g].x * v[g].x + v[g].y * v[g].y + v[g].z * v[g].z + v[g].w * v[g].w;
    }
    float inv = rsqrtf(block_sum(ss) / dim + eps);
    const uint2 *wr = (const uint2 *)w;
    uint2 *orow = (uint2 *)(out + (size_t)blockIdx.x * dim);
#pragma unroll
    for (int g = 0; g < G; g++) {
        int i = g * blockDim.x + threadIdx.x;
        float4 wv = bf16x4_to_f32(wr[i]);
        orow[i] = f32_to_bf16x4(make_float4(wv.x * (v[g].x * inv), wv.y * (v[g].y * inv),
                                            wv.z * (v[g].z * inv), wv.w * (v[g].w * inv)));
    }
}

static int threads_for(int n)
{
    return n < 64 ? 1024 : 256;
}

void cuda_rmsnorm(void *out, const float *x, const void *w, int n, int dim, float eps)
{
    int threads = threads_for(n), groups = dim % (4 * threads) ? 0 : dim / (4 * threads);
    int aligned = ((uintptr_t)x % 16 | (uintptr_t)w % 8 | (uintptr_t)out % 8) == 0;
    bf16 *o = (bf16 *)out;
    const bf16 *wb = (const bf16 *)w;
    if (aligned && groups == 1)
        launch_overlapped("rmsnorm", rmsnorm_rows_kernel<1>, n, threads, 0, o, x, wb, dim, eps);
    else if (aligned && groups == 2)
        launch_overlapped("rmsnorm", rmsnorm_rows_kernel<2>, n, threads, 0, o, x, wb, dim, eps);
    else if (aligned && groups == 4)
        launch_overlapped("rmsnorm", rmsnorm_rows_kernel<4>, n, threads, 0, o, x, wb, dim, eps);
    else if (aligned && groups == 8)
        launch_overlapped("rmsnorm", rmsnorm_rows_kernel<8>, n, threads, 0, o, x, wb, dim, eps);
    else
        launch_overlapped("rmsnorm", rmsnorm_kernel<bf16, bf16>, n, threads, 0, o, x, wb, dim, eps);
}

void cuda_rmsnorm_f32(void *out, const float *x, const void *w, int n, int dim, float eps)
{
    launch_overlapped("rmsnorm", rmsnorm_kernel<float, float>, n, threads_for(n), 0, (float *)out,
                      x, (const float *)w, dim, eps);
}
