/* The attention kernel alone on the GPU: causal prefill of N tokens over themselves (the work of
 * one layer's attention in a global-attention prefill) and one decoded token over N cached keys,
 * timed through the backend interface as the model calls it (init, accumulate, finalize).
 *   bench_attention [--lengths 16384,65536] [--heads 32] [--kv-heads 8] [--head-dim 128]
 *                   [--reps 5] [--tests prefill,alone,decode] [--chunk C] [--json FILE]
 * The test "alone" times the same prefill through attend_project, as global attention calls it
 * (no state to fold: cuDNN's output goes to the output projection as it is), with the projection
 * (hidden = heads x head dim) timed on its own beside it; the attention's rate is read from the
 * difference.
 * Prefill TFLOP/s counts the causal half, 4 * n^2 / 2 * head_dim * heads, the convention of
 * FlashAttention's and PyTorch's benchmarks; decode GB/s counts the K and V bytes read, over the
 * mean time of 20 calls issued back to back.
 *
 * With --chunk C the prefill is also timed as a chunked prefill makes it: N / C calls of C
 * queries, chunk c over the (c + 1) C keys before and in it, causal from the bottom right; and
 * the same calls with every key visible (the rectangles, counted in full). Where the causal calls
 * are not faster than the rectangles by the masked triangles' share, the kernel computes what the
 * mask hides. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/check.h"
#include "runtime/timer.h"

typedef struct {
    int lengths[16], n_lengths, heads, kv_heads, head_dim, reps;
    int chunk;           /* 0: no chunked prefill */
    int prefill, alone, decode; /* which tests run */
    const char *json;
} options;

static void usage_exit(const char *msg)
{
    fprintf(stderr,
            "bench_attention: %s\nusage: bench_attention [--lengths N,N,...] [--heads H] "
            "[--kv-heads G] [--head-dim D] [--reps R] [--tests prefill,alone,decode] [--chunk C] "
            "[--json FILE]\n",
            msg);
    exit(2);
}

static int parse_options(options *o, int argc, char **argv)
{
    *o = (options){{16384, 65536}, 2, 32, 8, 128, 5, 0, 1, 0, 1, NULL};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (i + 1 >= argc)
            usage_exit("every flag takes a value");
        const char *v = argv[++i];
        if (!strcmp(f, "--lengths")) {
            o->n_lengths = 0;
            for (const char *p = v; *p && o->n_lengths < 16;
                 p = strchr(p, ',') ? strchr(p, ',') + 1 : "")
                o->lengths[o->n_lengths++] = atoi(p);
        } else if (!strcmp(f, "--heads")) {
            o->heads = atoi(v);
        } else if (!strcmp(f, "--kv-heads")) {
            o->kv_heads = atoi(v);
        } else if (!strcmp(f, "--head-dim")) {
            o->head_dim = atoi(v);
        } else if (!strcmp(f, "--reps")) {
            o->reps = atoi(v);
        } else if (!strcmp(f, "--tests")) {
            o->prefill = strstr(v, "prefill") != NULL;
            o->alone = strstr(v, "alone") != NULL;
            o->decode = strstr(v, "decode") != NULL;
            if (!o->prefill && !o->alone && !o->decode)
                usage_exit("--tests: a list of prefill, alone and decode");
        } else if (!strcmp(f, "--chunk")) {
            o->chunk = atoi(v);
            if (o->chunk < 1)
                usage_exit("--chunk must be a positive number of tokens");
        } else if (!strcmp(f, "--json")) {
            o->json = v;
        } else {
            usage_exit("unknown flag");
        }
    }
    for (int i = 0; i < o->n_lengths; i++)
        if (o->lengths[i] < 1)
            usage_exit("--lengths: each length must be a positive integer");
    if (o->heads < 1 || o->kv_heads < 1 || o->heads % o->kv_heads || o->reps < 1 ||
        o->head_dim < 16 || o->head_dim % 16)
        usage_exit("--heads must be a multiple of --kv-heads, --head-dim a multiple of 16");
    return 0;
}

