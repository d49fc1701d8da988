#include "model/shapes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/rope_freqs.h"

/* Random weights have no trained length, so a shape takes any position (the checkpoints say
 * 131072); the RoPE of the Llama 3 shapes is the checkpoints' own, llama3 scaling included. */
#define SHAPE_MAX_POSITIONS (1 << 30)

typedef struct {
    const char *name;
    model_config cfg;
} shape;

static const shape shapes[] = {
    {"llama-3.1-8b",
     {.architecture = "LlamaForCausalLM", .hidden_size = 4096, .intermediate_size = 14336,
      .n_layers = 32, .n_heads = 32, .n_kv_heads = 8, .head_dim = 128, .vocab_size = 128256,
      .rms_norm_eps = 1e-5f, .rope_theta = 500000.0f, .rope_scaling = ROPE_SCALING_LLAMA3,
      .rope_factor = 8.0f, .rope_low_freq_factor = 1.0f, .rope_high_freq_factor = 4.0f,
      .rope_original_max_positions = 8192, .bos_token_id = 128000,
      .eos_ids = {128001, 128008, 128009}, .n_eos = 3}},
    {"llama-3.2-1b",
     {.architecture = "LlamaForCausalLM", .hidden_size = 2048, .intermediate_size = 8192,
      .n_layers = 16, .n_heads = 32, .n_kv_heads = 8, .head_dim = 64, .vocab_size = 128256,
      .rms_norm_eps = 1e-5f, .rope_theta = 500000.0f, .rope_scaling = ROPE_SCALING_LLAMA3,
      .rope_factor = 32.0f, .rope_low_freq_factor = 1.0f, .rope_high_freq_factor = 4.0f,
      .rope_original_max_positions = 8192, .tie_word_embeddings = 1, .bos_token_id = 128000,
      .eos_ids = {128001, 128008, 128009}, .n_eos = 3}},
    /* Small enough for CPU tests, with grouped-query attention like the others. */
    {"tiny",
     {.architecture = "LlamaForCausalLM", .hidden_size = 256, .intermediate_size = 512,
      .n_layers = 4, .n_heads = 8, .n_kv_heads = 4, .head_dim = 32, .vocab_size = 4096,
      .rms_norm_eps = 1e-5f, .rope_theta = 10000.0f, .bos_token_id = 1, .eos_ids = {2},
      .n_eos = 1}},
};
#define N_SHAPES (int)(sizeof shapes / sizeof shapes[0])

const char *model_shape_names(void)
{
    return "llama-3.1-8b, llama-3.2-1b, tiny";
}

int model_shape_init(model *m, const char *name, si_error *err)
{
    memset(m, 0, sizeof *m);
    for (int i = 0; i < N_SHAPES; i++)
        if (!strcmp(name, shapes[i].name)) {
            m->cfg = shapes[i].cfg;
            m->cfg.max_position_embeddings = SHAPE_MAX_POSITIONS;
            m->inv_freq = mallocCheck(sizeof(float) * (m->cfg.head_dim / 2), "RoPE frequencies");
            rope_inv_freq(m->inv_freq, &m->cfg);
            return 0;
        }
    return si_error_set(err, "--shape: unknown shape '%s'\n  HINT: known shapes: %s", name,
                        model_shape_names());
}
