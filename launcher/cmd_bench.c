/* starinfer bench: time to first token, decode speed, merge time and peak memory of the runtime
 * path that `run` takes (request_run), over lists of context lengths, block and anchor sizes,
 * each beside its roofline (runtime/roofline.h) under the matrix and memory rates measured in
 * the same run. A model directory, or a named shape with seeded random weights. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/random_weights.h"
#include "launcher/args.h"
#include "launcher/bench_report.h"
#include "launcher/commands.h"
#include "launcher/session.h"
#include "model/shapes.h"
#include "runtime/mpi_check.h"
#include "runtime/roofline.h"
#include "runtime/version.h"

static const char *usage =
    "usage: mpirun -np R starinfer bench (--shape NAME | --model DIR) --lengths N[,N..] [options]\n"
    "Times the path of 'starinfer run' on seeded random token ids: time to first token (slowest\n"
    "rank), decode tokens/s, merge time, per-rank phase times and peak memory, with the roofline.\n"
    "  --shape NAME           llama-3.1-8b, llama-3.2-1b or tiny, with seeded random weights\n"
    "  --model DIR            a Hugging Face model directory, as downloaded\n"
    "  --lengths N[,N..]      context tokens of each configuration (required)\n"
    "  --attn MODE            star (default) or global (ordinary attention on rank 0)\n"
    "  --block-size N[,N..]   context tokens per block (default: context / ranks, rounded up)\n"
    "  --anchor-size N[,N..]  anchor tokens (default: the block size)\n"
    "  --query-tokens N       query tokens (default 32)\n"
    "  --decode-tokens N      tokens generated, past any end-of-sequence token (default 32)\n"
    "  --repeat N             measured runs per configuration (default 3)\n"
    "  --warmup N             unmeasured runs before them (default 1)\n"
    "  --seed S               seed of the weights and token ids (default 0)\n"
    "  --json FILE            append one JSON line per configuration ('-': stdout, no table)\n"
    "  --sustained S          also measure the matrix rate sustained over S seconds (at most\n"
    "                         600) of products: a GPU at its power cap runs slower than in the\n"
    "                         default burst\n"
    "  --chunk N              most tokens per forward (default 512 on a CPU, 8192 on a GPU)\n"
    "  --merge MODE           auto (default), one-call or two-call\n"
    "  --merge-transport T    mpi (default) or nccl (GPU to GPU, one GPU per rank)\n"
    "  --share-gpus           several ranks of a node share a GPU (testing)\n" DEVICE_FLAGS_HELP
    "Prints a markdown table on stdout; exits 1 when any configuration failed (its JSON line\n"
    "has an \"error\" field).\n";

#define MAX_LIST 64

typedef struct {
    int v[MAX_LIST];
    int n;
} int_list;

typedef struct {
    star_flags s;
    int_list lengths, blocks, anchors;
    int query_tokens, decode_tokens, repeat, warmup;
    int sustained_s; /* seconds of the sustained matrix rate; 0: not measured */
    uint64_t seed;
    const char *json_path;
    char command[8192];
} bench_opts;

/* A comma-separated list of whole numbers, each item given (not "256,,512" nor "256,"). */
static int parse_list(const char *flag, const char *value, int_list *out, si_error *err)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", value);
    out->n = 0;
    for (char *item = buf, *next; item; item = next) {
        next = strchr(item, ',');
        if (next)
            *next++ = 0;
        if (!*item)
            return si_error_set(err,
                                "%s expects a comma-separated list of whole numbers with no empty "
                                "item, got '%s'",
                                flag, value);
        if (out->n == MAX_LIST)
            return si_error_set(err, "%s takes at most %d values", flag, MAX_LIST);
        long n;
        if (parse_int(flag, item, 1, 1L << 30, &n, err))
            return -1;
        out->v[out->n++] = (int)n;
    }
    return 0;
}

