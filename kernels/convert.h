/* Conversions between fp32 and the 16-bit formats that safetensors files hold: bfloat16 (the upper
 * half of an fp32) and IEEE 754 binary16. Narrowing rounds to nearest, ties to even; NaN stays
 * NaN; binary16 subnormals, infinities and overflow to infinity are handled. */
#ifndef STARINFER_KERNELS_CONVERT_H
#define STARINFER_KERNELS_CONVERT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

float bf16_to_f32(uint16_t h);
float f16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
uint16_t f32_to_f16(float f);

/* Array versions, parallel with OpenMP. The 16-bit side is a byte pointer because it may point
 * into a memory-mapped file, where a tensor need not be 2-byte aligned. */
void bf16_to_f32_array(float *dst, const void *src, size_t n);
void f16_to_f32_array(float *dst, const void *src, size_t n);
void f32_to_bf16_array(void *dst, const float *src, size_t n);
void f32_to_f16_array(void *dst, const float *src, size_t n);

/* The element types a weight file holds (safetensors' BF16, F16, F32), as the backends take them.
 */
typedef enum { ELEM_BF16 = 0, ELEM_F16, ELEM_F32 } elem_type;

size_t elem_size(elem_type t);

/* N elements of type T at SRC (any alignment: a memory-mapped file) into fp32 at DST, or into
 * bfloat16 at DST (bf16 is copied as it is; f16 and f32 are rounded as f32_to_bf16 does, so the
 * result is that of converting to fp32 first). Parallel with OpenMP: a weight's conversion is
 * bound by memory, and one thread does not reach the memory's bandwidth. */
void elems_to_f32(float *dst, const void *src, elem_type t, size_t n);
void elems_to_bf16(void *dst, const void *src, elem_type t, size_t n);

#ifdef __cplusplus
}
#endif

#endif
