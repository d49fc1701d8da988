/* Picking the next token on the GPU from logits that stay there: argmax, or temperature +
 * nucleus (top-p) sampling with the caller's uniform draw, by the rule written where backend.h
 * declares the slot (kernels/cpu/sample.c is the reference). Only the token id is copied back.
 *
 * The argmax: 128 blocks each find the first largest of their share, one block the first largest
 * of theirs. Sampling: the argmax's max; a kernel writes p_i = exp((logit_i - max) / T); CUB sorts
 * (p, id) pairs by p descending (a stable radix sort: equal p keep the lower id first) and scans
 * the sorted p in double; one block finds the nucleus and the draw's place in it. */
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

enum { PICK_THREADS = 1024, ARGMAX_BLOCKS = 128, ARGMAX_THREADS = 256 };

/* Whether (OV, OI) beats (MV, MI) for the first largest: a larger value, or the same value at a
 * lower id; an id below zero is no candidate. */
static __device__ __forceinline__ bool beats(float ov, int oi, float mv, int mi)
{
    return oi >= 0 && (mi < 0 || ov > mv || (ov == mv && oi < mi));
}

/* The block's best of every thread's (V, I), in thread 0's. */
static __device__ void block_best(float *v, int *i)
{
    __shared__ float sv[32];
    __shared__ int si[32];
    for (int off = 16; off > 0; off >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, *v, off);
        int oi = __shfl_xor_sync(0xffffffffu, *i, off);
        if (beats(ov, oi, *v, *i)) {
            *v = ov;
            *i = oi;
        }
    }
    if ((threadIdx.x & 31) == 0) {
        sv[threadIdx.x >> 5] = *v;
        si[threadIdx.x >> 5] = *i;
    }
    __syncthreads();
    if (threadIdx.x == 0)
        for (int w = 1; w < (int)(blockDim.x >> 5); w++)
            if (beats(sv[w], si[w], *v, *i)) {
                *v = sv[w];
                *i = si[w];
            }
}

/* The first largest of block b's share of VOCAB logits (a contiguous run) into PV[b], PI[b]: the
 * logits are read by every multiprocessor at once (one block reading all 128K of them took
 * about 50 us of a decoded token on an H200, bench/NOTES.md entry 16). */
__global__ void argmax_part_kernel(const float *logits, int vocab, float *pv, int *pi)
{
    int per = (vocab + gridDim.x - 1) / gridDim.x, begin = blockIdx.x * per;
    int end = min(begin + per, vocab);
    float bv = -INFINITY;
    int bi = -1, nan = 0; /* strided in increasing order: a strict > keeps the lowest id */
    for (int i = begin + threadIdx.x; i < end; i += blockDim.x) {
        nan |= isnan(logits[i]);
        if (bi < 0 || logits[i] > bv) {
            bv = logits[i];
            bi = i;
        }
    }
    nan = __syncthreads_or(nan);
    block_best(&bv, &bi);
    if (threadIdx.x == 0) {
        pv[blockIdx.x] = nan ? NAN : bv;
        pi[blockIdx.x] = bi;
    }
}

/* The first largest of the N parts: its id in *BEST and its value in *MAX. */
/* BEST[0]: the token; BEST[1]: 1 when a logit is NaN (a part's value is NaN then) or the largest
 * is not finite. */
__global__ void argmax_final_kernel(const float *pv, const int *pi, int n, int *best, float *max)
{
    float bv = -INFINITY;
    int bi = -1, nan = 0;
    for (int b = threadIdx.x; b < n; b += blockDim.x) {
        nan |= pi[b] >= 0 && isnan(pv[b]);
        if (beats(pv[b], pi[b], bv, bi)) {
            bv = pv[b];
            bi = pi[b];
        }
    }
    nan = __syncthreads_or(nan);
    block_best(&bv, &bi);
    if (threadIdx.x == 0) {
        best[0] = bi < 0 ? 0 : bi;
        best[1] = nan || !isfinite(bv);
        *max = bv;
    }
}

__global__ void probs_kernel(float *p, int *ids, const float *logits, int vocab, const float *max,
                             float temperature)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < vocab) {
        p[i] = expf((logits[i] - *max) / temperature);
        ids[i] = i;
    }
}

__global__ void widen_kernel(double *out, const float *p, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        out[i] = p[i];
}

