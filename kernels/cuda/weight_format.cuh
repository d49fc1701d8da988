/* A weight or cache element as fp32, whichever format the backend keeps it in (bf16, or fp32 in
 * the fp32 precision), and an fp32 value into that format: for kernels written once for both. */
#ifndef STARINFER_KERNELS_CUDA_WEIGHT_FORMAT_CUH
#define STARINFER_KERNELS_CUDA_WEIGHT_FORMAT_CUH

#include <cuda_bf16.h>

__device__ __forceinline__ float to_f32(__nv_bfloat16 x)
{
    return __bfloat162float(x);
}

__device__ __forceinline__ float to_f32(float x)
{
    return x;
}

template <typename W> __device__ __forceinline__ W from_f32(float x);

template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x)
{
    return __float2bfloat16_rn(x);
}

template <> __device__ __forceinline__ float from_f32<float>(float x)
{
    return x;
}

#endif
