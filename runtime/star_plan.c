#include "runtime/star_plan.h"

void star_plan_blocks_of(const star_plan *p, int r, int *first, int *count)
{
    int base = p->n_blocks / p->n_ranks, extra = p->n_blocks % p->n_ranks;
    *count = base + (r < extra);
    *first = r * base + (r < extra ? r : extra);
}

int star_plan_block_len(const star_plan *p, int j)
{
    int start = j * p->block;
    return p->n_ctx - start < p->block ? p->n_ctx - start : p->block;
}

int star_plan_make(star_plan *p, int n_ctx, int block, int anchor, int rank, int n_ranks,
                   si_error *err)
{
    if (n_ctx <= 0)
        return si_error_set(err, "the context is empty: give a context with at least one token");
    if (block <= 0)
        return si_error_set(err, "--block-size must be a positive number of tokens, got %d",
                            block);
    if (anchor <= 0)
        return si_error_set(err, "--anchor-size must be a positive number of tokens, got %d",
                            anchor);
    if (anchor > block)
        return si_error_set(err,
                            "--anchor-size (%d) is larger than --block-size (%d); the anchor is "
                            "the start of block 0, so it must satisfy 1 <= anchor <= block",
                            anchor, block);
    p->n_ctx = n_ctx;
    p->block = block;
    p->anchor = anchor < n_ctx ? anchor : n_ctx;
    p->n_blocks = (n_ctx + block - 1) / block;
    p->n_ranks = n_ranks;
    p->rank = rank;
    star_plan_blocks_of(p, rank, &p->first_block, &p->my_blocks);
    p->ctx_start = p->first_block * block;
    p->ctx_len = 0;
    for (int j = p->first_block; j < p->first_block + p->my_blocks; j++)
        p->ctx_len += star_plan_block_len(p, j);
    p->n_active = p->n_blocks < n_ranks ? p->n_blocks : n_ranks;
    p->last_rank = p->n_active - 1;
    return 0;
}
