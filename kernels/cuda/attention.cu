/* Attention that keeps the softmax statistics (flash attention's online softmax), for Star
 * Attention's merges (arXiv 2411.17116, section 2.2), on the tensor cores.
 *
 * attn_tile: one block of 4 warps per (tile of 64 query rows, KV head, key split). The rows of a
 * tile are the (query, head) pairs of the KV head's query heads, query-major: with grouped-query
 * attention the heads that share a KV head read each K/V tile once. The block walks its keys 64
 * at a time, double-buffered in shared memory by asynchronous copies; each warp owns 16 rows and
 * computes S = Q K^T with bf16 mma (fp32 accumulators), the mask (key j visible to query i iff
 * j <= i + diag), the running max and denominator in fp32 (base 2, the scale folded in), and
 * O += P V with P rounded to bf16. With one split the block folds its rows straight into the
 * caller's state (m, l, o); with several (decoding: few rows, many keys) each split writes a
 * partial (m, l, o) per row and attn_merge_splits folds them in (flash-decoding). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/attention_merge.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/overlap.cuh"
#include "kernels/cuda/weight_format.cuh"

#define BK 64   /* keys per tile */
#define WARPS 4
#define PAD 8   /* bf16 elements after each shared-memory row: conflict-free ldmatrix */

#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f

/* MT row tiles of 16 per warp: a block holds 64 * MT rows. */
template <int MT> __host__ __device__ constexpr int rows_per_block()
{
    return WARPS * 16 * MT;
}

template <int D, int MT> constexpr size_t tile_smem_bytes()
{
    return sizeof(__nv_bfloat16) * (size_t)(rows_per_block<MT>() + 4 * BK) * (D + PAD);
}

struct tile_args {
    const __nv_bfloat16 *q;
    int nq, n_heads, group;
    const __nv_bfloat16 *k, *v;
    int nk, kv_stride, diag;
    float scale_log2; /* softmax scale times log2(e) */
    int split_len;
    float *m, *l, *o; /* the state, folded into directly when PART is NULL */
    float *part;      /* [splits][rows][2 + D]: m, l, o of each split */
};

/* Query rows into shared memory: packed row p is query p / group, head kv_head * group + p % group;
 * rows past the end are zero. */
template <int D, int MT>
__device__ void load_q(__nv_bfloat16 *sq, const tile_args &a, int p0, int kv_head, int total)
{
    constexpr int LD = D + PAD, BQ = rows_per_block<MT>();
    for (int e = threadIdx.x; e < BQ * D / 4; e += WARPS * 32) {
        int r = e / (D / 4), c = e % (D / 4) * 4, p = p0 + r;
        uint2 x = make_uint2(0, 0);
        if (p < total) {
            int i = p / a.group, h = kv_head * a.group + p % a.group;
            x = *reinterpret_cast<const uint2 *>(a.q + ((size_t)i * a.n_heads + h) * D + c);
        }
        *reinterpret_cast<uint2 *>(sq + r * LD + c) = x;
    }
}

/* Starts the copies of keys J0 .. J0 + BK - 1 (zeros from K_END on) into SK and SV. */
template <int D>
__device__ void load_kv(__nv_bfloat16 *sk, __nv_bfloat16 *sv, const tile_args &a, size_t kv_off,
                        int j0, int k_end)
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

/* With one row tile per warp (MT = 1) the warp keeps its Q fragments in registers; with two, the
 * accumulators of 32 rows leave no room for them, and Q is read from shared memory at each use,
 * while every K and V fragment it loads serves both row tiles (half the shared-memory reads per
 * matrix product). */
