/* The forward pass against the reference model (HF Transformers, fp32 compute on the saved
 * weights): logits of several prompts, one over 1K tokens, for three fixture models (GQA and
 * llama3 RoPE scaling; tied embeddings with an explicit head_dim; several shards), the same
 * logits when the prompt is prefilled in chunks, and greedy continuations token for token, also
 * with the weights streamed as the commands load them. */
#include <cjson/cJSON.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/forward.h"
#include "runtime/generation.h"
#include "runtime/global_attention.h"
#include "runtime/kv_cache.h"
#include "test_util.h"

/* On the CPU, fp32 compute on identical weights: only summation order differs from the
 * reference (test_logit_tolerance). */
#define LOGIT_TOLERANCE test_logit_tolerance()

/* The fixture models, or the comma-separated list in $STARINFER_TEST_MODELS (the GPU script runs
 * an 8B-shaped model made on the GPU machine this way). */
static char *models[16];
static size_t n_models;

static void pick_models(void)
{
    const char *list = getenv("STARINFER_TEST_MODELS");
    char *copy = strdup(list ? list : "tiny-llama3,tiny-tied,tiny-sharded,tiny-f16");
    for (char *tok = strtok(copy, ","); tok && n_models < 16; tok = strtok(NULL, ","))
        models[n_models++] = strdup(tok);
    free(copy);
}

static cJSON *load_reference(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "reference/%s.json", name);
    char *text = read_file(fixture_path(rel), NULL);
    assert_non_null(text);
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    return j;
}

static backend_weights bw;

static void load_model(model *m, const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s", name);
    si_error err;
    int rc = model_load(m, fixture_path(rel), &err);
    if (rc != 0)
        fail_msg("%s", err.msg);
    backend_weights_upload(&bw, &m->cfg, &m->w, m->inv_freq, test_backend());
}

/* As the commands load: the files mapped, the weights streamed into one backend allocation,
 * where the projections of each layer lie side by side (the one-token products' path). */
static void load_model_streamed(model *m, const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s", name);
    si_error err;
    if (model_load_mapped(m, fixture_path(rel), &err) != 0 ||
        backend_weights_stream(&bw, &m->cfg, &m->set, m->inv_freq, test_backend(), NULL, NULL,
                               &err) != 0)
        fail_msg("%s", err.msg);
}

static void unload_model(model *m)
{
    backend_weights_free(&bw, test_backend());
    model_free(m);
}

/* Logits of every prompt position in one forward, against the reference rows. */
static void check_case_logits(const model *m, const cJSON *c, const char *name)
{
    int n, n_rows;
    int *ids = json_ints(cJSON_GetObjectItem(c, "ids"), &n);
    int *rows = json_ints(cJSON_GetObjectItem(c, "rows"), &n_rows);
    int vocab = m->cfg.vocab_size;
    float *ref =
        reference_rows(cJSON_GetObjectItem(c, "logits")->valuestring, (size_t)n_rows * vocab);
    const backend *be = test_backend();
    forward_state fs;
    forward_state_init(&fs, &m->cfg, &bw, be, n, n);
    kv_span kv;
    kv_cache_alloc(&kv, &m->cfg, be, n, "test KV");
    int *pos = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++)
        pos[i] = i;
    forward_args args = {.store = &kv, .logits = FORWARD_LOGITS_ALL};
    forward(&fs, ids, pos, n, &args);
    const float *logits = forward_logits_host(&fs, n);
    double worst = 0;
    for (int r = 0; r < n_rows; r++)
        worst = fmax(worst, rel_error(logits + (size_t)rows[r] * vocab, ref + (size_t)r * vocab,
                                      vocab));
    /* Where the reference recorded its own bf16 inference's error against its fp32 (the 8B
     * model, whose error grows over 32 layers), a bf16 backend may be as far off, with margin. */
    const cJSON *floor = cJSON_GetObjectItem(c, "reference_bf16_error");
    double tolerance = LOGIT_TOLERANCE;
    if (floor && test_backend()->weight_size != sizeof(float) &&
        1.5 * floor->valuedouble > tolerance)
        tolerance = 1.5 * floor->valuedouble;
    printf("  %s/%s: %d tokens, max relative logit error %.2e (tolerance %.1e)\n", name,
           cJSON_GetObjectItem(c, "case")->valuestring, n, worst, tolerance);
    assert_true(worst < tolerance);

    /* Chunked prefill (as generate runs it) ends on the same last-token logits. */
    global_runner g;
    global_runner_init(&g, &m->cfg, &bw, be, n, 97);
    global_prefill(&g, ids, n, 0);
    const float *last = forward_logits_host(&g.fs, 1);
    assert_true(rel_error(last, ref + (size_t)(n_rows - 1) * vocab, vocab) < tolerance);
    global_runner_free(&g);

    free(pos);
    kv_cache_free(&kv, be);
    forward_state_free(&fs);
    free(ref);
    free(rows);
    free(ids);
}

