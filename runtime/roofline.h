/* The work a request must do, for the roofline beside every benchmark figure: the FLOPs of the
 * prefill (context and query, up to the first token) on each rank, and the bytes each rank must
 * read per decoded token. Compared with the matrix rate and the memory bandwidth measured in the
 * same run, they give the fraction of the hardware's speed of light that a run achieves.
 *
 * Counted as the runtime computes (model/forward.c, runtime/star.c):
 * - linear layers: 2 FLOPs per weight per token; a context token (kept for its K/V only) skips the
 *   last layer's attention and MLP and needs only its K and V projections; the lm_head counts only
 *   for the rows that produce logits (one per forward that returns the first token's logits);
 * - attention: 4 * head_dim * n_heads FLOPs per (query, key) pair and layer (Q.K and P.V), causal,
 *   the last layer skipped for context tokens;
 * - Star Attention phase 1: the anchor once per rank that does not own block 0 (DESIGN.md 1.6),
 *   each block's queries over the anchor and, causally, the block; phase 2: the query on every
 *   active rank over its own context, and causally over itself on the last rank;
 * - decode: every weight once (the lm_head in full, one embedding row, the norms) and the K/V of
 *   every cached position, averaged over the decoded tokens. */
#ifndef STARINFER_RUNTIME_ROOFLINE_H
#define STARINFER_RUNTIME_ROOFLINE_H

#include <stddef.h>

#include "model/config.h"
#include "runtime/request.h"

typedef struct {
    attn_mode attn;
    int n_ctx, n_query, n_decode; /* decoded tokens, the first (from the prefill) included */
    int block, anchor;            /* as the runtime resolved them (request_result) */
    int n_ranks;
} roofline_request;

/* Weights of one layer's linear maps (q, k, v, o, gate, up, down). */
double roofline_layer_params(const model_config *c);
/* FLOPs of N context tokens whose queries see PAIRS (query, key) pairs in every layer. */
double roofline_context_flops(const model_config *c, double n, double pairs);
/* FLOPs of N query tokens over PAIRS pairs per layer, with LOGIT_ROWS rows of logits. */
double roofline_query_flops(const model_config *c, double n, double pairs, int logit_rows);

/* Prefill FLOPs of RANK (0 for a rank without work). */
double roofline_prefill_flops(const model_config *c, const roofline_request *q, int rank);
/* Bytes RANK reads per decoded token, with WEIGHT_SIZE and KV_SIZE bytes per element. */
double roofline_decode_bytes(const model_config *c, const roofline_request *q, int rank,
                             size_t weight_size, size_t kv_size);

#endif
