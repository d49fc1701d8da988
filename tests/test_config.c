/* config.json and generation_config.json: a real Llama 3.1 config parses to exact values, the
 * optional fields take transformers' defaults, and each kind of bad input is refused with a
 * message that names the file and the field. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config.h"
#include "test_util.h"

/* meta-llama/Llama-3.1-8B-Instruct's config.json, as downloaded. */
static const char llama31_config[] =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": false,"
    " \"attention_dropout\": 0.0, \"bos_token_id\": 128000,"
    " \"eos_token_id\": [128001, 128008, 128009], \"hidden_act\": \"silu\","
    " \"hidden_size\": 4096, \"initializer_range\": 0.02, \"intermediate_size\": 14336,"
    " \"max_position_embeddings\": 131072, \"mlp_bias\": false, \"model_type\": \"llama\","
    " \"num_attention_heads\": 32, \"num_hidden_layers\": 32, \"num_key_value_heads\": 8,"
    " \"pretraining_tp\": 1, \"rms_norm_eps\": 1e-05,"
    " \"rope_scaling\": {\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,"
    " \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"},"
    " \"rope_theta\": 500000.0, \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\","
    " \"transformers_version\": \"4.43.0.dev0\", \"use_cache\": true, \"vocab_size\": 128256}";

static cJSON *llama31(void)
{
    cJSON *json = cJSON_Parse(llama31_config);
    assert_non_null(json);
    return json;
}

static void set_number(cJSON *json, const char *key, double v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(json, key);
    cJSON_AddNumberToObject(json, key, v);
}

/* Loading fails, and the message names FILE (in the temporary folder) and FIELD. */
static void assert_load_fails(temp_dir *f, const char *file, const char *field)
{
    model_config cfg;
    si_error err = {0};
    assert_int_equal(model_config_load(&cfg, f->dir, &err), -1);
    assert_has(err.msg, file_in(f, file));
    if (field)
        assert_has(err.msg, field);
}

static void llama31_parses_exactly(void **state)
{
    temp_dir *f = *state;
    write_text(f, "config.json", llama31_config);
    model_config c;
    si_error err = {0};
    assert_int_equal(model_config_load(&c, f->dir, &err), 0);
    assert_string_equal(c.architecture, "LlamaForCausalLM");
    assert_int_equal(c.hidden_size, 4096);
    assert_int_equal(c.intermediate_size, 14336);
    assert_int_equal(c.n_layers, 32);
    assert_int_equal(c.n_heads, 32);
    assert_int_equal(c.n_kv_heads, 8);
    assert_int_equal(c.head_dim, 128);
    assert_int_equal(c.vocab_size, 128256);
    assert_int_equal(c.max_position_embeddings, 131072);
    assert_true(c.rms_norm_eps == 1e-5f);
    assert_true(c.rope_theta == 500000.0f);
    assert_int_equal(c.rope_scaling, ROPE_SCALING_LLAMA3);
    assert_true(c.rope_factor == 8.0f);
    assert_true(c.rope_low_freq_factor == 1.0f);
    assert_true(c.rope_high_freq_factor == 4.0f);
    assert_int_equal(c.rope_original_max_positions, 8192);
    assert_int_equal(c.tie_word_embeddings, 0);
    assert_int_equal(c.bos_token_id, 128000);
    assert_int_equal(c.n_eos, 3);
    assert_int_equal(c.eos_ids[2], 128009);
    assert_true(model_config_is_eos(&c, 128008));
    assert_false(model_config_is_eos(&c, 128000));
}

static void generation_config_eos_number_wins(void **state)
{
    temp_dir *f = *state;
    write_text(f, "config.json", llama31_config);
    write_text(f, "generation_config.json", "{\"bos_token_id\": 1, \"eos_token_id\": 2}");
    model_config c;
    si_error err = {0};
    assert_int_equal(model_config_load(&c, f->dir, &err), 0);
    assert_int_equal(c.bos_token_id, 1);
    assert_int_equal(c.n_eos, 1);
    assert_int_equal(c.eos_ids[0], 2);
    assert_false(model_config_is_eos(&c, 128009));
}

static void generation_config_eos_list_wins(void **state)
{
    temp_dir *f = *state;
    cJSON *json = llama31();
    set_number(json, "eos_token_id", 128001);
    write_json(f, "config.json", json);
    write_text(f, "generation_config.json",
               "{\"do_sample\": true, \"eos_token_id\": [128001, 128008, 128009],"
               " \"temperature\": 0.6}");
    model_config c;
    si_error err = {0};
    assert_int_equal(model_config_load(&c, f->dir, &err), 0);
    assert_int_equal(c.bos_token_id, 128000); /* not in generation_config.json: kept */
    assert_int_equal(c.n_eos, 3);
    assert_true(model_config_is_eos(&c, 128008));
}

static void head_dim_given_explicitly(void **state)
{
    temp_dir *f = *state;
    cJSON *json = llama31();
    set_number(json, "head_dim", 256); /* not hidden_size / num_attention_heads = 128 */
    write_json(f, "config.json", json);
    model_config c;
    si_error err = {0};
    assert_int_equal(model_config_load(&c, f->dir, &err), 0);
    assert_int_equal(c.head_dim, 256);
}

