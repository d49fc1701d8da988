/* Flash-decoding: a few query rows (at most 16 (query, head) pairs per KV head: one decoded
 * token, or a handful) over many keys, on the tensor cores.
 *
 * The tile kernel (attention.cu) gives each warp 16 rows of its own; with one decoded token and
 * grouped-query attention a KV head has only group (4 for Llama 3) rows, so one warp of four
 * would do all the arithmetic of a block while the others wait. Here the four warps of a block
 * share the block's 16 rows and split each tile of 64 keys between them, 16 keys each, with a
 * running state per warp; at the end the block combines its warps' states in shared memory and
 * writes one partial (m, l, o) per row for its split of the keys. The last block of a KV head to
 * finish (a counter per KV head, reset by that block) folds every split's partial into the
 * caller's state, so one launch does what the tile kernel and the split merge do in two. */
#include <math.h>
#include <stdint.h>

#include "kernels/cuda/attention_merge.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/overlap.cuh"

#define BK 64    /* keys per tile; each warp takes 16 */
#define STAGES 3 /* tiles in flight or in use: measured faster than two (H100, 32K keys) */
#define WARPS 4
#define ROWS 16           /* rows per block: one mma row tile */
#define PAD 8             /* bf16 elements after each shared-memory row: conflict-free ldmatrix */
#define MAX_KV_HEADS 1024 /* counters kept for the last-block merge */

#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f

struct decode_args {
    const __nv_bfloat16 *q;
    int nq, n_heads, group;
    const __nv_bfloat16 *k, *v;
    int nk, kv_stride, diag;
    float scale_log2; /* softmax scale times log2(e) */
    int split_len;
    float *m, *l, *o;   /* the caller's state */
    __nv_bfloat16 *out; /* or, where not NULL, the normalised output: the keys stand alone */
    float *part;        /* [splits][rows][2 + D] */
    unsigned *done;     /* [n_kv_heads] blocks finished, zero between launches */
};

template <int D> constexpr size_t decode_smem_bytes()
{
    return sizeof(__nv_bfloat16) * (size_t)(ROWS + 2 * STAGES * BK) * (D + PAD);
}

/* Starts the copies of keys J0 .. J0 + BK - 1 (zeros from K_END on) into SK and SV. */
template <int D>
__device__ void decode_load_kv(__nv_bfloat16 *sk, __nv_bfloat16 *sv, const decode_args &a,
                               size_t kv_off, int j0, int k_end)
{
    constexpr int LD = D + PAD, CHUNKS = D / 8;
    for (int e = threadIdx.x; e < BK * CHUNKS; e += WARPS * 32) {
        int r = e / CHUNKS, c = e % CHUNKS * 8, j = j0 + r;
        bool in = j < k_end;
        size_t off = in ? (size_t)j * a.kv_stride + kv_off + c : 0;
        cp_async_16(sk + r * LD + c, a.k + off, in);
        cp_async_16(sv + r * LD + c, a.v + off, in);
    }
    cp_async_commit();
}

/* The state row of packed row P of KV head KV_HEAD: query P / group, head
 * kv_head * group + P % group. */
__device__ __forceinline__ size_t state_row(const decode_args &a, int kv_head, int p)
{
    return (size_t)(p / a.group) * a.n_heads + kv_head * a.group + p % a.group;
}

