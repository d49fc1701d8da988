#include "runtime/request.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/device.h"
#include "runtime/global_attention.h"
#include "runtime/mpi_check.h"
#include "runtime/star.h"
#include "runtime/timer.h"

request_status request_share(MPI_Comm comm, request_status status, request_ids *r)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    int hdr[4] = {status, r->n_ctx, r->n_query, r->max_new_tokens};
    mpiCheck(MPI_Bcast(hdr, 4, MPI_INT, 0, comm));
    if (hdr[0] != REQUEST_OK)
        return hdr[0];
    if (rank != 0) {
        r->n_ctx = hdr[1];
        r->n_query = hdr[2];
        r->max_new_tokens = hdr[3];
        r->ctx = mallocCheck(sizeof(int) * (r->n_ctx + 1), "context ids");
        r->query = mallocCheck(sizeof(int) * (r->n_query + 1), "query ids");
    }
    mpiCheck(MPI_Bcast(r->ctx, r->n_ctx, MPI_INT, 0, comm));
    mpiCheck(MPI_Bcast(r->query, r->n_query, MPI_INT, 0, comm));
    return REQUEST_OK;
}

void request_ids_free(request_ids *r)
{
    free(r->ctx);
    free(r->query);
    memset(r, 0, sizeof *r);
}

/* Sizes common to every rank: an error here is the same everywhere. */
static int check_sizes(const model *m, const request_ids *r, int n_ranks, const request_opts *o,
                       int *block, int *anchor, si_error *err)
{
    if (r->n_query <= 0)
        return si_error_set(err, "the query is empty: give --query TEXT or --query-file FILE "
                                 "with some text");
    if (r->n_ctx <= 0)
        return si_error_set(err, "the context is empty: give --context FILE with some text");
    long total = (long)r->n_ctx + r->n_query + r->max_new_tokens;
    if (total > m->cfg.max_position_embeddings)
        return si_error_set(err,
                            "the context (%d tokens), the query (%d) and --max-new-tokens (%d) "
                            "need %ld positions, more than the model's max_position_embeddings "
                            "(%d, config.json)\n  HINT: shorten the context or lower "
                            "--max-new-tokens",
                            r->n_ctx, r->n_query, r->max_new_tokens, total,
                            m->cfg.max_position_embeddings);
    *block = o->block ? o->block : (r->n_ctx + n_ranks - 1) / n_ranks;
    if (o->attn == ATTN_GLOBAL)
        *block = r->n_ctx;
    *anchor = o->anchor ? o->anchor : *block;
    if (o->attn == ATTN_GLOBAL)
        *anchor = *block;
    return 0;
}

/* Every rank learns whether any rank failed; a failing rank has reported why on stderr. */
static int all_ok(MPI_Comm comm, int ok)
{
    int all = 0;
    mpiCheck(MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm));
    return all;
}

/* Whether this rank's NEED fits, collectively over COMM: the ranks of a node that allocate from
 * the same memory (the host's, or one GPU's) must fit together, so their needs are summed. */
static int check_memory(MPI_Comm comm, const backend *be, size_t need, si_error *err)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm node, pool;
    mpiCheck(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node));
    mpiCheck(MPI_Comm_split(node, device_memory_pool(be) + 1, rank, &pool));
    unsigned long long mine = need, together = 0;
    int needing = need > 0, sharers = 0;
    mpiCheck(MPI_Allreduce(&mine, &together, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, pool));
    mpiCheck(MPI_Allreduce(&needing, &sharers, 1, MPI_INT, MPI_SUM, pool));
    MPI_Comm_free(&pool);
    MPI_Comm_free(&node);
    size_t avail = be->mem_available();
    if (need == 0 || together <= avail)
        return 0;
    char host[256] = "?", others[160] = "";
    gethostname(host, sizeof host);
    if (sharers > 1)
        snprintf(others, sizeof others,
                 "; with the %d other rank(s) of the node that allocate "
                 "from the same memory, %.1f MiB,",
                 sharers - 1, together / 1048576.0);
    return si_error_set(err,
                        "rank %d on %s needs %.1f MiB of %s memory for its KV cache and "
                        "activations%s and %.1f MiB are free\n"
                        "  HINT: use more nodes (or fewer ranks per node or GPU), a smaller "
                        "--block-size, or a smaller --chunk",
                        rank, host, need / 1048576.0, be->host_memory ? "host" : "GPU", others,
                        avail / 1048576.0);
}

/* The weights' bytes where this rank computes: the backend's own allocation, or the loaded host
 * tensors that a host-memory backend uses in place. */
static size_t weights_bytes(const model *m, const request_opts *o)
{
    return o->w->block ? o->w->bytes : m->w.bytes;
}

typedef struct {
    double phase1, phase2, merge, mem, merge_decode, peak;
    int ctx_tokens;
} rank_stats;
#define N_STATS 6

