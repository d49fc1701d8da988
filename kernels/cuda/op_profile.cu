/* Where the GPU's time goes, per backend operation: with STARINFER_OP_PROFILE=1 in the
 * environment, each compute slot of the CUDA backend is wrapped so that CUDA events bracket it on
 * the stream (no synchronisation between operations), and at exit the process prints, on stderr,
 * the GPU time of each operation, split into forward passes of at most 16 tokens (decoding),
 * of at most 256 (short: a query after its context) and more (prefill), and the share of the
 * GPU's busy span that fell between operations. STARINFER_OP_PROFILE_SKIP=N leaves the first N
 * forward passes out (a warm-up request's: cuDNN's plans, cuBLASLt's heuristics, modules loaded
 * at first use). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

#define MAX_KINDS 64
#define PENDING 4096
#define DECODE_ROWS 16
#define SHORT_ROWS 256

typedef struct {
    char name[48];
    long calls;
    double ms;
} op_kind;

typedef struct {
    cudaEvent_t start, stop;
    int kind;
} pending_op;

static backend inner;
static backend wrapped;
static op_kind kinds[MAX_KINDS];
static int n_kinds;
static pending_op pending[PENDING];
static int n_pending;
static cudaEvent_t first_start, last_stop;
static int have_first;

/* Tokens of the forward pass under way: the embedding of each pass sets it. */
static int pass_tokens;
/* Forward passes begun, and how many to leave out of the totals. */
static long passes, skip_passes;

static int kind_index(const char *name)
{
    char key[48];
    const char *pass = pass_tokens <= DECODE_ROWS  ? "(decode)"
                       : pass_tokens <= SHORT_ROWS ? "(short)"
                                                   : "(prefill)";
    snprintf(key, sizeof key, "%s %s", name, pass);
    for (int i = 0; i < n_kinds; i++)
        if (strcmp(kinds[i].name, key) == 0)
            return i;
    if (n_kinds == MAX_KINDS)
        return MAX_KINDS - 1; /* lumped into the last: only shows up with very many shapes */
    snprintf(kinds[n_kinds].name, sizeof kinds[n_kinds].name, "%s", key);
    return n_kinds++;
}

/* Reads the finished events' times into the totals. */
static void drain(void)
{
    if (!n_pending)
        return;
    cudaCheck(cudaEventSynchronize(pending[n_pending - 1].stop));
    for (int i = 0; i < n_pending; i++) {
        float ms = 0;
        cudaCheck(cudaEventElapsedTime(&ms, pending[i].start, pending[i].stop));
        kinds[pending[i].kind].ms += ms;
        kinds[pending[i].kind].calls++;
    }
    n_pending = 0;
}

static int op_begin(const char *name)
{
    if (n_pending == PENDING)
        drain();
    pending_op *p = &pending[n_pending];
    if (!p->start) {
        cudaCheck(cudaEventCreate(&p->start));
        cudaCheck(cudaEventCreate(&p->stop));
    }
    p->kind = kind_index(name);
    cudaCheck(cudaEventRecord(p->start));
    if (!have_first) {
        cudaCheck(cudaEventCreate(&first_start));
        cudaCheck(cudaEventCreate(&last_stop));
        cudaCheck(cudaEventRecord(first_start));
        have_first = 1;
    }
    return n_pending;
}

static void op_end(int i)
{
    cudaCheck(cudaEventRecord(pending[i].stop));
    cudaCheck(cudaEventRecord(last_stop));
    n_pending = i + 1;
}

static void report(void)
{
    if (!have_first)
        return;
    drain();
    float span = 0;
    cudaCheck(cudaEventElapsedTime(&span, first_start, last_stop));
    double busy = 0;
    for (int i = 0; i < n_kinds; i++)
        busy += kinds[i].ms;
    int dev = -1;
    cudaGetDevice(&dev);
    fprintf(stderr,
            "op profile, GPU %d: %.1f ms from the first operation to the last (forward passes "
            "%ld to %ld)\n",
            dev, span, passes > skip_passes ? skip_passes + 1 : passes, passes);
    fprintf(stderr, "  %-34s %9s %11s %9s %6s\n", "operation", "calls", "total ms", "mean us",
            "share");
    for (int i = 0; i < n_kinds; i++)
        if (kinds[i].calls)
            fprintf(stderr, "  %-34s %9ld %11.2f %9.1f %5.1f%%\n", kinds[i].name, kinds[i].calls,
                    kinds[i].ms, 1e3 * kinds[i].ms / (kinds[i].calls ? kinds[i].calls : 1),
                    span > 0 ? 100.0 * kinds[i].ms / span : 0.0);
    fprintf(stderr, "  %-34s %9s %11.2f %9s %5.1f%%\n", "(between operations)", "", span - busy, "",
            span > 0 ? 100.0 * (span - busy) / span : 0.0);
}

#define TIMED(name, call)                                                                          \
    do {                                                                                           \
        int op_ = op_begin(name);                                                                  \
        call;                                                                                      \
        op_end(op_);                                                                               \
    } while (0)

