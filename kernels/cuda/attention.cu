/* Attention that keeps the softmax statistics (flash attention's online softmax), for Star
 * Attention's merges (arXiv 2411.17116, section 2.2).
 *
 * attn_fold: one block per (tile of QT query rows, head, key split) walks its keys KT at a time:
 * scores S = scale * Q K^T, the mask (key j visible to query i iff j <= i + diag), the running max
 * and denominator, and O += P V, all in fp32 from bf16 K/V. Each split writes a partial (m, l, o)
 * per row; attn_merge_splits folds the partials into the caller's running state. With many query
 * rows there is one split (prefill); with few (decode) the keys are split so that every
 * multiprocessor has work (flash-decoding). */
#include <math.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

#define QT 32        /* query rows per block: 4 threads per row */
#define KT 64        /* keys per tile */
#define THREADS 128

/* Shared memory of one block, for head dimension D (rows padded by one float: no bank
 * conflicts when 8 rows of a warp read the same column). */
template <int D> struct fold_smem {
    float q[QT][D + 1];
    float k[KT][D + 1];
    float v[KT][D];
    float p[QT][KT + 1];
};

template <int D>
__global__ void __launch_bounds__(THREADS)
    attn_fold_kernel(const float *__restrict__ q, int nq, int n_heads, int group,
                     const __nv_bfloat16 *__restrict__ k, const __nv_bfloat16 *__restrict__ v,
                     int nk, int kv_stride, int diag, float scale, int split_len,
                     float *__restrict__ part)
{
    extern __shared__ float smem_raw[];
    fold_smem<D> &sm = *reinterpret_cast<fold_smem<D> *>(smem_raw);
    const int t = threadIdx.x, r = t >> 2, lane4 = t & 3;
    const int i0 = blockIdx.x * QT, h = blockIdx.y, split = blockIdx.z;
    const int kv_off = (h / group) * D, qi = i0 + r;

    for (int e = t; e < QT * D; e += THREADS) {
        int rr = e / D, c = e % D;
        sm.q[rr][c] = i0 + rr < nq ? q[(size_t)(i0 + rr) * n_heads * D + (size_t)h * D + c] : 0.0f;
    }
    /* Keys this block may see: its split, and no further than its last row's causal limit. */
    long last_row = (long)min(i0 + QT, nq) - 1 + diag;
    int k_begin = split * split_len;
    int k_end = (int)min((long)min(k_begin + split_len, nk), last_row + 1);

    float m = -INFINITY, l = 0.0f, acc[D / 4];
#pragma unroll
    for (int u = 0; u < D / 4; u++)
        acc[u] = 0.0f;

    for (int j0 = k_begin; j0 < k_end; j0 += KT) {
        __syncthreads(); /* the previous tile's readers are done */
        for (int e = t; e < KT * D; e += THREADS) {
            int jj = e / D, c = e % D, j = j0 + jj;
            bool in = j < k_end;
            size_t off = (size_t)j * kv_stride + kv_off + c;
            sm.k[jj][c] = in ? __bfloat162float(k[off]) : 0.0f;
            sm.v[jj][c] = in ? __bfloat162float(v[off]) : 0.0f;
        }
        __syncthreads();
        float s[KT / 4];
#pragma unroll
        for (int u = 0; u < KT / 4; u++)
            s[u] = 0.0f;
        for (int c = 0; c < D; c++) {
            float qv = sm.q[r][c];
#pragma unroll
            for (int u = 0; u < KT / 4; u++)
                s[u] += qv * sm.k[lane4 + 4 * u][c];
        }
        float smax = -INFINITY;
#pragma unroll
        for (int u = 0; u < KT / 4; u++) {
            int j = j0 + lane4 + 4 * u;
            bool visible = qi < nq && j < k_end && (long)j <= (long)qi + diag;
            s[u] = visible ? s[u] * scale : -INFINITY;
            smax = fmaxf(smax, s[u]);
        }
        smax = fmaxf(smax, __shfl_xor_sync(0xffffffffu, smax, 1));
        smax = fmaxf(smax, __shfl_xor_sync(0xffffffffu, smax, 2));
        float m_new = fmaxf(m, smax);
        float alpha = m_new == -INFINITY ? 1.0f : expf(m - m_new);
        float rowsum = 0.0f;
#pragma unroll
        for (int u = 0; u < KT / 4; u++) {
            float p = m_new == -INFINITY ? 0.0f : expf(s[u] - m_new);
            sm.p[r][lane4 + 4 * u] = p;
            rowsum += p;
        }
        rowsum += __shfl_xor_sync(0xffffffffu, rowsum, 1);
        rowsum += __shfl_xor_sync(0xffffffffu, rowsum, 2);
        l = l * alpha + rowsum;
        m = m_new;
        __syncthreads(); /* every row's P is written */
#pragma unroll
        for (int u = 0; u < D / 4; u++)
            acc[u] *= alpha;
        for (int jj = 0; jj < KT; jj++) {
            float p = sm.p[r][jj];
#pragma unroll
            for (int u = 0; u < D / 4; u++)
                acc[u] += p * sm.v[jj][lane4 + 4 * u];
        }
    }
    if (qi >= nq)
        return;
    size_t row = (size_t)qi * n_heads + h, rows = (size_t)nq * n_heads;
    float *out = part + ((size_t)split * rows + row) * (D + 2);
    if (lane4 == 0) {
        out[0] = m;
        out[1] = l;
    }
#pragma unroll
    for (int u = 0; u < D / 4; u++)
        out[2 + lane4 + 4 * u] = acc[u];
}