/* A Llama 2 style config: the optional fields take transformers' LlamaConfig defaults. */
static void defaults_for_absent_fields(void **state)
{
    temp_dir *f = *state;
    write_text(f, "config.json",
               "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64,"
               " \"intermediate_size\": 128, \"num_hidden_layers\": 2,"
               " \"num_attention_heads\": 4, \"vocab_size\": 100, \"rope_scaling\": null,"
               " \"head_dim\": null, \"torch_dtype\": \"float16\"}");
    model_config c;
    si_error err = {0};
    assert_int_equal(model_config_load(&c, f->dir, &err), 0);
    assert_int_equal(c.n_kv_heads, 4);
    assert_int_equal(c.head_dim, 16);
    assert_int_equal(c.max_position_embeddings, 2048);
    assert_true(c.rope_theta == 10000.0f);
    assert_true(c.rms_norm_eps == 1e-6f);
    assert_int_equal(c.rope_scaling, ROPE_SCALING_NONE);
    assert_int_equal(c.tie_word_embeddings, 0);
    assert_int_equal(c.bos_token_id, -1);
    assert_int_equal(c.n_eos, 0);
}

/* Older configs name the rope type "type"; "default" means no scaling. */
static void rope_type_spellings(void **state)
{
    temp_dir *f = *state;
    model_config c;
    si_error err = {0};
    cJSON *json = llama31();
    cJSON *rs = cJSON_GetObjectItem(json, "rope_scaling");
    cJSON_DeleteItemFromObject(rs, "rope_type");
    cJSON_AddStringToObject(rs, "type", "llama3");
    write_json(f, "config.json", json);
    assert_int_equal(model_config_load(&c, f->dir, &err), 0);
    assert_int_equal(c.rope_scaling, ROPE_SCALING_LLAMA3);
    assert_true(c.rope_factor == 8.0f);

    write_text(f, "config.json",
               "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64,"
               " \"intermediate_size\": 128, \"num_hidden_layers\": 2,"
               " \"num_attention_heads\": 4, \"vocab_size\": 100,"
               " \"rope_scaling\": {\"rope_type\": \"default\"}}");
    assert_int_equal(model_config_load(&c, f->dir, &err), 0);
    assert_int_equal(c.rope_scaling, ROPE_SCALING_NONE);
}

static void mistral_accepted_without_sliding_window(void **state)
{
    temp_dir *f = *state;
    cJSON *json = llama31();
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(json, "architectures"), 0,
                             cJSON_CreateString("MistralForCausalLM"));
    cJSON_AddNullToObject(json, "sliding_window");
    write_json(f, "config.json", json);
    model_config c;
    si_error err = {0};
    assert_int_equal(model_config_load(&c, f->dir, &err), 0);
    assert_string_equal(c.architecture, "MistralForCausalLM");
}

static void sliding_window_refused(void **state)
{
    temp_dir *f = *state;
    cJSON *json = llama31();
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(json, "architectures"), 0,
                             cJSON_CreateString("MistralForCausalLM"));
    set_number(json, "sliding_window", 4096);
    write_json(f, "config.json", json);
    assert_load_fails(f, "config.json", "sliding_window");
}

static void missing_config_json(void **state)
{
    temp_dir *f = *state;
    assert_load_fails(f, "config.json", "not found");
}

static void unsupported_architecture(void **state)
{
    temp_dir *f = *state;
    cJSON *json = llama31();
    cJSON_ReplaceItemInArray(cJSON_GetObjectItem(json, "architectures"), 0,
                             cJSON_CreateString("Qwen2ForCausalLM"));
    write_json(f, "config.json", json);
    assert_load_fails(f, "config.json", "Qwen2ForCausalLM");
    si_error err;
    model_config c;
    model_config_load(&c, f->dir, &err);
    assert_has(err.msg, "LlamaForCausalLM"); /* the supported ones are listed */
    assert_has(err.msg, "MistralForCausalLM");
}

static void missing_architectures(void **state)
{
    temp_dir *f = *state;
    cJSON *json = llama31();
    cJSON_DeleteItemFromObject(json, "architectures");
    write_json(f, "config.json", json);
    assert_load_fails(f, "config.json", "architectures");
}

static void malformed_config_json(void **state)
{
    temp_dir *f = *state;
    write_text(f, "config.json", "{\"hidden_size\": 4096,, }");
    assert_load_fails(f, "config.json", "not valid JSON");
    /* A valid object followed by more text is not valid either. */
    write_text(f, "config.json", "{\"hidden_size\": 4096}\n{}");
    assert_load_fails(f, "config.json", "not valid JSON");
}

static void malformed_generation_config_json(void **state)
{
    temp_dir *f = *state;
    write_text(f, "config.json", llama31_config);
    write_text(f, "generation_config.json", "{\"eos_token_id\": [1, 2");
    assert_load_fails(f, "generation_config.json", "not valid JSON");
}