/* N uniform values in [-1, 1] on the device: fp32 (ACT 0), or in the activation format. */
static void *random_device(const backend *be, size_t n, unsigned seed, int act)
{
    float *h = mallocCheck(sizeof(float) * n, "bench input");
    srand(seed);
    for (size_t i = 0; i < n; i++)
        h[i] = (float)rand() / RAND_MAX * 2.0f - 1.0f;
    void *d = be->alloc(sizeof(float) * n, "bench input");
    if (act)
        be->act_upload(d, h, n);
    else
        be->to_device(d, h, sizeof(float) * n);
    free(h);
    return d;
}

/* Blocks until the device is idle (a copy to the host waits for the work before it). */
static void sync_device(const backend *be, const void *p)
{
    float x;
    be->to_host(&x, p, sizeof x);
}

typedef struct {
    double best, mean, first; /* first: the warm-up call (a cuDNN plan's build included) */
} timing;

#define DECODE_BATCH 20

/* One call: NQ queries Q over KEYS. */
typedef struct {
    const void *q;
    int nq;
    attn_keys keys;
} attn_call;

/* How a call is issued: init, accumulate and finalize (as Star Attention's key sets are);
 * attend_project (global attention's way); or the output projection alone, on the call's rows. */
typedef enum { RUN_STATE, RUN_ALONE, RUN_PROJECTION } run_kind;

typedef struct {
    attn_state st;
    void *out; /* [rows][d] activations: attention's output, the projection's input */
    float *y;  /* [n][heads * d]: the residual stream the projection adds into */
    void *w_o; /* [heads * d][heads * d] weights */
} bench_buffers;

static void issue(const backend *be, const options *o, run_kind kind, const attn_call *c,
                  bench_buffers *b)
{
    int d = o->head_dim, hidden = o->heads * d;
    float scale = 1.0f / sqrtf((float)d);
    switch (kind) {
    case RUN_STATE:
        be->attn_init(&b->st, c->nq * o->heads, d);
        be->attn_accumulate(&b->st, c->q, c->nq, o->heads, o->kv_heads, d, &c->keys, scale);
        be->attn_finalize(b->out, &b->st, c->nq * o->heads, d);
        break;
    case RUN_ALONE:
        be->attend_project(b->y, &b->st, b->out, c->q, c->nq, o->heads, o->kv_heads, d, &c->keys,
                           scale, b->w_o, hidden);
        break;
    case RUN_PROJECTION:
        be->matmul_add(b->y, b->out, b->w_o, c->nq, hidden, hidden);
        break;
    }
}

/* Seconds per round of the N_CALLS calls: each repetition times BATCH rounds issued back to back
 * between two synchronisations (a batch of several hides the launch latency of calls as short
 * as one decoded token's, as in a model's forward pass); best and mean over the repetitions
 * after one warm-up round. */
static timing time_calls(const backend *be, const options *o, run_kind kind, const attn_call *calls,
                         int n_calls, int batch, bench_buffers *b)
{
    timing t = {1e30, 0.0, 0.0};
    for (int r = -1; r < o->reps; r++) { /* one warm-up run */
        sync_device(be, b->out);
        double t0 = timer_now();
        for (int k = 0; k < batch; k++)
            for (int i = 0; i < n_calls; i++)
                issue(be, o, kind, &calls[i], b);
        sync_device(be, b->out);
        double dt = (timer_now() - t0) / batch;
        if (r < 0) {
            t.first = dt;
            continue;
        }
        t.mean += dt / o->reps;
        if (dt < t.best)
            t.best = dt;
    }
    return t;
}

/* Seconds for the N / CHUNK calls of a chunked prefill (MASKED: causal from the bottom right;
 * otherwise every key visible). */
static timing time_chunks(const backend *be, const options *o, run_kind kind, int n, const void *q,
                          const void *k, const void *v, bench_buffers *b, int masked)
{
    int c = o->chunk, kvd = o->kv_heads * o->head_dim, n_calls = n / c;
    attn_call *calls = mallocCheck(sizeof *calls * n_calls, "bench chunks");
    for (int i = 0; i < n_calls; i++) {
        int first = i * c;
        calls[i] =
            (attn_call){(const char *)q + be->act_size * (size_t)first * o->heads * o->head_dim,
                        c,
                        {k, v, first + c, kvd, masked ? first : INT_MAX}};
    }
    timing t = time_calls(be, o, kind, calls, n_calls, 1, b);
    free(calls);
    return t;
}

