/* y += x, elementwise: the last layer's output into the fp32 residual stream. */
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/weight_format.cuh"

template <typename A> __global__ void add_kernel(float *y, const A *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] += to_f32(x[i]);
}

static int grid_for(size_t n)
{
    size_t blocks = (n + 255) / 256;
    return (int)(blocks < 65536 ? (blocks ? blocks : 1) : 65536);
}

void cuda_add(float *y, const void *x, size_t n)
{
    add_kernel<<<grid_for(n), 256>>>(y, (const __nv_bfloat16 *)x, n);
    cudaCheckLaunch("add");
}

void cuda_add_f32(float *y, const void *x, size_t n)
{
    add_kernel<<<grid_for(n), 256>>>(y, (const float *)x, n);
    cudaCheckLaunch("add");
}