static void check_case_greedy(const model *m, const cJSON *c)
{
    int n, n_expect;
    int *ids = json_ints(cJSON_GetObjectItem(c, "ids"), &n);
    int *expect = json_ints(cJSON_GetObjectItem(c, "greedy"), &n_expect);
    global_runner g;
    global_runner_init(&g, &m->cfg, &bw, test_backend(), n + 16, 256);
    const float *logits = global_prefill(&g, ids, n, 0);
    gen_params p = {.max_new_tokens = 12, .top_p = 1.0f};
    gen_driver d = {.step = global_step, .user = &g, .be = test_backend(), .is_root = 1};
    gen_result r;
    generate_tokens(m, logits, n, &p, &d, &r);
    if (test_backend()->host_memory) {
        assert_int_equal(r.n_tokens, n_expect);
        for (int i = 0; i < n_expect; i++)
            assert_int_equal(r.tokens[i], expect[i]);
    } else if (cJSON_GetObjectItem(c, "last_top2_gap")->valuedouble > 0.2) {
        /* bf16 rounding may flip near-ties later on; a clear first choice must agree. */
        assert_int_equal(r.tokens[0], expect[0]);
    }
    gen_result_free(&r);
    global_runner_free(&g);
    free(expect);
    free(ids);
}

static void test_logits_match_reference(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_models; i++) {
        model m;
        load_model(&m, models[i]);
        cJSON *ref = load_reference(models[i]);
        assert_int_equal(cJSON_GetObjectItem(ref, "vocab_size")->valueint, m.cfg.vocab_size);
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "cases")) check_case_logits(&m, c, models[i]);
        cJSON_Delete(ref);
        unload_model(&m);
    }
}

static void test_greedy_matches_reference(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_models; i++) {
        model m;
        load_model(&m, models[i]);
        cJSON *ref = load_reference(models[i]);
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "cases")) check_case_greedy(&m, c);
        cJSON_Delete(ref);
        unload_model(&m);
    }
}

/* Decoding through the fused one-token products (q, k, v in one; gate and up in one) gives the
 * same greedy continuations. */
static void test_greedy_streamed_matches_reference(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_models; i++) {
        model m;
        load_model_streamed(&m, models[i]);
        for (int l = 0; l < m.cfg.n_layers; l++) {
            assert_non_null(bw.layers[l].wqkv);
            assert_non_null(bw.layers[l].w_gate_up);
        }
        cJSON *ref = load_reference(models[i]);
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "cases")) check_case_greedy(&m, c);
        cJSON_Delete(ref);
        unload_model(&m);
    }
}

/* The tokenizer inside a loaded model gives the reference's prompt ids. */
static void test_prompt_ids_match_reference(void **state)
{
    (void)state;
    if (getenv("STARINFER_TEST_MODELS"))
        skip(); /* the tokenizer cases belong to the fixture models */
    model m;
    load_model(&m, "tiny-llama3");
    cJSON *ref = load_reference("tiny-llama3");
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "cases"))
    {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        int n, got_n, *got;
        int *ids = json_ints(cJSON_GetObjectItem(c, "ids"), &n);
        si_error err;
        int special = strncmp(text, "<|begin_of_text|>", 17) != 0;
        assert_int_equal(tokenizer_encode(m.tok, text, strlen(text), special, &got, &got_n, &err),
                         0);
        assert_int_equal(got_n, n);
        assert_memory_equal(got, ids, sizeof(int) * n);
        free(got);
        free(ids);
    }
    cJSON_Delete(ref);
    unload_model(&m);
}

int main(void)
{
    if (!test_backend())
        return 77;
    pick_models();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prompt_ids_match_reference),
        cmocka_unit_test(test_logits_match_reference),
        cmocka_unit_test(test_greedy_matches_reference),
        cmocka_unit_test(test_greedy_streamed_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