/* The test "alone": attend_project over the causal prefill of N tokens (one call, then in
 * chunks), each beside the output projection of the same rows timed alone. */
static void bench_alone(const backend *be, const options *o, int n, const void *q, const void *k,
                        const void *v, bench_buffers *b, const char *impl, FILE *json)
{
    int d = o->head_dim, kvd = o->kv_heads * d, hidden = o->heads * d;
    double attn_flops = 4.0 * n * (double)n / 2 * d * o->heads;
    double proj_flops = 2.0 * n * (double)hidden * hidden;
    for (int chunked = 0; chunked <= (o->chunk && n % o->chunk == 0 && n > o->chunk); chunked++) {
        int c = chunked ? o->chunk : n;
        timing ta, tp;
        if (chunked) {
            ta = time_chunks(be, o, RUN_ALONE, n, q, k, v, b, 1);
            tp = time_chunks(be, o, RUN_PROJECTION, n, q, k, v, b, 1);
        } else {
            attn_call one = {q, n, {k, v, n, kvd, 0}};
            ta = time_calls(be, o, RUN_ALONE, &one, 1, 1, b);
            tp = time_calls(be, o, RUN_PROJECTION, &one, 1, 1, b);
        }
        double attn_s = ta.best - tp.best;
        printf(
            "| prefill alone %d | %d | %d | %d | %d | %.3f (%.3f projection) | %.3f | %.1f | |\n",
            c, o->heads, o->kv_heads, d, n, ta.best * 1e3, tp.best * 1e3, ta.mean * 1e3,
            attn_flops / attn_s / 1e12);
        if (json)
            fprintf(json,
                    "{\"test\":\"attn_prefill_alone\",\"impl\":\"%s\",\"chunk\":%d,"
                    "\"heads\":%d,\"kv_heads\":%d,\"head_dim\":%d,\"n\":%d,"
                    "\"best_s\":%.6g,\"mean_s\":%.6g,\"first_s\":%.6g,"
                    "\"projection_best_s\":%.6g,\"projection_flops\":%.6g,\"flops\":%.6g,"
                    "\"tflops\":%.4g}\n",
                    impl, c, o->heads, o->kv_heads, d, n, ta.best, ta.mean, ta.first, tp.best,
                    proj_flops, attn_flops, attn_flops / attn_s / 1e12);
    }
}