template <int D>
__global__ void __launch_bounds__(WARPS * 32) attn_decode_kernel(const decode_args a)
{
    constexpr int LD = D + PAD, KS = D / 16, DT = D / 8;
    static_assert(sizeof(float) * WARPS * ROWS * (D + 2) <=
                      sizeof(__nv_bfloat16) * 2 * STAGES * BK * LD,
                  "the warps' states fit where the K/V tiles were");
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __nv_bfloat16 *sq = reinterpret_cast<__nv_bfloat16 *>(smem_raw);
    __nv_bfloat16 *sk = sq + ROWS * LD, *sv = sk + STAGES * BK * LD;
    __shared__ int last_block;
    overlap_wait();

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int total = a.nq * a.group, kv_head = blockIdx.x, split = blockIdx.y;
    const size_t kv_off = (size_t)kv_head * D, rows = (size_t)a.nq * a.n_heads;

    int k_begin = split * a.split_len;
    int k_end = (int)min((long)min(k_begin + a.split_len, a.nk), (long)a.nq - 1 + a.diag + 1);
    int n_tiles = k_end > k_begin ? (k_end - k_begin + BK - 1) / BK : 0;

    /* Query rows: packed row p is query p / group, head kv_head * group + p % group. */
    for (int e = threadIdx.x; e < ROWS * D / 4; e += WARPS * 32) {
        int p = e / (D / 4), c = e % (D / 4) * 4;
        uint2 x = make_uint2(0, 0);
        if (p < total) {
            int i = p / a.group, h = kv_head * a.group + p % a.group;
            x = *reinterpret_cast<const uint2 *>(a.q + ((size_t)i * a.n_heads + h) * D + c);
        }
        *reinterpret_cast<uint2 *>(sq + p * LD + c) = x;
    }
    /* The first STAGES - 1 tiles in flight (an empty group where there are fewer). */
#pragma unroll
    for (int t = 0; t < STAGES - 1; t++) {
        if (t < n_tiles)
            decode_load_kv<D>(sk + t * BK * LD, sv + t * BK * LD, a, kv_off, k_begin + t * BK,
                              k_end);
        else
            cp_async_commit();
    }
    __syncthreads();

    uint32_t qf[KS][4];
#pragma unroll
    for (int kk = 0; kk < KS; kk++)
        ldmatrix_x4(qf[kk],
                    sq + ((lane & 7) + ((lane >> 3) & 1) * 8) * LD + (lane >> 4) * 8 + kk * 16);
    const int qi[2] = {g / a.group, (g + 8) / a.group}; /* the query of rows g and g + 8 */

    /* This warp's running state of rows g and g + 8 (base 2); L is this thread's share. */
    float m2[2] = {-INFINITY, -INFINITY}, lsum[2] = {0.0f, 0.0f}, acc[DT][4];
#pragma unroll
    for (int dt = 0; dt < DT; dt++)
        acc[dt][0] = acc[dt][1] = acc[dt][2] = acc[dt][3] = 0.0f;

    for (int t = 0; t < n_tiles; t++) {
        const int buf = t % STAGES, jw = k_begin + t * BK + warp * 16; /* this warp's first key */
        const int next = t + STAGES - 1, nbuf = next % STAGES;
        if (next < n_tiles)
            decode_load_kv<D>(sk + nbuf * BK * LD, sv + nbuf * BK * LD, a, kv_off,
                              k_begin + next * BK, k_end);
        else
            cp_async_commit();
        cp_async_wait<STAGES - 1>();
        __syncthreads();
        const __nv_bfloat16 *kb = sk + (buf * BK + warp * 16) * LD;
        const __nv_bfloat16 *vb = sv + (buf * BK + warp * 16) * LD;
        float s[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
#pragma unroll
        for (int kk = 0; kk < KS; kk++) {
            uint32_t b[4];
            ldmatrix_x4(b,
                        kb + ((lane & 7) + (lane >> 4) * 8) * LD + kk * 16 + ((lane >> 3) & 1) * 8);
            mma_bf16_16816(s[0], qf[kk], b[0], b[1]);
            mma_bf16_16816(s[1], qf[kk], b[2], b[3]);
        }
        /* Scale; mask only where the warp's keys cross the keys' end or the causal limit. */
        const bool masked = jw + 16 > k_end || (long)jw + 15 > (long)a.diag;
        float tmax[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int nt = 0; nt < 2; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float x = s[nt][e] * a.scale_log2;
                if (masked) {
                    int j = jw + nt * 8 + 2 * t4 + (e & 1);
                    if (j >= k_end || (long)j > (long)qi[e >> 1] + a.diag)
                        x = -INFINITY;
                }
                s[nt][e] = x;
                tmax[e >> 1] = fmaxf(tmax[e >> 1], x);
            }
        float alpha[2], base[2];
#pragma unroll
        for (int x = 0; x < 2; x++) {
            tmax[x] = fmaxf(tmax[x], __shfl_xor_sync(0xffffffffu, tmax[x], 1));
            tmax[x] = fmaxf(tmax[x], __shfl_xor_sync(0xffffffffu, tmax[x], 2));
            float m_new = fmaxf(m2[x], tmax[x]);
            alpha[x] = m_new == -INFINITY ? 1.0f : exp2_approx(m2[x] - m_new);
            base[x] = m_new == -INFINITY ? 0.0f : m_new;
            m2[x] = m_new;
            lsum[x] *= alpha[x];
        }
#pragma unroll
        for (int nt = 0; nt < 2; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                s[nt][e] = exp2_approx(s[nt][e] - base[e >> 1]);
                lsum[e >> 1] += s[nt][e];
            }
        /* O += P V over the warp's 16 keys: the two key tiles of 8 are the A operand. */
        uint32_t pa[4] = {pack_bf16(s[0][0], s[0][1]), pack_bf16(s[0][2], s[0][3]),
                          pack_bf16(s[1][0], s[1][1]), pack_bf16(s[1][2], s[1][3])};
#pragma unroll
        for (int dp = 0; dp < D / 16; dp++) {
            uint32_t b[4];
            ldmatrix_x4_trans(b, vb + ((lane & 7) + ((lane >> 3) & 1) * 8) * LD + dp * 16 +
                                     (lane >> 4) * 8);
            acc[2 * dp][0] *= alpha[0], acc[2 * dp][1] *= alpha[0];
            acc[2 * dp][2] *= alpha[1], acc[2 * dp][3] *= alpha[1];
            acc[2 * dp + 1][0] *= alpha[0], acc[2 * dp + 1][1] *= alpha[0];
            acc[2 * dp + 1][2] *= alpha[1], acc[2 * dp + 1][3] *= alpha[1];
            mma_bf16_16816(acc[2 * dp], pa, b[0], b[1]);
            mma_bf16_16816(acc[2 * dp + 1], pa, b[2], b[3]);
        }
        __syncthreads(); /* every warp is done with this buffer before it is refilled */
    }

    /* The next kernel may launch now, for the tail (launched at the start, its blocks and those
     * after it would be placed beside this one's and crowd them). */
    overlap_release();

    /* The warps' states into shared memory (the K/V buffers are free now), then one per row. */
    float *wm = reinterpret_cast<float *>(sk), *wl = wm + WARPS * ROWS;
    float *wo = wl + WARPS * ROWS; /* [WARPS][ROWS][D] */
#pragma unroll
    for (int x = 0; x < 2; x++) {
        lsum[x] += __shfl_xor_sync(0xffffffffu, lsum[x], 1);
        lsum[x] += __shfl_xor_sync(0xffffffffu, lsum[x], 2);
        int r = warp * ROWS + g + 8 * x;
        if (t4 == 0) {
            wm[r] = m2[x];
            wl[r] = lsum[x];
        }
#pragma unroll
        for (int dt = 0; dt < DT; dt++)
            *reinterpret_cast<float2 *>(wo + r * D + dt * 8 + 2 * t4) =
                make_float2(acc[dt][2 * x], acc[dt][2 * x + 1]);
    }
    __syncthreads();
    for (int e = threadIdx.x; e < total * D; e += WARPS * 32) {
        int p = e / D, c = e % D;
        float mx = -INFINITY;
#pragma unroll
        for (int w = 0; w < WARPS; w++)
            mx = fmaxf(mx, wm[w * ROWS + p]);
        float lx = 0.0f, ox = 0.0f;
#pragma unroll
        for (int w = 0; w < WARPS; w++) {
            float f = mx == -INFINITY ? 0.0f : exp2_approx(wm[w * ROWS + p] - mx);
            lx += wl[w * ROWS + p] * f;
            ox += wo[(w * ROWS + p) * D + c] * f;
        }
        float *ml = a.part + ((size_t)split * rows + state_row(a, kv_head, p)) * (D + 2);
        ml[2 + c] = ox;
        if (c == 0) {
            ml[0] = mx == -INFINITY ? -INFINITY : mx * LN2;
            ml[1] = lx;
        }
    }

    /* The last block of this KV head folds every split into the state. */
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0)
        last_block = atomicAdd(&a.done[kv_head], 1u) == gridDim.y - 1;
    __syncthreads();
    if (!last_block)
        return;
    __threadfence();
    for (int p = warp; p < total; p += WARPS)
        merge_splits_row<D>(a.m, a.l, a.o, a.out, a.part, (int)rows, gridDim.y,
                            (int)state_row(a, kv_head, p), lane);
    if (threadIdx.x == 0)
        a.done[kv_head] = 0;
}

