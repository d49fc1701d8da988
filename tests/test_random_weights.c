/* Seeded random weights (kernels/random_weights.h, backend slot weight_random,
 * backend_weights_random) and the named shapes: the CPU values equal a plain reimplementation of
 * splitmix64, are deterministic in the seed, keep to +-1/sqrt(fan_in) with norms of 1, and the
 * tiny shape runs a forward pass to finite logits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/random_weights.h"
#include "model/backend_weights.h"
#include "model/shapes.h"
#include "runtime/global_attention.h"
#include "test_util.h"

/* splitmix64 as published (Steele, Lea, Flood 2014): state += golden gamma, then mix. */
static uint64_t reference_splitmix(uint64_t state)
{
    uint64_t z = state + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The element's value in double precision: the hash's top 24 bits scaled onto [-1, 1). */
static double reference_value(uint64_t seed, uint64_t i, double scale)
{
    uint64_t h = reference_splitmix(reference_splitmix(seed) ^ i);
    return scale * ((double)(h >> 40) / 8388608.0 - 1.0);
}

static void test_hash_matches_published_splitmix64(void **state)
{
    (void)state;
    /* The first output of SplitMix64 seeded with 0, as the reference implementation prints it. */
    assert_true(splitmix64(0) == 0xe220a8397b1dcdafull);
    for (uint64_t x = 1; x < 1000; x += 37)
        assert_true(splitmix64(x * 0x123456789ull) == reference_splitmix(x * 0x123456789ull));
}

static void test_cpu_fill_equals_reference(void **state)
{
    (void)state;
    const backend *be = backend_cpu();
    enum { N = 10000 };
    float *a = malloc(sizeof(float) * N), *b = malloc(sizeof(float) * N);
    be->weight_random(a, N, 42, 0.125f);
    be->weight_random(b, N, 42, 0.125f);
    assert_memory_equal(a, b, sizeof(float) * N);
    double sum = 0;
    for (int i = 0; i < N; i++) {
        assert_true((double)a[i] == reference_value(42, (uint64_t)i, 0.125));
        assert_true(a[i] >= -0.125f && a[i] < 0.125f);
        sum += a[i];
    }
    assert_true(fabs(sum / N) < 0.01); /* centred: mean within ~4 standard errors of 0 */
    be->weight_random(b, N, 43, 0.125f);
    int same = 0;
    for (int i = 0; i < N; i++)
        same += a[i] == b[i];
    assert_true(same < N / 100); /* another seed, other values */
    free(a);
    free(b);
}

static void test_shape_weights_and_forward(void **state)
{
    (void)state;
    si_error err;
    model m;
    assert_int_equal(model_shape_init(&m, "tiny", &err), 0);
    assert_null(m.tok);
    const backend *be = backend_cpu();
    backend_weights w;
    backend_weights_random(&w, &m.cfg, m.inv_freq, be, 7);
    const model_config *c = &m.cfg;
    const float *norm = w.layers[0].attn_norm, *wq = w.layers[1].wq, *down = w.layers[0].w_down;
    for (int i = 0; i < c->hidden_size; i++)
        assert_true(norm[i] == 1.0f && ((const float *)w.norm)[i] == 1.0f);
    float lim_q = 1.0f / sqrtf((float)c->hidden_size), lim_d = 1.0f / sqrtf(c->intermediate_size);
    for (int i = 0; i < c->hidden_size * c->intermediate_size; i++)
        assert_true(fabsf(down[i]) <= lim_d);
    for (int i = 0; i < c->hidden_size * c->hidden_size; i++)
        assert_true(fabsf(wq[i]) <= lim_q);
    /* the embedding is tensor 0: seed splitmix64(7) + 0 */
    const float *embed = w.embed;
    for (int i = 0; i < 1000; i++)
        assert_true((double)embed[i] ==
                    reference_value(reference_splitmix(7), (uint64_t)i, 1.0f / sqrtf(256.0f)));

    global_runner g;
    global_runner_init(&g, c, &w, be, 64, 16);
    int ids[40];
    for (int i = 0; i < 40; i++)
        ids[i] = (i * 97) % c->vocab_size;
    const float *logits = global_prefill(&g, ids, 40, 0);
    double spread = 0;
    for (int i = 0; i < c->vocab_size; i++) {
        assert_true(isfinite(logits[i]));
        spread += fabs(logits[i] - logits[0]);
    }
    assert_true(spread > 0); /* not a constant output */
    global_runner_free(&g);
    backend_weights_free(&w, be);
    model_free(&m);
}

static void test_unknown_shape_lists_known(void **state)
{
    (void)state;
    si_error err;
    model m;
    assert_int_equal(model_shape_init(&m, "llama-9", &err), -1);
    assert_has(err.msg, "llama-9");
    assert_has(err.msg, "llama-3.1-8b");
    assert_has(err.msg, "tiny");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_matches_published_splitmix64),
        cmocka_unit_test(test_cpu_fill_equals_reference),
        cmocka_unit_test(test_shape_weights_and_forward),
        cmocka_unit_test(test_unknown_shape_lists_known),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