static void missing_required_field(void **state)
{
    temp_dir *f = *state;
    cJSON *json = llama31();
    cJSON_DeleteItemFromObject(json, "intermediate_size");
    write_json(f, "config.json", json);
    assert_load_fails(f, "config.json", "\"intermediate_size\" is missing");
}

static void field_of_wrong_type(void **state)
{
    temp_dir *f = *state;
    cJSON *json = llama31();
    cJSON_ReplaceItemInObject(json, "hidden_size", cJSON_CreateString("4096"));
    write_json(f, "config.json", json);
    assert_load_fails(f, "config.json", "\"hidden_size\" must be an integer");
}

static void non_positive_size(void **state)
{
    temp_dir *f = *state;
    cJSON *json = llama31();
    set_number(json, "num_hidden_layers", 0);
    write_json(f, "config.json", json);
    assert_load_fails(f, "config.json", "num_hidden_layers");
}

static void heads_not_multiple_of_kv_heads(void **state)
{
    temp_dir *f = *state;
    cJSON *json = llama31();
    set_number(json, "num_key_value_heads", 5);
    write_json(f, "config.json", json);
    assert_load_fails(f, "config.json", "num_key_value_heads");
}

static void hidden_not_multiple_of_heads(void **state)
{
    temp_dir *f = *state;
    cJSON *json = llama31();
    set_number(json, "num_attention_heads", 24);
    write_json(f, "config.json", json);
    assert_load_fails(f, "config.json", "head_dim");
}

static void odd_head_dim(void **state)
{
    temp_dir *f = *state;
    cJSON *json = llama31();
    set_number(json, "head_dim", 127);
    write_json(f, "config.json", json);
    assert_load_fails(f, "config.json", "head_dim");
}

static void biases_not_supported(void **state)
{
    temp_dir *f = *state;
    const char *keys[] = {"attention_bias", "mlp_bias"};
    for (int i = 0; i < 2; i++) {
        cJSON *json = llama31();
        cJSON_ReplaceItemInObject(json, keys[i], cJSON_CreateTrue());
        write_json(f, "config.json", json);
        assert_load_fails(f, "config.json", keys[i]);
        si_error err;
        model_config c;
        model_config_load(&c, f->dir, &err);
        assert_has(err.msg, "not supported");
    }
}

static void activation_not_supported(void **state)
{
    temp_dir *f = *state;
    cJSON *json = llama31();
    cJSON_ReplaceItemInObject(json, "hidden_act", cJSON_CreateString("gelu"));
    write_json(f, "config.json", json);
    assert_load_fails(f, "config.json", "hidden_act");
}

static void rope_type_not_supported(void **state)
{
    temp_dir *f = *state;
    cJSON *json = llama31();
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(json, "rope_scaling"), "rope_type",
                              cJSON_CreateString("yarn"));
    write_json(f, "config.json", json);
    assert_load_fails(f, "config.json", "\"yarn\" is not supported");
}

static void llama3_scaling_field_missing(void **state)
{
    temp_dir *f = *state;
    const char *keys[] = {"factor", "low_freq_factor", "high_freq_factor",
                          "original_max_position_embeddings"};
    for (int i = 0; i < 4; i++) {
        cJSON *json = llama31();
        cJSON_DeleteItemFromObject(cJSON_GetObjectItem(json, "rope_scaling"), keys[i]);
        write_json(f, "config.json", json);
        char field[96];
        snprintf(field, sizeof field, "\"rope_scaling.%s\" is missing", keys[i]);
        assert_load_fails(f, "config.json", field);
    }
}

static void too_many_eos_ids(void **state)
{
    temp_dir *f = *state;
    write_text(f, "config.json", llama31_config);
    write_text(f, "generation_config.json", "{\"eos_token_id\": [1, 2, 3, 4, 5, 6, 7, 8, 9]}");
    assert_load_fails(f, "generation_config.json", "eos_token_id");
}

static void eos_id_outside_vocab(void **state)
{
    temp_dir *f = *state;
    write_text(f, "config.json", llama31_config);
    write_text(f, "generation_config.json", "{\"eos_token_id\": [128001, 200000]}");
    assert_load_fails(f, "generation_config.json", "eos_token_id[1]");
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, temp_dir_setup, temp_dir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(llama31_parses_exactly),
        TEST(generation_config_eos_number_wins),
        TEST(generation_config_eos_list_wins),
        TEST(head_dim_given_explicitly),
        TEST(defaults_for_absent_fields),
        TEST(rope_type_spellings),
        TEST(mistral_accepted_without_sliding_window),
        TEST(sliding_window_refused),
        TEST(missing_config_json),
        TEST(unsupported_architecture),
        TEST(missing_architectures),
        TEST(malformed_config_json),
        TEST(malformed_generation_config_json),
        TEST(missing_required_field),
        TEST(field_of_wrong_type),
        TEST(non_positive_size),
        TEST(heads_not_multiple_of_kv_heads),
        TEST(hidden_not_multiple_of_heads),
        TEST(odd_head_dim),
        TEST(biases_not_supported),
        TEST(activation_not_supported),
        TEST(rope_type_not_supported),
        TEST(llama3_scaling_field_missing),
        TEST(too_many_eos_ids),
        TEST(eos_id_outside_vocab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
