/* y += x, elementwise (the residual stream). */
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

__global__ void add_kernel(float *y, const float *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}

void cuda_add(float *y, const float *x, size_t n)
{
    size_t blocks = (n + 255) / 256;
    add_kernel<<<(int)(blocks < 65536 ? blocks : 65536), 256>>>(y, x, n);
    cudaCheckLaunch("add");
}
