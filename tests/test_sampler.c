/* The CPU backend's sample slot against a plain reference of the rule in backend.h (every token
 * sorted, no shortcut), and the properties the rule promises: argmax ties go to the lowest id,
 * a tiny top_p keeps only the argmax, u near 0 takes the most likely token, u near 1 the last
 * one kept, and the draws follow the nucleus' renormalised probabilities. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "kernels/backend.h"
#include "model/sampler.h"

typedef struct {
    float p;
    int id;
} ref_entry;

static int ref_order(const void *a, const void *b)
{
    const ref_entry *x = a, *y = b;
    if (x->p != y->p)
        return x->p < y->p ? 1 : -1;
    return x->id - y->id;
}

/* The rule, literally: sort all, sum in double, cut, pick. Fills KEPT with the nucleus size. */
static int reference_pick(const float *logits, int vocab, float t, float top_p, float u, int *kept)
{
    float max = logits[0];
    for (int i = 1; i < vocab; i++)
        max = logits[i] > max ? logits[i] : max;
    ref_entry *e = malloc(sizeof *e * vocab);
    double *cum = malloc(sizeof *cum * vocab);
    for (int i = 0; i < vocab; i++)
        e[i] = (ref_entry){expf((logits[i] - max) / t), i};
    qsort(e, vocab, sizeof *e, ref_order);
    double s = 0;
    for (int j = 0; j < vocab; j++)
        cum[j] = s += e[j].p;
    int last = vocab - 1;
    for (int j = 0; j < vocab; j++)
        if (cum[j] >= (double)top_p * cum[vocab - 1]) {
            last = j;
            break;
        }
    int pick = last;
    for (int j = 0; j <= last; j++)
        if (cum[j] > (double)u * cum[last]) {
            pick = j;
            break;
        }
    int id = e[pick].id;
    *kept = last + 1;
    free(e);
    free(cum);
    return id;
}

static uint64_t rng = 88172645463325252ull;
static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (rng >> 11) * (1.0 / 9007199254740992.0);
}

static void random_logits(float *l, int vocab, float spread)
{
    for (int i = 0; i < vocab; i++)
        l[i] = (float)((uniform() * 2 - 1) * spread);
}

static void greedy_takes_lowest_id_of_ties(void **state)
{
    (void)state;
    const backend *be = backend_cpu();
    float l[] = {0.5f, 2.0f, -1.0f, 2.0f, 2.0f};
    assert_int_equal(be->sample(l, 5, 0.0f, 1.0f, 0.7f), 1);
    float flat[7] = {0};
    assert_int_equal(be->sample(flat, 7, 0.0f, 0.9f, 0.3f), 0);
    float neg[] = {-5.0f, -3.0f, -3.0f};
    assert_int_equal(be->sample(neg, 3, 0.0f, 1.0f, 0.0f), 1);
}

static void matches_reference_on_random_logits(void **state)
{
    (void)state;
    const backend *be = backend_cpu();
    enum { V = 3000 };
    static float l[V];
    const float temps[] = {0.3f, 0.7f, 1.0f, 1.5f};
    const float tops[] = {1e-6f, 0.1f, 0.5f, 0.9f, 0.95f, 1.0f};
    for (int trial = 0; trial < 40; trial++) {
        random_logits(l, V, 1.0f + (float)(trial % 5) * 3.0f);
        for (size_t t = 0; t < sizeof temps / sizeof temps[0]; t++)
            for (size_t p = 0; p < sizeof tops / sizeof tops[0]; p++) {
                float u = (float)uniform();
                int kept;
                int want = reference_pick(l, V, temps[t], tops[p], u, &kept);
                assert_int_equal(be->sample(l, V, temps[t], tops[p], u), want);
            }
    }
}

static void tiny_top_p_keeps_the_argmax(void **state)
{
    (void)state;
    const backend *be = backend_cpu();
    float l[500];
    for (int trial = 0; trial < 20; trial++) {
        random_logits(l, 500, 4.0f);
        l[trial * 7] = l[trial * 11 + 1] = 9.0f; /* a tie: the lower id wins */
        int best = trial * 7 < trial * 11 + 1 ? trial * 7 : trial * 11 + 1;
        for (float u = 0.0f; u < 1.0f; u += 0.125f) {
            assert_int_equal(be->sample(l, 500, 0.8f, 1e-6f, u), best);
            assert_int_equal(be->sample(l, 500, 0.8f, 0.0f, u), best);
        }
    }
}

static void u_at_the_ends(void **state)
{
    (void)state;
    const backend *be = backend_cpu();
    /* p proportional to 8, 4, 2, 1, 1 (temperature 1 on logs). */
    float l[] = {logf(1), logf(4), logf(8), logf(2), logf(1)};
    assert_int_equal(be->sample(l, 5, 1.0f, 1.0f, 0.0f), 2);
    assert_int_equal(be->sample(l, 5, 1.0f, 1.0f, 1e-7f), 2);
    /* u just below 1 takes the last token kept: with top_p = 1 the last in order (id 4 of the
     * tie 0/4 comes after id 0), with top_p = 0.8 (8 + 4 = 12 of 16 < 0.8 * 16 <= 14) id 3. */
    assert_int_equal(be->sample(l, 5, 1.0f, 1.0f, 0.99999994f), 4);
    assert_int_equal(be->sample(l, 5, 1.0f, 0.8f, 0.99999994f), 3);
    /* Boundaries: u = 8/14 of the nucleus is past token 2's mass, so token 1. */
    assert_int_equal(be->sample(l, 5, 1.0f, 0.8f, 0.5f), 2);
    assert_int_equal(be->sample(l, 5, 1.0f, 0.8f, 0.58f), 1);
}

