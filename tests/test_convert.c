/* The fp32 <-> bfloat16 / binary16 converters: every 16-bit pattern round-trips, and the corner
 * cases of narrowing (ties, overflow, subnormals, NaN) follow IEEE round-to-nearest-even. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/convert.h"

static float from_bits(uint32_t x)
{
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

static uint32_t bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

static void bf16_round_trips_every_pattern(void **state)
{
    (void)state;
    for (uint32_t h = 0; h <= 0xffff; h++) {
        float f = bf16_to_f32((uint16_t)h);
        if (isnan(f)) /* NaN comes back as a quiet NaN of the same sign */
            assert_int_equal(f32_to_bf16(f), h | 0x0040);
        else
            assert_int_equal(f32_to_bf16(f), h);
    }
}

/* The value of binary16 pattern H, from the definition. */
static double f16_reference(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    double mag = exp == 0 ? ldexp(man, -24) : ldexp(1024 + man, exp - 25);
    return sign ? -mag : mag;
}

static void f16_round_trips_every_pattern(void **state)
{
    (void)state;
    for (uint32_t h = 0; h <= 0xffff; h++) {
        float f = f16_to_f32((uint16_t)h);
        uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
        if (exp == 31 && man != 0) {
            assert_true(isnan(f));
            assert_int_equal(f32_to_f16(f), h | 0x0200);
        } else {
            if (exp == 31)
                assert_true(isinf(f) && (f < 0) == (h >> 15));
            else
                assert_true((double)f == f16_reference((uint16_t)h));
            assert_int_equal(f32_to_f16(f), h);
        }
    }
}

static void bf16_rounding_and_specials(void **state)
{
    (void)state;
    assert_int_equal(f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);            /* tie -> even (down) */
    assert_int_equal(f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);        /* tie -> even (up) */
    assert_int_equal(f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81); /* above the tie */
    assert_int_equal(f32_to_bf16(-1.5f), 0xbfc0);
    assert_int_equal(f32_to_bf16(-0.0f), 0x8000);
    assert_int_equal(f32_to_bf16(INFINITY), 0x7f80);
    assert_int_equal(f32_to_bf16(-INFINITY), 0xff80);
    assert_int_equal(f32_to_bf16(3.4028235e38f), 0x7f80); /* FLT_MAX rounds up to infinity */
    /* A NaN whose payload lies only in the low bits must not truncate to infinity. */
    assert_true(isnan(bf16_to_f32(f32_to_bf16(from_bits(0x7f800001u)))));
    assert_true(isnan(bf16_to_f32(f32_to_bf16(from_bits(0xffc00000u)))));
    /* fp32 subnormals keep their top bits. */
    assert_int_equal(f32_to_bf16(from_bits(0x00010000u)), 0x0001);
    assert_int_equal(f32_to_bf16(from_bits(0x00018000u)), 0x0002); /* tie -> even */
}

