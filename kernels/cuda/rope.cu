/* Rotary embedding, rotate-half convention, angle pos * inv_freq[j] rounded to fp32 as the
 * reference computes it (then sin/cos in fp32). One thread per (token, frequency) walks the heads;
 * with few tokens (decoding) the heads are spread over the grid's second dimension instead, so
 * that there are enough threads to keep the loads in flight. */
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/overlap.cuh"

__global__ void rope_kernel(float *x, const int *pos, int n, int row, int n_heads, int head_dim,
                            const float *inv_freq)
{
    overlap_release();
    overlap_wait();
    int half = head_dim / 2;
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n * half)
        return;
    int i = idx / half, j = idx % half;
    float angle = __fmul_rn((float)pos[i], inv_freq[j]);
    float s, c;
    sincosf(angle, &s, &c);
    for (int h = blockIdx.y; h < n_heads; h += gridDim.y) {
        float *xh = x + (size_t)i * row + (size_t)h * head_dim;
        float a = xh[j], b = xh[j + half];
        xh[j] = a * c - b * s;
        xh[j + half] = b * c + a * s;
    }
}

/* The queries and keys of every layer of a forward share their positions: they are uploaded once
 * and reused while unchanged, since a copy from pageable memory waits for the GPU to drain, and
 * two such waits per layer leave it idle between kernels when decoding. */
static const int *positions_on_device(const int *pos, int n)
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

void cuda_rope(float *x, const int *pos, int n, int row, int n_heads, int head_dim,
               const float *inv_freq)
{
    const int *d_pos = positions_on_device(pos, n);
    int threads = n * (head_dim / 2);
    dim3 grid((threads + 255) / 256, threads < 16384 ? n_heads : 1);
    launch_overlapped("rope", rope_kernel, grid, 256, 0, x, d_pos, n, row, n_heads, head_dim,
                      inv_freq);
}
