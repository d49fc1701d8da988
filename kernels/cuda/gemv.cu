/* out[rows] = w[rows][cols] . x[cols] for one token (decoding): bf16 weights and activations,
 * fp32 accumulation, the result in fp32 (logits), rounded to bf16 (an activation) or added into
 * the fp32 residual stream (an output projection). A decoded token's products read every weight
 * once and do two FLOPs per weight, so they are bound by memory:
 * cuBLASLt's kernels for one column, with the activations first rounded to bf16 by a kernel of
 * their own, reached 1.5-2.4 TB/s of the H100's 3 TB/s (bench/NOTES.md, entry 6). Here one warp
 * takes a row (gemv_warp.cuh). The paired form is the MLP's first half: a warp takes row r of the
 * gate and of the up weights (which lie back to back) and writes silu(gate) * up.
 *
 * The products launch overlapped (overlap.cuh): a block's first weights are requested while the
 * kernel before is finishing, and the next kernel may launch once every block is past its loads
 * (bench/NOTES.md entry 16). */
#include <stdint.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/gemv_warp.cuh"
#include "kernels/cuda/overlap.cuh"

#define WARPS_PER_BLOCK 8

static __device__ __forceinline__ void store(float *out, float v)
{
    *out = v;
}

static __device__ __forceinline__ void store(__nv_bfloat16 *out, float v)
{
    *out = __float2bfloat16_rn(v);
}

/* PAIRED = 1: out[row] = w[row] . x (out[row] += with ADD). PAIRED = 2:
 * out[row] = silu(w[row] . x) * (w[rows + row] . x), the two rows' loads interleaved. */
template <int PAIRED, typename OUT, bool ADD = false>
__global__ void __launch_bounds__(WARPS_PER_BLOCK * 32, PAIRED == 2 ? 3 : 4)
    gemv_kernel(OUT *out, const __nv_bfloat16 *x, const __nv_bfloat16 *w, int cols, int rows)
{
    int row = blockIdx.x * WARPS_PER_BLOCK + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= rows)
        return;
    const __nv_bfloat16 *wr[PAIRED];
#pragma unroll
    for (int k = 0; k < PAIRED; k++)
        wr[k] = w + ((size_t)k * rows + row) * cols;
    float acc[PAIRED];
    warp_dot<PAIRED, true>(wr, x, cols, lane, acc);
    overlap_release();
    if (lane == 0) {
        if constexpr (PAIRED == 2)
            store(out + row, acc[0] / (1.0f + expf(-acc[0])) * acc[1]);
        else if constexpr (ADD)
            out[row] += acc[0];
        else
            store(out + row, acc[0]);
    }
}

int cuda_gemv_fits(const void *x, const void *w, int cols)
{
    return cols % 8 == 0 && (uintptr_t)x % 16 == 0 && (uintptr_t)w % 16 == 0;
}

static int blocks_for(int rows)
{
    return (rows + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK;
}

template <int PAIRED, typename OUT, bool ADD>
static void launch_gemv(const char *name, OUT *out, const __nv_bfloat16 *x, const void *w, int cols,
                        int rows)
{
    launch_overlapped(name, gemv_kernel<PAIRED, OUT, ADD>, blocks_for(rows), WARPS_PER_BLOCK * 32,
                      0, out, x, (const __nv_bfloat16 *)w, cols, rows);
}

void cuda_gemv(float *out, const __nv_bfloat16 *x, const void *w, int cols, int rows)
{
    launch_gemv<1, float, false>("gemv", out, x, w, cols, rows);
}

void cuda_gemv_bf16_out(__nv_bfloat16 *out, const __nv_bfloat16 *x, const void *w, int cols,
                        int rows)
{
    launch_gemv<1, __nv_bfloat16, false>("gemv", out, x, w, cols, rows);
}

void cuda_gemv_add(float *y, const __nv_bfloat16 *x, const void *w, int cols, int rows)
{
    launch_gemv<1, float, true>("gemv into the residual stream", y, x, w, cols, rows);
}

/* The gated rows in bf16 (OUT's first INTER values); where the kernel does not fit, both products
 * side by side in OUT's room first, then the gating. */
void cuda_matmul_swiglu(void *out, const void *x, const void *w_gate_up, int cols, int inter)
{
    if (!cuda_gemv_fits(x, w_gate_up, cols)) {
        float *both = (float *)cuda_scratch(SCRATCH_QKV, sizeof(float) * 2 * (size_t)inter);
        cuda_gemm_bf16(both, (const __nv_bfloat16 *)x, w_gate_up, 1, cols, 2 * inter);
        cuda_swiglu(both, both + inter, (size_t)inter);
        cuda_f32_to_bf16((__nv_bfloat16 *)out, both, (size_t)inter);
        return;
    }
    launch_gemv<2, __nv_bfloat16, false>("gemv with swiglu", (__nv_bfloat16 *)out,
                                         (const __nv_bfloat16 *)x, w_gate_up, cols, inter);
}
