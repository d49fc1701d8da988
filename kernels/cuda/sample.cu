/* Picking the next token on the GPU from logits that stay there: argmax, or temperature +
 * nucleus (top-p) sampling with the caller's uniform draw, by the rule written where backend.h
 * declares the slot (kernels/cpu/sample.c is the reference). Only the token id is copied back.
 *
 * Sampling: one block finds the max; a kernel writes p_i = exp((logit_i - max) / T); CUB sorts
 * (p, id) pairs by p descending (a stable radix sort: equal p keep the lower id first) and scans
 * the sorted p in double; one block finds the nucleus and the draw's place in it. */
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

enum { PICK_THREADS = 1024 };

/* The first largest of VOCAB logits: its id in *BEST and its value in *MAX. */
__global__ void argmax_kernel(const float *logits, int vocab, int *best, float *max)
{
    __shared__ float sv[PICK_THREADS];
    __shared__ int si[PICK_THREADS];
    float bv = -INFINITY;
    int bi = -1; /* strided in increasing order: a strict > keeps the lowest id */
    for (int i = threadIdx.x; i < vocab; i += blockDim.x)
        if (bi < 0 || logits[i] > bv) {
            bv = logits[i];
            bi = i;
        }
    sv[threadIdx.x] = bv;
    si[threadIdx.x] = bi;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) {
            float ov = sv[threadIdx.x + half], mv = sv[threadIdx.x];
            int oi = si[threadIdx.x + half], mi = si[threadIdx.x];
            if (oi >= 0 && (mi < 0 || ov > mv || (ov == mv && oi < mi))) {
                sv[threadIdx.x] = ov;
                si[threadIdx.x] = oi;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        *best = si[0] < 0 ? 0 : si[0];
        *max = sv[0];
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
    size_t off_small = off_ids + 2 * align256(sizeof(int) * v), off_temp = off_small + 256;
    char *base = (char *)cuda_scratch(SCRATCH_SAMPLE, off_temp + temp_bytes);
    double *wide = (double *)base, *cum = (double *)(base + align256(sizeof(double) * v));
    float *p = (float *)(base + off_p),
          *p_sorted = (float *)(base + off_p + align256(sizeof(float) * v));
    int *ids = (int *)(base + off_ids),
        *ids_sorted = (int *)(base + off_ids + align256(sizeof(int) * v));
    int *token = (int *)(base + off_small);
    float *max = (float *)(base + off_small + 16);
    void *temp = base + off_temp;

    argmax_kernel<<<1, PICK_THREADS>>>(logits, vocab, token, max);
    cudaCheckLaunch("argmax_kernel");
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
    int id = 0;
    cudaCheck(cudaMemcpy(&id, token, sizeof id, cudaMemcpyDeviceToHost));
    return id;
}
