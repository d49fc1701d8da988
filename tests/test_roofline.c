/* The roofline's FLOP and byte counts (runtime/roofline.c) against values worked out by hand for
 * a tiny shape: 2 layers, hidden 8, MLP 16, 2 heads of 4, 1 KV head, vocabulary 10.
 *   weights per layer: q 8*8 + k 8*4 + v 8*4 + o 8*8 + gate, up, down 3*8*16 = 576
 *   K and V projections: 2*8*4 = 64;  attention: 4 * 4 * 2 = 32 FLOPs per (query, key) pair
 *   context of n tokens, P pairs:  2n(576 + 64) + 32 P        (1 full layer + the last's K/V)
 *   query of n tokens, P pairs:    2n*2*576 + 32*2 P + 2*10*8 (both layers + one logits row) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/roofline.h"

static model_config tiny(void)
{
    model_config c = {.hidden_size = 8, .intermediate_size = 16, .n_layers = 2, .n_heads = 2,
                      .n_kv_heads = 1, .head_dim = 4, .vocab_size = 10};
    return c;
}

static void test_building_blocks(void **state)
{
    (void)state;
    model_config c = tiny();
    assert_int_equal((int)roofline_layer_params(&c), 576);
    assert_int_equal((int)roofline_context_flops(&c, 4, 10), 2 * 4 * 640 + 32 * 10);
    assert_int_equal((int)roofline_query_flops(&c, 2, 11, 1), 4608 + 64 * 11 + 160);
}

static void test_global(void **state)
{
    (void)state;
    model_config c = tiny();
    roofline_request q = {.attn = ATTN_GLOBAL, .n_ctx = 4, .n_query = 2, .n_decode = 4,
                          .block = 4, .anchor = 4, .n_ranks = 2};
    /* context: 2*4*640 + 32 * (4*5/2 = 10) = 5440; query: 4608 + 64 * (2*4 + 3 = 11) + 160 */
    assert_int_equal((int)roofline_prefill_flops(&c, &q, 0), 5440 + 5472);
    assert_int_equal((int)roofline_prefill_flops(&c, &q, 1), 0);
    /* weights (2*576 + lm_head 80 + embedding row 8 + 5 norms of 8) * 4 bytes = 5120; K and V of
     * 2 layers * 4 values * (4 + 2 + 4/2 = 8 positions) * 4 bytes = 512 */
    assert_int_equal((int)roofline_decode_bytes(&c, &q, 0, 4, 4), 5120 + 512);
    assert_int_equal((int)roofline_decode_bytes(&c, &q, 1, 4, 4), 0);
    /* bf16 weights and KV cache: half the bytes */
    assert_int_equal((int)roofline_decode_bytes(&c, &q, 0, 2, 2), (5120 + 512) / 2);
}

static void test_star(void **state)
{
    (void)state;
    model_config c = tiny();
    /* 10 tokens, blocks of 4 (4, 4, 2), anchor 2, 2 ranks: rank 0 owns blocks 0 and 1, rank 1
     * block 2 and the query's K/V. */
    roofline_request q = {.attn = ATTN_STAR, .n_ctx = 10, .n_query = 2, .n_decode = 4,
                          .block = 4, .anchor = 2, .n_ranks = 2};
    /* rank 0: block 0 alone 5440; block 1 after the anchor: 5120 + 32 * (2*4 + 10) = 5696;
     * query over its 8 keys: 4608 + 64 * 16 + 160 = 5792 */
    assert_int_equal((int)roofline_prefill_flops(&c, &q, 0), 5440 + 5696 + 5792);
    /* rank 1: the anchor once 2*2*640 + 32 * 3 = 2656; block 2: 2560 + 32 * (2*2 + 3) = 2784;
     * query over 2 keys and itself: 4608 + 64 * (2*2 + 3) + 160 = 5216 */
    assert_int_equal((int)roofline_prefill_flops(&c, &q, 1), 2656 + 2784 + 5216);
    /* decode: rank 0 reads its 8 positions, rank 1 its 2 + the query's 2 + 4/2 generated */
    assert_int_equal((int)roofline_decode_bytes(&c, &q, 0, 4, 4), 5120 + 2 * 2 * 4 * 8 * 4);
    assert_int_equal((int)roofline_decode_bytes(&c, &q, 1, 4, 4), 5120 + 2 * 2 * 4 * 6 * 4);
    /* a rank beyond the blocks does nothing */
    q.n_ranks = 4;
    assert_int_equal((int)roofline_prefill_flops(&c, &q, 3), 0);
    assert_int_equal((int)roofline_decode_bytes(&c, &q, 3, 4, 4), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_building_blocks),
        cmocka_unit_test(test_global),
        cmocka_unit_test(test_star),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
