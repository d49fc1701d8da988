/* HF LlamaRMSNorm in fp32: x * rsqrt(mean(x^2) + eps) * w, one block per row; a few rows
 * (decoding) get blocks of 1024 threads, so that one row's loads are not a long series. The
 * residual form first adds DELTA into X (in place) and normalises the sum. W is bf16, or fp32 in
 * the fp32 precision. */
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/overlap.cuh"
#include "kernels/cuda/weight_format.cuh"

template <bool ADD, typename W>
__global__ void rmsnorm_kernel(float *out, float *x, const float *delta, const W *w, int dim,
                               float eps)
{
    overlap_release();
    overlap_wait();
    float *xr = x + (size_t)blockIdx.x * dim;
    const float *dr = delta + (size_t)blockIdx.x * dim;
    float ss = 0.0f;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        float v = xr[c];
        if (ADD) {
            v += dr[c];
            xr[c] = v;
        }
        ss += v * v;
    }
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
    float inv = rsqrtf(partial[0] / dim + eps);
    /* each thread rewrites only the elements it read above: OUT may alias DELTA */
    for (int c = threadIdx.x; c < dim; c += blockDim.x)
        out[(size_t)blockIdx.x * dim + c] = to_f32(w[c]) * (xr[c] * inv);
}

static int threads_for(int n)
{
    return n < 64 ? 1024 : 256;
}

void cuda_rmsnorm(float *out, const float *x, const void *w, int n, int dim, float eps)
{
    launch_overlapped("rmsnorm", rmsnorm_kernel<false, __nv_bfloat16>, n, threads_for(n), 0, out,
                      (float *)x, x, (const __nv_bfloat16 *)w, dim, eps);
}

void cuda_add_rmsnorm(float *out, float *x, const float *delta, const void *w, int n, int dim,
                      float eps)
{
    launch_overlapped("add_rmsnorm", rmsnorm_kernel<true, __nv_bfloat16>, n, threads_for(n), 0, out,
                      x, delta, (const __nv_bfloat16 *)w, dim, eps);
}

void cuda_rmsnorm_f32(float *out, const float *x, const void *w, int n, int dim, float eps)
{
    launch_overlapped("rmsnorm", rmsnorm_kernel<false, float>, n, threads_for(n), 0, out,
                      (float *)x, x, (const float *)w, dim, eps);
}

void cuda_add_rmsnorm_f32(float *out, float *x, const float *delta, const void *w, int n, int dim,
                          float eps)
{
    launch_overlapped("add_rmsnorm", rmsnorm_kernel<true, float>, n, threads_for(n), 0, out, x,
                      delta, (const float *)w, dim, eps);
}
