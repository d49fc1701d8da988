/* Which blocks of the context each rank owns (Star Attention, arXiv 2411.17116, section 2.1):
 * m = ceil(n / b) blocks, the last possibly short, in contiguous groups as even as possible, the
 * first m mod R ranks taking one more. With m < R the ranks past block m-1 stay idle. */
#ifndef STARINFER_RUNTIME_STAR_PLAN_H
#define STARINFER_RUNTIME_STAR_PLAN_H

#include "kernels/check.h"

typedef struct {
    int n_ctx;       /* context tokens */
    int block;       /* block size b */
    int anchor;      /* anchor size a, 1 <= a <= b (capped at the context's length) */
    int n_blocks;    /* m */
    int n_ranks;     /* R */
    int rank;
    int first_block; /* this rank's first block */
    int my_blocks;   /* how many it owns (0: idle) */
    int ctx_start;   /* first context position it owns */
    int ctx_len;     /* context positions it owns */
    int last_rank;   /* the rank owning block m-1: query and generated K/V live there */
    int n_active;    /* ranks owning at least one block */
} star_plan;

/* Checks the sizes (errors name the flag) and works out RANK's share. */
int star_plan_make(star_plan *p, int n_ctx, int block, int anchor, int rank, int n_ranks,
                   si_error *err);
/* First block and number of blocks of any rank R. */
void star_plan_blocks_of(const star_plan *p, int r, int *first, int *count);
/* Tokens in block J. */
int star_plan_block_len(const star_plan *p, int j);

#endif
