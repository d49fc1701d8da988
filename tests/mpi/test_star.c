/* Star Attention across MPI ranks against its invariants (DESIGN.md section 1), run by ctest
 * under mpirun with 1, 2, 3 and 4 ranks:
 * - the independent reference: Star Attention built by the fixture script from Transformers
 *   forwards ([anchor ; block] with the design's positions, then the query over the kept K/V);
 *   query logits, greedy tokens and each generated token's logits must match it, whatever the
 *   number of ranks (a context that does not divide evenly, an anchor smaller than the block, a
 *   multi-token query, more ranks than blocks);
 * - phase 2 equals global attention of the query over the union of the kept caches;
 * - the result does not depend on the number of ranks (against one rank on MPI_COMM_SELF);
 * - one rank with one block is global attention;
 * - both merge forms agree. */
#include <cjson/cJSON.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/sampler.h"
#include "runtime/global_attention.h"
#include "runtime/kv_cache.h"
#include "runtime/mpi_check.h"
#include "runtime/star.h"
#include "test_util.h"

/* Against the reference: on the CPU, fp32 on both sides, different summation orders. */
#define REF_TOLERANCE test_logit_tolerance()
/* Between two runs of our own that differ only in where blocks run. On the CPU only summation
 * order differs. On CUDA a rank computes the anchor alone while rank 0 takes it from inside
 * block 0, in GEMMs of other shapes, and the K/V are then rounded to bf16: one bf16 step (4e-3)
 * in a key moves the logits by about that much. */
#define SAME_TOLERANCE (test_backend()->host_memory ? 2e-5 : 2e-2)
/* Phase 2 against one process over the very same (gathered) K/V: on the CPU only the merge's
 * order differs. The CUDA kernel also rounds the softmax weights to bf16 for the tensor cores,
 * relative to the running max of the key set at hand, so one set and several round differently;
 * through the tiny model's layers that moves the logits by as much as the rank split does (7.8e-3
 * and 8.3e-3 measured on an H100 with 3 and 2 ranks, while either side is 1.1e-2 to 1.4e-2 from
 * the fp32 reference), hence the same bound as SAME_TOLERANCE. */
#define UNION_TOLERANCE (test_backend()->host_memory ? 2e-5 : 2e-2)

/* A check made on rank 0 alone, asserted on every rank: a failure must not leave the other
 * ranks waiting in the next collective. */
static void assert_on_all(int ok)
{
    mpiCheck(MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD));
    assert_true(ok);
}

static model m;
static backend_weights bw;
static cJSON *star_ref;
static int *ctx, n_ctx, *query, n_query;
static int world_rank;

static double rows_error(const float *a, const float *ref, int rows)
{
    double worst = 0;
    for (int r = 0; r < rows; r++)
        worst = fmax(worst, rel_error(a + (size_t)r * m.cfg.vocab_size,
                                      ref + (size_t)r * m.cfg.vocab_size, m.cfg.vocab_size));
    return worst;
}

/* Query logits [n_query][vocab] and N_GEN greedy tokens with each one's logits. */
typedef struct {
    float *logits; /* [n_query + n_gen][vocab] */
    int tokens[16];
    int n_gen;
} star_out;

/* STARINFER_TEST_MERGE_TRANSPORT=nccl runs the merges through NCCL (one GPU per rank). */
static star_merge_transport test_transport(void)
{
    const char *t = getenv("STARINFER_TEST_MERGE_TRANSPORT");
    star_merge_transport tr = STAR_MERGE_MPI;
    if (t && star_merge_parse_transport(t, &tr) != 0)
        si_fatal("STARINFER_TEST_MERGE_TRANSPORT must be mpi or nccl, got '%s'", t);
    return tr;
}

static void run_star(MPI_Comm comm, int block, int anchor, star_merge_mode merge, int n_gen,
                     star_out *out, star_engine *keep)
{
    int vocab = m.cfg.vocab_size;
    star_opts o = {.cfg = &m.cfg, .w = &bw, .be = test_backend(), .comm = comm, .block = block, .anchor = anchor,
                   .chunk = 64, .max_tail = n_query + n_gen, .merge = merge,
                   .transport = test_transport()};
    star_engine e;
    si_error err;
    int started = star_engine_init(&e, &o, n_ctx, &err);
    if (started != 0)
        fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(started, 0);
    star_phase1(&e, ctx);
    out->n_gen = n_gen;
    out->logits = calloc((size_t)(n_query + n_gen) * vocab, sizeof(float));
    star_phase2(&e, query, n_query, FORWARD_LOGITS_ALL);
    int active = star_engine_active(&e);
    if (active) {
        memcpy(out->logits, forward_logits_host(&e.fs, n_query),
               sizeof(float) * (size_t)n_query * vocab);
        const float *last = out->logits + (size_t)(n_query - 1) * vocab;
        for (int i = 0; i < n_gen; i++) {
            int msg[2] = {sampler_argmax(last, vocab), 0};
            star_agree(&e, msg);
            out->tokens[i] = msg[0];
            float *row = out->logits + (size_t)(n_query + i) * vocab;
            star_step(&e, msg[0], n_ctx + n_query + i);
            memcpy(row, forward_logits_host(&e.fs, 1), sizeof(float) * vocab);
            last = row;
        }
    }
    /* Idle ranks hold no answer: take the active ranks' (rank 0 is always active). */
    mpiCheck(MPI_Bcast(out->logits, (n_query + n_gen) * vocab, MPI_FLOAT, 0, comm));
    mpiCheck(MPI_Bcast(out->tokens, n_gen, MPI_INT, 0, comm));
    if (keep)
        *keep = e;
    else
        star_engine_free(&e);
}