int main(int argc, char **argv)
{
    options o;
    parse_options(&o, argc, argv);
    char err[512];
    const backend *be =
        backend_cuda_device_count() > 0 ? backend_cuda(0, CUDA_BF16, err, sizeof err) : NULL;
    if (!be) {
        printf("skipped: no CUDA GPU on this machine\n");
        return 77;
    }
    FILE *json = o.json ? fopen(o.json, "a") : NULL;
    if (o.json && !json)
        si_fatal("bench_attention: cannot open %s for appending", o.json);
    int d = o.head_dim, kvd = o.kv_heads * d;
    int cudnn = backend_cuda_cudnn_version();
    char impl[32] = "starinfer";
    if (cudnn)
        snprintf(impl, sizeof impl, "cudnn %d", cudnn);
    printf("prefill attention: %s\n\n", impl);
    printf("| test | heads | kv heads | d | n | best ms | mean ms | TFLOP/s | GB/s |\n");
    printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (int li = 0; li < o.n_lengths; li++) {
        int n = o.lengths[li];
        size_t qn = (size_t)n * o.heads * d, kvn = (size_t)n * kvd;
        void *q = random_device(be, qn, 1 + li, 1);
        float *kf = random_device(be, kvn, 2 + li, 0), *vf = random_device(be, kvn, 3 + li, 0);
        void *k = be->alloc(be->kv_size * kvn, "bench K"),
             *v = be->alloc(be->kv_size * kvn, "bench V");
        be->kv_write(k, v, kf, vf, kvn);
        be->free(kf), be->free(vf);
        size_t rows = (size_t)n * o.heads;
        float *sm = be->alloc(sizeof(float) * rows * (d + 2), "bench state");
        bench_buffers b = {{sm, sm + rows, sm + 2 * rows},
                           be->alloc(sizeof(float) * rows * d, "bench out"),
                           NULL,
                           NULL};
        if (o.alone) {
            size_t hidden = (size_t)o.heads * d;
            b.y = random_device(be, n * hidden, 4 + li, 0);
            b.w_o = be->alloc(be->weight_size * hidden * hidden, "bench w_o");
            be->weight_random(b.w_o, hidden * hidden, 7, 0.01f);
        }

        if (o.prefill) {
            attn_call causal = {q, n, {k, v, n, kvd, 0}};
            timing t = time_calls(be, &o, RUN_STATE, &causal, 1, 1, &b);
            double flops = 4.0 * n * (double)n / 2 * d * o.heads;
            printf("| prefill causal | %d | %d | %d | %d | %.3f | %.3f | %.1f | |\n", o.heads,
                   o.kv_heads, d, n, t.best * 1e3, t.mean * 1e3, flops / t.best / 1e12);
            if (json)
                fprintf(json,
                        "{\"test\":\"attn_prefill\",\"impl\":\"%s\",\"heads\":%d,"
                        "\"kv_heads\":%d,\"head_dim\":%d,\"n\":%d,\"best_s\":%.6g,"
                        "\"mean_s\":%.6g,\"first_s\":%.6g,\"flops\":%.6g,\"tflops\":%.4g}\n",
                        impl, o.heads, o.kv_heads, d, n, t.best, t.mean, t.first, flops,
                        flops / t.best / 1e12);
        }
        if (o.prefill && o.chunk && n % o.chunk == 0 && n > o.chunk) {
            int chunks = n / o.chunk;
            double causal_flops = 4.0 * n * (double)n / 2 * d * o.heads;
            double rect_flops =
                4.0 * o.chunk * (double)o.chunk * chunks * (chunks + 1) / 2 * d * o.heads;
            for (int masked = 1; masked >= 0; masked--) {
                timing t = time_chunks(be, &o, RUN_STATE, n, q, k, v, &b, masked);
                double flops = masked ? causal_flops : rect_flops;
                const char *name = masked ? "chunks causal" : "chunks unmasked";
                printf("| prefill %d %s | %d | %d | %d | %d | %.3f | %.3f | %.1f | |\n", o.chunk,
                       name, o.heads, o.kv_heads, d, n, t.best * 1e3, t.mean * 1e3,
                       flops / t.best / 1e12);
                if (json)
                    fprintf(json,
                            "{\"test\":\"attn_prefill_chunks\",\"impl\":\"%s\",\"masked\":%d,"
                            "\"chunk\":%d,\"heads\":%d,\"kv_heads\":%d,\"head_dim\":%d,"
                            "\"n\":%d,\"best_s\":%.6g,\"mean_s\":%.6g,\"first_s\":%.6g,"
                            "\"flops\":%.6g,\"tflops\":%.4g}\n",
                            impl, masked, o.chunk, o.heads, o.kv_heads, d, n, t.best, t.mean,
                            t.first, flops, flops / t.best / 1e12);
            }
        }
        if (o.alone)
            bench_alone(be, &o, n, q, k, v, &b, impl, json);
        if (o.decode) {
            /* one decoded token at position n - 1 over the n cached keys (context in full) */
            attn_call ctx = {q, 1, {k, v, n, kvd, n}};
            timing t = time_calls(be, &o, RUN_STATE, &ctx, 1, DECODE_BATCH, &b);
            double bytes = 2.0 * be->kv_size * kvn;
            printf("| decode 1 token | %d | %d | %d | %d | %.4f | %.4f | | %.0f |\n", o.heads,
                   o.kv_heads, d, n, t.best * 1e3, t.mean * 1e3, bytes / t.best / 1e9);
            if (json)
                fprintf(json,
                        "{\"test\":\"attn_decode\",\"heads\":%d,\"kv_heads\":%d,"
                        "\"head_dim\":%d,\"n\":%d,\"best_s\":%.6g,\"mean_s\":%.6g,"
                        "\"bytes\":%.6g,\"gbs\":%.4g}\n",
                        o.heads, o.kv_heads, d, n, t.best, t.mean, bytes, bytes / t.best / 1e9);
        }
        if (json)
            fflush(json);
        be->free(q), be->free(k), be->free(v), be->free(sm), be->free(b.out);
        if (o.alone)
            be->free(b.y), be->free(b.w_o);
    }
    if (json)
        fclose(json);
    return 0;
}
