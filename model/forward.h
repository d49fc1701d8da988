/* The Llama forward pass over N new tokens with explicit position ids, on any backend.
 *
 * Which keys the new tokens see is the caller's choice, so that one forward serves global
 * attention, Star Attention's phase 1 (a block after its anchor) and phase 2 (the query over a
 * rank's cache, merged across ranks through COMBINE). */
#ifndef STARINFER_MODEL_FORWARD_H
#define STARINFER_MODEL_FORWARD_H

#include "kernels/backend.h"
#include "model/backend_weights.h"
#include "model/model.h"

/* Keys and values of every layer for a run of positions, in the backend's KV format: layer L's
 * row R starts at element L * layer_stride + R * kv_dim of k and v. */
typedef struct {
    void *k;
    void *v;
    size_t layer_stride; /* elements */
    int rows;            /* rows in use */
    int capacity;        /* rows available */
} kv_span;

/* Called once per layer with the attention state of every (token, head) row (in backend
 * memory), after the local keys are folded in and before it is normalised: the place to merge
 * with other processes. */
typedef void (*attn_combine_fn)(void *user, const backend *be, attn_state *s, int rows,
                                int head_dim);

typedef enum {
    FORWARD_LOGITS_NONE = 0,
    FORWARD_LOGITS_LAST, /* logits of the last new token only */
    FORWARD_LOGITS_ALL,  /* logits of every new token */
} forward_logits;

typedef struct {
    const kv_span *prefix; /* key sets every new token sees in full */
    int n_prefix;
    kv_span *store;        /* new K/V go to rows [store->rows, +n); NULL: not computed */
    int self_from;         /* new tokens see store rows [self_from, store->rows + n) causally */
    attn_combine_fn combine;
    void *combine_user;
    forward_logits logits;
} forward_args;

typedef struct {
    const model_config *cfg;
    const backend_weights *w;
    const backend *be;
    int n_max;      /* most new tokens per call */
    int logit_rows; /* most logit rows per call */
    float *x;       /* the residual stream, fp32 */
    void *xn;       /* its normed rows, in the backend's activation format */
    void *q, *att;  /* the queries, and attention's normalised output, activation format */
    void *gate_up;  /* one token's MLP first half, activation format */
    float *hb, *hb2; /* the MLP's scratch */
    float *logits;
    attn_state state;
    float *logits_host; /* pinned copy of the logits, for a device backend */
} forward_state;

/* Sizes every activation for N_MAX new tokens and LOGIT_ROWS rows of logits, in one go, on BE,
 * computing with the weights W (resident on BE). */
void forward_state_init(forward_state *fs, const model_config *cfg, const backend_weights *w,
                        const backend *be, int n_max, int logit_rows);
void forward_state_free(forward_state *fs);
/* The bytes forward_state_init allocates on BE, and the scratch BE's operations take on their
 * own for passes of N_MAX tokens. */
size_t forward_state_bytes(const model_config *cfg, const backend *be, int n_max, int logit_rows);
/* The first element of layer LAYER, row ROW of a span's keys (K) or values (V), as a pointer. */
void *kv_span_at(const kv_span *s, const backend *be, int which_v, int layer, int row,
                 int kv_dim);

/* Runs N <= n_max tokens at positions POS. Returns the logits in backend memory ([1][vocab] for
 * LAST, [n][vocab] for ALL; pick a token there with the backend's sample slot) or NULL for NONE.
 * On return args->store->rows has grown by N. */
const float *forward(forward_state *fs, const int *tokens, const int *pos, int n,
                     const forward_args *args);
/* The first ROWS rows of the last forward's logits in host memory (a copy for a device
 * backend, valid until the next call), for tests and anything else that reads them. */
const float *forward_logits_host(forward_state *fs, int rows);

#endif
