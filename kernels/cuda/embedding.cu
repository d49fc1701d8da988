/* out[i] = table[ids[i]] (bf16 rows of the embedding, to fp32). */
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

__global__ void embedding_kernel(float *out, const __nv_bfloat16 *table, const int *ids, int dim)
{
    const __nv_bfloat16 *row = table + (size_t)ids[blockIdx.x] * dim;
    for (int c = threadIdx.x; c < dim; c += blockDim.x)
        out[(size_t)blockIdx.x * dim + c] = __bfloat162float(row[c]);
}

void cuda_embedding(float *out, const void *table, const int *ids, int n, int dim)
{
    const int *d_ids = cuda_upload_ints(SCRATCH_IDS, ids, n);
    embedding_kernel<<<n, 256>>>(out, (const __nv_bfloat16 *)table, d_ids, dim);
    cudaCheckLaunch("embedding");
}