static void gather_stats(MPI_Comm comm, const rank_stats *mine, request_result *res)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    double send[N_STATS] = {mine->phase1, mine->phase2,       mine->merge,
                            mine->mem,    mine->merge_decode, mine->peak};
    double *all = rank == 0 ? mallocCheck(sizeof(double) * N_STATS * res->n_ranks, "stats") : NULL;
    res->ctx_tokens = rank == 0 ? mallocCheck(sizeof(int) * res->n_ranks, "stats") : NULL;
    mpiCheck(MPI_Gather(send, N_STATS, MPI_DOUBLE, all, N_STATS, MPI_DOUBLE, 0, comm));
    mpiCheck(MPI_Gather(&mine->ctx_tokens, 1, MPI_INT, res->ctx_tokens, 1, MPI_INT, 0, comm));
    if (rank != 0)
        return;
    double **cols[N_STATS] = {&res->phase1_s, &res->phase2_s,       &res->merge_s,
                              &res->mem_bytes, &res->merge_decode_s, &res->peak_bytes};
    for (int c = 0; c < N_STATS; c++) {
        *cols[c] = mallocCheck(sizeof(double) * res->n_ranks, "stats");
        for (int r = 0; r < res->n_ranks; r++)
            (*cols[c])[r] = all[r * N_STATS + c];
    }
    free(all);
}

static int run_star(const model *m, MPI_Comm comm, const request_ids *r, const request_opts *o,
                    const gen_params *gen, request_result *res, rank_stats *st, si_error *err)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    star_opts so = {.cfg = &m->cfg, .w = o->w, .be = o->be, .comm = comm, .block = res->block,
                    .anchor = res->anchor, .chunk = o->chunk,
                    .max_tail = r->n_query + r->max_new_tokens, .merge = o->merge,
                    .transport = o->merge_transport};
    star_plan plan;
    if (star_plan_make(&plan, r->n_ctx, res->block, res->anchor, rank, res->n_ranks, err) != 0)
        return -1;
    size_t need = star_engine_bytes(&m->cfg, o->be, &plan, o->chunk, so.max_tail);
    int fits = check_memory(comm, o->be, need, err) == 0;
    if (!fits && rank != 0)
        si_log("error: %s", err->msg); /* rank 0 reports its own through the caller */
    if (!all_ok(comm, fits)) {
        if (fits)
            si_error_set(err, "another rank cannot fit its share in memory (see its message)");
        return -1;
    }
    res->n_active = plan.n_active;
    res->n_blocks = plan.n_blocks;
    if (rank == 0 && plan.n_active < res->n_ranks)
        si_warn("the context of %d tokens makes %d block(s) of %d; ranks %d..%d have no block and "
                "stay idle (use fewer ranks or a smaller --block-size)",
                r->n_ctx, plan.n_blocks, res->block, plan.n_active, res->n_ranks - 1);
    si_log("memory plan on %s: %.1f MiB (weights %.1f, KV cache and activations %.1f), %d "
           "context tokens in %d block(s)",
           o->be->name, (weights_bytes(m, o) + need) / 1048576.0,
           weights_bytes(m, o) / 1048576.0, need / 1048576.0, plan.ctx_len, plan.my_blocks);
    star_engine e;
    int started = star_engine_init(&e, &so, r->n_ctx, err) == 0;
    if (!all_ok(comm, started)) { /* idle ranks too: nobody waits for a rank that gave up */
        if (started) {
            star_engine_free(&e);
            si_error_set(err, "another rank could not start the engine (see its message)");
        }
        return -1;
    }
    mpiCheck(MPI_Barrier(comm));
    double t0 = timer_now();
    star_phase1(&e, r->ctx);
    const float *logits = star_phase2(&e, r->query, r->n_query, FORWARD_LOGITS_LAST);
    res->ttft_s = timer_now() - t0;
    double merge_prefill = star_merge_seconds(&e.mg);
    if (star_engine_active(&e)) {
        gen_driver d = {.step = star_step, .agree = star_agree, .user = &e, .be = o->be,
                        .is_root = rank == 0,
                        .stream = rank == 0 ? o->stream : NULL};
        generate_tokens(m, logits, r->n_ctx + r->n_query, gen, &d, &res->gen);
    }
    double merge = star_merge_seconds(&e.mg);
    *st = (rank_stats){.phase1 = e.phase1_s,
                       .phase2 = e.phase2_s,
                       .merge = merge,
                       .mem = (double)(weights_bytes(m, o) + e.bytes),
                       .merge_decode = merge - merge_prefill,
                       .ctx_tokens = plan.ctx_len};
    star_engine_free(&e);
    return 0;
}

