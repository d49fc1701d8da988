/* One warp's dot products of N weight rows with one activation row (decoding's products): bf16
 * weights and activations, fp32 sums. Each lane streams 16-byte pieces of the rows (8 weights),
 * GEMV_IN_FLIGHT pieces per row in flight, and reads the activations through the L1 cache, where
 * the warps of a multiprocessor share them; the lanes' sums meet in a shuffle reduction, so every
 * lane ends with every row's sum. The N rows' loads are interleaved (the MLP's gate and up rows,
 * a head's two rotated halves).
 *
 * Few loads in flight per lane keep the registers low (64 for one row, 80 for two), so that the
 * kernels' launch bounds fit three or four blocks of eight warps on a multiprocessor: 16 in
 * flight took 183-254 registers and one block per multiprocessor, which then idled between its
 * blocks, and decoding ran 15-18% slower on an H200 (bench/NOTES.md entry 16).
 *
 * With WAIT (a kernel launched with launch_overlapped, overlap.cuh), the first round's weights
 * are requested before the kernel waits for the one before it: the weights are no earlier
 * kernel's output, so their loads overlap that kernel's tail, and only the activations wait.
 * The activations are then read with plain loads, not through the read-only path (__ldg), which
 * assumes data no kernel writes while this one runs: here the kernel before writes them while
 * this one is resident, and __ldg read stale rows of an earlier layer (bench/NOTES.md entry 16). */
#ifndef STARINFER_KERNELS_CUDA_GEMV_WARP_CUH
#define STARINFER_KERNELS_CUDA_GEMV_WARP_CUH

#include <cuda_bf16.h>
#include <stdint.h>

#include "kernels/cuda/overlap.cuh"

#define GEMV_IN_FLIGHT 4

static __device__ __forceinline__ float dot8(uint4 w, uint4 x)
{
    const __nv_bfloat162 *wp = (const __nv_bfloat162 *)&w, *xp = (const __nv_bfloat162 *)&x;
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < 4; k++) {
        float2 a = __bfloat1622float2(wp[k]), b = __bfloat1622float2(xp[k]);
        sum += a.x * b.x + a.y * b.y;
    }
    return sum;
}

/* ACC[k] = W[k] . X over COLS (a multiple of 8; W[k] and X on 16-byte boundaries). */
template <int N, bool WAIT = false>
static __device__ __forceinline__ void
warp_dot(const __nv_bfloat16 *const w[N], const __nv_bfloat16 *x, int cols, int lane, float acc[N])
{
    const uint4 *wr[N];
#pragma unroll
    for (int k = 0; k < N; k++) {
        wr[k] = (const uint4 *)w[k];
        acc[k] = 0.0f;
    }
    const uint4 *x8 = (const uint4 *)x;
    int pieces = cols / 8;
    for (int p0 = lane; p0 < pieces; p0 += 32 * GEMV_IN_FLIGHT) {
        /* every load of the round issued before the first product: the weights streamed once,
         * the activations through L1 */
        uint4 wv[N][GEMV_IN_FLIGHT], xv[GEMV_IN_FLIGHT];
#pragma unroll
        for (int u = 0; u < GEMV_IN_FLIGHT; u++) {
            int p = p0 + 32 * u;
            if (p < pieces) {
#pragma unroll
                for (int k = 0; k < N; k++)
                    wv[k][u] = __ldcs(wr[k] + p); /* read once: do not keep it in the caches */
            }
        }
        if constexpr (WAIT)
            if (p0 == lane)
                overlap_wait();
#pragma unroll
        for (int u = 0; u < GEMV_IN_FLIGHT; u++) {
            int p = p0 + 32 * u;
            if (p < pieces)
                xv[u] = x8[p]; /* not __ldg: see above */
        }
#pragma unroll
        for (int u = 0; u < GEMV_IN_FLIGHT; u++) {
            int p = p0 + 32 * u;
            if (p < pieces) {
#pragma unroll
                for (int k = 0; k < N; k++)
                    acc[k] += dot8(wv[k][u], xv[u]);
            }
        }
    }
    if constexpr (WAIT)
        if (lane >= pieces) /* a lane with no pieces waits too: it may store the sums */
            overlap_wait();
#pragma unroll
    for (int k = 0; k < N; k++)
        for (int off = 16; off > 0; off >>= 1)
            acc[k] += __shfl_xor_sync(0xffffffffu, acc[k], off);
}

#endif
