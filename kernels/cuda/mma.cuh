/* Tensor-core building blocks (sm_80 and later) for the attention kernel: the warp-level
 * bf16 matrix product m16n8k16 with fp32 accumulators, ldmatrix loads of its operands from
 * shared memory, and asynchronous 16-byte copies from global to shared memory.
 *
 * Fragment layouts of mma.m16n8k16 (lane = 4 g + t, g = lane / 4, t = lane % 4):
 *   A (16 x 16, row-major), 4 registers of two bf16: rows g and g + 8, columns 2t, 2t + 1 (a0,
 *     a1) and 2t + 8, 2t + 9 (a2, a3);
 *   B (16 x 8, by column), 2 registers: rows 2t, 2t + 1 (b0) and 2t + 8, 2t + 9 (b1), column g;
 *   C (16 x 8, fp32), 4 values: row g columns 2t, 2t + 1 (c0, c1) and row g + 8 (c2, c3). */
#ifndef STARINFER_KERNELS_CUDA_MMA_CUH
#define STARINFER_KERNELS_CUDA_MMA_CUH

#include <cuda_bf16.h>
#include <stdint.h>

/* c += a . b */
__device__ __forceinline__ void mma_bf16_16816(float c[4], const uint32_t a[4], uint32_t b0,
                                               uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* Four 8x8 bf16 matrices: lanes 8m .. 8m + 7 give the row addresses of matrix m, and each lane
 * receives, from matrix m, register r[m] = row lane / 4, columns 2 (lane % 4) and + 1. */
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void *smem_row)
{
    uint32_t addr = (uint32_t)__cvta_generic_to_shared(smem_row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

/* The same, transposed: r[m] = column lane / 4, rows 2 (lane % 4) and + 1 of matrix m. */
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void *smem_row)
{
    uint32_t addr = (uint32_t)__cvta_generic_to_shared(smem_row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

/* Copies 16 bytes from global SRC to shared DST without holding the thread; with VALID false it
 * writes 16 zero bytes instead (SRC is not read, but must be a valid address). */
__device__ __forceinline__ void cp_async_16(void *dst, const void *src, bool valid)
{
    uint32_t addr = (uint32_t)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr), "l"(src),
                 "r"(valid ? 16 : 0));
}

__device__ __forceinline__ void cp_async_commit(void)
{
    asm volatile("cp.async.commit_group;\n" ::);
}

/* Waits until at most N committed groups of this thread are still in flight. */
template <int N> __device__ __forceinline__ void cp_async_wait(void)
{
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

/* Two fp32 values as the two bf16 halves of a register (LO in the low half: the lower column). */
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi)
{
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

/* 2^x on the special-function unit (2^-inf = 0). */
__device__ __forceinline__ float exp2_approx(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

#endif