static void test_matches_independent_reference(void **state)
{
    (void)state;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(star_ref, "cases"))
    {
        int block = cJSON_GetObjectItem(c, "block")->valueint;
        int anchor = cJSON_GetObjectItem(c, "anchor")->valueint;
        int n_gen, *expect = json_ints(cJSON_GetObjectItem(c, "generated"), &n_gen);
        float *ref =
            reference_rows(cJSON_GetObjectItem(c, "logits")->valuestring,
                           (size_t)cJSON_GetObjectItem(c, "rows")->valueint * m.cfg.vocab_size);
        star_out out;
        run_star(MPI_COMM_WORLD, block, anchor, STAR_MERGE_AUTO, n_gen, &out, NULL);
        /* bf16 rounding (CUDA) may flip a near-tie after the first token; the rows after a
         * token that differs from the reference's follow another text, and are not compared. */
        int strict = test_backend()->host_memory, agree = 0;
        while (agree < n_gen && out.tokens[agree] == expect[agree])
            agree++;
        int rows = n_query + (strict ? n_gen : agree);
        double err = rows_error(out.logits, ref, rows);
        if (world_rank == 0)
            printf("  block %d anchor %d: max relative logit error %.2e vs reference (%d of %d "
                   "rows: %d of %d tokens as the reference's)\n",
                   block, anchor, err, rows, n_query + n_gen, agree, n_gen);
        assert_true(err < REF_TOLERANCE);
        assert_memory_equal(out.tokens, expect, sizeof(int) * (strict ? n_gen : 1));
        free(out.logits);
        free(ref);
        free(expect);
    }
}

/* Rank 0 runs the same request alone (R = 1) and compares with the whole communicator. */
static void test_independent_of_rank_count(void **state)
{
    (void)state;
    int splits[][2] = {{160, 48}, {100, 100}, {97, 13}, {700, 64}};
    for (size_t s = 0; s < sizeof splits / sizeof splits[0]; s++) {
        star_out all, one;
        run_star(MPI_COMM_WORLD, splits[s][0], splits[s][1], STAR_MERGE_ONE_CALL, 4, &all, NULL);
        int ok = 1;
        if (world_rank == 0) {
            run_star(MPI_COMM_SELF, splits[s][0], splits[s][1], STAR_MERGE_ONE_CALL, 4, &one,
                     NULL);
            double err = rows_error(all.logits, one.logits, n_query + 4);
            printf("  block %d anchor %d: %d rank(s) vs one: %.2e\n", splits[s][0], splits[s][1],
                   mpi_size(), err);
            ok = err < SAME_TOLERANCE &&
                 (!test_backend()->host_memory ||
                  !memcmp(all.tokens, one.tokens, sizeof(int) * 4));
            free(one.logits);
        }
        free(all.logits);
        assert_on_all(ok);
    }
}

/* Every rank's kept context K/V, gathered in rank order on rank 0 into one cache (staged through
 * host memory, in the backend's KV format). */
static void gather_union(const star_engine *e, kv_span *u)
{
    const backend *be = test_backend();
    int rank, size, kvd = m.cfg.n_kv_heads * m.cfg.head_dim;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int mine = e->plan.ctx_len * kvd * (int)be->kv_size, *counts = NULL, *displs = NULL;
    char *send = malloc(mine + 1), *all = NULL;
    if (rank == 0) {
        kv_cache_alloc(u, &m.cfg, be, n_ctx + n_query, "union");
        u->rows = n_ctx;
        counts = malloc(sizeof(int) * size);
        displs = malloc(sizeof(int) * size);
        all = malloc((size_t)n_ctx * kvd * be->kv_size);
    }
    mpiCheck(MPI_Gather(&mine, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD));
    for (int r = 0; rank == 0 && r < size; r++)
        displs[r] = r ? displs[r - 1] + counts[r - 1] : 0;
    for (int l = 0; l < m.cfg.n_layers; l++) {
        for (int which = 0; which < 2; which++) {
            if (mine)
                be->to_host(send, kv_span_at(&e->kv, be, which, l, 0, kvd), mine);
            mpiCheck(MPI_Gatherv(send, mine, MPI_BYTE, all, counts, displs, MPI_BYTE, 0,
                                 MPI_COMM_WORLD));
            if (rank == 0)
                be->to_device(kv_span_at(u, be, which, l, 0, kvd), all,
                              (size_t)n_ctx * kvd * be->kv_size);
        }
    }
    free(send);
    free(all);
    free(counts);
    free(displs);
}