template <int D, int MT>
__global__ void __launch_bounds__(WARPS * 32, 2) attn_tile_kernel(const tile_args a)
{
    constexpr int LD = D + PAD, NT = BK / 8, DT = D / 8, KS = D / 16, BQ = rows_per_block<MT>();
    constexpr bool Q_IN_REGS = MT == 1;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    __nv_bfloat16 *sq = reinterpret_cast<__nv_bfloat16 *>(smem_raw);
    __nv_bfloat16 *sk = sq + BQ * LD, *sv = sk + 2 * BK * LD;

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int total = a.nq * a.group;
    const int p0 = (gridDim.x - 1 - blockIdx.x) * BQ; /* the tiles with most keys start first */
    const int kv_head = blockIdx.y, split = blockIdx.z;
    const size_t kv_off = (size_t)kv_head * D;

    /* Keys this block may see: its split, up to its last row's causal limit. */
    long last_i = (long)(min(p0 + BQ, total) - 1) / a.group;
    int k_begin = split * a.split_len;
    int k_end = (int)min((long)min(k_begin + a.split_len, a.nk), last_i + a.diag + 1);
    int n_tiles = k_end > k_begin ? (k_end - k_begin + BK - 1) / BK : 0;

    load_q<D, MT>(sq, a, p0, kv_head, total);
    if (n_tiles > 0)
        load_kv<D>(sk, sv, a, kv_off, k_begin, k_end);
    __syncthreads();

    const int wrow = p0 + warp * 16 * MT; /* this warp's first row */
    const bool active = wrow < total;     /* a warp of padding rows only loads */
    const long warp_first_i = wrow / a.group;
    /* Rows g and g + 8 of each of the warp's row tiles. */
    int pr[MT][2], qi[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int x = 0; x < 2; x++) {
            pr[mt][x] = wrow + mt * 16 + g + 8 * x;
            qi[mt][x] = pr[mt][x] / a.group;
        }
    const __nv_bfloat16 *q_lane =
        sq + (warp * 16 * MT + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + (lane >> 4) * 8;

    uint32_t qf[Q_IN_REGS ? KS : 1][4];
    if (Q_IN_REGS) {
#pragma unroll
        for (int kk = 0; kk < KS; kk++)
            ldmatrix_x4(qf[Q_IN_REGS ? kk : 0], q_lane + kk * 16);
    }

    /* Running state of rows g and g + 8 (base 2); L is this thread's share of the row sum. */
    float m2[MT][2], lsum[MT][2], acc[MT][DT][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int x = 0; x < 2; x++) {
            m2[mt][x] = -INFINITY;
            lsum[mt][x] = 0.0f;
        }
#pragma unroll
        for (int dt = 0; dt < DT; dt++)
            acc[mt][dt][0] = acc[mt][dt][1] = acc[mt][dt][2] = acc[mt][dt][3] = 0.0f;
    }
    if (!a.part) {
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int x = 0; x < 2; x++) {
                if (pr[mt][x] >= total)
                    continue;
                size_t row = (size_t)qi[mt][x] * a.n_heads + kv_head * a.group +
                             pr[mt][x] % a.group;
                m2[mt][x] = a.m[row] * LOG2E;
                lsum[mt][x] = t4 == 0 ? a.l[row] : 0.0f;
#pragma unroll
                for (int dt = 0; dt < DT; dt++) {
                    float2 o = *reinterpret_cast<const float2 *>(a.o + row * D + dt * 8 + 2 * t4);
                    acc[mt][dt][2 * x] = o.x;
                    acc[mt][dt][2 * x + 1] = o.y;
                }
            }
    }

    for (int t = 0; t < n_tiles; t++) {
        const int j0 = k_begin + t * BK, buf = t & 1;
        if (t + 1 < n_tiles) {
            load_kv<D>(sk + (buf ^ 1) * BK * LD, sv + (buf ^ 1) * BK * LD, a, kv_off, j0 + BK,
                       k_end);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        if (active) {
            const __nv_bfloat16 *kb = sk + buf * BK * LD, *vb = sv + buf * BK * LD;
            float s[MT][NT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int nt = 0; nt < NT; nt++)
                    s[mt][nt][0] = s[mt][nt][1] = s[mt][nt][2] = s[mt][nt][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < KS; kk++) {
                uint32_t qt[MT][4];
                if (!Q_IN_REGS) {
#pragma unroll
                    for (int mt = 0; mt < MT; mt++)
                        ldmatrix_x4(qt[mt], q_lane + mt * 16 * LD + kk * 16);
                }
#pragma unroll
                for (int np = 0; np < NT / 2; np++) {
                    uint32_t b[4];
                    ldmatrix_x4(b, kb + (np * 16 + (lane & 7) + (lane >> 4) * 8) * LD + kk * 16 +
                                       ((lane >> 3) & 1) * 8);
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) {
                        const uint32_t *qa = Q_IN_REGS ? qf[Q_IN_REGS ? kk : 0] : qt[mt];
                        mma_bf16_16816(s[mt][2 * np], qa, b[0], b[1]);
                        mma_bf16_16816(s[mt][2 * np + 1], qa, b[2], b[3]);
                    }
                }
            }
            /* Scale; mask only where the tile crosses the causal limit or the keys' end. */
            const bool masked = j0 + BK > k_end || (long)(j0 + BK - 1) > warp_first_i + a.diag;
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                float tmax[2] = {-INFINITY, -INFINITY};
#pragma unroll
                for (int nt = 0; nt < NT; nt++) {
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        float x = s[mt][nt][e] * a.scale_log2;
                        if (masked) {
                            int j = j0 + nt * 8 + 2 * t4 + (e & 1);
                            if (j >= k_end || (long)j > (long)qi[mt][e >> 1] + a.diag)
                                x = -INFINITY;
                        }
                        s[mt][nt][e] = x;
                        tmax[e >> 1] = fmaxf(tmax[e >> 1], x);
                    }
                }
                float alpha[2], base[2];
#pragma unroll
                for (int x = 0; x < 2; x++) {
                    tmax[x] = fmaxf(tmax[x], __shfl_xor_sync(0xffffffffu, tmax[x], 1));
                    tmax[x] = fmaxf(tmax[x], __shfl_xor_sync(0xffffffffu, tmax[x], 2));
                    float m_new = fmaxf(m2[mt][x], tmax[x]);
                    alpha[x] = m_new == -INFINITY ? 1.0f : exp2_approx(m2[mt][x] - m_new);
                    base[x] = m_new == -INFINITY ? 0.0f : m_new;
                    m2[mt][x] = m_new;
                    lsum[mt][x] *= alpha[x];
                }
#pragma unroll
                for (int nt = 0; nt < NT; nt++) {
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        s[mt][nt][e] = exp2_approx(s[mt][nt][e] - base[e >> 1]);
                        lsum[mt][e >> 1] += s[mt][nt][e];
                    }
                }
