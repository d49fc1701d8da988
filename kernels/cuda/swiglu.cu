/* gate = silu(gate) * up, elementwise, in fp32; and the MLP of a chunk, whose gate and up
 * products stay in bf16 from the GEMMs that make them to the one that reads them gated (as bf16
 * inference keeps them), or in fp32 in the fp32 precision. */
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

static int grid_for(size_t n);

void cuda_swiglu(float *gate, const float *up, size_t n)
{
    swiglu_kernel<<<grid_for(n), 256>>>(gate, up, n);
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

/* gate = silu(gate) * up on bf16 products, in place, one at a time (an odd INTER). */
__global__ void swiglu_bf16_odd_kernel(__nv_bfloat16 *gate, const __nv_bfloat16 *up, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float g = __bfloat162float(gate[i]);
        gate[i] = __float2bfloat16_rn(g / (1.0f + expf(-g)) * __bfloat162float(up[i]));
    }
}

static int grid_for(size_t n)
{
    size_t blocks = (n + 255) / 256;
    return (int)(blocks < 65536 ? (blocks ? blocks : 1) : 65536);
}

/* The gate and up products in bf16 in GATE and UP's room, gated there in place, and that the
 * down projection's input. */
void cuda_mlp(void *out, float *gate, float *up, const void *x, const void *w_gate,
              const void *w_up, const void *w_down, int n, int hidden, int inter)
{
    __nv_bfloat16 *g = (__nv_bfloat16 *)gate, *u = (__nv_bfloat16 *)up;
    cuda_matmul(g, x, w_gate, n, hidden, inter);
    cuda_matmul(u, x, w_up, n, hidden, inter);
    size_t elems = (size_t)n * inter;
    if (inter % 2) {
        swiglu_bf16_odd_kernel<<<grid_for(elems), 256>>>(g, u, elems);
    } else {
        swiglu_bf16_kernel<<<grid_for(elems / 2), 256>>>(
            (__nv_bfloat162 *)g, (const __nv_bfloat162 *)u, elems / 2);
    }
    cudaCheckLaunch("swiglu in bf16");
    cuda_matmul(out, g, w_down, n, inter, hidden);
}

/* The fp32 precision's MLP, in the CPU's order: the products, then the gating, then the down
 * projection (one token: its first half, with the weights back to back). */
void cuda_matmul_swiglu_f32(void *out, const void *x, const void *w_gate_up, int cols, int inter)
{
    float *both = (float *)out;
    cuda_matmul_f32(both, x, w_gate_up, 1, cols, 2 * inter);
    cuda_swiglu(both, both + inter, (size_t)inter);
}

void cuda_mlp_f32(void *out, float *gate, float *up, const void *x, const void *w_gate,
                  const void *w_up, const void *w_down, int n, int hidden, int inter)
{
    cuda_matmul_f32(gate, x, w_gate, n, hidden, inter);
    cuda_matmul_f32(up, x, w_up, n, hidden, inter);
    cuda_swiglu(gate, up, (size_t)n * inter);
    cuda_matmul_f32(out, gate, w_down, n, inter, hidden);
}