static void test_phase2_is_global_attention_over_union(void **state)
{
    (void)state;
    int splits[][2] = {{160, 160}, {160, 48}, {233, 100}, {50, 50}};
    for (size_t s = 0; s < sizeof splits / sizeof splits[0]; s++) {
        star_out out;
        star_engine e;
        run_star(MPI_COMM_WORLD, splits[s][0], splits[s][1], STAR_MERGE_ONE_CALL, 0, &out, &e);
        kv_span u = {0};
        gather_union(&e, &u);
        int ok = 1;
        if (world_rank == 0) {
            /* One process, no merge: the query over the union (in full) and itself (causally). */
            forward_state fs;
            forward_state_init(&fs, &m.cfg, &bw, test_backend(), n_query, n_query);
            kv_span ctx_part = u;
            int pos[64];
            for (int i = 0; i < n_query; i++)
                pos[i] = n_ctx + i;
            forward_args a = {.prefix = &ctx_part, .n_prefix = 1, .store = &u,
                              .self_from = n_ctx, .logits = FORWARD_LOGITS_ALL};
            forward(&fs, query, pos, n_query, &a);
            const float *l = forward_logits_host(&fs, n_query);
            double err = rows_error(out.logits, l, n_query);
            printf("  block %d anchor %d: phase 2 vs global over the union: %.2e\n",
                   splits[s][0], splits[s][1], err);
            ok = err < UNION_TOLERANCE;
            forward_state_free(&fs);
            kv_cache_free(&u, test_backend());
        }
        star_engine_free(&e);
        free(out.logits);
        assert_on_all(ok);
    }
}

/* R = 1 and b >= n: one block, which is global attention over context and query. */
static void test_one_block_is_global_attention(void **state)
{
    (void)state;
    if (world_rank != 0)
        return;
    star_out out;
    run_star(MPI_COMM_SELF, n_ctx, n_ctx, STAR_MERGE_ONE_CALL, 0, &out, NULL);
    global_runner g;
    global_runner_init(&g, &m.cfg, &bw, test_backend(), n_ctx + n_query, 64);
    global_prefill(&g, ctx, n_ctx, 0);
    forward_state fs;
    forward_state_init(&fs, &m.cfg, &bw, test_backend(), n_query, n_query);
    forward_args a = {.store = &g.kv, .logits = FORWARD_LOGITS_ALL};
    int pos[64];
    for (int i = 0; i < n_query; i++)
        pos[i] = n_ctx + i;
    forward(&fs, query, pos, n_query, &a);
    const float *l = forward_logits_host(&fs, n_query);
    assert_true(rows_error(out.logits, l, n_query) < SAME_TOLERANCE);
    forward_state_free(&fs);
    global_runner_free(&g);
    free(out.logits);
}

static void test_merge_forms_agree(void **state)
{
    (void)state;
    star_out one, two;
    run_star(MPI_COMM_WORLD, 120, 40, STAR_MERGE_ONE_CALL, 3, &one, NULL);
    run_star(MPI_COMM_WORLD, 120, 40, STAR_MERGE_TWO_CALLS, 3, &two, NULL);
    assert_true(rows_error(one.logits, two.logits, n_query + 3) < SAME_TOLERANCE);
    assert_memory_equal(one.tokens, two.tokens, sizeof(int) * 3);
    free(one.logits);
    free(two.logits);
}

int main(int argc, char **argv)
{
    mpi_start(&argc, &argv);
    world_rank = mpi_rank();
    if (!test_backend()) {
        mpi_stop();
        return 77;
    }
    si_error err;
    if (model_load(&m, fixture_path("models/tiny-llama3"), &err) != 0)
        si_fatal("%s", err.msg);
    backend_weights_upload(&bw, &m.cfg, &m.w, m.inv_freq, test_backend());
    char *text = read_file(fixture_path("reference/star.json"), NULL);
    if (!text)
        si_fatal("cannot read %s", fixture_path("reference/star.json"));
    star_ref = cJSON_Parse(text);
    free(text);
    ctx = json_ints(cJSON_GetObjectItem(star_ref, "context_ids"), &n_ctx);
    query = json_ints(cJSON_GetObjectItem(star_ref, "query_ids"), &n_query);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_independent_reference),
        cmocka_unit_test(test_independent_of_rank_count),
        cmocka_unit_test(test_phase2_is_global_attention_over_union),
        cmocka_unit_test(test_one_block_is_global_attention),
        cmocka_unit_test(test_merge_forms_agree),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    /* A rank whose assertion failed must not leave the others waiting in a collective. */
    if (!mpi_all_ok(failed == 0))
        failed = 1;
    cJSON_Delete(star_ref);
    free(ctx);
    free(query);
    backend_weights_free(&bw, test_backend());
    model_free(&m);
    mpi_stop();
    return failed ? 1 : 0;
}
