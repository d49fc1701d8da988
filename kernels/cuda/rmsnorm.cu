/* HF LlamaRMSNorm in fp32: x * rsqrt(mean(x^2) + eps) * w, one block per row; a few rows
 * (decoding) get blocks of 1024 threads, so that one row's loads are not a long series. The
 * residual form first adds DELTA (a block's output) into the fp32 residual stream X, in place,
 * and normalises the sum. W, DELTA and the normed rows are bf16, or fp32 in the fp32 precision:
 * the normed rows are rounded once, as the products read them. */
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/overlap.cuh"
#include "kernels/cuda/weight_format.cuh"

template <bool ADD, typename W, typename A>
__global__ void rmsnorm_kernel(A *out, float *x, const A *delta, const W *w, int dim, float eps)
{
    overlap_release();
    overlap_wait();
    float *xr = x + (size_t)blockIdx.x * dim;
    const A *dr = ADD ? delta + (size_t)blockIdx.x * dim : nullptr;
    float ss = 0.0f;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        float v = xr[c];
        if (ADD) {
            v += to_f32(dr[c]);
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
    for (int c = threadIdx.x; c < dim; c += blockDim.x)
        out[(size_t)blockIdx.x * dim + c] = from_f32<A>(to_f32(w[c]) * (xr[c] * inv));
}

static int threads_for(int n)
{
    return n < 64 ? 1024 : 256;
}

/* The bf16 precision: bf16 weights, normed rows and deltas. */
typedef __nv_bfloat16 bf16;

void cuda_rmsnorm(void *out, const float *x, const void *w, int n, int dim, float eps)
{
    launch_overlapped("rmsnorm", rmsnorm_kernel<false, bf16, bf16>, n, threads_for(n), 0,
                      (bf16 *)out, (float *)x, (const bf16 *)NULL, (const bf16 *)w, dim, eps);
}

void cuda_add_rmsnorm(void *out, float *x, const void *delta, const void *w, int n, int dim,
                      float eps)
{
    launch_overlapped("add_rmsnorm", rmsnorm_kernel<true, bf16, bf16>, n, threads_for(n), 0,
                      (bf16 *)out, x, (const bf16 *)delta, (const bf16 *)w, dim, eps);
}

void cuda_rmsnorm_f32(void *out, const float *x, const void *w, int n, int dim, float eps)
{
    launch_overlapped("rmsnorm", rmsnorm_kernel<false, float, float>, n, threads_for(n), 0,
                      (float *)out, (float *)x, (const float *)NULL, (const float *)w, dim, eps);
}

void cuda_add_rmsnorm_f32(void *out, float *x, const void *delta, const void *w, int n, int dim,
                          float eps)
{
    launch_overlapped("add_rmsnorm", rmsnorm_kernel<true, float, float>, n, threads_for(n), 0,
                      (float *)out, x, (const float *)delta, (const float *)w, dim, eps);
}