static void p_kv_write(void *k_dst, void *v_dst, const float *k, const float *v, size_t count)
{
    TIMED("kv_write", inner.kv_write(k_dst, v_dst, k, v, count));
}

/* Forgets what was timed so far: the totals start again with the next operation. */
static void forget(void)
{
    drain();
    for (int i = 0; i < n_kinds; i++) {
        kinds[i].calls = 0;
        kinds[i].ms = 0;
    }
    cudaCheck(cudaEventDestroy(first_start));
    cudaCheck(cudaEventDestroy(last_stop));
    have_first = 0;
}

static void p_embedding(float *out, const void *table, const int *ids, int n, int dim)
{
    pass_tokens = n;
    if (passes++ == skip_passes && have_first)
        forget();
    TIMED("embedding", inner.embedding(out, table, ids, n, dim));
}

static void p_rmsnorm(void *out, const float *x, const void *w, int n, int dim, float eps)
{
    TIMED("rmsnorm", inner.rmsnorm(out, x, w, n, dim, eps));
}

static void p_matmul(void *out, const void *x, const void *w, int n, int cols, int rows)
{
    char name[40];
    snprintf(name, sizeof name, "matmul %dx%d", rows, cols);
    TIMED(name, inner.matmul(out, x, w, n, cols, rows));
}

static void p_matmul_logits(float *out, const void *x, const void *w, int n, int cols, int rows)
{
    char name[40];
    snprintf(name, sizeof name, "matmul_logits %dx%d", rows, cols);
    TIMED(name, inner.matmul_logits(out, x, w, n, cols, rows));
}

static void p_matmul_add(float *y, const void *x, const void *w, int n, int cols, int rows)
{
    char name[40];
    snprintf(name, sizeof name, "matmul_add %dx%d", rows, cols);
    TIMED(name, inner.matmul_add(y, x, w, n, cols, rows));
}

static void p_qkv(void *q, void *k, void *v, const void *x, const qkv_proj *p, const int *pos,
                  int n)
{
    TIMED("qkv", inner.qkv(q, k, v, x, p, pos, n));
}

static void p_matmul_swiglu(void *out, const void *x, const void *w_gate_up, int cols, int inter)
{
    char name[40];
    snprintf(name, sizeof name, "matmul_swiglu %dx%d", 2 * inter, cols);
    TIMED(name, inner.matmul_swiglu(out, x, w_gate_up, cols, inter));
}

static void p_mlp(float *y, float *gate, float *up, const void *x, const void *w_gate,
                  const void *w_up, const void *w_down, int n, int hidden, int inter)
{
    char name[48];
    snprintf(name, sizeof name, "mlp %dx%d", hidden, inter);
    TIMED(name, inner.mlp(y, gate, up, x, w_gate, w_up, w_down, n, hidden, inter));
}

static void p_attn_init(attn_state *s, int rows, int head_dim)
{
    TIMED("attn_init", inner.attn_init(s, rows, head_dim));
}

static void p_attn_accumulate(attn_state *s, const void *q, int nq, int n_heads, int n_kv_heads,
                              int head_dim, const attn_keys *keys, float scale)
{
    TIMED("attn_accumulate",
          inner.attn_accumulate(s, q, nq, n_heads, n_kv_heads, head_dim, keys, scale));
}

static void p_attn_finalize(void *out, const attn_state *s, int rows, int head_dim)
{
    TIMED("attn_finalize", inner.attn_finalize(out, s, rows, head_dim));
}

static void p_attend_project(float *y, attn_state *s, void *att, const void *q, int nq, int n_heads,
                             int n_kv_heads, int head_dim, const attn_keys *keys, float scale,
                             const void *w_o, int rows)
{
    TIMED("attend_project", inner.attend_project(y, s, att, q, nq, n_heads, n_kv_heads, head_dim,
                                                 keys, scale, w_o, rows));
}

static int p_sample(const float *logits, int vocab, float temperature, float top_p, float u)
{
    int id;
    TIMED("sample", id = inner.sample(logits, vocab, temperature, top_p, u));
    return id;
}

const backend *cuda_op_profile_wrap(const backend *be)
{
    const char *env = getenv("STARINFER_OP_PROFILE");
    if (!env || !*env || strcmp(env, "0") == 0)
        return be;
    const char *skip = getenv("STARINFER_OP_PROFILE_SKIP");
    skip_passes = skip ? atol(skip) : 0;
    inner = *be;
    wrapped = *be;
    wrapped.kv_write = p_kv_write;
    wrapped.embedding = p_embedding;
    wrapped.rmsnorm = p_rmsnorm;
    wrapped.matmul = p_matmul;
    wrapped.matmul_logits = p_matmul_logits;
    wrapped.matmul_add = p_matmul_add;
    wrapped.qkv = p_qkv;
    wrapped.matmul_swiglu = p_matmul_swiglu;
    wrapped.mlp = p_mlp;
    wrapped.attn_init = p_attn_init;
    wrapped.attn_accumulate = p_attn_accumulate;
    wrapped.attn_finalize = p_attn_finalize;
    wrapped.attend_project = p_attend_project;
    wrapped.sample = p_sample;
    atexit(report);
    return &wrapped;
}
