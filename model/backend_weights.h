/* The weights where the backend computes, in its own format (fp32 on the CPU, bf16 on a GPU), in
 * one backend allocation filled from the mapped safetensors files tensor by tensor (the commands),
 * or made from a seed (benchmarks); tests may also take a host load's fp32 tensors. */
#ifndef STARINFER_MODEL_BACKEND_WEIGHTS_H
#define STARINFER_MODEL_BACKEND_WEIGHTS_H

#include <stdint.h>

#include "kernels/backend.h"
#include "model/config.h"
#include "model/weights.h"

typedef struct {
    const void *attn_norm, *wq, *wk, *wv, *wo, *mlp_norm, *w_gate, *w_up, *w_down;
    /* wq, wk and wv back to back, as one [(q_dim + 2 kv_dim)][hidden] matrix, and w_gate and
     * w_up as one [2 intermediate][hidden]: set where the allocation placed them so (one token's
     * products then read them in one go), else NULL. */
    const void *wqkv, *w_gate_up;
} layer_tensors;

typedef struct {
    const void *embed, *norm, *lm_head;
    layer_tensors *layers;
    const float *inv_freq; /* RoPE frequencies [head_dim / 2], fp32 */
    void *block;           /* the backend allocation, NULL when the host tensors are used */
    size_t bytes;          /* its size */
} backend_weights;

/* From W, the fp32 tensors of model_load: used in place on the CPU, copied to a device. */
void backend_weights_upload(backend_weights *bw, const model_config *cfg, const model_weights *w,
                            const float *inv_freq, const backend *be);
/* Seeded random weights made directly on BE, in one allocation (also on the CPU): tensor i
 * (in a fixed order) uniform in +-1/sqrt(fan_in) from seed splitmix64(SEED) + i, the norms' scales
 * 1. For benchmarks of a model shape without its checkpoint. */
void backend_weights_random(backend_weights *bw, const model_config *cfg, const float *inv_freq,
                            const backend *be, uint64_t seed);
/* Told after each tensor: DONE of TOTAL bytes (as the files store them) are on the backend. */
typedef void (*weight_progress_fn)(void *user, size_t done, size_t total);

/* One allocation on BE filled from the safetensors files SET tensor by tensor, each converted by
 * the backend from the mapped file (no host copy of the model); an error names the tensor at
 * fault. PROGRESS (may be NULL) is told after each tensor; on return the backend has them all. */
int backend_weights_stream(backend_weights *bw, const model_config *cfg, const st_set *set,
                           const float *inv_freq, const backend *be, weight_progress_fn progress,
                           void *user, si_error *err);
void backend_weights_free(backend_weights *bw, const backend *be);
/* Bytes of the one allocation that holds CFG's weights on BE. */
size_t backend_weights_bytes(const model_config *cfg, const backend *be);

#endif
