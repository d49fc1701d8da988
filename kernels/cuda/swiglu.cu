/* gate = silu(gate) * up, elementwise, in fp32. */
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

__global__ void swiglu_kernel(float *gate, const float *up, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void cuda_swiglu(float *gate, const float *up, size_t n)
{
    size_t blocks = (n + 255) / 256;
    swiglu_kernel<<<(int)(blocks < 65536 ? blocks : 65536), 256>>>(gate, up, n);
    cudaCheckLaunch("swiglu");
}
