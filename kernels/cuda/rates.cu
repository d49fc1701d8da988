/* The GPU's memory rate, measured where the benchmark runs (the roofline's bandwidth ceiling): a
 * device-to-device copy, counted as bytes read plus bytes written, timed with CUDA events. The
 * matrix rate lives with the GEMM (gemm.cu), whose cuBLASLt handle it uses. */
#include <stdio.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

double cuda_time_runs(void (*op)(void *user), void *user, int warmup, int runs)
{
    cudaEvent_t start, stop;
    cudaCheck(cudaEventCreate(&start));
    cudaCheck(cudaEventCreate(&stop));
    for (int i = 0; i < warmup + runs; i++) {
        if (i == warmup)
            cudaCheck(cudaEventRecord(start));
        op(user);
    }
    cudaCheck(cudaEventRecord(stop));
    cudaCheck(cudaEventSynchronize(stop));
    float ms = 0;
    cudaCheck(cudaEventElapsedTime(&ms, start, stop));
    cudaCheck(cudaEventDestroy(start));
    cudaCheck(cudaEventDestroy(stop));
    return ms * 1e-3;
}

struct copy_args {
    void *dst;
    const void *src;
    size_t bytes;
};

static void copy_once(void *user)
{
    const copy_args *c = (const copy_args *)user;
    cudaCheck(cudaMemcpyAsync(c->dst, c->src, c->bytes, cudaMemcpyDeviceToDevice, 0));
}

double cuda_copy_rate(void)
{
    const size_t bytes = (size_t)1 << 30;
    const int warmup = 2, runs = 10;
    void *a, *b;
    cudaCheck(cudaMalloc(&a, bytes));
    cudaCheck(cudaMalloc(&b, bytes));
    cudaCheck(cudaMemset(a, 1, bytes));
    copy_args c = {b, a, bytes};
    double seconds = cuda_time_runs(copy_once, &c, warmup, runs);
    cudaCheck(cudaFree(a));
    cudaCheck(cudaFree(b));
    return 2.0 * bytes * runs / seconds;
}

void cuda_device_name(char *buf, size_t len)
{
    int dev = 0;
    cudaDeviceProp prop;
    cudaCheck(cudaGetDevice(&dev));
    cudaCheck(cudaGetDeviceProperties(&prop, dev));
    snprintf(buf, len, "%s", prop.name);
}
