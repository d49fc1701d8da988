/* gate = silu(gate) * up, elementwise, in fp32; and the MLP's second half, whose gated rows go
 * to the GEMM in bf16 as they are made (one pass over gate and up, instead of a gated fp32 copy
 * and then its conversion), or stay fp32 in the fp32 precision. */
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

__global__ void swiglu_bf16_kernel(__nv_bfloat16 *dst, const float *gate, const float *up, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float g = gate[i];
        dst[i] = __float2bfloat16_rn(g / (1.0f + expf(-g)) * up[i]);
    }
}

void cuda_matmul_gated(float *out, float *gate, const float *up, const void *w, int n, int cols,
                       int rows)
{
    if (n == 1 && cuda_gemv_fits(gate, w, cols)) {
        cuda_swiglu(gate, up, (size_t)cols);
        cuda_gemv(out, gate, w, cols, rows);
        return;
    }
    size_t count = (size_t)n * cols, blocks = (count + 255) / 256;
    __nv_bfloat16 *x =
        (__nv_bfloat16 *)cuda_scratch(SCRATCH_GEMM_IN, sizeof(__nv_bfloat16) * count);
    swiglu_bf16_kernel<<<(int)(blocks < 65536 ? blocks : 65536), 256>>>(x, gate, up, count);
    cudaCheckLaunch("swiglu to bf16");
    cuda_gemm_bf16(out, x, w, n, cols, rows);
}

/* The fp32 precision's MLP halves, in the CPU's order: the products, then the gating (one token);
 * the gating in place, then the product. */
void cuda_matmul_swiglu_f32(float *out, const float *x, const void *w_gate_up, int cols, int inter)
{
    cuda_matmul_f32(out, x, w_gate_up, 1, cols, 2 * inter);
    cuda_swiglu(out, out + inter, (size_t)inter);
}

void cuda_matmul_gated_f32(float *out, float *gate, const float *up, const void *w, int n, int cols,
                           int rows)
{
    cuda_swiglu(gate, up, (size_t)n * cols);
    cuda_matmul_f32(out, gate, w, n, cols, rows);
}
