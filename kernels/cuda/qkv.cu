/* The attention's inputs of new tokens: one product of the normed rows over the query, key and
 * value weights where they lie back to back (three where they do not, or where only some are
 * wanted), into scratch in the activation format; then one kernel rotates the queries into Q and
 * the keys into the KV cache, and copies the values there. One decoded token takes one launch
 * for both, the product's sums rotated as they are written. Rotary embedding in the rotate-half
 * convention, angle pos * inv_freq[j] rounded to fp32 as the reference computes it (then sin
 * and cos in fp32). Each thread takes four neighbouring frequencies of one head of one token
 * (a thread that walked every head of its token kept one load in flight at a time, and the
 * operation took half as long again as its product). */
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/gemv_warp.cuh"
#include "kernels/cuda/overlap.cuh"
#include "kernels/cuda/weight_format.cuh"

/* Four neighbouring elements of an activation row (8 or 16 bytes), as fp32 and back. */
__device__ __forceinline__ float4 load4(const __nv_bfloat16 *p)
{
    uint2 raw = *(const uint2 *)p;
    float2 a = __bfloat1622float2(*(const __nv_bfloat162 *)&raw.x);
    float2 b = __bfloat1622float2(*(const __nv_bfloat162 *)&raw.y);
    return make_float4(a.x, a.y, b.x, b.y);
}

__device__ __forceinline__ float4 load4(const float *p)
{
    return *(const float4 *)p;
}

__device__ __forceinline__ void store4(__nv_bfloat16 *p, float4 v)
{
    __nv_bfloat162 a = __floats2bfloat162_rn(v.x, v.y), b = __floats2bfloat162_rn(v.z, v.w);
    uint2 raw;
    raw.x = *(const uint32_t *)&a;
    raw.y = *(const uint32_t *)&b;
    *(uint2 *)p = raw;
}

__device__ __forceinline__ void store4(float *p, float4 v)
{
    *(float4 *)p = v;
}

struct rope_args {
    int n, n_heads, n_kv_heads, head_dim;
    int q_ld, kv_ld; /* row strides of the products in scratch */
    const float *inv_freq;
    const int *pos;
};

/* sin and cos of position P's angle at frequency F, the angle rounded to fp32 as the reference
 * computes it. */
__device__ __forceinline__ void rope_sincos(float p, float f, float *s, float *c)
{
    sincosf(__fmul_rn(p, f), s, c);
}

/* Head blockIdx.y of every token: heads below n_heads are queries (Q NULL: none), the rest keys
 * and values (K NULL: none). A thread takes four neighbouring frequencies of one token. */
template <typename T>
__global__ void rope_store_kernel(T *q, T *k, T *v, const T *qs, const T *ks, const T *vs,
                                  rope_args a)
{
    overlap_release();
    overlap_wait();
    int half = a.head_dim / 2, quads = half / 4, h = blockIdx.y;
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= a.n * quads || (h < a.n_heads ? !q : !k))
        return;
    int i = idx / quads, j = idx % quads * 4;
    const T *src;
    T *dst;
    if (h < a.n_heads) {
        src = qs + (size_t)i * a.q_ld + (size_t)h * a.head_dim;
        dst = q + ((size_t)i * a.n_heads + h) * a.head_dim;
    } else {
        size_t off = (size_t)(h - a.n_heads) * a.head_dim, row = (size_t)i * a.n_kv_heads;
        const T *vr = vs + (size_t)i * a.kv_ld + off;
        T *vw = v + row * a.head_dim + off;
        store4(vw + j, load4(vr + j));
        store4(vw + j + half, load4(vr + j + half));
        src = ks + (size_t)i * a.kv_ld + off;
        dst = k + row * a.head_dim + off;
    }
    float p = (float)a.pos[i];
    float s[4], c[4];
#pragma unroll
    for (int t = 0; t < 4; t++)
        rope_sincos(p, a.inv_freq[j + t], &s[t], &c[t]);
    float4 x = load4(src + j), y = load4(src + j + half);
    store4(dst + j, make_float4(x.x * c[0] - y.x * s[0], x.y * c[1] - y.y * s[1],
                                x.z * c[2] - y.z * s[2], x.w * c[3] - y.w * s[3]));
    store4(dst + j + half, make_float4(y.x * c[0] + x.x * s[0], y.y * c[1] + x.y * s[1],
                                       y.z * c[2] + x.z * s[2], y.w * c[3] + x.w * s[3]));
}

/* The queries and keys of every layer of a forward share their positions: they are uploaded once
 * and reused while unchanged, since a copy from pageable memory waits for the GPU to drain, and
 * two such waits per layer leave it idle between kernels when decoding. */
const int *cuda_positions(const int *pos, int n)
{
    static int *last, count, capacity;
    static const int *dev;
    if (dev && n == count && !memcmp(pos, last, sizeof(int) * (size_t)n))
        return dev;
    if (n > capacity) {
        free(last);
        last = (int *)mallocCheck(sizeof(int) * (size_t)n, "rope positions");
        capacity = n;
    }
    memcpy(last, pos, sizeof(int) * (size_t)n);
    count = n;
    dev = cuda_upload_ints(SCRATCH_POS, pos, n);
    return dev;
}

#define ROPE_WARPS 8

