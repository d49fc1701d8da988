/* gate = silu(gate) * up, elementwise, in fp32; and the MLP of a prefill chunk, whose gate and
 * up products stay in bf16 from the GEMMs that make them to the one that reads them gated (as
 * bf16 inference keeps them), or in fp32 in the fp32 precision. */
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

/* gate = silu(gate) * up on bf16 products, in place, two at a time: each rounded once more to
 * bf16 for the down projection. */
__global__ void swiglu_bf16_kernel(__nv_bfloat162 *gate, const __nv_bfloat162 *up, size_t pairs)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < pairs;
         i += (size_t)gridDim.x * blockDim.x) {
        float2 g = __bfloat1622float2(gate[i]), u = __bfloat1622float2(up[i]);
        gate[i] =
            __floats2bfloat162_rn(g.x / (1.0f + expf(-g.x)) * u.x, g.y / (1.0f + expf(-g.y)) * u.y);
    }
}

/* One token reads its rows as they are (gemv.cu). More: X to bf16 once, the gate and up products
 * in bf16 in GATE and UP's room, gated there in place, and that the down projection's input. */
void cuda_mlp(float *out, float *gate, float *up, const float *x, const void *w_gate,
              const void *w_up, const void *w_down, int n, int hidden, int inter)
{
    if (n == 1 || inter % 2) {
        float *products[] = {gate, up};
        const void *w[] = {w_gate, w_up};
        int rows[] = {inter, inter};
        cuda_matmul_many(products, x, w, rows, 2, n, hidden);
        cuda_swiglu(gate, up, (size_t)n * inter);
        cuda_matmul(out, gate, w_down, n, inter, hidden);
        return;
    }
    __nv_bfloat16 *xb =
        (__nv_bfloat16 *)cuda_scratch(SCRATCH_GEMM_IN, sizeof(__nv_bfloat16) * (size_t)n * hidden);
    cuda_f32_to_bf16(xb, x, (size_t)n * hidden);
    __nv_bfloat16 *g = (__nv_bfloat16 *)gate, *u = (__nv_bfloat16 *)up;
    cuda_gemm_bf16_out(g, xb, w_gate, n, hidden, inter);
    cuda_gemm_bf16_out(u, xb, w_up, n, hidden, inter);
    size_t pairs = (size_t)n * inter / 2, blocks = (pairs + 255) / 256;
    swiglu_bf16_kernel<<<(int)(blocks < 65536 ? blocks : 65536), 256>>>(
        (__nv_bfloat162 *)g, (const __nv_bfloat162 *)u, pairs);
    cudaCheckLaunch("swiglu in bf16");
    cuda_gemm_bf16(out, g, w_down, n, inter, hidden);
}

/* The fp32 precision's MLP, in the CPU's order: the products, then the gating, then the down
 * projection (one token: its first half, with the weights back to back). */
void cuda_matmul_swiglu_f32(float *out, const float *x, const void *w_gate_up, int cols, int inter)
{
    cuda_matmul_f32(out, x, w_gate_up, 1, cols, 2 * inter);
    cuda_swiglu(out, out + inter, (size_t)inter);
}

void cuda_mlp_f32(float *out, float *gate, float *up, const float *x, const void *w_gate,
                  const void *w_up, const void *w_down, int n, int hidden, int inter)
{
    cuda_matmul_f32(gate, x, w_gate, n, hidden, inter);
    cuda_matmul_f32(up, x, w_up, n, hidden, inter);
    cuda_swiglu(gate, up, (size_t)n * inter);
    cuda_matmul_f32(out, gate, w_down, n, inter, hidden);
}