#pragma unroll
                for (int dt = 0; dt < DT; dt++) {
                    acc[mt][dt][0] *= alpha[0];
                    acc[mt][dt][1] *= alpha[0];
                    acc[mt][dt][2] *= alpha[1];
                    acc[mt][dt][3] *= alpha[1];
                }
            }
            /* O += P V: the accumulators of two key tiles of 8 are the A operand of 16 keys. */
#pragma unroll
            for (int kc = 0; kc < BK / 16; kc++) {
                uint32_t pa[MT][4];
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    pa[mt][0] = pack_bf16(s[mt][2 * kc][0], s[mt][2 * kc][1]);
                    pa[mt][1] = pack_bf16(s[mt][2 * kc][2], s[mt][2 * kc][3]);
                    pa[mt][2] = pack_bf16(s[mt][2 * kc + 1][0], s[mt][2 * kc + 1][1]);
                    pa[mt][3] = pack_bf16(s[mt][2 * kc + 1][2], s[mt][2 * kc + 1][3]);
                }
#pragma unroll
                for (int dp = 0; dp < D / 16; dp++) {
                    uint32_t b[4];
                    ldmatrix_x4_trans(b, vb + (kc * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD +
                                             dp * 16 + (lane >> 4) * 8);
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) {
                        mma_bf16_16816(acc[mt][2 * dp], pa[mt], b[0], b[1]);
                        mma_bf16_16816(acc[mt][2 * dp + 1], pa[mt], b[2], b[3]);
                    }
                }
            }
        }
        __syncthreads(); /* every warp is done with this buffer before it is refilled */
    }

    const size_t rows = (size_t)a.nq * a.n_heads;
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int x = 0; x < 2; x++) {
            lsum[mt][x] += __shfl_xor_sync(0xffffffffu, lsum[mt][x], 1);
            lsum[mt][x] += __shfl_xor_sync(0xffffffffu, lsum[mt][x], 2);
        }
#pragma unroll
        for (int x = 0; x < 2; x++) {
            if (pr[mt][x] >= total)
                continue;
            size_t row = (size_t)qi[mt][x] * a.n_heads + kv_head * a.group + pr[mt][x] % a.group;
            float m_nat = m2[mt][x] == -INFINITY ? -INFINITY : m2[mt][x] * LN2;
            float *o, *ml;
            if (a.part) {
                ml = a.part + ((size_t)split * rows + row) * (D + 2);
                o = ml + 2;
            } else {
                ml = NULL;
                o = a.o + row * D;
            }
            if (t4 == 0) {
                if (ml) {
                    ml[0] = m_nat;
                    ml[1] = lsum[mt][x];
                } else {
                    a.m[row] = m_nat;
                    a.l[row] = lsum[mt][x];
                }
            }
#pragma unroll
            for (int dt = 0; dt < DT; dt++)
                *reinterpret_cast<float2 *>(o + dt * 8 + 2 * t4) =
                    make_float2(acc[mt][dt][2 * x], acc[mt][dt][2 * x + 1]);
        }
    }
}