/* 1 when FLAG is one of bench's own flags (VALUE taken), 0 when not, -1 on error. */
static int bench_flag(bench_opts *o, const char *flag, const char *value, si_error *err)
{
    const struct {
        const char *flag;
        int *out;
        long min, max;
    } counts[] = {{"--query-tokens", &o->query_tokens, 1, 1 << 20},
                  {"--decode-tokens", &o->decode_tokens, 1, 1 << 20},
                  {"--repeat", &o->repeat, 1, 1 << 20},
                  {"--warmup", &o->warmup, 0, 1 << 20},
                  {"--sustained", &o->sustained_s, 0, 600}};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (!strcmp(flag, counts[i].flag)) {
            long n;
            if (parse_int(flag, value, counts[i].min, counts[i].max, &n, err))
                return -1;
            *counts[i].out = (int)n;
            return 1;
        }
    if (!strcmp(flag, "--lengths"))
        return parse_list(flag, value, &o->lengths, err) ? -1 : 1;
    if (!strcmp(flag, "--block-size"))
        return parse_list(flag, value, &o->blocks, err) ? -1 : 1;
    if (!strcmp(flag, "--anchor-size"))
        return parse_list(flag, value, &o->anchors, err) ? -1 : 1;
    if (!strcmp(flag, "--seed"))
        return parse_u64(flag, value, &o->seed, err) ? -1 : 1;
    if (!strcmp(flag, "--shape")) {
        o->s.shape = value;
        return 1;
    }
    if (!strcmp(flag, "--json")) {
        o->json_path = value;
        return 1;
    }
    return 0;
}

static int parse(bench_opts *o, int argc, char **argv, si_error *err)
{
    if (args_want_help(argc, argv))
        return 1;
    memset(o, 0, sizeof *o);
    star_flags_init(&o->s);
    o->query_tokens = 32;
    o->decode_tokens = 32;
    o->repeat = 3;
    o->warmup = 1;
    size_t len = (size_t)snprintf(o->command, sizeof o->command, "starinfer bench");
    for (int i = 0; i < argc && len < sizeof o->command; i++)
        len += (size_t)snprintf(o->command + len, sizeof o->command - len, " %s", argv[i]);
    for (int i = 0; i < argc;) {
        const char *flag = argv[i++];
        if (star_flags_switch(&o->s, flag))
            continue;
        int has_value = i < argc;
        const char *value = has_value ? argv[i++] : ""; /* see args_flag_taken */
        int rc = bench_flag(o, flag, value, err);
        if (rc == 0)
            rc = star_flags_parse(&o->s, flag, value, err);
        if (args_flag_taken(flag, rc, has_value, err))
            return -1;
    }
    if (!o->s.shape == !o->s.model_dir)
        return si_error_set(err, "give exactly one of --shape NAME (%s) and --model DIR",
                            model_shape_names());
    if (!o->lengths.n)
        return si_error_set(err, "--lengths N[,N..] is required (context tokens)");
    o->s.weight_seed = o->seed;
    if (mpi_rank() == 0)
        star_flags_warn(o->s.req.attn, o->blocks.n, o->anchors.n);
    return 0;
}

/* Seeded random ids in [0, vocab): the context, then the query. */
static void make_ids(request_ids *r, int n_ctx, const bench_opts *o, int vocab)
{
    r->n_ctx = n_ctx;
    r->n_query = o->query_tokens;
    r->max_new_tokens = o->decode_tokens;
    r->ctx = mallocCheck(sizeof(int) * ((size_t)n_ctx + 1), "context ids");
    r->query = mallocCheck(sizeof(int) * ((size_t)r->n_query + 1), "query ids");
    uint64_t key = splitmix64(o->seed ^ 0x746f6b656e73ull); /* not the weights' seeds */
    for (int i = 0; i < n_ctx + r->n_query; i++) {
        int id = (int)(splitmix64(key + (uint64_t)i) % (uint64_t)vocab);
        if (i < n_ctx)
            r->ctx[i] = id;
        else
            r->query[i - n_ctx] = id;
    }
}

/* The measured runs of one configuration, on rank 0. */
typedef struct {
    double *ttft, *tok_s, *merge_ms, *phase1, *phase2, *peak;
    int n;
} samples;

static void samples_add(samples *s, const request_result *res, const model_config *c)
{
    int R = res->n_ranks, i = s->n++;
    double slowest = res->ttft_s, merge = 0;
    for (int r = 0; r < R; r++) {
        double t = res->phase1_s[r] + res->phase2_s[r];
        slowest = t > slowest ? t : slowest;
        merge = res->merge_decode_s[r] > merge ? res->merge_decode_s[r] : merge;
        s->phase1[r] += res->phase1_s[r];
        s->phase2[r] += res->phase2_s[r];
        double gib = res->peak_bytes[r] / (1024.0 * 1024 * 1024);
        s->peak[r] = gib > s->peak[r] ? gib : s->peak[r];
    }
    const gen_result *g = &res->gen;
    int steps = g->n_tokens - 1; /* the first token comes from the prefill */
    s->ttft[i] = slowest;
    s->tok_s[i] = steps > 0 && g->seconds > 0 ? steps / g->seconds : 0;
    s->merge_ms[i] = steps > 0 ? 1e3 * merge / ((double)c->n_layers * steps) : 0;
}

