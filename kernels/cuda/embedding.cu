/* out[i] = table[ids[i]]: rows of the embedding in the backend's weight format (bf16, or fp32 in
 * the fp32 precision), to fp32. */
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/weight_format.cuh"

template <typename W>
__global__ void embedding_kernel(float *out, const W *table, const int *ids, int dim)
{
    const W *row = table + (size_t)ids[blockIdx.x] * dim;
    for (int c = threadIdx.x; c < dim; c += blockDim.x)
        out[(size_t)blockIdx.x * dim + c] = to_f32(row[c]);
}

void cuda_embedding(float *out, const void *table, const int *ids, int n, int dim)
{
    const int *d_ids = cuda_upload_ints(SCRATCH_IDS, ids, n);
    embedding_kernel<<<n, 256>>>(out, (const __nv_bfloat16 *)table, d_ids, dim);
    cudaCheckLaunch("embedding");
}

void cuda_embedding_f32(float *out, const void *table, const int *ids, int n, int dim)
{
    const int *d_ids = cuda_upload_ints(SCRATCH_IDS, ids, n);
    embedding_kernel<<<n, 256>>>(out, (const float *)table, d_ids, dim);
    cudaCheckLaunch("embedding");
}
