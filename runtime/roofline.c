#include "runtime/roofline.h"

#include "runtime/star_plan.h"

double roofline_layer_params(const model_config *c)
{
    double hid = c->hidden_size, inter = c->intermediate_size;
    double qd = (double)c->n_heads * c->head_dim, kvd = (double)c->n_kv_heads * c->head_dim;
    return 2 * hid * qd + 2 * hid * kvd + 3 * hid * inter;
}

static double kv_params(const model_config *c)
{
    return 2.0 * c->hidden_size * c->n_kv_heads * c->head_dim;
}

static double pair_flops(const model_config *c)
{
    return 4.0 * c->head_dim * c->n_heads;
}

double roofline_context_flops(const model_config *c, double n, double pairs)
{
    int L = c->n_layers;
    return 2 * n * ((L - 1) * roofline_layer_params(c) + kv_params(c)) +
           pair_flops(c) * pairs * (L - 1);
}

double roofline_query_flops(const model_config *c, double n, double pairs, int logit_rows)
{
    int L = c->n_layers;
    return 2 * n * L * roofline_layer_params(c) + pair_flops(c) * pairs * L +
           2.0 * logit_rows * c->vocab_size * c->hidden_size;
}

/* (query, key) pairs of N tokens attending causally to themselves. */
static double causal(double n)
{
    return n * (n + 1) / 2;
}

static int plan_of(star_plan *p, const roofline_request *q, int rank)
{
    si_error err;
    return star_plan_make(p, q->n_ctx, q->block, q->anchor, rank, q->n_ranks, &err);
}

double roofline_prefill_flops(const model_config *c, const roofline_request *q, int rank)
{
    double n = q->n_ctx, nq = q->n_query;
    if (q->attn == ATTN_GLOBAL)
        return rank != 0 ? 0
                         : roofline_context_flops(c, n, causal(n)) +
                               roofline_query_flops(c, nq, nq * n + causal(nq), 1);
    star_plan p;
    if (plan_of(&p, q, rank) != 0 || p.my_blocks == 0)
        return 0;
    double a = p.anchor, flops = 0;
    if (p.first_block > 0)
        flops += roofline_context_flops(c, a, causal(a));
    for (int j = p.first_block; j < p.first_block + p.my_blocks; j++) {
        double len = star_plan_block_len(&p, j);
        flops += roofline_context_flops(c, len, (j > 0 ? a * len : 0) + causal(len));
    }
    double own = rank == p.last_rank ? causal(nq) : 0;
    return flops + roofline_query_flops(c, nq, nq * p.ctx_len + own, 1);
}

double roofline_decode_bytes(const model_config *c, const roofline_request *q, int rank,
                             size_t weight_size, size_t kv_size)
{
    double rows;
    if (q->attn == ATTN_GLOBAL) {
        if (rank != 0)
            return 0;
        rows = q->n_ctx + q->n_query + q->n_decode / 2.0;
    } else {
        star_plan p;
        if (plan_of(&p, q, rank) != 0 || p.my_blocks == 0)
            return 0;
        rows = p.ctx_len + (rank == p.last_rank ? q->n_query + q->n_decode / 2.0 : 0);
    }
    /* Step t (t = 0 .. D-2) reads ctx + q + t + 1 positions: D/2 past the query on average. */
    double hid = c->hidden_size, L = c->n_layers;
    double weights = L * roofline_layer_params(c) + (double)c->vocab_size * hid + hid +
                     (2 * L + 1) * hid;
    double kv = 2 * L * c->n_kv_heads * c->head_dim * rows;
    return weights * weight_size + kv * kv_size;
}