/* The case the former host sampler got wrong: near-uniform logits with top_p < 1 left it no
 * candidate at all (it read before its scratch array). */
static void uniform_logits_with_small_top_p(void **state)
{
    (void)state;
    const backend *be = backend_cpu();
    float l[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    assert_int_equal(be->sample(l, 4, 1.0f, 0.1f, 0.9f), 0);
    assert_int_equal(be->sample(l, 4, 1.0f, 0.5f, 0.9f), 1);
    assert_int_equal(be->sample(l, 4, 1.0f, 1.0f, 0.9f), 3);
}

static void draws_follow_the_nucleus(void **state)
{
    (void)state;
    const backend *be = backend_cpu();
    enum { V = 50, DRAWS = 20000 };
    float l[V];
    random_logits(l, V, 2.0f);
    float t = 0.9f, top_p = 0.7f;
    int count[V] = {0}, kept;
    reference_pick(l, V, t, top_p, 0.0f, &kept);
    for (int i = 0; i < DRAWS; i++)
        count[be->sample(l, V, t, top_p, (i + 0.5f) / DRAWS)]++;
    /* Expected share of each token: its p over the nucleus' mass, zero outside it. */
    float max = l[0];
    for (int i = 1; i < V; i++)
        max = l[i] > max ? l[i] : max;
    double p[V], mass = 0;
    int in = 0;
    for (int i = 0; i < V; i++)
        p[i] = expf((l[i] - max) / t);
    double sorted[V];
    for (int i = 0; i < V; i++)
        sorted[i] = p[i];
    for (int i = 0; i < V; i++) /* the kept tokens are the KEPT largest p */
        for (int j = i + 1; j < V; j++)
            if (sorted[j] > sorted[i]) {
                double x = sorted[i];
                sorted[i] = sorted[j];
                sorted[j] = x;
            }
    for (int i = 0; i < kept; i++)
        mass += sorted[i];
    for (int i = 0; i < V; i++) {
        double want = p[i] >= sorted[kept - 1] ? p[i] / mass : 0.0;
        in += count[i] > 0;
        assert_true(fabs(count[i] / (double)DRAWS - want) < 1.5 / DRAWS + 1e-9);
    }
    assert_int_equal(in, kept);
}

static void seeded_sampler_repeats(void **state)
{
    (void)state;
    enum { V = 200 };
    float l[V];
    random_logits(l, V, 3.0f);
    sampler a, b;
    sampler_init(&a, V, 0.8f, 0.9f, 42);
    sampler_init(&b, V, 0.8f, 0.9f, 42);
    int differs = 0, first = sampler_next(&a, backend_cpu(), l);
    assert_int_equal(sampler_next(&b, backend_cpu(), l), first);
    for (int i = 0; i < 50; i++) {
        int x = sampler_next(&a, backend_cpu(), l);
        assert_int_equal(sampler_next(&b, backend_cpu(), l), x);
        differs += x != first;
    }
    assert_true(differs > 0); /* it does sample */
}

/* Logits with a NaN anywhere, or whose largest is infinite, or all -inf: no token (-1), greedy or
 * sampled; finite ones with -inf among them still give one. */
static void not_finite_logits_give_no_token(void **state)
{
    (void)state;
    enum { V = 300 };
    const backend *be = backend_cpu();
    float l[V];
    int where[] = {0, 1, 150, V - 1};
    for (int w = 0; w < 4; w++)
        for (int kind = 0; kind < 3; kind++) {
            random_logits(l, V, 3.0f);
            if (kind == 2)
                for (int i = 0; i < V; i++)
                    l[i] = -INFINITY;
            else
                l[where[w]] = kind == 0 ? NAN : INFINITY;
            assert_int_equal(be->sample(l, V, 0.0f, 1.0f, 0.0f), -1);
            assert_int_equal(be->sample(l, V, 0.8f, 0.9f, 0.5f), -1);
        }
    random_logits(l, V, 3.0f);
    l[7] = -INFINITY;
    assert_true(be->sample(l, V, 0.0f, 1.0f, 0.0f) >= 0);
    assert_true(be->sample(l, V, 0.8f, 0.9f, 0.5f) >= 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(greedy_takes_lowest_id_of_ties),
        cmocka_unit_test(matches_reference_on_random_logits),
        cmocka_unit_test(tiny_top_p_keeps_the_argmax),
        cmocka_unit_test(u_at_the_ends),
        cmocka_unit_test(uniform_logits_with_small_top_p),
        cmocka_unit_test(draws_follow_the_nucleus),
        cmocka_unit_test(seeded_sampler_repeats),
        cmocka_unit_test(not_finite_logits_give_no_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