/* The least j < LIMIT with cum[j] > X (STRICT) or cum[j] >= X, or FALLBACK: a block-wide min. */
__device__ int first_reaching(const double *cum, int limit, double x, int strict, int fallback)
{
    __shared__ int found;
    if (threadIdx.x == 0)
        found = limit;
    __syncthreads();
    for (int j = threadIdx.x; j < limit; j += blockDim.x)
        if (strict ? cum[j] > x : cum[j] >= x) {
            atomicMin(&found, j);
            break;
        }
    __syncthreads();
    int r = found < limit ? found : fallback;
    __syncthreads();
    return r;
}

/* CUM: inclusive sums of the sorted p; IDS: their token ids. */
__global__ void pick_kernel(int *out, const double *cum, const int *ids, int vocab, float top_p,
                            float u)
{
    double total = cum[vocab - 1];
    int last = first_reaching(cum, vocab, (double)top_p * total, 0, vocab - 1);
    int j = first_reaching(cum, last + 1, (double)u * cum[last], 1, last);
    if (threadIdx.x == 0)
        *out = ids[j];
}

static size_t align256(size_t n)
{
    return (n + 255) & ~(size_t)255;
}

extern "C" int cuda_sample(const float *logits, int vocab, float temperature, float top_p, float u)
{
    size_t v = (size_t)vocab, sort_bytes = 0, scan_bytes = 0;
    cudaCheck(cub::DeviceRadixSort::SortPairsDescending(nullptr, sort_bytes, (float *)nullptr,
                                                        (float *)nullptr, (int *)nullptr,
                                                        (int *)nullptr, vocab));
    cudaCheck(cub::DeviceScan::InclusiveSum(nullptr, scan_bytes, (double *)nullptr,
                                            (double *)nullptr, vocab));
    size_t temp_bytes = sort_bytes > scan_bytes ? sort_bytes : scan_bytes;
    size_t off_p = 2 * align256(sizeof(double) * v),
           off_ids = off_p + 2 * align256(sizeof(float) * v);
    size_t off_small = off_ids + 2 * align256(sizeof(int) * v);
    size_t off_temp = off_small + 256 + align256(ARGMAX_BLOCKS * (sizeof(float) + sizeof(int)));
    char *base = (char *)cuda_scratch(SCRATCH_SAMPLE, off_temp + temp_bytes);
    double *wide = (double *)base, *cum = (double *)(base + align256(sizeof(double) * v));
    float *p = (float *)(base + off_p),
          *p_sorted = (float *)(base + off_p + align256(sizeof(float) * v));
    int *ids = (int *)(base + off_ids),
        *ids_sorted = (int *)(base + off_ids + align256(sizeof(int) * v));
    int *token = (int *)(base + off_small);
    float *max = (float *)(base + off_small + 16);
    float *part_v = (float *)(base + off_small + 256);
    int *part_i = (int *)(part_v + ARGMAX_BLOCKS);
    void *temp = base + off_temp;

    argmax_part_kernel<<<ARGMAX_BLOCKS, ARGMAX_THREADS>>>(logits, vocab, part_v, part_i);
    cudaCheckLaunch("argmax_part_kernel");
    argmax_final_kernel<<<1, ARGMAX_BLOCKS>>>(part_v, part_i, ARGMAX_BLOCKS, token, max);
    cudaCheckLaunch("argmax_final_kernel");
    if (temperature > 0.0f) {
        int blocks = (vocab + 255) / 256;
        probs_kernel<<<blocks, 256>>>(p, ids, logits, vocab, max, temperature);
        cudaCheckLaunch("probs_kernel");
        cudaCheck(cub::DeviceRadixSort::SortPairsDescending(temp, sort_bytes, p, p_sorted, ids,
                                                            ids_sorted, vocab));
        widen_kernel<<<blocks, 256>>>(wide, p_sorted, vocab);
        cudaCheckLaunch("widen_kernel");
        cudaCheck(cub::DeviceScan::InclusiveSum(temp, scan_bytes, wide, cum, vocab));
        pick_kernel<<<1, PICK_THREADS>>>(token, cum, ids_sorted, vocab, top_p, u);
        cudaCheckLaunch("pick_kernel");
    }
    int got[2] = {0, 0}; /* the token, and whether the logits were not finite */
    cudaCheck(cudaMemcpy(got, token, sizeof got, cudaMemcpyDeviceToHost));
    return got[1] ? -1 : got[0];
}
