#include "runtime/star.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/kv_cache.h"
#include "runtime/mpi_check.h"
#include "runtime/progress.h"
#include "runtime/timer.h"

static int tail_capacity(const star_plan *p, int max_tail)
{
    return p->rank == p->last_rank ? max_tail : 0;
}

static int needs_anchor(const star_plan *p)
{
    return p->my_blocks > 0 && p->first_block > 0;
}

size_t star_engine_bytes(const model_config *cfg, const backend *be, const star_plan *p, int chunk,
                         int max_tail)
{
    size_t bytes = kv_cache_bytes(cfg, be, p->ctx_len + tail_capacity(p, max_tail));
    if (needs_anchor(p))
        bytes += kv_cache_bytes(cfg, be, p->anchor);
    bytes += forward_state_bytes(cfg, be, chunk, chunk);
    return bytes;
}

int star_engine_init(star_engine *e, const star_opts *o, int n_ctx, si_error *err)
{
    memset(e, 0, sizeof *e);
    e->o = *o;
    int rank, size;
    MPI_Comm_rank(o->comm, &rank);
    MPI_Comm_size(o->comm, &size);
    if (star_plan_make(&e->plan, n_ctx, o->block, o->anchor, rank, size, err) != 0)
        return -1;
    const star_plan *p = &e->plan;
    const model_config *cfg = o->cfg;
    mpiCheck(MPI_Comm_split(o->comm, p->my_blocks > 0 ? 0 : MPI_UNDEFINED, rank, &e->active));
    if (p->my_blocks == 0)
        return 0;
    kv_cache_alloc(&e->kv, cfg, o->be, p->ctx_len + tail_capacity(p, o->max_tail), "KV cache");
    if (needs_anchor(p))
        kv_cache_alloc(&e->anchor, cfg, o->be, p->anchor, "anchor KV");
    forward_state_init(&e->fs, cfg, o->w, o->be, o->chunk, o->chunk);
    star_merge_init(&e->mg, e->active, o->merge, o->be, cfg->head_dim, o->chunk * cfg->n_heads);
    if (o->transport == STAR_MERGE_NCCL && star_merge_use_nccl(&e->mg, err) != 0) {
        star_engine_free(e);
        return -1;
    }
    e->bytes = star_engine_bytes(cfg, o->be, p, o->chunk, o->max_tail);
    return 0;
}

void star_engine_free(star_engine *e)
{
    if (e->active != MPI_COMM_NULL) {
        star_merge_free(&e->mg);
        MPI_Comm_free(&e->active);
    }
    forward_state_free(&e->fs);
    kv_cache_free(&e->kv, e->o.be);
    kv_cache_free(&e->anchor, e->o.be);
}

int star_engine_active(const star_engine *e)
{
    return e->active != MPI_COMM_NULL;
}

/* Encodes tokens [from, from + n) of the context at their global positions into STORE, in
 * chunks, each attending to PREFIX (the anchor, or nothing) and causally to the block so far. */
static void encode_span(star_engine *e, const int *ctx, int from, int n, const kv_span *prefix,
                        kv_span *store, progress *pr)
{
    int chunk = e->o.chunk, self_from = store->rows;
    int *pos = mallocCheck(sizeof(int) * chunk, "positions");
    for (int start = 0; start < n; start += chunk) {
        int len = n - start < chunk ? n - start : chunk;
        for (int i = 0; i < len; i++)
            pos[i] = from + start + i;
        forward_args args = {.prefix = prefix, .n_prefix = prefix ? 1 : 0, .store = store,
                             .self_from = self_from, .logits = FORWARD_LOGITS_NONE};
        forward(&e->fs, ctx + from + start, pos, len, &args);
        progress_add(pr, len);
    }
    free(pos);
}

