/* The fp32 precision's attention: queries, keys, values and every product in fp32, folded into
 * the online-softmax state (m, l, o) as the CPU reference folds it (kernels/cpu/attention.c),
 * so that answers match the CPU's. Each (query, head) row is walked by PER_ROW warps (one for a
 * prefill's many rows; up to 16 when the rows are few, as in decoding, so that long contexts
 * still spread over the GPU). A warp takes every PER_ROW-th tile of 32 keys, each lane scoring
 * one key, then adds the tile's weighted values, each lane owning the output dimensions lane,
 * lane + 32, and so on. The warps' partial states are then merged with the caller's state, so
 * anchors, blocks and ranks merge as on every other path.
 *
 * It is a check, not a fast path: each row reads its keys and values through the caches on its
 * own (no tiles shared between rows in shared memory). A form in which the whole warp read each
 * key's row at once, then reduced the 32 sums by shuffles, measured 15% slower on an H100. */
#include <math.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

#define WARPS 16 /* per block */
#define MAX_D 256
#define FULL 0xffffffffu

struct f32_args {
    float *m, *l, *o;
    const float *q;
    long rows;
    int n_heads, group, head_dim;
    const float *k, *v;
    int nk, kv_stride;
    long diag;
    float scale;
};

__device__ float warp_max(float x)
{
    for (int off = 16; off > 0; off >>= 1)
        x = fmaxf(x, __shfl_xor_sync(FULL, x, off));
    return x;
}

__device__ float warp_sum(float x)
{
    for (int off = 16; off > 0; off >>= 1)
        x += __shfl_xor_sync(FULL, x, off);
    return x;
}

__global__ void __launch_bounds__(WARPS * 32) attn_f32_kernel(f32_args a, int per_row)
{
    __shared__ float sq[WARPS][MAX_D]; /* the query of each of the block's rows */
    __shared__ float pm[WARPS], pl[WARPS], po[WARPS][MAX_D]; /* each warp's partial state */
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, d = a.head_dim;
    int local = warp / per_row, part = warp % per_row;
    long row = (long)blockIdx.x * (WARPS / per_row) + local;
    int visible = 0;
    size_t head = 0;
    if (row < a.rows) {
        long last = row / a.n_heads + a.diag; /* the query's last visible key */
        visible = last + 1 < a.nk ? (int)(last + 1) : a.nk;
        head = (size_t)((row % a.n_heads) / a.group) * d;
        if (part == 0)
            for (int t = lane; t < d; t += 32)
                sq[local][t] = a.q[row * d + t]; /* rows are query-major: [nq][n_heads][d] */
    }
    __syncthreads();
    float m = -INFINITY, l = 0.0f, acc[MAX_D / 32] = {};
    for (int j0 = part * 32; j0 < visible; j0 += per_row * 32) {
        int tile = visible - j0 < 32 ? visible - j0 : 32;
        float s = -INFINITY;
        if (lane < tile) {
            const float *kr = a.k + (size_t)(j0 + lane) * a.kv_stride + head;
            float dot = 0.0f;
            for (int t = 0; t < d; t++)
                dot += sq[local][t] * kr[t];
            s = dot * a.scale;
        }
        float m_new = fmaxf(m, warp_max(s)); /* finite: the tile holds a visible key */
        float alpha = expf(m - m_new);       /* 0 while the warp held nothing (m = -inf) */
        float p = lane < tile ? expf(s - m_new) : 0.0f;
        l = l * alpha + warp_sum(p);
        for (int c = 0; c < MAX_D / 32; c++)
            acc[c] *= alpha;
        for (int jj = 0; jj < tile; jj++) {
            float pj = __shfl_sync(FULL, p, jj);
            const float *vr = a.v + (size_t)(j0 + jj) * a.kv_stride + head;
            for (int c = 0; c < MAX_D / 32; c++)
                if (lane + 32 * c < d)
                    acc[c] += pj * vr[lane + 32 * c];
        }
        m = m_new;
    }
    if (lane == 0) {
        pm[warp] = m;
        pl[warp] = l;
    }
    for (int c = 0; c < MAX_D / 32; c++)
        if (lane + 32 * c < d)
            po[warp][lane + 32 * c] = acc[c];
    __syncthreads();
    if (row >= a.rows || visible <= 0 || part != 0)
        return; /* a row that sees none of these keys keeps its state as it is */
    /* the caller's state and the row's PER_ROW partials, rescaled to their common max */
    int first = local * per_row;
    float m_all = a.m[row];
    for (int w = first; w < first + per_row; w++)
        m_all = fmaxf(m_all, pm[w]);
    float keep = expf(a.m[row] - m_all), l_all = a.l[row] * keep;
    for (int w = first; w < first + per_row; w++)
        l_all += pl[w] * expf(pm[w] - m_all);
    for (int t = lane; t < d; t += 32) {
        float o = a.o[row * d + t] * keep;
        for (int w = first; w < first + per_row; w++)
            o += po[w][t] * expf(pm[w] - m_all);
        a.o[row * d + t] = o;
    }
    if (lane == 0) {
        a.m[row] = m_all;
        a.l[row] = l_all;
    }
}

/* Warps per row: one where there are rows enough to fill the GPU, up to WARPS where few. */
static int warps_per_row(long rows)
{
    int per_row = 1;
    while (per_row < WARPS && rows * per_row < 4096)
        per_row *= 2;
    return per_row;
}

void cuda_attn_accumulate_f32(attn_state *s, const void *queries, int nq, int n_heads,
                              int n_kv_heads, int head_dim, const attn_keys *keys, float scale)
{
    const float *q = (const float *)queries;
    if (head_dim > MAX_D)
        si_fatal("the CUDA fp32 attention supports head_dim up to %d, not %d\n"
                 "  HINT: run this model with --device cpu",
                 MAX_D, head_dim);
    long rows = (long)nq * n_heads;
    if (rows == 0 || keys->nk == 0)
        return;
    f32_args a = {s->m,
                  s->l,
                  s->o,
                  q,
                  rows,
                  n_heads,
                  n_heads / n_kv_heads,
                  head_dim,
                  (const float *)keys->k,
                  (const float *)keys->v,
                  keys->nk,
                  keys->kv_stride,
                  keys->diag,
                  scale};
    int per_row = warps_per_row(rows), rows_per_block = WARPS / per_row;
    attn_f32_kernel<<<(unsigned)((rows + rows_per_block - 1) / rows_per_block), WARPS * 32>>>(
        a, per_row);
    cudaCheckLaunch("attention (fp32)");
}