typedef struct {
    const model *m;
    const backend *be;
    bench_record base; /* what every record shares */
    FILE *json;
    int table;
} bench_run;

/* The roofline of a configuration that ran: the busiest rank's work over the measured rates. */
static void add_roofline(bench_record *b, const bench_run *br, const request_result *res)
{
    roofline_request q = {.attn = res->attn, .n_ctx = res->n_ctx, .n_query = res->n_query,
                          .n_decode = b->decode_tokens, .block = res->block,
                          .anchor = res->anchor, .n_ranks = res->n_ranks};
    for (int r = 0; r < res->n_ranks; r++) {
        double f = roofline_prefill_flops(&br->m->cfg, &q, r);
        double by = roofline_decode_bytes(&br->m->cfg, &q, r, br->be->weight_size,
                                          br->be->kv_size);
        b->prefill_flops = f > b->prefill_flops ? f : b->prefill_flops;
        b->decode_bytes = by > b->decode_bytes ? by : b->decode_bytes;
    }
    b->prefill_fraction = b->prefill_flops / b->matmul_flops_per_s / b->ttft_s.mean;
    if (b->matmul_sustained_flops_per_s > 0)
        b->prefill_fraction_sustained =
            b->prefill_flops / b->matmul_sustained_flops_per_s / b->ttft_s.mean;
    b->decode_fraction = b->decode_bytes * b->decode_tokens_per_s.mean / b->mem_bytes_per_s;
}

/* Runs one configuration warmup + repeat times on every rank; rank 0 reports it. Returns 0 when
 * it ran. */
static int bench_config(bench_run *br, const bench_opts *o, int n_ctx, int block, int anchor)
{
    int rank = mpi_rank(), R = mpi_size();
    request_ids r = {0};
    if (rank == 0)
        make_ids(&r, n_ctx, o, br->m->cfg.vocab_size);
    request_share(MPI_COMM_WORLD, REQUEST_OK, &r);
    request_opts ro = o->s.req;
    ro.block = block;
    ro.anchor = anchor;
    ro.gen = (gen_params){.max_new_tokens = o->decode_tokens, .top_p = 1.0f, .ignore_eos = 1};
    ro.stream = NULL;
    samples s = {0};
    double *buf = callocCheck((size_t)3 * o->repeat + 3 * (size_t)R, sizeof(double), "samples");
    s.ttft = buf, s.tok_s = buf + o->repeat, s.merge_ms = buf + 2 * o->repeat;
    s.phase1 = buf + 3 * o->repeat, s.phase2 = s.phase1 + R, s.peak = s.phase2 + R;
    bench_record b = br->base;
    b.context = n_ctx;
    b.block = block;
    b.anchor = anchor;
    si_error err = {{0}};
    request_result res = {0};
    for (int i = 0; i < o->warmup + o->repeat; i++) {
        int measured = i >= o->warmup;
        if (rank == 0)
            si_log("bench: context %d, block %d, anchor %d: %s %d/%d", n_ctx, block, anchor,
                   measured ? "repeat" : "warm-up", measured ? i - o->warmup + 1 : i + 1,
                   measured ? o->repeat : o->warmup);
        request_result_free(&res);
        int rc = request_run(br->m, MPI_COMM_WORLD, &r, &ro, &res, &err);
        if (res.block) /* resolved by the runtime, also when the plan was refused */
            b.block = res.block, b.anchor = res.anchor, b.active_ranks = res.n_active;
        if (rc != 0) {
            b.error = err.msg;
            break;
        }
        if (rank == 0) {
            si_log("bench: time to first token %.3f s, decode %d tokens in %.3f s", res.ttft_s,
                   res.gen.n_tokens, res.gen.seconds);
            if (measured)
                samples_add(&s, &res, &br->m->cfg);
        }
    }
    if (rank == 0) {
        if (b.error) {
            fprintf(stderr, "starinfer bench: context %d: %s\n", n_ctx, b.error);
        } else {
            for (int k = 0; k < R; k++)
                s.phase1[k] /= o->repeat, s.phase2[k] /= o->repeat;
            b.ttft_s = bench_stats_of(s.ttft, s.n);
            b.decode_tokens_per_s = bench_stats_of(s.tok_s, s.n);
            b.merge_ms_per_layer = bench_stats_of(s.merge_ms, s.n);
            b.phase1_s = s.phase1, b.phase2_s = s.phase2, b.peak_gib = s.peak;
            add_roofline(&b, br, &res);
        }
        if (br->table)
            bench_print_table_row(stdout, &b);
        if (br->json)
            bench_write_json(br->json, &b);
    }
    request_result_free(&res);
    request_ids_free(&r);
    free(buf);
    return b.error ? -1 : 0;
}

