/* out[rows] = w[rows][cols] . x[cols] for one token (decoding): bf16 weights, fp32 activations
 * and accumulation. A decoded token's products read every weight once and do two FLOPs per
 * weight, so they are bound by memory: cuBLASLt's kernels for one column, with the activations
 * first rounded to bf16 by a kernel of their own, reached 1.5-2.4 TB/s of the H100's 3 TB/s
 * (bench/NOTES.md, entry 6). Here one warp takes a row: each lane streams 16-byte pieces of the
 * row (8 weights), several loads in flight, and reads the activations through the L1 cache, where
 * the warps of a multiprocessor share them; the lanes' sums meet in a shuffle reduction. The
 * paired form is the MLP's first half: a warp takes row r of the gate and of the up weights (which
 * lie back to back) and writes silu(gate) * up. */
#include <stdint.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

#define WARPS_PER_BLOCK 8
#define IN_FLIGHT 16

static __device__ __forceinline__ float dot8(uint4 w, float4 a, float4 b)
{
    float2 w0 = __bfloat1622float2(*(const __nv_bfloat162 *)&w.x);
    float2 w1 = __bfloat1622float2(*(const __nv_bfloat162 *)&w.y);
    float2 w2 = __bfloat1622float2(*(const __nv_bfloat162 *)&w.z);
    float2 w3 = __bfloat1622float2(*(const __nv_bfloat162 *)&w.w);
    return w0.x * a.x + w0.y * a.y + w1.x * a.z + w1.y * a.w + w2.x * b.x + w2.y * b.y +
           w3.x * b.z + w3.y * b.w;
}

/* PAIRED = 1: out[row] = w[row] . x. PAIRED = 2: out[row] = silu(w[row] . x) * (w[rows + row] . x),
 * the two rows' loads interleaved. */
template <int PAIRED>
__global__ void __launch_bounds__(WARPS_PER_BLOCK * 32)
    gemv_kernel(float *out, const float *x, const __nv_bfloat16 *w, int cols, int rows)
{
    int row = blockIdx.x * WARPS_PER_BLOCK + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= rows)
        return;
    const uint4 *wr[PAIRED];
#pragma unroll
    for (int k = 0; k < PAIRED; k++)
        wr[k] = (const uint4 *)(w + ((size_t)k * rows + row) * cols);
    const float4 *x4 = (const float4 *)x;
    int pieces = cols / 8;
    float acc[PAIRED] = {};
    for (int p0 = lane; p0 < pieces; p0 += 32 * IN_FLIGHT) {
        uint4 wv[PAIRED][IN_FLIGHT];
#pragma unroll
        for (int u = 0; u < IN_FLIGHT; u++) {
            int p = p0 + 32 * u;
#pragma unroll
            for (int k = 0; k < PAIRED; k++)
                if (p < pieces)
                    wv[k][u] = __ldcs(wr[k] + p); /* read once: do not keep it in the caches */
        }
#pragma unroll
        for (int u = 0; u < IN_FLIGHT; u++) {
            int p = p0 + 32 * u;
            if (p < pieces) {
                float4 a = __ldg(x4 + 2 * p), b = __ldg(x4 + 2 * p + 1);
#pragma unroll
                for (int k = 0; k < PAIRED; k++)
                    acc[k] += dot8(wv[k][u], a, b);
            }
        }
    }
#pragma unroll
    for (int k = 0; k < PAIRED; k++)
        for (int off = 16; off > 0; off >>= 1)
            acc[k] += __shfl_xor_sync(0xffffffffu, acc[k], off);
    if (lane == 0) {
        if constexpr (PAIRED == 2)
            out[row] = acc[0] / (1.0f + expf(-acc[0])) * acc[1];
        else
            out[row] = acc[0];
    }
}

int cuda_gemv_fits(const float *x, const void *w, int cols)
{
    return cols % 8 == 0 && (uintptr_t)x % 16 == 0 && (uintptr_t)w % 16 == 0;
}

void cuda_gemv(float *out, const float *x, const void *w, int cols, int rows)
{
    int blocks = (rows + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK;
    gemv_kernel<1><<<blocks, WARPS_PER_BLOCK * 32>>>(out, x, (const __nv_bfloat16 *)w, cols,
                                                     rows);
    cudaCheckLaunch("gemv");
}

void cuda_matmul_swiglu(float *out, const float *x, const void *w_gate_up, int cols, int inter)
{
    if (!cuda_gemv_fits(x, w_gate_up, cols)) {
        cuda_matmul(out, x, w_gate_up, 1, cols, 2 * inter);
        cuda_swiglu(out, out + inter, (size_t)inter);
        return;
    }
    int blocks = (inter + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK;
    gemv_kernel<2><<<blocks, WARPS_PER_BLOCK * 32>>>(out, x, (const __nv_bfloat16 *)w_gate_up,
                                                     cols, inter);
    cudaCheckLaunch("gemv with swiglu");
}
