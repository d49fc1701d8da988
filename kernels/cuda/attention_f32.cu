/* The fp32 precision's attention: queries, keys, values and every product in fp32, folded into
 * the online-softmax state (m, l, o) as the CPU reference folds it (kernels/cpu/attention.c),
 * so that answers match the CPU's. It is written for exactness, not speed: one warp per
 * (query, head) row walks its visible keys 32 at a time, each lane scoring one key, then the
 * warp adds the tile's weighted values, each lane owning the output dimensions lane, lane + 32,
 * and so on. The state it starts from is the caller's, so anchors, blocks and ranks merge as on
 * every other path. */
#include <math.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

#define WARPS 4
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

__global__ void attn_f32_kernel(f32_args a)
{
    __shared__ float sq[WARPS][MAX_D];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, d = a.head_dim;
    long row = (long)blockIdx.x * WARPS + warp;
    if (row >= a.rows)
        return;
    long i = row / a.n_heads, last = i + a.diag; /* the query's last visible key */
    int visible = last + 1 < a.nk ? (int)(last + 1) : a.nk;
    if (visible <= 0)
        return; /* the row sees none of these keys: its state stays as it is */
    for (int t = lane; t < d; t += 32)
        sq[warp][t] = a.q[row * d + t]; /* rows are query-major: [nq][n_heads][d] */
    __syncwarp();
    size_t head = (size_t)((row % a.n_heads) / a.group) * d;
    float m = a.m[row], l = a.l[row], acc[MAX_D / 32];
    for (int c = 0; c < MAX_D / 32; c++)
        acc[c] = lane + 32 * c < d ? a.o[row * d + lane + 32 * c] : 0.0f;
    for (int j0 = 0; j0 < visible; j0 += 32) {
        int j = j0 + lane;
        float s = -INFINITY;
        if (j < visible) {
            const float *kr = a.k + (size_t)j * a.kv_stride + head;
            float dot = 0.0f;
            for (int t = 0; t < d; t++)
                dot += sq[warp][t] * kr[t];
            s = dot * a.scale;
        }
        float m_new = fmaxf(m, warp_max(s)); /* finite: the tile holds a visible key */
        float alpha = expf(m - m_new);       /* 0 while the row held nothing (m = -inf) */
        float p = j < visible ? expf(s - m_new) : 0.0f;
        l = l * alpha + warp_sum(p);
        for (int c = 0; c < MAX_D / 32; c++)
            acc[c] *= alpha;
        int tile = visible - j0 < 32 ? visible - j0 : 32;
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
        a.m[row] = m;
        a.l[row] = l;
    }
    for (int c = 0; c < MAX_D / 32; c++)
        if (lane + 32 * c < d)
            a.o[row * d + lane + 32 * c] = acc[c];
}

void cuda_attn_accumulate_f32(attn_state *s, const float *q, int nq, int n_heads, int n_kv_heads,
                              int head_dim, const attn_keys *keys, float scale)
{
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
    attn_f32_kernel<<<(unsigned)((rows + WARPS - 1) / WARPS), WARPS * 32>>>(a);
    cudaCheckLaunch("attention (fp32)");
}