/* One decoded token (bf16), the product and the rotation in one launch: warp w takes element j of
 * head h, w = h * half + j, and its partner j + half, the two weight rows' loads interleaved
 * (gemv_warp.cuh); each sum is rounded to bf16 as the product in scratch would be, then rotated
 * into Q or the cache's K, or copied to V. Heads below n_heads are queries, then the keys', then
 * the values'. Launched overlapped: the first weights are requested while the kernel before is
 * finishing (gemv_warp.cuh). */
__global__ void __launch_bounds__(ROPE_WARPS * 32, 3)
    qkv_rope_gemv_kernel(__nv_bfloat16 *q, __nv_bfloat16 *k, __nv_bfloat16 *v,
                         const __nv_bfloat16 *x, const __nv_bfloat16 *w, int cols, rope_args a)
{
    int half = a.head_dim / 2, lane = threadIdx.x & 31;
    int warp = blockIdx.x * ROPE_WARPS + (threadIdx.x >> 5);
    if (warp >= (a.n_heads + 2 * a.n_kv_heads) * half)
        return;
    int h = warp / half, j = warp % half;
    size_t r = (size_t)h * a.head_dim + j;
    const __nv_bfloat16 *wr[2] = {w + r * cols, w + (r + half) * cols};
    float acc[2];
    warp_dot<2, true>(wr, x, cols, lane, acc);
    overlap_release();
    if (lane)
        return;
    float x0 = __bfloat162float(__float2bfloat16_rn(acc[0]));
    float x1 = __bfloat162float(__float2bfloat16_rn(acc[1]));
    __nv_bfloat16 *dst;
    if (h >= a.n_heads + a.n_kv_heads) { /* a value: as it is */
        dst = v + (size_t)(h - a.n_heads - a.n_kv_heads) * a.head_dim + j;
        dst[0] = __float2bfloat16_rn(x0);
        dst[half] = __float2bfloat16_rn(x1);
        return;
    }
    dst = h < a.n_heads ? q + r : k + (size_t)(h - a.n_heads) * a.head_dim + j;
    float s, c;
    rope_sincos((float)a.pos[0], a.inv_freq[j], &s, &c);
    dst[0] = __float2bfloat16_rn(x0 * c - x1 * s);
    dst[half] = __float2bfloat16_rn(x1 * c + x0 * s);
}

typedef void (*product_fn)(void *out, const void *x, const void *w, int n, int cols, int rows);

template <typename T>
static void qkv(void *q, void *k, void *v, const void *x, const qkv_proj *p, const int *pos, int n,
                product_fn product)
{
    if ((!q && !k) || n <= 0)
        return;
    if (p->head_dim % 8)
        si_fatal("the CUDA backend's rotary embedding needs a head_dim divisible by 8, not %d\n"
                 "  HINT: run this model with --device cpu",
                 p->head_dim);
    int qd = p->n_heads * p->head_dim, kvd = p->n_kv_heads * p->head_dim, ld = qd + 2 * kvd;
    T *s = (T *)cuda_scratch(SCRATCH_QKV, sizeof(T) * (size_t)n * ld);
    const T *qs = s, *ks = s + qd, *vs = s + qd + kvd;
    rope_args a = {n,  p->n_heads, p->n_kv_heads, p->head_dim,
                   ld, ld,         p->inv_freq,   cuda_positions(pos, n)};
    if (p->wqkv && q && k) {
        product(s, x, p->wqkv, n, p->cols, ld);
    } else { /* each product on its own, one after the other in scratch */
        ks = s + (size_t)n * qd;
        vs = ks + (size_t)n * kvd;
        a.q_ld = qd;
        a.kv_ld = kvd;
        if (q)
            product(s, x, p->wq, n, p->cols, qd);
        if (k) {
            product((T *)ks, x, p->wk, n, p->cols, kvd);
            product((T *)vs, x, p->wv, n, p->cols, kvd);
        }
    }
    int threads = n * (p->head_dim / 8), block = threads < 128 ? 32 : 128;
    dim3 grid((threads + block - 1) / block, p->n_heads + p->n_kv_heads);
    launch_overlapped("rope_store", rope_store_kernel<T>, grid, block, 0, (T *)q, (T *)k, (T *)v,
                      qs, ks, vs, a);
}

void cuda_qkv(void *q, void *k, void *v, const void *x, const qkv_proj *p, const int *pos, int n)
{
    if (n == 1 && q && k && p->wqkv && p->head_dim % 8 == 0 &&
        cuda_gemv_fits(x, p->wqkv, p->cols)) {
        rope_args a = {1, p->n_heads, p->n_kv_heads, p->head_dim,
                       0, 0,          p->inv_freq,   cuda_positions(pos, 1)};
        int warps = (p->n_heads + 2 * p->n_kv_heads) * (p->head_dim / 2);
        launch_overlapped("qkv with rotation", qkv_rope_gemv_kernel,
                          (warps + ROPE_WARPS - 1) / ROPE_WARPS, ROPE_WARPS * 32, 0,
                          (__nv_bfloat16 *)q, (__nv_bfloat16 *)k, (__nv_bfloat16 *)v,
                          (const __nv_bfloat16 *)x, (const __nv_bfloat16 *)p->wqkv, p->cols, a);
        return;
    }
    qkv<__nv_bfloat16>(q, k, v, x, p, pos, n, cuda_matmul);
}

void cuda_qkv_f32(void *q, void *k, void *v, const void *x, const qkv_proj *p, const int *pos,
                  int n)
{
    qkv<float>(q, k, v, x, p, pos, n, cuda_matmul_f32);
}