void star_phase1(star_engine *e, const int *ctx)
{
    const star_plan *p = &e->plan;
    double t0 = timer_now(), last_log = t0;
    /* Every rank tells how its own phase 1 goes when it takes long: the last ranks, which encode
     * an anchor besides their blocks, finish after rank 0. */
    long total = needs_anchor(p) ? p->anchor : 0;
    for (int j = p->first_block; j < p->first_block + p->my_blocks; j++)
        total += star_plan_block_len(p, j);
    progress pr;
    progress_start(&pr, "phase 1", total);
    if (needs_anchor(p))
        encode_span(e, ctx, 0, p->anchor, NULL, &e->anchor, &pr);
    kv_span anchor = e->anchor;
    for (int j = p->first_block; j < p->first_block + p->my_blocks; j++) {
        int len = star_plan_block_len(p, j);
        if (j == 0) {
            encode_span(e, ctx, 0, len, NULL, &e->kv, &pr);
            anchor = e->kv; /* the anchor is block 0's start: same tokens, same positions */
            anchor.rows = p->anchor;
        } else {
            encode_span(e, ctx, j * p->block, len, &anchor, &e->kv, &pr);
        }
        double now = timer_now();
        int done = j - p->first_block + 1;
        if (p->rank == 0 && (now - last_log >= 1.0 || done == p->my_blocks)) {
            si_log("phase 1: %d/%d blocks of rank 0 encoded, %d tokens in %.2f s (%.0f tokens/s)",
                   done, p->my_blocks, e->kv.rows, now - t0, e->kv.rows / (now - t0));
            last_log = now;
        }
    }
    e->o.be->synchronize(); /* the device's queue holds phase 1 until here */
    e->phase1_s = timer_now() - t0;
}

/* One forward of new tokens in phase 2: the rank's context in full, the tail causally. */
static const float *query_forward(star_engine *e, const int *ids, const int *pos, int n,
                                  forward_logits which)
{
    const star_plan *p = &e->plan;
    kv_span ctx = e->kv;
    ctx.rows = p->ctx_len;
    forward_args args = {.prefix = &ctx, .n_prefix = 1,
                         .store = p->rank == p->last_rank ? &e->kv : NULL,
                         .self_from = p->ctx_len, .combine = star_merge_combine,
                         .combine_user = &e->mg, .logits = which};
    return forward(&e->fs, ids, pos, n, &args);
}

const float *star_phase2(star_engine *e, const int *query, int nq, forward_logits which)
{
    if (!star_engine_active(e))
        return NULL;
    if (which == FORWARD_LOGITS_ALL && nq > e->o.chunk)
        si_fatal("phase 2 asked for the logits of %d query tokens, sized for %d", nq, e->o.chunk);
    /* The ranks begin together: one that encoded its blocks sooner (block 0 has no anchor to
     * encode) would otherwise wait in its first merge, and the wait would read as merging. The
     * slowest rank's phase 1 sets the time to the first token either way. */
    mpiCheck(MPI_Barrier(e->active));
    double t0 = timer_now();
    int *pos = mallocCheck(sizeof(int) * e->o.chunk, "positions");
    const float *logits = NULL;
    for (int start = 0; start < nq; start += e->o.chunk) {
        int len = nq - start < e->o.chunk ? nq - start : e->o.chunk;
        for (int i = 0; i < len; i++)
            pos[i] = e->plan.n_ctx + start + i;
        logits = query_forward(e, query + start, pos, len,
                               start + len == nq ? which : FORWARD_LOGITS_NONE);
    }
    free(pos);
    e->o.be->synchronize(); /* the logits stay on the device: wait for them */
    e->phase2_s = timer_now() - t0;
    return logits;
}

const float *star_step(void *engine, int token, int pos)
{
    return query_forward(engine, &token, &pos, 1, FORWARD_LOGITS_LAST);
}

void star_agree(void *engine, int msg[2])
{
    star_engine *e = engine;
    mpiCheck(MPI_Bcast(msg, 2, MPI_INT, 0, e->active));
}
