/* The model's weights, found by their Hugging Face names in a safetensors set, each shape checked
 * against the config, and converted (BF16/F16/F32 -> fp32) into one host allocation. */
#ifndef STARINFER_MODEL_WEIGHTS_H
#define STARINFER_MODEL_WEIGHTS_H

#include "kernels/convert.h"
#include "model/config.h"
#include "model/safetensors.h"

typedef struct {
    float *attn_norm; /* [hidden]                      input_layernorm.weight */
    float *wq;        /* [n_heads * head_dim][hidden]  self_attn.q_proj.weight */
    float *wk;        /* [n_kv_heads * head_dim][hidden] */
    float *wv;        /* [n_kv_heads * head_dim][hidden] */
    float *wo;        /* [hidden][n_heads * head_dim] */
    float *mlp_norm;  /* [hidden]                      post_attention_layernorm.weight */
    float *w_gate;    /* [intermediate][hidden] */
    float *w_up;      /* [intermediate][hidden] */
    float *w_down;    /* [hidden][intermediate] */
} layer_weights;

typedef struct {
    float *embed;   /* [vocab][hidden]  model.embed_tokens.weight */
    float *norm;    /* [hidden]         model.norm.weight */
    float *lm_head; /* [vocab][hidden]  lm_head.weight, or == embed when tied */
    layer_weights *layers;
    void *block;  /* the one allocation every pointer above is carved from */
    size_t bytes; /* its size */
} model_weights;

/* Number of fp32 bytes the weights of CFG take once loaded (for the memory plan). */
size_t model_weights_bytes(const model_config *cfg);

/* Finds every tensor in SET by name, checks its shape against CFG (an error names the tensor,
 * its file, the shape found and the one expected), and converts it to fp32. */
int model_weights_load(model_weights *w, const model_config *cfg, const st_set *set, si_error *err);
void model_weights_free(model_weights *w);

/* Receives the INDEX-th tensor as its file stores it: COUNT elements of TYPE at DATA, in the
 * mapped file (any alignment). */
typedef void (*weight_put_fn)(void *user, int index, const void *data, elem_type type,
                              size_t count);

/* Every tensor of the model in SET, found and checked as model_weights_load does (an error names
 * the tensor and file, and comes before PUT is first called), then handed to PUT as stored,
 * without a host copy: the way to fill a device's copy, converted by the backend. The order,
 * which INDEX counts: embed, norm, lm_head (absent when tied), then per layer attn_norm, wq, wk,
 * wv, wo, mlp_norm, w_gate, w_up, w_down. With PUT NULL it only checks. */
/* How many tensors of SET the model CFG describes does not use (RoPE's stored inv_freq aside, which
 * older checkpoints carry), and the first of them in *FIRST (NULL when none). */
int model_weights_unused(const model_config *cfg, const st_set *set, const char **first);
int model_weights_each(const model_config *cfg, const st_set *set, weight_put_fn put, void *user,
                       si_error *err);

#endif