/* Folds SPLITS partials of each row into the running state: one warp per row. */
template <int D>
__global__ void attn_merge_splits_kernel(float *m, float *l, float *o, const float *part,
                                         int rows, int splits)
{
    int row = blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5);
    if (row < rows)
        merge_splits_row<D>(m, l, o, NULL, part, rows, splits, row, threadIdx.x & 31);
}

__global__ void attn_init_kernel(float *m, float *l, float *o, int rows, int d)
{
    overlap_release();
    overlap_wait();
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)rows * d;
         i += (size_t)gridDim.x * blockDim.x) {
        o[i] = 0.0f;
        if (i < (size_t)rows) {
            m[i] = -INFINITY;
            l[i] = 0.0f;
        }
    }
}

template <typename A>
__global__ void attn_finalize_kernel(A *out, const float *o, const float *l, int rows, int d)
{
    overlap_release();
    overlap_wait();
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)rows * d;
         i += (size_t)gridDim.x * blockDim.x) {
        float li = l[i / d];
        out[i] = from_f32<A>(li > 0.0f ? o[i] / li : 0.0f);
    }
}

static int grid_for(size_t n)
{
    size_t blocks = (n + 255) / 256;
    return (int)(blocks < 65536 ? (blocks ? blocks : 1) : 65536);
}

void cuda_attn_init(attn_state *s, int rows, int head_dim)
{
    launch_overlapped("attn_init", attn_init_kernel, grid_for((size_t)rows * head_dim), 256, 0,
                      s->m, s->l, s->o, rows, head_dim);
}

void cuda_attn_finalize(void *out, const attn_state *s, int rows, int head_dim)
{
    launch_overlapped("attn_finalize", attn_finalize_kernel<__nv_bfloat16>,
                      grid_for((size_t)rows * head_dim), 256, 0, (__nv_bfloat16 *)out,
                      (const float *)s->o, (const float *)s->l, rows, head_dim);
}

void cuda_attn_finalize_f32(void *out, const attn_state *s, int rows, int head_dim)
{
    launch_overlapped("attn_finalize", attn_finalize_kernel<float>,
                      grid_for((size_t)rows * head_dim), 256, 0, (float *)out, (const float *)s->o,
                      (const float *)s->l, rows, head_dim);
}

