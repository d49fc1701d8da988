/* One request served by every rank of a communicator: rank 0 has read and tokenized it and
 * shares the ids (DESIGN.md 1, phase 2 step 1); every rank checks the sizes, plans its memory,
 * and runs Star Attention (or the global-attention baseline on rank 0) and the generation loop. */
#ifndef STARINFER_RUNTIME_REQUEST_H
#define STARINFER_RUNTIME_REQUEST_H

#include <mpi.h>
#include <stdio.h>

#include "model/backend_weights.h"
#include "runtime/generation.h"
#include "runtime/star_merge.h"

typedef enum { REQUEST_OK = 0, REQUEST_SKIP, REQUEST_END } request_status;

typedef struct {
    int *ctx;
    int n_ctx;
    int *query;
    int n_query;
    int max_new_tokens;
} request_ids;

typedef enum { ATTN_STAR = 0, ATTN_GLOBAL } attn_mode;

typedef struct {
    const backend *be;
    const backend_weights *w; /* the model's weights, resident on BE */
    attn_mode attn;
    int block;  /* 0: ceil(context / ranks) */
    int anchor; /* 0: the block size */
    int chunk;  /* most tokens per forward */
    star_merge_mode merge;
    star_merge_transport merge_transport;
    gen_params gen; /* max_new_tokens is taken from the request */
    FILE *stream;   /* rank 0 writes the answer here as it comes; NULL: quiet */
} request_opts;

typedef struct {
    int n_ranks, n_active, n_ctx, n_query, block, anchor, n_blocks;
    attn_mode attn;
    const char *backend; /* rank 0's backend: cpu, cuda or cuda-fp32 (its number formats) */
    gen_result gen;
    double ttft_s; /* time to first token: phase 1 + phase 2 on the slowest rank */
    /* per rank, on rank 0: [n_ranks] */
    double *phase1_s, *phase2_s, *merge_s;
    double *mem_bytes;      /* the memory plan: weights, KV cache, activations */
    double *merge_decode_s; /* the part of merge_s spent while decoding, after the first token */
    double *peak_bytes;     /* the backend's high-water mark during the request */
    int *ctx_tokens;
} request_result;

/* Rank 0 passes STATUS and, when OK, its ids; the others receive them. Returns the status every
 * rank agrees on. */
request_status request_share(MPI_Comm comm, request_status status, request_ids *r);
void request_ids_free(request_ids *r);

/* Runs R; an error (sizes that do not fit the model, bad block/anchor sizes) is the same on every
 * rank, so every rank returns -1 together and rank 0 reports it. */
int request_run(const model *m, MPI_Comm comm, const request_ids *r, const request_opts *o,
                request_result *res, si_error *err);
void request_result_free(request_result *res);

/* The per-rank phase table, on stderr (rank 0). */
void request_print_timings(const request_result *res);

#endif
