/* Splitting the keys of attention over few rows (flash-decoding), shared by the tile kernel's
 * split path and the decode kernel: how many splits, and folding the splits' partial states into
 * a row's running state or its normalised output. Partials are laid out [splits][rows][2 + D]:
 * m (natural log), l, then o. */
#ifndef STARINFER_KERNELS_CUDA_ATTENTION_MERGE_CUH
#define STARINFER_KERNELS_CUDA_ATTENTION_MERGE_CUH

#include <cuda_bf16.h>
#include <math.h>

/* The number of splits of NK keys, about WANT of them but none shorter than four tiles of TILE
 * keys, each a whole number of tiles; *SPLIT_LEN gets their length. */
static inline int key_splits(int nk, int want, int tile, int *split_len)
{
    int max_splits = (nk + 4 * tile - 1) / (4 * tile);
    int splits = want < max_splits ? want : max_splits;
    if (splits < 1)
        splits = 1;
    *split_len = ((nk + splits - 1) / splits + tile - 1) / tile * tile;
    return (nk + *split_len - 1) / *split_len;
}

/* One warp folds SPLITS partials of ROW into (m, l, o), or, where OUT is not NULL, into the
 * row's normalised output OUT (bf16, [rows][D]), the state neither read nor written: the keys were
 * the row's only key set. The lanes take the splits' maxima and denominators in parallel, and each
 * lane keeps its columns of o in registers over the splits (loads independent of each other, one
 * store at the end). The partials are read from L2 (__ldcg): other blocks of the same launch may
 * have written them. */
template <int D>
__device__ void merge_splits_row(float *m, float *l, float *o, __nv_bfloat16 *out,
                                 const float *part, int rows, int splits, int row, int lane)
{
    constexpr int COLS = (D + 31) / 32;
    const size_t stride = (size_t)rows * (D + 2); /* from one split's row to the next's */
    const float *p = part + (size_t)row * (D + 2);
    float m_old = out ? -INFINITY : m[row], mx = m_old;
    for (int s = lane; s < splits; s += 32)
        mx = fmaxf(mx, __ldcg(p + s * stride));
#pragma unroll
    for (int off = 16; off > 0; off >>= 1)
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    if (mx == -INFINITY) { /* no key anywhere yet: the state stays empty, the output zero */
        for (int c = lane; out && c < D; c += 32)
            out[(size_t)row * D + c] = __float2bfloat16_rn(0.0f);
        return;
    }
    float lsum = 0.0f;
    for (int s = lane; s < splits; s += 32) {
        float ms = __ldcg(p + s * stride);
        lsum += ms == -INFINITY ? 0.0f : __ldcg(p + s * stride + 1) * expf(ms - mx);
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1)
        lsum += __shfl_xor_sync(0xffffffffu, lsum, off);
    float w0 = m_old == -INFINITY ? 0.0f : expf(m_old - mx);
    float acc[COLS];
#pragma unroll
    for (int k = 0; k < COLS; k++) {
        int c = lane + 32 * k;
        acc[k] = c < D && !out ? o[(size_t)row * D + c] * w0 : 0.0f;
    }
    /* eight splits' loads in flight: 1-1.5% faster decode attention than four (an H100,
     * bench/NOTES.md entry 16) */
#pragma unroll 8
    for (int s = 0; s < splits; s++) {
        float ms = __ldcg(p + s * stride); /* the same address in every lane: one broadcast */
        float w = ms == -INFINITY ? 0.0f : expf(ms - mx);
#pragma unroll
        for (int k = 0; k < COLS; k++) {
            int c = lane + 32 * k;
            if (c < D)
                acc[k] += __ldcg(p + s * stride + 2 + c) * w;
        }
    }
    if (out) {
        float inv = 1.0f / lsum;
#pragma unroll
        for (int k = 0; k < COLS; k++) {
            int c = lane + 32 * k;
            if (c < D)
                out[(size_t)row * D + c] = __float2bfloat16_rn(acc[k] * inv);
        }
        return;
    }
#pragma unroll
    for (int k = 0; k < COLS; k++) {
        int c = lane + 32 * k;
        if (c < D)
            o[(size_t)row * D + c] = acc[k];
    }
    if (lane == 0) {
        m[row] = mx;
        l[row] = l[row] * w0 + lsum;
    }
}

#endif
