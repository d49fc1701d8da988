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

static __device__ __forceinline__ float silu_times(float g, float u)
{
    return g / (1.0f + expf(-g)) * u;
}

/* gate = silu(gate) * up on bf16 products, in place, each rounded once more to bf16 for the down
 * projection: eight at a time (16-byte loads) where GATE and UP are 16-byte aligned, the rest one
 * at a time. */
__global__ void swiglu_bf16_kernel(__nv_bfloat16 *gate, const __nv_bfloat16 *up, size_t n,
                                   size_t vectors)
{
    size_t first = blockIdx.x * (size_t)blockDim.x + threadIdx.x,
           stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = first; i < vectors; i += stride) {
        uint4 g = ((const uint4 *)gate)[i], u = ((const uint4 *)up)[i];
        __nv_bfloat162 *gp = (__nv_bfloat162 *)&g;
        const __nv_bfloat162 *up2 = (const __nv_bfloat162 *)&u;
#pragma unroll
        for (int t = 0; t < 4; t++) {
            float2 a = __bfloat1622float2(gp[t]), b = __bfloat1622float2(up2[t]);
            gp[t] = __floats2bfloat162_rn(silu_times(a.x, b.x), silu_times(a.y, b.y));
        }
        ((uint4 *)gate)[i] = g;
    }
    for (size_t i = vectors * 8 + first; i < n; i += stride)
        gate[i] =
            __float2bfloat16_rn(silu_times(__bfloat162float(gate[i]), __bfloat162float(up[i])));
}

static int grid_for(size_t n)
{
    size_t blocks = (n + 255) / 256;
    return (int)(blocks < 65536 ? (blocks ? blocks : 1) : 65536);
}

/* The gate and up products in bf16 in GATE and UP's room, gated there in place, and that the
 * down projection's input, the projection added into Y. */
void cuda_mlp(float *y, float *gate, float *up, const void *x, const void *w_gate, const void *w_up,
              const void *w_down, int n, int hidden, int inter)
{
    __nv_bfloat16 *g = (__nv_bfloat16 *)gate, *u = (__nv_bfloat16 *)up;
    cuda_matmul(g, x, w_gate, n, hidden, inter);
    cuda_matmul(u, x, w_up, n, hidden, inter);
    size_t elems = (size_t)n * inter;
    size_t vectors = ((uintptr_t)g | (uintptr_t)u) % 16 ? 0 : elems / 8;
    swiglu_bf16_kernel<<<grid_for(vectors ? vectors : elems), 256>>>(g, u, elems, vectors);
    cudaCheckLaunch("swiglu in bf16");
    cuda_matmul_add(y, g, w_down, n, inter, hidden);
}

/* The fp32 precision's MLP, in the CPU's order: the products, then the gating, then the down
 * projection (one token: its first half, with the weights back to back). */
void cuda_matmul_swiglu_f32(void *out, const void *x, const void *w_gate_up, int cols, int inter)
{
    float *both = (float *)out;
    cuda_matmul_f32(both, x, w_gate_up, 1, cols, 2 * inter);
    cuda_swiglu(both, both + inter, (size_t)inter);
}

void cuda_mlp_f32(float *y, float *gate, float *up, const void *x, const void *w_gate,
                  const void *w_up, const void *w_down, int n, int hidden, int inter)
{
    cuda_matmul_f32(gate, x, w_gate, n, hidden, inter);
    cuda_matmul_f32(up, x, w_up, n, hidden, inter);
    cuda_swiglu(gate, up, (size_t)n * inter);
    cuda_matmul_add_f32(y, gate, w_down, n, inter, hidden);
}