int cuda_attn_decode_fits(int nq, int n_heads, int n_kv_heads)
{
    return (long)nq * (n_heads / n_kv_heads) <= ROWS && n_kv_heads <= MAX_KV_HEADS;
}

/* The counters of finished blocks per KV head: zeroed once, and each launch's last blocks leave
 * them zero again. */
static unsigned *done_counters(void)
{
    static unsigned *done;
    if (!done) {
        done = (unsigned *)cuda_scratch(SCRATCH_ATTN_DONE, sizeof(unsigned) * MAX_KV_HEADS);
        cudaCheck(cudaMemset(done, 0, sizeof(unsigned) * MAX_KV_HEADS));
    }
    return done;
}

template <int D>
static void decode(attn_state *s, __nv_bfloat16 *out, const __nv_bfloat16 *q, int nq, int n_heads,
                   int n_kv_heads, const attn_keys *keys, int nk, float scale)
{
    static int configured, blocks_per_sm, sms;
    const size_t smem = decode_smem_bytes<D>();
    if (!configured) {
        int dev;
        cudaCheck(cudaFuncSetAttribute(attn_decode_kernel<D>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        cudaCheck(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
            &blocks_per_sm, attn_decode_kernel<D>, WARPS * 32, smem));
        cudaCheck(cudaGetDevice(&dev));
        cudaCheck(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
        configured = 1;
    }
    /* Splits enough to fill every multiprocessor once, none shorter than four tiles. */
    int split_len, splits = key_splits(nk, (blocks_per_sm * sms + n_kv_heads - 1) / n_kv_heads,
                                       BK, &split_len);

    decode_args a;
    a.q = q;
    a.nq = nq;
    a.n_heads = n_heads;
    a.group = n_heads / n_kv_heads;
    a.k = (const __nv_bfloat16 *)keys->k;
    a.v = (const __nv_bfloat16 *)keys->v;
    a.nk = nk;
    a.kv_stride = keys->kv_stride;
    a.diag = keys->diag;
    a.scale_log2 = scale * LOG2E;
    a.split_len = split_len;
    a.m = out ? NULL : s->m;
    a.l = out ? NULL : s->l;
    a.o = out ? NULL : s->o;
    a.out = out;
    size_t rows = (size_t)nq * n_heads;
    a.part = (float *)cuda_scratch(SCRATCH_ATTN, sizeof(float) * splits * rows * (D + 2));
    a.done = done_counters();
    launch_overlapped("attn_decode", attn_decode_kernel<D>, dim3(n_kv_heads, splits), WARPS * 32,
                      smem, a);
}

void cuda_attn_decode(attn_state *s, void *out, const __nv_bfloat16 *q, int nq, int n_heads,
                      int n_kv_heads, int head_dim, const attn_keys *keys, int nk, float scale)
{
    __nv_bfloat16 *o = (__nv_bfloat16 *)out;
    switch (head_dim) {
    case 16:
        decode<16>(s, o, q, nq, n_heads, n_kv_heads, keys, nk, scale);
        break;
    case 32:
        decode<32>(s, o, q, nq, n_heads, n_kv_heads, keys, nk, scale);
        break;
    case 64:
        decode<64>(s, o, q, nq, n_heads, n_kv_heads, keys, nk, scale);
        break;
    case 128:
        decode<128>(s, o, q, nq, n_heads, n_kv_heads, keys, nk, scale);
        break;
    default:
        si_fatal("the CUDA attention supports head_dim 16, 32, 64 and 128, not %d", head_dim);
    }
}
