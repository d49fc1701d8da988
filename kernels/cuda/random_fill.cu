/* Seeded random weights written where they are used (kernels/random_weights.h): the same values
 * as the CPU backend's, rounded to bf16 (or kept in fp32 in the fp32 precision). */
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/weight_format.cuh"
#include "kernels/random_weights.h"

template <typename W>
__global__ void weight_random_kernel(W *dst, size_t count, uint64_t seed, float scale)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = from_f32<W>(__fmul_rn(scale, random_weight_unit(seed, i)));
}

static int grid_for(size_t count)
{
    size_t blocks = (count + 255) / 256;
    return (int)(blocks < 65536 ? (blocks ? blocks : 1) : 65536);
}

void cuda_weight_random(void *dst, size_t count, uint64_t seed, float scale)
{
    weight_random_kernel<<<grid_for(count), 256>>>((__nv_bfloat16 *)dst, count, seed, scale);
    cudaCheckLaunch("weight_random");
}

void cuda_weight_random_f32(void *dst, size_t count, uint64_t seed, float scale)
{
    weight_random_kernel<<<grid_for(count), 256>>>((float *)dst, count, seed, scale);
    cudaCheckLaunch("weight_random");
}
