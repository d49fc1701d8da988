/* Ordinary global attention on one process: the baseline that Star Attention is measured
 * against, and the path of `starinfer generate`. The prompt is prefilled in chunks so that
 * activation memory stays bounded, then tokens are decoded one at a time. */
#ifndef STARINFER_RUNTIME_GLOBAL_ATTENTION_H
#define STARINFER_RUNTIME_GLOBAL_ATTENTION_H

#include "model/forward.h"

typedef struct {
    forward_state fs;
    kv_span kv;
} global_runner;

/* Sizes the cache for CAPACITY positions and the activations for CHUNK tokens per forward. */
void global_runner_init(global_runner *g, const model_config *cfg, const backend_weights *w,
                        const backend *be, int capacity, int chunk);
void global_runner_free(global_runner *g);
size_t global_runner_bytes(const model_config *cfg, const backend *be, int capacity, int chunk);

/* Encodes N tokens at positions FIRST_POS.. and returns the last one's logits. */
const float *global_prefill(global_runner *g, const int *ids, int n, int first_pos);
/* gen_driver step: one token at POS. */
const float *global_step(void *runner, int token, int pos);

#endif