/* Folds SPLITS partials of each row into the running state (m, l, o): one warp per row. */
__global__ void attn_merge_splits_kernel(float *m, float *l, float *o, const float *part,
                                         int rows, int splits, int d)
{
    int row = blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= rows)
        return;
    float mx = m[row];
    for (int s = 0; s < splits; s++)
        mx = fmaxf(mx, part[((size_t)s * rows + row) * (d + 2)]);
    if (mx == -INFINITY)
        return; /* no key anywhere yet: the state stays empty */
    float w0 = expf(m[row] - mx), lsum = l[row] * w0;
    for (int c = lane; c < d; c += 32)
        o[(size_t)row * d + c] *= w0;
    for (int s = 0; s < splits; s++) {
        const float *p = part + ((size_t)s * rows + row) * (d + 2);
        float w = p[0] == -INFINITY ? 0.0f : expf(p[0] - mx);
        lsum += p[1] * w;
        for (int c = lane; c < d; c += 32)
            o[(size_t)row * d + c] += p[2 + c] * w;
    }
    __syncwarp();
    if (lane == 0) {
        m[row] = mx;
        l[row] = lsum;
    }
}

__global__ void attn_init_kernel(float *m, float *l, float *o, int rows, int d)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)rows * d;
         i += (size_t)gridDim.x * blockDim.x) {
        o[i] = 0.0f;
        if (i < (size_t)rows) {
            m[i] = -INFINITY;
            l[i] = 0.0f;
        }
    }
}

__global__ void attn_finalize_kernel(float *out, const float *o, const float *l, int rows, int d)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)rows * d;
         i += (size_t)gridDim.x * blockDim.x) {
        float li = l[i / d];
        out[i] = li > 0.0f ? o[i] / li : 0.0f;
    }
}

static int grid_for(size_t n)
{
    size_t blocks = (n + 255) / 256;
    return (int)(blocks < 65536 ? (blocks ? blocks : 1) : 65536);
}

void cuda_attn_init(attn_state *s, int rows, int head_dim)
{
    attn_init_kernel<<<grid_for((size_t)rows * head_dim), 256>>>(s->m, s->l, s->o, rows,
                                                                  head_dim);
    cudaCheckLaunch("attn_init");
}

void cuda_attn_finalize(float *out, const attn_state *s, int rows, int head_dim)
{
    attn_finalize_kernel<<<grid_for((size_t)rows * head_dim), 256>>>(out, s->o, s->l, rows,
                                                                      head_dim);
    cudaCheckLaunch("attn_finalize");
}

template <int D>
static void fold(attn_state *s, const float *q, int nq, int n_heads, int n_kv_heads,
                 const attn_keys *keys, float scale)
{
    static int configured;
    size_t smem = sizeof(fold_smem<D>);
    if (!configured) {
        cudaCheck(cudaFuncSetAttribute(attn_fold_kernel<D>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
        configured = 1;
    }
    long reach = (long)nq - 1 + keys->diag + 1; /* keys any query row can see */
    int nk = (int)(reach < keys->nk ? reach : keys->nk);
    if (nk <= 0)
        return;
    int q_tiles = (nq + QT - 1) / QT, sms = 132;
    int dev;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    /* Enough splits for two blocks per multiprocessor, none shorter than four tiles. */
    int want = (2 * sms + q_tiles * n_heads - 1) / (q_tiles * n_heads);
    int max_splits = (nk + 4 * KT - 1) / (4 * KT);
    int splits = want < max_splits ? want : max_splits;
    if (splits < 1)
        splits = 1;
    int split_len = ((nk + splits - 1) / splits + KT - 1) / KT * KT;
    splits = (nk + split_len - 1) / split_len;
    size_t rows = (size_t)nq * n_heads;
    float *part = (float *)cuda_scratch(SCRATCH_ATTN, sizeof(float) * splits * rows * (D + 2));
    dim3 grid(q_tiles, n_heads, splits);
    attn_fold_kernel<D><<<grid, THREADS, smem>>>(
        q, nq, n_heads, n_heads / n_kv_heads, (const __nv_bfloat16 *)keys->k,
        (const __nv_bfloat16 *)keys->v, nk, keys->kv_stride, keys->diag, scale, split_len, part);
    cudaCheckLaunch("attn_fold");
    int warps = 8;
    attn_merge_splits_kernel<<<(int)((rows + warps - 1) / warps), 32 * warps>>>(
        s->m, s->l, s->o, part, (int)rows, splits, D);
    cudaCheckLaunch("attn_merge_splits");
}

void cuda_attn_accumulate(attn_state *s, const float *q, int nq, int n_heads, int n_kv_heads,
                          int head_dim, const attn_keys *keys, float scale)
{
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