static int bench_all(bench_run *br, const bench_opts *o)
{
    int_list none = {{0}, 1}; /* 0: the runtime's default */
    const int_list *blocks = o->blocks.n ? &o->blocks : &none;
    const int_list *anchors = o->anchors.n ? &o->anchors : &none;
    if (o->s.req.attn == ATTN_GLOBAL) /* one block: block and anchor sizes do not apply */
        blocks = anchors = &none;
    int failed = 0;
    for (int i = 0; i < o->lengths.n; i++)
        for (int j = 0; j < blocks->n; j++)
            for (int k = 0; k < anchors->n; k++)
                failed |= bench_config(br, o, o->lengths.v[i], blocks->v[j], anchors->v[k]) != 0;
    return failed;
}

/* Rank 0 measures the rates once (the burst first, on a device that has rested); the other ranks
 * wait for it. */
static void measure_rates(bench_run *br, int sustained_s)
{
    if (mpi_rank() == 0) {
        si_log("bench: measuring the matrix and memory rates of %s", br->be->name);
        br->base.matmul_flops_per_s = br->be->matmul_rate(0);
        br->base.mem_bytes_per_s = br->be->copy_rate();
        si_log("bench: %.1f TFLOP/s matrix rate, %.1f GB/s copy (read + write)",
               br->base.matmul_flops_per_s / 1e12, br->base.mem_bytes_per_s / 1e9);
        if (sustained_s > 0) {
            br->base.matmul_sustained_flops_per_s = br->be->matmul_rate(sustained_s);
            si_log("bench: %.1f TFLOP/s matrix rate sustained over %d s",
                   br->base.matmul_sustained_flops_per_s / 1e12, sustained_s);
        }
    }
    mpi_wait_all();
}

static int serve(const session *se, const bench_opts *o)
{
    char gpu[256];
    se->be->device_name(gpu, sizeof gpu);
    bench_run br = {.m = &se->m, .be = se->be, .table = 1};
    br.base = (bench_record){.shape = o->s.shape, .model_dir = o->s.model_dir,
                             .device = se->be->name, .gpu = gpu,
                             .attn = o->s.req.attn == ATTN_GLOBAL ? "global" : "star",
                             .merge_transport =
                                 o->s.req.merge_transport == STAR_MERGE_NCCL ? "nccl" : "mpi",
                             .git_commit = starinfer_git_commit(), .command = o->command,
                             .ranks = mpi_size(), .query_tokens = o->query_tokens,
                             .decode_tokens = o->decode_tokens, .repeat = o->repeat};
    int ok = 1;
    if (mpi_rank() == 0 && o->json_path) {
        br.table = strcmp(o->json_path, "-") != 0;
        br.json = br.table ? fopen(o->json_path, "a") : stdout;
        if (!br.json) {
            fprintf(stderr, "starinfer bench: --json: cannot open '%s' for appending: %m\n",
                    o->json_path);
            ok = 0;
        }
    }
    if (!mpi_all_ok(ok))
        return 1;
    measure_rates(&br, o->sustained_s);
    if (br.table && mpi_rank() == 0)
        bench_print_table_header(stdout);
    int failed = bench_all(&br, o);
    if (br.json && br.json != stdout)
        fclose(br.json);
    return failed ? 1 : 0;
}

int cmd_bench(int argc, char **argv)
{
    mpi_start(&argc, &argv);
    bench_opts o;
    si_error err;
    int rc = star_args_agree(parse(&o, argc, argv, &err), argc, argv, &err);
    if (rc)
        return star_args_exit(rc, "bench", usage, &err);
    session s;
    rc = 1;
    if (session_open(&s, &o.s) == 0)
        rc = serve(&s, &o);
    session_close(&s);
    mpi_stop();
    return rc;
}