static int multiprocessors(void)
{
    static int sms;
    if (!sms) {
        int dev;
        cudaCheck(cudaGetDevice(&dev));
        cudaCheck(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    }
    return sms;
}

/* Row tiles per warp: two where there are rows enough to fill the GPU with blocks of 128 (a
 * prefill chunk), else one (decoding: a few rows, the blocks split the keys instead).
 * STARINFER_ATTN_ROWS_PER_WARP=16 or 32 forces either, to compare them in one benchmark run. */
static int row_tiles_per_warp(long rows)
{
    static int forced = -1;
    if (forced < 0) {
        const char *env = getenv("STARINFER_ATTN_ROWS_PER_WARP");
        forced = env && !strcmp(env, "16") ? 1 : env && !strcmp(env, "32") ? 2 : 0;
    }
    if (forced)
        return forced;
    return rows >= 1024 ? 2 : 1;
}

/* Few rows per KV head go to the decode kernel (attention_decode.cu), unless
 * STARINFER_ATTN_DECODE=tile keeps them on the tile kernel, to compare the two in one run. */
static int decode_kernel_wanted(void)
{
    static int wanted = -1;
    if (wanted < 0) {
        const char *env = getenv("STARINFER_ATTN_DECODE");
        wanted = !(env && !strcmp(env, "tile"));
    }
    return wanted;
}

template <int D, int MT>
static void launch(const tile_args &base, attn_state *s, int nq, int n_heads, int n_kv_heads)
{
    static int configured;
    const size_t smem = tile_smem_bytes<D, MT>();
    if (!configured) {
        cudaCheck(cudaFuncSetAttribute(attn_tile_kernel<D, MT>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        configured = 1;
    }
    constexpr int BQ = rows_per_block<MT>();
    int nk = base.nk;
    int q_tiles = (int)(((long)nq * base.group + BQ - 1) / BQ);
    /* Enough splits for two blocks per multiprocessor, none shorter than four tiles. */
    int blocks = q_tiles * n_kv_heads;
    int split_len, splits = key_splits(nk, (2 * multiprocessors() + blocks - 1) / blocks, BK,
                                       &split_len);

    tile_args a = base;
    a.split_len = split_len;
    size_t rows = (size_t)nq * n_heads;
    a.part = splits == 1 ? NULL
                         : (float *)cuda_scratch(SCRATCH_ATTN,
                                                 sizeof(float) * splits * rows * (D + 2));
    dim3 grid(q_tiles, n_kv_heads, splits);
    attn_tile_kernel<D, MT><<<grid, WARPS * 32, smem>>>(a);
    cudaCheckLaunch("attn_tile");
    if (splits > 1) {
        int warps = 8;
        attn_merge_splits_kernel<D><<<(int)((rows + warps - 1) / warps), 32 * warps>>>(
            s->m, s->l, s->o, a.part, (int)rows, splits);
        cudaCheckLaunch("attn_merge_splits");
    }
}

/* The keys any of NQ query rows can see, after checking that the rows can be read 16 bytes at
 * a time, as the tiles read them. */
static int visible_keys(const void *q, int nq, const attn_keys *keys)
{
    if (((uintptr_t)q | (uintptr_t)keys->k | (uintptr_t)keys->v) % 16 || keys->kv_stride % 8)
        si_fatal("attention: query or K/V rows not 16-byte aligned (kv_stride %d)",
                 keys->kv_stride);
    long reach = (long)nq - 1 + keys->diag + 1;
    return (int)(reach < keys->nk ? reach : keys->nk);
}

template <int D>
static void fold(attn_state *s, const __nv_bfloat16 *q, int nq, int n_heads, int n_kv_heads,
                 const attn_keys *keys, float scale)
{
    int nk = visible_keys(q, nq, keys);
    if (nk <= 0)
        return;
    if (decode_kernel_wanted() && cuda_attn_decode_fits(nq, n_heads, n_kv_heads)) {
        cuda_attn_decode(s, NULL, q, nq, n_heads, n_kv_heads, D, keys, nk, scale);
        return;
    }
#ifdef STARINFER_HAVE_CUDNN
    if (cuda_attn_cudnn(s, q, nq, n_heads, n_kv_heads, D, keys, nk, scale))
        return;
#endif
    tile_args a;
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
    a.split_len = 0;
    a.m = s->m;
    a.l = s->l;
    a.o = s->o;
    a.part = NULL;
    if (row_tiles_per_warp((long)nq * a.group) == 2)
        launch<D, 2>(a, s, nq, n_heads, n_kv_heads);
    else
        launch<D, 1>(a, s, nq, n_heads, n_kv_heads);
}

int cuda_attn_decode_alone(void *out, const void *q, int nq, int n_heads, int n_kv_heads,
                           int head_dim, const attn_keys *keys, float scale)
{
    if (!decode_kernel_wanted() || !cuda_attn_decode_fits(nq, n_heads, n_kv_heads) ||
        (head_dim != 16 && head_dim != 32 && head_dim != 64 && head_dim != 128))
        return 0;
    int nk = visible_keys(q, nq, keys);
    if (nk <= 0)
        return 0;
    cuda_attn_decode(NULL, out, (const __nv_bfloat16 *)q, nq, n_heads, n_kv_heads, head_dim, keys,
                     nk, scale);
    return 1;
}

void cuda_attn_accumulate(attn_state *s, const void *queries, int nq, int n_heads, int n_kv_heads,
                          int head_dim, const attn_keys *keys, float scale)
{
    const __nv_bfloat16 *q = (const __nv_bfloat16 *)queries;
    switch (head_dim) {
    case 16:
        fold<16>(s, q, nq, n_heads, n_kv_heads, keys, scale);
        break;
    case 32:
        fold<32>(s, q, nq, n_heads, n_kv_heads, keys, scale);
        break;
    case 64:
        fold<64>(s, q, nq, n_heads, n_kv_heads, keys, scale);
        break;
    case 128:
        fold<128>(s, q, nq, n_heads, n_kv_heads, keys, scale);
        break;
    default:
        si_fatal("the CUDA attention supports head_dim 16, 32, 64 and 128, not %d\n"
                 "  HINT: run this model with --device cpu",
                 head_dim);
    }
}
