/* Seeded random weights written in bf16 where they are used (kernels/random_weights.h): the same
 * values as the CPU backend's, rounded to bf16. */
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/random_weights.h"

__global__ void weight_random_kernel(__nv_bfloat16 *dst, size_t count, uint64_t seed, float scale)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(__fmul_rn(scale, random_weight_unit(seed, i)));
}

void cuda_weight_random(void *dst, size_t count, uint64_t seed, float scale)
{
    size_t blocks = (count + 255) / 256;
    int grid = (int)(blocks < 65536 ? (blocks ? blocks : 1) : 65536);
    weight_random_kernel<<<grid, 256>>>((__nv_bfloat16 *)dst, count, seed, scale);
    cudaCheckLaunch("weight_random");
}
