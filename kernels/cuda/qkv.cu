/* The attention's inputs of new tokens: one product of the normed rows over the query, key and
 * value weights where they lie back to back (three where they do not, or where only some are
 * wanted), into scratch in the activation format; then one kernel rotates the queries into Q and
 * the keys into the KV cache, and copies the values there. Rotary embedding in the rotate-half
 * convention, angle pos * inv_freq[j] rounded to fp32 as the reference computes it (then sin
 * and cos in fp32). Each thread takes a token and two neighbouring frequencies over some of the
 * heads; with few tokens (decoding) the heads are spread over the grid's second dimension, so
 * that there are enough threads to keep the loads in flight. */
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/overlap.cuh"
#include "kernels/cuda/weight_format.cuh"

/* Two neighbouring elements of an activation row, as fp32 and back. */
__device__ __forceinline__ float2 load2(const __nv_bfloat16 *p)
{
    return __bfloat1622float2(*(const __nv_bfloat162 *)p);
}

__device__ __forceinline__ float2 load2(const float *p)
{
    return *(const float2 *)p;
}

__device__ __forceinline__ void store2(__nv_bfloat16 *p, float2 v)
{
    *(__nv_bfloat162 *)p = __floats2bfloat162_rn(v.x, v.y);
}

__device__ __forceinline__ void store2(float *p, float2 v)
{
    *(float2 *)p = v;
}

struct rope_args {
    int n, n_heads, n_kv_heads, head_dim;
    int q_ld, kv_ld; /* row strides of the products in scratch */
    const float *inv_freq;
    const int *pos;
};

/* Head h of token i: heads below n_heads are queries (Q NULL: none), the rest keys and values
 * (K NULL: none). */
template <typename T>
__global__ void rope_store_kernel(T *q, T *k, T *v, const T *qs, const T *ks, const T *vs,
                                  rope_args a)
{
    overlap_release();
    overlap_wait();
    int half = a.head_dim / 2, pairs = half / 2;
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= a.n * pairs)
        return;
    int i = idx / pairs, j = idx % pairs * 2;
    float p = (float)a.pos[i];
    float2 s, c;
    sincosf(__fmul_rn(p, a.inv_freq[j]), &s.x, &c.x);
    sincosf(__fmul_rn(p, a.inv_freq[j + 1]), &s.y, &c.y);
    int qd = a.n_heads * a.head_dim, kvd = a.n_kv_heads * a.head_dim;
    for (int h = blockIdx.y; h < a.n_heads + a.n_kv_heads; h += gridDim.y) {
        const T *src;
        T *dst;
        if (h < a.n_heads) {
            if (!q)
                continue;
            src = qs + (size_t)i * a.q_ld + (size_t)h * a.head_dim;
            dst = q + (size_t)i * qd + (size_t)h * a.head_dim;
        } else {
            if (!k)
                continue;
            size_t off = (size_t)(h - a.n_heads) * a.head_dim;
            const T *vr = vs + (size_t)i * a.kv_ld + off;
            T *vw = v + (size_t)i * kvd + off;
            store2(vw + j, load2(vr + j));
            store2(vw + j + half, load2(vr + j + half));
            src = ks + (size_t)i * a.kv_ld + off;
            dst = k + (size_t)i * kvd + off;
        }
        float2 x = load2(src + j), y = load2(src + j + half);
        store2(dst + j, make_float2(x.x * c.x - y.x * s.x, x.y * c.y - y.y * s.y));
        store2(dst + j + half, make_float2(y.x * c.x + x.x * s.x, y.y * c.y + x.y * s.y));
    }
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

typedef void (*product_fn)(void *out, const void *x, const void *w, int n, int cols, int rows);

template <typename T>
static void qkv(void *q, void *k, void *v, const void *x, const qkv_proj *p, const int *pos, int n,
                product_fn product)
{
    if ((!q && !k) || n <= 0)
        return;
    if (p->head_dim % 4)
        si_fatal("the CUDA backend's rotary embedding needs a head_dim divisible by 4, not %d\n"
                 "  HINT: run this model with --device cpu",
                 p->head_dim);
    int qd = p->n_heads * p->head_dim, kvd = p->n_kv_heads * p->head_dim, ld = qd + 2 * kvd;
    T *s = (T *)cuda_scratch(SCRATCH_QKV, sizeof(T) * (size_t)n * ld);
    const T *qs = s, *ks = s + qd, *vs = s + qd + kvd;
    rope_args a = {n, p->n_heads, p->n_kv_heads, p->head_dim, ld, ld, p->inv_freq,
                   cuda_positions(pos, n)};
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
    int threads = n * (p->head_dim / 4);
    dim3 grid((threads + 255) / 256, threads < 16384 ? p->n_heads + p->n_kv_heads : 1);
    launch_overlapped("rope_store", rope_store_kernel<T>, grid, 256, 0, (T *)q, (T *)k, (T *)v, qs,
                      ks, vs, a);
}

void cuda_qkv(void *q, void *k, void *v, const void *x, const qkv_proj *p, const int *pos, int n)
{
    qkv<__nv_bfloat16>(q, k, v, x, p, pos, n, cuda_matmul);
}

void cuda_qkv_f32(void *q, void *k, void *v, const void *x, const qkv_proj *p, const int *pos,
                  int n)
{
    qkv<float>(q, k, v, x, p, pos, n, cuda_matmul_f32);
}
