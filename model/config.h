/* The model's hyper-parameters, read from a Hugging Face model directory's config.json and
 * generation_config.json, as they are downloaded (no conversion step). */
#ifndef STARINFER_MODEL_CONFIG_H
#define STARINFER_MODEL_CONFIG_H

#include "kernels/check.h"

#define MODEL_MAX_EOS 8

typedef enum {
    ROPE_SCALING_NONE = 0,
    ROPE_SCALING_LLAMA3, /* Llama 3.1: low/high frequency factors, original max positions */
} rope_scaling_type;

typedef struct {
    char architecture[64]; /* "LlamaForCausalLM" */
    int hidden_size;
    int intermediate_size;
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim; /* config's head_dim when present, else hidden_size / n_heads */
    int vocab_size;
    int max_position_embeddings;
    float rms_norm_eps;
    float rope_theta;
    rope_scaling_type rope_scaling;
    float rope_factor;
    float rope_low_freq_factor;
    float rope_high_freq_factor;
    int rope_original_max_positions;
    int tie_word_embeddings;
    int bos_token_id; /* -1 when absent */
    int eos_ids[MODEL_MAX_EOS];
    int n_eos;
} model_config;

/* Reads DIR/config.json, then DIR/generation_config.json when present (its bos/eos ids win;
 * eos may be a number or a list). Unsupported architectures and missing or inconsistent fields
 * are errors that name the file and the field. */
int model_config_load(model_config *cfg, const char *dir, si_error *err);

int model_config_is_eos(const model_config *cfg, int token);

#endif