/* The baseline: rank 0 alone runs ordinary attention over context and query. */
static int run_global(const model *m, MPI_Comm comm, const request_ids *r, const request_opts *o,
                      const gen_params *gen, request_result *res, rank_stats *st, si_error *err)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    res->n_active = 1;
    res->n_blocks = 1;
    int capacity = r->n_ctx + r->n_query + r->max_new_tokens;
    size_t bytes = global_runner_bytes(&m->cfg, o->be, capacity, o->chunk);
    if (!all_ok(comm, check_memory(comm, o->be, rank == 0 ? bytes : 0, err) == 0)) {
        if (rank != 0)
            si_error_set(err, "rank 0 cannot fit global attention in memory (see its message)");
        return -1;
    }
    if (rank != 0)
        return 0;
    if (res->n_ranks > 1)
        si_warn("--attn global runs on rank 0 alone; ranks 1..%d stay idle", res->n_ranks - 1);
    global_runner g;
    global_runner_init(&g, &m->cfg, o->w, o->be, capacity, o->chunk);
    double t0 = timer_now();
    global_prefill(&g, r->ctx, r->n_ctx, 0);
    o->be->synchronize(); /* the device's queue holds the prefill until here */
    double t1 = timer_now();
    const float *logits = global_prefill(&g, r->query, r->n_query, r->n_ctx);
    o->be->synchronize();
    res->ttft_s = timer_now() - t0;
    gen_driver d = {.step = global_step, .user = &g, .be = o->be, .is_root = 1,
                    .stream = o->stream};
    generate_tokens(m, logits, r->n_ctx + r->n_query, gen, &d, &res->gen);
    *st = (rank_stats){.phase1 = t1 - t0, .phase2 = res->ttft_s - (t1 - t0),
                       .mem = (double)(weights_bytes(m, o) + bytes), .ctx_tokens = r->n_ctx};
    global_runner_free(&g);
    return 0;
}

int request_run(const model *m, MPI_Comm comm, const request_ids *r, const request_opts *o,
                request_result *res, si_error *err)
{
    memset(res, 0, sizeof *res);
    MPI_Comm_size(comm, &res->n_ranks);
    res->n_ctx = r->n_ctx;
    res->n_query = r->n_query;
    res->attn = o->attn;
    res->backend = o->be->name;
    err->msg[0] = 0;
    if (check_sizes(m, r, res->n_ranks, o, &res->block, &res->anchor, err) != 0)
        return -1;
    gen_params gen = o->gen;
    gen.max_new_tokens = r->max_new_tokens;
    rank_stats st = {0};
    o->be->mem_peak_reset();
    int rc = o->attn == ATTN_GLOBAL ? run_global(m, comm, r, o, &gen, res, &st, err)
                                    : run_star(m, comm, r, o, &gen, res, &st, err);
    if (rc != 0)
        return -1;
    /* The high-water mark of what the backend held, plus host weights it used in place. */
    st.peak = (double)(o->be->mem_peak() + (o->w->block ? 0 : m->w.bytes));
    gather_stats(comm, &st, res);
    /* Rank 0's verdict on the logits reached the active ranks only: every rank learns it. */
    if (!all_ok(comm, !res->gen.not_finite)) {
        gen_not_finite_error(res->gen.n_tokens, err);
        request_result_free(res);
        return -1;
    }
    return 0;
}

void request_result_free(request_result *res)
{
    gen_result_free(&res->gen);
    free(res->phase1_s);
    free(res->phase2_s);
    free(res->merge_s);
    free(res->mem_bytes);
    free(res->merge_decode_s);
    free(res->peak_bytes);
    free(res->ctx_tokens);
    memset(res, 0, sizeof *res);
}

void request_print_timings(const request_result *res)
{
    if (!res->phase1_s)
        return;
    fprintf(stderr, "[rank 0] %s attention: %d context + %d query tokens, block %d, anchor %d, "
                    "%d block(s) on %d of %d rank(s)\n",
            res->attn == ATTN_GLOBAL ? "global" : "star", res->n_ctx, res->n_query, res->block,
            res->anchor, res->n_blocks, res->n_active, res->n_ranks);
    fprintf(stderr, "  rank | ctx tokens | phase 1 s | phase 2 s | merge s | memory MiB\n");
    for (int r = 0; r < res->n_ranks; r++)
        fprintf(stderr, "  %4d | %10d | %9.3f | %9.3f | %7.4f | %10.1f\n", r, res->ctx_tokens[r],
                res->phase1_s[r], res->phase2_s[r], res->merge_s[r], res->mem_bytes[r] / 1048576.0);
    const gen_result *g = &res->gen;
    fprintf(stderr, "  time to first token %.3f s; %d tokens generated in %.3f s (%.1f tokens/s), "
                    "finished by %s\n",
            res->ttft_s, g->n_tokens, g->seconds,
            g->n_tokens > 1 && g->seconds > 0 ? (g->n_tokens - 1) / g->seconds : 0.0, g->finish);
}