static void f16_rounding_and_specials(void **state)
{
    (void)state;
    assert_int_equal(f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(f32_to_f16(1.0f + 0x1p-11f), 0x3c00);     /* tie -> even (down) */
    assert_int_equal(f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02); /* tie -> even (up) */
    assert_int_equal(f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(f32_to_f16(65504.0f), 0x7bff);  /* the largest half */
    assert_int_equal(f32_to_f16(65519.99f), 0x7bff); /* below the tie with 65536 */
    assert_int_equal(f32_to_f16(65520.0f), 0x7c00);  /* the tie rounds to even: infinity */
    assert_int_equal(f32_to_f16(1e10f), 0x7c00);
    assert_int_equal(f32_to_f16(-INFINITY), 0xfc00);
    uint16_t nan = f32_to_f16(from_bits(0x7f800001u));
    assert_true((nan & 0x7c00) == 0x7c00 && (nan & 0x3ff) != 0);
    /* Subnormals: units of 2^-24. */
    assert_int_equal(f32_to_f16(0x1p-24f), 0x0001);
    assert_int_equal(f32_to_f16(0x1p-25f), 0x0000); /* tie -> even: zero */
    assert_int_equal(f32_to_f16(-0x1p-25f), 0x8000);
    assert_int_equal(f32_to_f16(0x1p-25f * 1.0000001f), 0x0001); /* just above the tie */
    assert_int_equal(f32_to_f16(3 * 0x1p-25f), 0x0002);          /* 1.5 units: tie -> 2 */
    assert_int_equal(f32_to_f16(5 * 0x1p-25f), 0x0002);          /* 2.5 units: tie -> 2 */
    assert_int_equal(f32_to_f16(1023 * 0x1p-24f), 0x03ff);       /* the largest subnormal */
    assert_int_equal(f32_to_f16(1023.5f * 0x1p-24f), 0x0400);    /* rounds up to normal */
    assert_int_equal(f32_to_f16(0x1p-14f), 0x0400);              /* the smallest normal */
    assert_int_equal(f32_to_f16(1e-30f), 0x0000);
    assert_true(f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(f16_to_f32(0x8001) == -0x1p-24f);
    assert_true(f16_to_f32(0x03ff) == 1023 * 0x1p-24f);
}

#ifdef __FLT16_MAX__
/* Where the compiler has _Float16, its conversions (hardware or libgcc) are the reference. */
static void f16_matches_compiler_on_random_floats(void **state)
{
    (void)state;
    uint64_t s = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 2000000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17; /* xorshift64 */
        /* Bias towards the interesting exponents: half range and a little around it. */
        uint32_t x = (uint32_t)s;
        if (i & 1)
            x = (x & 0x807fffffu) | ((100 + (uint32_t)(s >> 40) % 50) << 23);
        float f = from_bits(x);
        if (isnan(f))
            continue;
        _Float16 ref = (_Float16)f;
        uint16_t ref_bits;
        memcpy(&ref_bits, &ref, sizeof ref_bits);
        assert_int_equal(f32_to_f16(f), ref_bits);
    }
}
#endif

static void arrays_convert_unaligned_buffers(void **state)
{
    (void)state;
    size_t n = 100003;
    float *src = malloc(n * sizeof *src), *back = malloc(n * sizeof *back);
    unsigned char *raw = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++)
        src[i] = sinf((float)i) * 100.0f;
    /* Offset by one byte, as a tensor inside a mapped file may be. */
    f32_to_bf16_array(raw + 1, src, n);
    bf16_to_f32_array(back, raw + 1, n);
    for (size_t i = 0; i < n; i++)
        assert_true(back[i] == bf16_to_f32(f32_to_bf16(src[i])));
    f32_to_f16_array(raw + 1, src, n);
    f16_to_f32_array(back, raw + 1, n);
    for (size_t i = 0; i < n; i++)
        assert_true(back[i] == f16_to_f32(f32_to_f16(src[i])));
    free(src);
    free(back);
    free(raw);
}

/* Weights as stored into the backends' formats: from each element type, at an odd address,
 * through more than one thread's share (the copies go in pieces of 1 MiB), every element is the
 * scalar conversion's; bf16 from bf16 is the same bytes. */
static void stored_elements_convert_as_scalars(void **state)
{
    (void)state;
    size_t n = (3u << 20) + 17;
    unsigned char *raw = malloc(4 * n + 1), *out16 = malloc(2 * n + 1);
    float *out32 = malloc(n * sizeof *out32);
    uint64_t s = 12345;
    for (size_t i = 0; i < 4 * n + 1; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        raw[i] = (unsigned char)(s >> 56);
    }
    const unsigned char *src = raw + 1;
    for (int t = ELEM_BF16; t <= ELEM_F32; t++) {
        elems_to_f32(out32, src, (elem_type)t, n);
        elems_to_bf16(out16 + 1, src, (elem_type)t, n);
        for (size_t i = 0; i < n; i++) {
            float want;
            uint16_t h;
            uint32_t x;
            memcpy(&h, src + 2 * i, 2);
            memcpy(&x, src + 4 * i, 4);
            want = t == ELEM_BF16 ? bf16_to_f32(h) : t == ELEM_F16 ? f16_to_f32(h) : from_bits(x);
            uint16_t got16;
            memcpy(&got16, out16 + 1 + 2 * i, 2);
            uint16_t want16 = t == ELEM_BF16 ? h : f32_to_bf16(want);
            if (memcmp(&out32[i], &want, sizeof want) || got16 != want16)
                fail_msg("type %d element %zu: %08x / %04x, expected %08x / %04x", t, i,
                         bits(out32[i]), got16, bits(want), want16);
        }
    }
    assert_int_equal(elem_size(ELEM_BF16), 2);
    assert_int_equal(elem_size(ELEM_F16), 2);
    assert_int_equal(elem_size(ELEM_F32), 4);
    free(raw);
    free(out16);
    free(out32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bf16_round_trips_every_pattern),
        cmocka_unit_test(f16_round_trips_every_pattern),
        cmocka_unit_test(bf16_rounding_and_specials),
        cmocka_unit_test(f16_rounding_and_specials),
#ifdef __FLT16_MAX__
        cmocka_unit_test(f16_matches_compiler_on_random_floats),
#endif
        cmocka_unit_test(arrays_convert_unaligned_buffers),
        cmocka_unit_test(stored_elements_convert_as_scalars),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
