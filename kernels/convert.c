#include "kernels/convert.h"

#include <string.h>

static uint32_t f32_bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

static float f32_from_bits(uint32_t x)
{
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

/* Reads/writes element I of a 16-bit array that may be unaligned. */
static uint16_t load16(const void *src, size_t i)
{
    uint16_t h;
    memcpy(&h, (const unsigned char *)src + 2 * i, sizeof h);
    return h;
}

static void store16(void *dst, size_t i, uint16_t h)
{
    memcpy((unsigned char *)dst + 2 * i, &h, sizeof h);
}

float bf16_to_f32(uint16_t h)
{
    return f32_from_bits((uint32_t)h << 16);
}

float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0) {
        /* Zero or subnormal: man * 2^-24, exact in fp32. */
        float mag = (float)man * 0x1p-24f;
        return f32_from_bits(sign | f32_bits(mag));
    }
    if (exp == 31) /* infinity, or NaN with its payload kept */
        return f32_from_bits(sign | 0x7f800000u | (man << 13));
    return f32_from_bits(sign | ((exp + 127 - 15) << 23) | (man << 13));
}

uint16_t f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: keep sign and top payload, force quiet */
        return (uint16_t)((x >> 16) | 0x0040);
    /* Round to nearest even; a carry into the exponent is correct, up to infinity. */
    uint32_t rounding = 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)((x + rounding) >> 16);
}

/* Rounds M >> SHIFT to nearest, ties to even (SHIFT >= 1). */
static uint32_t shift_round_even(uint32_t m, int shift)
{
    uint32_t q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1)))
        q++;
    return q;
}

uint16_t f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t a = x & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN: keep top payload, force quiet */
        return sign | 0x7e00 | (uint16_t)((a >> 13) & 0x3ff);
    if (a >= 0x477ff000u) /* >= 65520 rounds past 65504, the largest half: infinity */
        return sign | 0x7c00;
    if (a >= 0x38800000u) /* normal half (>= 2^-14): rebias; a carry into the exponent is right */
        return sign | (uint16_t)shift_round_even(a - ((127u - 15u) << 23), 13);
    if (a <= 0x33000000u) /* <= 2^-25, half the smallest subnormal: ties to even give zero */
        return sign;
    /* Subnormal half: the value in units of 2^-24. Rounding up may give the smallest normal,
     * whose encoding is the next integer, so no special case. */
    uint32_t exp = a >> 23;
    uint32_t man = (a & 0x7fffffu) | 0x800000u;
    return sign | (uint16_t)shift_round_even(man, (int)(126 - exp));
}

void bf16_to_f32_array(float *dst, const void *src, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        dst[i] = bf16_to_f32(load16(src, i));
}

void f16_to_f32_array(float *dst, const void *src, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        dst[i] = f16_to_f32(load16(src, i));
}

void f32_to_bf16_array(void *dst, const float *src, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        store16(dst, i, f32_to_bf16(src[i]));
}

void f32_to_f16_array(void *dst, const float *src, size_t n)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        store16(dst, i, f32_to_f16(src[i]));
}

size_t elem_size(elem_type t)
{
    return t == ELEM_F32 ? 4 : 2;
}

static float load_f32(const void *src, size_t i)
{
    float f;
    memcpy(&f, (const unsigned char *)src + 4 * i, sizeof f);
    return f;
}

/* A copy of BYTES in pieces, one per thread. */
static void parallel_copy(void *dst, const void *src, size_t bytes)
{
    const size_t piece = (size_t)1 << 20;
    size_t n = (bytes + piece - 1) / piece;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        size_t at = i * piece, len = bytes - at < piece ? bytes - at : piece;
        memcpy((unsigned char *)dst + at, (const unsigned char *)src + at, len);
    }
}

void elems_to_f32(float *dst, const void *src, elem_type t, size_t n)
{
    switch (t) {
    case ELEM_BF16:
        bf16_to_f32_array(dst, src, n);
        break;
    case ELEM_F16:
        f16_to_f32_array(dst, src, n);
        break;
    case ELEM_F32:
        parallel_copy(dst, src, sizeof(float) * n);
        break;
    }
}

void elems_to_bf16(void *dst, const void *src, elem_type t, size_t n)
{
    switch (t) {
    case ELEM_BF16:
        parallel_copy(dst, src, 2 * n);
        break;
    case ELEM_F16:
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            store16(dst, i, f32_to_bf16(f16_to_f32(load16(src, i))));
        break;
    case ELEM_F32:
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            store16(dst, i, f32_to_bf16(load_f32(src, i)));
        break;
    }
}
