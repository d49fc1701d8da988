/* The Star Attention engine (arXiv 2411.17116; DESIGN.md section 1) on one rank.
 *
 * Phase 1, no communication: the rank encodes each of its blocks as [anchor ; block] (block 0
 * alone), the anchor at positions 0..a-1 and the block at its global positions, and keeps only
 * the block's K/V. The anchor's K/V are computed once per rank and reused for every block (1.6);
 * a rank that owns block 0 takes them from block 0's own first a rows.
 * Phase 2: every active rank runs the query (and each generated token) through the model; in
 * every layer it attends over its own cache (the last rank also over the query's own K/V,
 * causally) and the ranks merge (m, l, o) with MPI. */
#ifndef STARINFER_RUNTIME_STAR_H
#define STARINFER_RUNTIME_STAR_H

#include <mpi.h>

#include "model/forward.h"
#include "runtime/star_merge.h"
#include "runtime/star_plan.h"

typedef struct {
    const model_config *cfg;
    const backend_weights *w; /* resident on BE */
    const backend *be;
    MPI_Comm comm; /* the ranks that serve this request */
    int block;     /* block size b */
    int anchor;    /* anchor size a */
    int chunk;     /* most tokens per forward (bounds activation memory) */
    int max_tail;  /* query + generated tokens the last rank must hold */
    star_merge_mode merge;
    star_merge_transport transport;
} star_opts;

typedef struct {
    star_opts o;
    star_plan plan;
    MPI_Comm active; /* ranks owning a block; MPI_COMM_NULL on an idle rank */
    kv_span kv;      /* this rank's blocks, then (last rank) the query and generated tokens */
    kv_span anchor;  /* the anchor's K/V, when this rank does not own block 0 */
    forward_state fs;
    star_merge mg;
    double phase1_s;
    double phase2_s;
    size_t bytes; /* KV cache, anchor, activations and merge buffer on this rank */
} star_engine;

/* Bytes a rank needs beyond the weights (the memory plan, before anything is allocated). */
size_t star_engine_bytes(const model_config *cfg, const backend *be, const star_plan *p, int chunk,
                         int max_tail);

/* Plans the blocks of an N_CTX-token context over O->comm and allocates this rank's share. */
int star_engine_init(star_engine *e, const star_opts *o, int n_ctx, si_error *err);
void star_engine_free(star_engine *e);
int star_engine_active(const star_engine *e);

/* Phase 1 over CTX (all n_ctx ids; each rank reads its own blocks and the anchor). */
void star_phase1(star_engine *e, const int *ctx);
/* Phase 2 over the query's NQ tokens; returns the logits (LAST or ALL, the latter for at most
 * chunk tokens) on every active rank, NULL on an idle one. */
const float *star_phase2(star_engine *e, const int *query, int nq, forward_logits which);
/* gen_driver step for one generated token at POS (active ranks only). */
const float *star_step(void *engine, int token, int pos);
/* gen_driver agree: rank 0's token and decision, broadcast over the active ranks. */
void star_agree(void *engine, int msg[2]);

#endif
