/* Every CUDA operation against the CPU reference backend on fresh random inputs (after
 * llama.cpp's test-backend-ops): normalised error ||gpu - cpu|| / ||cpu|| per op and shape.
 *
 * Where the CUDA backend keeps bf16 (weights, the KV cache, the activations between operations)
 * the CPU is given the same bf16-rounded inputs, and its outputs are rounded to bf16 as the GPU
 * stores them, so what remains is each kernel's own arithmetic (fp32 throughout, in another
 * order) and the roundings it makes in between. With --fp32 the backend runs in its fp32 precision,
 * the inputs are not rounded, and every op must agree to FP32_TOLERANCE: a bf16 rounding anywhere
 * would show as about 1e-3. Exits 77 (skipped) on a machine without a GPU. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/convert.h"

#define TOLERANCE 1e-4
/* An output stored in bf16, against the CPU's rounded the same way: where the two fp32 results
 * straddle a rounding boundary they land one bf16 step (2^-8 relative) apart. */
#define ACT_TOLERANCE 1e-3
/* The attention kernel gives the tensor cores the queries and the softmax weights P in bf16 (as
 * FlashAttention does). The CPU is given the same bf16 queries; P's rounding remains: a relative
 * 2^-9 per weight, which averages out over the keys. */
#define ATTN_TOLERANCE 4e-3
/* fp32 on both sides, the sums in another order; attention's over up to 100,000 keys. */
#define FP32_TOLERANCE 1e-5
#define FP32_ATTN_TOLERANCE 3e-5

static const backend *gpu, *cpu;
static unsigned long long rng = 0x2545F4914F6CDD1Dull;
static int failures;
static int fp32; /* --fp32: the backend's fp32 precision, inputs not rounded to bf16 */

static float uniform(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (float)((rng * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f * 2.0f - 1.0f;
}

static float *random_buf(size_t n, float scale, int bf16)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        p[i] = uniform() * scale;
        if (bf16 && !fp32)
            p[i] = bf16_to_f32(f32_to_bf16(p[i]));
    }
    return p;
}

static float *upload(const float *h, size_t n)
{
    float *d = gpu->alloc(sizeof(float) * (n ? n : 1), "test");
    gpu->to_device(d, h, sizeof(float) * n);
    return d;
}

static float *download(const float *d, size_t n)
{
    float *h = malloc(sizeof(float) * (n ? n : 1));
    gpu->to_host(h, d, sizeof(float) * n);
    return h;
}

/* Activations in the backend's format (bf16, or fp32 with --fp32), in room for fp32 values. */
static void *upload_act(const float *h, size_t n)
{
    void *d = gpu->alloc(sizeof(float) * (n ? n : 1), "test activations");
    gpu->act_upload(d, h, n);
    return d;
}

static float *download_act(const void *d, size_t n)
{
    float *h = malloc(sizeof(float) * (n ? n : 1));
    gpu->act_download(h, d, n);
    return h;
}

/* The CPU's fp32 result as the GPU stores an activation. */
static void round_act(float *v, size_t n)
{
    if (gpu->act_size == 2)
        for (size_t i = 0; i < n; i++)
            v[i] = bf16_to_f32(f32_to_bf16(v[i]));
}

static void *upload_weights(const float *h, size_t n)
{
    void *d = gpu->alloc(gpu->weight_size * n, "test weights");
    gpu->weight_upload(d, h, ELEM_F32, n);
    return d;
}

static void check_tol(const char *op, const char *shape, const float *got, const float *want,
                      size_t n, double tol)
{
    double diff = 0, norm = 0;
    int finite = 1;
    for (size_t i = 0; i < n; i++) {
        finite &= isfinite(got[i]);
        diff += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        norm += (double)want[i] * want[i];
    }
    double err = norm > 0 ? sqrt(diff / norm) : sqrt(diff);
    if (fp32)
        tol = tol == ATTN_TOLERANCE ? FP32_ATTN_TOLERANCE : FP32_TOLERANCE;
    int ok = finite && err < tol;
    failures += !ok;
    printf("%-16s %-40s %10.2e  %s\n", op, shape, err, ok ? "ok" : "FAIL");
}

static void check(const char *op, const char *shape, const float *got, const float *want, size_t n)
{
    check_tol(op, shape, got, want, n, TOLERANCE);
}

/* Y - Y0 against WANT - Y0: what an operation added into the residual stream Y0, which is
 * larger than what is added (as in the model), so that the sum's own error does not hide the
 * addition's. */
static void check_added(const char *op, const char *shape, float *got, float *want, const float *y0,
                        size_t n, double tol)
{
    for (size_t i = 0; i < n; i++) {
        got[i] -= y0[i];
        want[i] -= y0[i];
    }
    check_tol(op, shape, got, want, n, tol);
}

/* An activation's product, the logits' (fp32 out), and the product added into the fp32 residual
 * stream (fp32 on both sides: the GPU's sum of its fp32 accumulation). */
static void test_matmul(int n, int cols, int rows)
{
    float *x = random_buf((size_t)n * cols, 1, 1), *w = random_buf((size_t)rows * cols, 0.1f, 1);
    float *y0 = random_buf((size_t)n * rows, 8, 0);
    float *want = malloc(sizeof(float) * n * rows), *want_y = malloc(sizeof(float) * n * rows);
    cpu->matmul(want, x, w, n, cols, rows);
    memcpy(want_y, y0, sizeof(float) * n * rows);
    cpu->matmul_add(want_y, x, w, n, cols, rows);
    void *dx = upload_act(x, (size_t)n * cols), *dw = upload_weights(w, (size_t)rows * cols);
    float *dlogits = upload(want, (size_t)n * rows), *dy = upload(y0, (size_t)n * rows);
    void *dout = upload_act(want, (size_t)n * rows);
    gpu->matmul(dout, dx, dw, n, cols, rows);
    gpu->matmul_logits(dlogits, dx, dw, n, cols, rows);
    gpu->matmul_add(dy, dx, dw, n, cols, rows);
    float *got = download_act(dout, (size_t)n * rows), *got_logits = download(dlogits, n * rows);
    float *got_y = download(dy, (size_t)n * rows);
    char shape[64];
    snprintf(shape, sizeof shape, "n=%d cols=%d rows=%d", n, cols, rows);
    check("matmul_logits", shape, got_logits, want, (size_t)n * rows);
    check_added("matmul_add", shape, got_y, want_y, y0, (size_t)n * rows, TOLERANCE);
    round_act(want, (size_t)n * rows);
    check_tol("matmul", shape, got, want, (size_t)n * rows, ACT_TOLERANCE);
    gpu->free(dx), gpu->free(dout), gpu->free(dw), gpu->free(dlogits), gpu->free(dy);
    free(x), free(w), free(y0), free(want), free(want_y), free(got), free(got_logits), free(got_y);
}

/* One token's gate and up products, gated (the weights side by side as one matrix). */
static void test_matmul_swiglu(int cols, int inter)
{
    float *x = random_buf(cols, 1, 1), *w = random_buf((size_t)2 * inter * cols, 0.1f, 1);
    float *want = malloc(sizeof(float) * 2 * inter);
    cpu->matmul_swiglu(want, x, w, cols, inter);
    void *dx = upload_act(x, cols), *dout = upload(want, (size_t)2 * inter);
    void *dw = upload_weights(w, (size_t)2 * inter * cols);
    gpu->matmul_swiglu(dout, dx, dw, cols, inter);
    float *got = download_act(dout, inter);
    char shape[64];
    snprintf(shape, sizeof shape, "cols=%d inter=%d", cols, inter);
    round_act(want, inter);
    check_tol("matmul_swiglu", shape, got, want, inter, ACT_TOLERANCE);
    gpu->free(dx), gpu->free(dout), gpu->free(dw);
    free(x), free(w), free(want), free(got);
}

static void test_rmsnorm(int n, int dim)
{
    float *x = random_buf((size_t)n * dim, 3, 0), *w = random_buf(dim, 1, 1);
    float *want = malloc(sizeof(float) * n * dim);
    cpu->rmsnorm(want, x, w, n, dim, 1e-5f);
    float *dx = upload(x, (size_t)n * dim);
    void *dout = upload_act(x, (size_t)n * dim), *dw = upload_weights(w, dim);
    gpu->rmsnorm(dout, dx, dw, n, dim, 1e-5f);
    float *got = download_act(dout, (size_t)n * dim);
    char shape[64];
    snprintf(shape, sizeof shape, "n=%d dim=%d", n, dim);
    round_act(want, (size_t)n * dim);
    check_tol("rmsnorm", shape, got, want, (size_t)n * dim, ACT_TOLERANCE);
    gpu->free(dx), gpu->free(dout), gpu->free(dw);
    free(x), free(w), free(want), free(got);
}

static void test_embedding(int n, int vocab, int dim)
{
    float *table = random_buf((size_t)vocab * dim, 1, 1);
    int *ids = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++)
        ids[i] = (int)((uniform() + 1) * 0.5f * (vocab - 1));
    float *want = malloc(sizeof(float) * n * dim);
    cpu->embedding(want, table, ids, n, dim);
    void *dt = upload_weights(table, (size_t)vocab * dim);
    float *dout = upload(want, (size_t)n * dim);
    gpu->embedding(dout, dt, ids, n, dim);
    float *got = download(dout, (size_t)n * dim);
    char shape[64];
    snprintf(shape, sizeof shape, "n=%d vocab=%d dim=%d", n, vocab, dim);
    check("embedding", shape, got, want, (size_t)n * dim);
    gpu->free(dt), gpu->free(dout);
    free(table), free(ids), free(want), free(got);
}

/* The queries, keys and values of N tokens from their normed rows: the products, then the
 * rotation of the queries and keys at positions FIRST_POS on, the keys and values written in the
 * cache's format. PACKED: the three weights back to back (one product on the GPU); WHICH: 'a'
 * all, 'q' the queries only (a rank without the store), 'k' the keys and values only (the last
 * layer of an encoded block). On the GPU the products are rounded to bf16 before the rotation,
 * as bf16 inference computes them, and the rotated rows again: two roundings, where the CPU's
 * fp32 result is rounded once. The first one's error is a relative 2^-9 of x and of y, and
 * x cos - y sin can cancel, so the rotated rows err by more: 2.2e-3 to 3.0e-3 measured on an
 * H100 (commit c851bb7). */
#define QKV_TOLERANCE 5e-3
static void test_qkv(int n, int cols, int heads, int kv_heads, int d, int first_pos, int packed,
                     char which)
{
    int qd = heads * d, kvd = kv_heads * d, all = qd + 2 * kvd;
    float *x = random_buf((size_t)n * cols, 1, 1), *w = random_buf((size_t)all * cols, 0.1f, 1);
    float *inv = malloc(sizeof(float) * d / 2);
    for (int j = 0; j < d / 2; j++)
        inv[j] = 1.0f / powf(500000.0f, 2.0f * j / d);
    int *pos = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++)
        pos[i] = first_pos + i;
    int want_q = which != 'k', want_kv = which != 'q';
    float *q = malloc(sizeof(float) * n * qd), *k = malloc(sizeof(float) * n * kvd),
          *v = malloc(sizeof(float) * n * kvd);
    qkv_proj hp = {
        w, w + (size_t)qd * cols, w + (size_t)(qd + kvd) * cols, w, inv, cols, heads, kv_heads, d};
    cpu->qkv(want_q ? q : NULL, want_kv ? k : NULL, v, x, &hp, pos, n);

    /* the cache holds bf16 (or fp32) as the activations do: read back as activations */
    if (gpu->kv_size != gpu->act_size) {
        printf("qkv: the cache's format is not the activations'\n");
        failures++;
        return;
    }
    void *dx = upload_act(x, (size_t)n * cols), *dw = upload_weights(w, (size_t)all * cols);
    float *dinv = upload(inv, d / 2);
    void *dq = upload_act(q, (size_t)n * qd), *dk = upload_act(k, (size_t)n * kvd),
         *dv = upload_act(v, (size_t)n * kvd);
    size_t ws = gpu->weight_size;
    qkv_proj gp = {dw,
                   (char *)dw + ws * qd * cols,
                   (char *)dw + ws * (qd + kvd) * cols,
                   packed ? dw : NULL,
                   dinv,
                   cols,
                   heads,
                   kv_heads,
                   d};
    gpu->qkv(want_q ? dq : NULL, want_kv ? dk : NULL, dv, dx, &gp, pos, n);
    char shape[96];
    snprintf(shape, sizeof shape, "n=%d cols=%d h=%d/%d d=%d pos=%d.. %s%s", n, cols, heads,
             kv_heads, d, first_pos, packed ? "packed" : "apart",
             which == 'q'   ? " q only"
             : which == 'k' ? " k, v only"
                            : "");
    if (want_q) {
        float *got = download_act(dq, (size_t)n * qd);
        round_act(q, (size_t)n * qd);
        check_tol("qkv q", shape, got, q, (size_t)n * qd, QKV_TOLERANCE);
        free(got);
    }
    if (want_kv) {
        float *got_k = download_act(dk, (size_t)n * kvd), *got_v = download_act(dv, n * kvd);
        round_act(k, (size_t)n * kvd);
        round_act(v, (size_t)n * kvd);
        check_tol("qkv k", shape, got_k, k, (size_t)n * kvd, QKV_TOLERANCE);
        check_tol("qkv v", shape, got_v, v, (size_t)n * kvd, ACT_TOLERANCE);
        free(got_k), free(got_v);
    }
    gpu->free(dx), gpu->free(dw), gpu->free(dinv), gpu->free(dq), gpu->free(dk), gpu->free(dv);
    free(x), free(w), free(inv), free(pos), free(q), free(k), free(v);
}

/* The MLP of N rows, added into the residual stream. On the GPU the gate and up products are
 * kept in bf16 and the gated rows enter the down projection in bf16 (as bf16 inference does):
 * three roundings of a relative 2^-9, averaging out over the down projection's INTER terms. */
#define MLP_TOLERANCE 6e-3
static void test_mlp(int n, int hidden, int inter)
{
    float *x = random_buf((size_t)n * hidden, 1, 1);
    float *wg = random_buf((size_t)inter * hidden, 0.1f, 1),
          *wu = random_buf((size_t)inter * hidden, 0.1f, 1);
    float *wd = random_buf((size_t)hidden * inter, 0.1f, 1);
    float *y0 = random_buf((size_t)n * hidden, 8, 0), *want = malloc(sizeof(float) * n * hidden);
    float *g = malloc(sizeof(float) * n * inter), *u = malloc(sizeof(float) * n * inter);
    memcpy(want, y0, sizeof(float) * n * hidden);
    cpu->mlp(want, g, u, x, wg, wu, wd, n, hidden, inter);
    void *dx = upload_act(x, (size_t)n * hidden);
    float *dout = upload(y0, (size_t)n * hidden);
    float *dg = upload(g, (size_t)n * inter), *du = upload(u, (size_t)n * inter);
    void *dwg = upload_weights(wg, (size_t)inter * hidden),
         *dwu = upload_weights(wu, (size_t)inter * hidden);
    void *dwd = upload_weights(wd, (size_t)hidden * inter);
    gpu->mlp(dout, dg, du, dx, dwg, dwu, dwd, n, hidden, inter);
    float *got = download(dout, (size_t)n * hidden);
    char shape[64];
    snprintf(shape, sizeof shape, "n=%d hidden=%d inter=%d", n, hidden, inter);
    check_added("mlp", shape, got, want, y0, (size_t)n * hidden, MLP_TOLERANCE);
    gpu->free(dx), gpu->free(dout), gpu->free(dg), gpu->free(du);
    gpu->free(dwg), gpu->free(dwu), gpu->free(dwd);
    free(x), free(wg), free(wu), free(wd), free(y0), free(want), free(g), free(u), free(got);
}

/* Keys of one segment on both backends: bf16-rounded fp32 for the CPU, the cache's bf16 on the
 * GPU (written by kv_write, as the model writes them). */
typedef struct {
    float *k, *v;
    void *dk, *dv;
} segment;

static segment make_segment(int nk, int kvd)
{
    segment s = {random_buf((size_t)nk * kvd, 1, 1), random_buf((size_t)nk * kvd, 1, 1), 0, 0};
    float *tk = upload(s.k, (size_t)nk * kvd), *tv = upload(s.v, (size_t)nk * kvd);
    s.dk = gpu->alloc(gpu->kv_size * nk * kvd + 1, "test kv");
    s.dv = gpu->alloc(gpu->kv_size * nk * kvd + 1, "test kv");
    gpu->kv_write(s.dk, s.dv, tk, tv, (size_t)nk * kvd);
    gpu->free(tk), gpu->free(tv);
    return s;
}

/* Attention of NQ queries over two segments (NK1 keys in full, then NK2 with DIAG), folded into
 * one state, then normalised: the way the model calls it. */
static void test_attention(int nq, int heads, int kv_heads, int d, int nk1, int nk2, int diag)
{
    int kvd = kv_heads * d, rows = nq * heads;
    float scale = 1.0f / sqrtf((float)d);
    float *q = random_buf((size_t)nq * heads * d, 2, 1);
    segment s1 = make_segment(nk1, kvd), s2 = make_segment(nk2, kvd);
    attn_keys c1 = {s1.k, s1.v, nk1, kvd, INT_MAX}, c2 = {s2.k, s2.v, nk2, kvd, diag};
    attn_keys g1 = {s1.dk, s1.dv, nk1, kvd, INT_MAX}, g2 = {s2.dk, s2.dv, nk2, kvd, diag};

    float *hm = malloc(sizeof(float) * rows * (d + 2));
    attn_state hs = {hm, hm + rows, hm + 2 * rows};
    float *want = malloc(sizeof(float) * rows * d);
    cpu->attn_init(&hs, rows, d);
    cpu->attn_accumulate(&hs, q, nq, heads, kv_heads, d, &c1, scale);
    cpu->attn_accumulate(&hs, q, nq, heads, kv_heads, d, &c2, scale);
    cpu->attn_finalize(want, &hs, rows, d);

    void *dq = upload_act(q, (size_t)nq * heads * d);
    float *dm = upload(hm, (size_t)rows * (d + 2));
    attn_state ds = {dm, dm + rows, dm + 2 * rows};
    void *dout = upload_act(want, (size_t)rows * d);
    gpu->attn_init(&ds, rows, d);
    gpu->attn_accumulate(&ds, dq, nq, heads, kv_heads, d, &g1, scale);
    gpu->attn_accumulate(&ds, dq, nq, heads, kv_heads, d, &g2, scale);
    float *got_m = download(ds.m, rows), *got_l = download(ds.l, rows);
    gpu->attn_finalize(dout, &ds, rows, d);
    float *got = download_act(dout, (size_t)rows * d);
    round_act(want, (size_t)rows * d);
    /* (m, l) and (m', l') are the same state where m + log l agree: cuDNN's path keeps the
     * log-sum-exp as m with l = 1, our kernels the running max and the sum under it. */
    float *got_lse = malloc(sizeof(float) * rows), *want_lse = malloc(sizeof(float) * rows);
    for (int r = 0; r < rows; r++) {
        got_lse[r] = got_l[r] > 0 ? got_m[r] + logf(got_l[r]) : -1e30f;
        want_lse[r] = hs.l[r] > 0 ? hs.m[r] + logf(hs.l[r]) : -1e30f;
    }

    char shape[96];
    snprintf(shape, sizeof shape, "q=%d h=%d/%d d=%d k=%d+%d diag=%d", nq, heads, kv_heads, d, nk1,
             nk2, diag);
    check_tol("attention", shape, got, want, (size_t)rows * d, ATTN_TOLERANCE);
    check("attention lse", shape, got_lse, want_lse, rows);
    gpu->free(dq), gpu->free(dm), gpu->free(dout);
    gpu->free(s1.dk), gpu->free(s1.dv), gpu->free(s2.dk), gpu->free(s2.dv);
    free(q), free(s1.k), free(s1.v), free(s2.k), free(s2.v), free(hm), free(want), free(got);
    free(got_m), free(got_l), free(got_lse), free(want_lse);
}

/* A layer's attention over one key set alone, then its output projection added into the residual
 * stream (global attention): on the GPU, cuDNN's bf16 output feeds the projection as it is where
 * cuDNN takes the shape, and the decode kernel writes its normalised output straight for a few
 * rows (up to 16 (query, head) rows per KV head); the rounding to bf16 comes on top of the
 * attention's own (where the CPU's output stays fp32). */
#define ATTEND_PROJECT_TOLERANCE 6e-3
static void test_attend_project(int nq, int heads, int kv_heads, int d, int nk, int rows)
{
    int kvd = kv_heads * d, qd = heads * d, diag = nk - nq;
    float scale = 1.0f / sqrtf((float)d);
    float *q = random_buf((size_t)nq * qd, 2, 1), *wo = random_buf((size_t)rows * qd, 0.1f, 1);
    segment sg = make_segment(nk, kvd);
    attn_keys ck = {sg.k, sg.v, nk, kvd, diag}, gk = {sg.dk, sg.dv, nk, kvd, diag};
    float *hm = malloc(sizeof(float) * nq * heads * (d + 2)),
          *att = malloc(sizeof(float) * nq * qd);
    attn_state hs = {hm, hm + nq * heads, hm + 2 * nq * heads};
    float *y0 = random_buf((size_t)nq * rows, 8, 0), *want = malloc(sizeof(float) * nq * rows);
    memcpy(want, y0, sizeof(float) * nq * rows);
    cpu->attend_project(want, &hs, att, q, nq, heads, kv_heads, d, &ck, scale, wo, rows);

    void *dq = upload_act(q, (size_t)nq * qd);
    float *dm = upload(hm, (size_t)nq * heads * (d + 2)), *dout = upload(y0, (size_t)nq * rows);
    void *datt = upload_act(att, (size_t)nq * qd);
    attn_state ds = {dm, dm + nq * heads, dm + 2 * nq * heads};
    void *dwo = upload_weights(wo, (size_t)rows * qd);
    gpu->attend_project(dout, &ds, datt, dq, nq, heads, kv_heads, d, &gk, scale, dwo, rows);
    float *got = download(dout, (size_t)nq * rows);
    char shape[96];
    snprintf(shape, sizeof shape, "q=%d h=%d/%d d=%d k=%d rows=%d", nq, heads, kv_heads, d, nk,
             rows);
    check_added("attend_project", shape, got, want, y0, (size_t)nq * rows,
                ATTEND_PROJECT_TOLERANCE);
    gpu->free(dq), gpu->free(dm), gpu->free(datt), gpu->free(dout), gpu->free(dwo);
    gpu->free(sg.dk), gpu->free(sg.dv);
    free(q), free(wo), free(sg.k), free(sg.v), free(hm), free(att), free(y0), free(want);
    free(got);
}

typedef struct {
    float p;
    int id;
} prob_id;

static int by_prob_desc(const void *a, const void *b)
{
    const prob_id *x = a, *y = b;
    return x->p < y->p ? 1 : x->p > y->p ? -1 : x->id - y->id;
}

/* Distance, in units of the total mass, from the draw's target or the nucleus threshold to the
 * nearest cumulative boundary between the tokens A and B in sorted order: where the CPU and the
 * GPU (exp in another rounding, sums in another order) may rightly disagree. */
static double boundary_gap(const float *logits, int vocab, float t, float top_p, float u, int a,
                           int b)
{
    float max = logits[0];
    for (int i = 1; i < vocab; i++)
        max = fmaxf(max, logits[i]);
    prob_id *e = malloc(sizeof *e * vocab);
    double *cum = malloc(sizeof *cum * vocab);
    for (int i = 0; i < vocab; i++)
        e[i] = (prob_id){expf((logits[i] - max) / t), i};
    qsort(e, vocab, sizeof *e, by_prob_desc);
    double sum = 0;
    int pa = -1, pb = -1, last = vocab - 1;
    for (int j = 0; j < vocab; j++) {
        cum[j] = sum += e[j].p;
        pa = e[j].id == a ? j : pa;
        pb = e[j].id == b ? j : pb;
    }
    for (int j = vocab - 1; j >= 0; j--)
        if (cum[j] >= top_p * sum)
            last = j;
    double target = u * cum[last], gap = INFINITY;
    int lo = pa < pb ? pa : pb, hi = pa < pb ? pb : pa;
    for (int j = lo; j < hi; j++)
        gap = fmin(gap, fmin(fabs(cum[j] - target), fabs(cum[j] - top_p * sum)) / sum);
    free(e);
    free(cum);
    return gap;
}

/* The queued copies (the MPI merge's staging): in order with the operations around them, with
 * one synchronize() at the end. An attention state is set up by a kernel, copied to pinned host
 * memory behind it, overwritten there, copied back and read again: every value must be exact. */
static void test_async_copies(int rows, int d)
{
    size_t n = (size_t)rows * (d + 2);
    float *dm = gpu->alloc(sizeof(float) * n, "test state");
    attn_state ds = {dm, dm + rows, dm + 2 * rows};
    float *h = gpu->host_alloc(sizeof(float) * n, "test staging");
    float *back = gpu->host_alloc(sizeof(float) * n, "test staging");
    gpu->attn_init(&ds, rows, d);
    gpu->to_host_async(h, dm, sizeof(float) * n); /* behind the init */
    gpu->synchronize();
    int bad = 0;
    for (int r = 0; r < rows; r++)
        bad += !(h[r] == -INFINITY && h[rows + r] == 0.0f);
    for (size_t i = 2 * (size_t)rows; i < n; i++)
        bad += h[i] != 0.0f;
    for (size_t i = 0; i < n; i++)
        h[i] = uniform();
    gpu->to_device_async(dm, h, sizeof(float) * n);
    gpu->to_host_async(back, dm, sizeof(float) * n); /* behind the copy to the device */
    gpu->synchronize();
    for (size_t i = 0; i < n; i++)
        bad += back[i] != h[i];
    char shape[64];
    snprintf(shape, sizeof shape, "rows=%d d=%d", rows, d);
    failures += bad != 0;
    printf("%-16s %-40s %10d  %s\n", "async copies", shape, bad, bad ? "FAIL" : "ok");
    gpu->free(dm);
    gpu->host_free(h);
    gpu->host_free(back);
}

/* The weight_upload slot from each type a checkpoint stores: the device holds the host's conversion
 * (kernels/convert.c) bit for bit, over more than one staging piece. The 16-bit types go through
 * every pattern, NaNs and subnormals included; fp32 through values of every magnitude. */
static void test_weight_upload(elem_type type, const char *name, size_t n)
{
    size_t in = elem_size(type), w = gpu->weight_size;
    unsigned char *src = malloc(in * n), *want = malloc(w * n), *got = malloc(w * n);
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)(i * 2654435761u); /* odd: 65536 in a row hit every pattern */
        memcpy(src + in * i, &bits, in);             /* little-endian: the low bytes */
    }
    if (w == 2)
        elems_to_bf16(want, src, type, n);
    else
        elems_to_f32((float *)want, src, type, n);
    void *d = gpu->alloc(w * n, "test weights");
    gpu->weight_upload(d, src, type, n);
    gpu->to_host(got, d, w * n);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += memcmp(got + w * i, want + w * i, w) != 0;
    char shape[64];
    snprintf(shape, sizeof shape, "%s, n=%zu", name, n);
    failures += bad != 0;
    printf("%-16s %-40s %10zu  %s\n", "weight upload", shape, bad, bad ? "FAIL" : "ok");
    gpu->free(d);
    free(src);
    free(want);
    free(got);
}

/* Logits with a NaN (at either end, or mid-way in a block of the argmax), an infinite largest one,
 * or all -inf: the GPU gives no token (-1), greedy or sampled, as the CPU does; a -inf among
 * finite ones is a logit like another. */
static void test_sample_not_finite(int vocab)
{
    float *l = malloc(sizeof(float) * vocab);
    float *dl = gpu->alloc(sizeof(float) * vocab, "test logits");
    int where[] = {0, 1, vocab / 3, vocab - 1}, cases = 0, wrong = 0;
    for (int w = 0; w < 4; w++)
        for (int kind = 0; kind < 4; kind++) {
            for (int i = 0; i < vocab; i++)
                l[i] = kind == 2 ? -INFINITY : uniform() * 4.0f;
            if (kind < 2 || kind == 3)
                l[where[w]] = kind == 0 ? NAN : kind == 1 ? INFINITY : -INFINITY;
            gpu->to_device(dl, l, sizeof(float) * vocab);
            for (int t = 0; t < 2; t++) {
                float temp = t ? 0.8f : 0.0f, top = t ? 0.9f : 1.0f;
                int want = cpu->sample(l, vocab, temp, top, 0.5f);
                int got = gpu->sample(dl, vocab, temp, top, 0.5f);
                wrong += got != want || (want < 0) != (kind < 3);
                cases++;
            }
        }
    char shape[64];
    snprintf(shape, sizeof shape, "vocab %d, %d cases", vocab, cases);
    failures += wrong != 0;
    printf("%-16s %-40s %10d  %s\n", "sample nan/inf", shape, wrong, wrong ? "FAIL" : "ok");
    gpu->free(dl);
    free(l);
}

/* The sample slot: the GPU picks what the CPU picks from the same logits and draw, except where
 * the draw or the nucleus' edge falls within SAMPLE_GAP of the total mass of a boundary between
 * the two picks; those are counted and must stay rare. */
#define SAMPLE_GAP 1e-5
static void test_sample(int vocab, int seeds)
{
    const float temps[] = {0.3f, 0.7f, 1.0f, 1.5f};
    const float tops[] = {1e-6f, 0.5f, 0.9f, 0.95f, 1.0f};
    float *l = malloc(sizeof(float) * vocab);
    float *dl = gpu->alloc(sizeof(float) * vocab, "test logits");
    int cases = 0, near = 0, wrong = 0;
    for (int seed = 0; seed < seeds; seed++) {
        float scale = 1.0f + seed % 6;
        for (int i = 0; i < vocab; i++)
            l[i] = (uniform() + uniform() + uniform()) * scale;
        for (int k = 0; k < 1 + seed % 20; k++) /* a few likely tokens, sometimes tied */
            l[(int)((uniform() + 1) * 0.5f * (vocab - 1))] = 6.0f * scale - (k % 3 ? k : 0);
        gpu->to_device(dl, l, sizeof(float) * vocab);
        int want = cpu->sample(l, vocab, 0.0f, 1.0f, 0.0f);
        int got = gpu->sample(dl, vocab, 0.0f, 1.0f, 0.0f);
        wrong += got != want;
        cases++;
        for (size_t t = 0; t < sizeof temps / sizeof temps[0]; t++)
            for (size_t p = 0; p < sizeof tops / sizeof tops[0]; p++) {
                float us[] = {0.0f, 0.99999994f, (uniform() + 1) * 0.5f};
                for (int j = 0; j < 3; j++) {
                    want = cpu->sample(l, vocab, temps[t], tops[p], us[j]);
                    got = gpu->sample(dl, vocab, temps[t], tops[p], us[j]);
                    cases++;
                    if (got == want)
                        continue;
                    double gap = boundary_gap(l, vocab, temps[t], tops[p], us[j], want, got);
                    near += gap <= SAMPLE_GAP;
                    wrong += gap > SAMPLE_GAP;
                    printf("  sample differs: seed %d T %.2f top_p %.2g u %.8f: cpu %d gpu %d, "
                           "boundary gap %.2e\n",
                           seed, temps[t], tops[p], us[j], want, got, gap);
                }
            }
    }
    char shape[64];
    snprintf(shape, sizeof shape, "vocab %d, %d cases", vocab, cases);
    int ok = wrong == 0 && near * 100 <= cases;
    failures += !ok;
    printf("%-16s %-40s %4d near %d wrong  %s\n", "sample", shape, near, wrong, ok ? "ok" : "FAIL");
    gpu->free(dl);
    free(l);
}

int main(int argc, char **argv)
{
    char err[512];
    fp32 = argc > 1 && !strcmp(argv[1], "--fp32");
    if (argc > 1 && !fp32) {
        fprintf(stderr, "usage: test_gpu_ops [--fp32]\n");
        return 2;
    }
    cpu = backend_cpu();
    gpu = backend_cuda_device_count() > 0
              ? backend_cuda(0, fp32 ? CUDA_FP32 : CUDA_BF16, err, sizeof err)
              : NULL;
    if (!gpu) {
        printf("skipped: no CUDA GPU on this machine\n");
        return 77;
    }
    int cudnn = backend_cuda_cudnn_version();
    if (fp32)
        printf("precision: fp32 (weights, KV cache, products), inputs not rounded to bf16\n");
    else
        printf("prefill attention: %s (cuDNN %d)\n", cudnn ? "cuDNN's fused kernel" : "starinfer's",
               cudnn);
    printf("%-16s %-40s %10s\n", "op", "shape", "nrmse");
    test_matmul(1, 4096, 1024); /* one token: gemv.cu */
    test_matmul(1, 14336, 133); /* a long row, rows not a multiple of the block's */
    test_matmul(1, 100, 37);    /* columns not a multiple of 8: cuBLASLt */
    test_matmul_swiglu(4096, 1000);
    test_matmul_swiglu(100, 37); /* cuBLASLt, then the gating */
    test_matmul(37, 256, 96);
    test_matmul(512, 4096, 1024);
    test_matmul(1, 14336, 4096); /* the down projection of one token, into the stream */
    /* rows held in registers (four values per thread per group: 1, 4, 2 and 8 groups), and
     * the general form */
    test_rmsnorm(1, 4096);
    test_rmsnorm(300, 4096);
    test_rmsnorm(100, 2048);
    test_rmsnorm(70, 8192);
    test_rmsnorm(300, 96);
    test_rmsnorm(2, 1000);
    test_embedding(333, 1000, 128);
    /* one token (gemv.cu; one product where the weights lie back to back), prefill chunks, far
     * positions, a small head_dim, and the parts a rank or a block's last layer wants alone */
    test_qkv(1, 4096, 32, 8, 128, 0, 1, 'a');
    test_qkv(1, 512, 8, 2, 64, 7, 0, 'a');
    test_qkv(1, 512, 8, 2, 64, 4000, 1, 'a');
    test_qkv(1, 256, 8, 2, 16, 3, 1, 'a');
    test_qkv(1, 4096, 32, 8, 128, 131000, 1, 'a');
    test_qkv(1, 256, 8, 2, 64, 100, 1, 'k');
    test_qkv(77, 256, 8, 2, 128, 0, 1, 'a');
    test_qkv(5, 512, 32, 8, 128, 131000, 1, 'a');
    test_qkv(64, 96, 6, 2, 16, 900, 0, 'a');
    test_qkv(300, 512, 8, 8, 64, 40, 1, 'a');
    test_qkv(33, 256, 8, 2, 64, 100, 1, 'q');
    test_qkv(33, 256, 8, 2, 64, 100, 1, 'k');
    test_mlp(1, 512, 1000);    /* one token: gemv.cu, bf16 products */
    test_mlp(300, 96, 1000);   /* bf16 products, gated two at a time */
    test_mlp(77, 64, 333);     /* an odd width: gated one at a time */
    test_mlp(512, 256, 14336); /* a prefill chunk's rows over a long row */
    /* prefill: causal self-attention with an anchor in front; grouped query heads */
    test_attention(200, 6, 2, 16, 48, 200, 0);
    test_attention(300, 8, 2, 128, 0, 300, 0);
    test_attention(129, 4, 1, 32, 700, 129, 0);
    test_attention(65, 8, 8, 64, 1000, 65, 0);
    test_attention(1500, 32, 8, 128, 512, 1500, 0);
    /* a later chunk of a block: the block's earlier rows are visible to every query */
    test_attention(100, 8, 2, 128, 256, 356, 256);
    /* chunks of at least 256 rows go to cuDNN where it is loaded: an anchor seen in full, then
     * causal from the bottom right; a later chunk; a head_dim of 64 and rows not a multiple of
     * 64 (run_gpu.sh runs these once more with STARINFER_CUDNN=0, on our own kernel) */
    test_attention(1024, 32, 8, 128, 4096, 1024, 0);
    test_attention(512, 32, 8, 128, 0, 2048, 1536);
    test_attention(777, 8, 2, 64, 1000, 777, 0);
    /* one key set alone, then the output projection: cuDNN's output as it is (a first chunk, a
     * later one), and the composition where cuDNN does not take the shape (few rows) */
    test_attend_project(512, 32, 8, 128, 512, 256);
    test_attend_project(1024, 8, 2, 64, 3072, 200);
    test_attend_project(100, 8, 2, 64, 612, 96);
    test_attend_project(1, 32, 8, 128, 5000, 64);
    test_attend_project(4, 32, 8, 128, 300, 64);
    test_attend_project(2, 16, 4, 32, 70, 48);
    test_attend_project(1, 8, 2, 64, 1, 32);
    /* decode: one or a few queries over many keys (split-KV path), context in full */
    test_attention(1, 32, 8, 128, 20000, 1, 0);
    test_attention(3, 32, 8, 128, 5000, 40, 37);
    test_attention(1, 6, 2, 16, 1, 1, 0);
    /* the decode kernel's edges: one row per KV head, sixteen (its most), keys that end inside a
     * tile, hundreds of splits; twenty rows go to the tile kernel */
    test_attention(1, 8, 8, 64, 33000, 1, 0);
    test_attention(2, 32, 4, 128, 9000, 2, 1);
    test_attention(4, 16, 4, 32, 777, 4, 3);
    test_attention(1, 4, 1, 16, 100000, 1, 0);
    test_attention(5, 32, 8, 128, 3000, 5, 4);
    /* a rank whose context saw nothing for these rows */
    test_attention(4, 8, 2, 64, 0, 0, 0);
    /* the next token from logits on the device: Llama 3's vocabulary, and a small one */
    test_sample(128256, 30);
    test_sample(1000, 20);
    test_sample(50, 10); /* fewer logits than the argmax has blocks */
    test_sample_not_finite(128256);
    test_sample_not_finite(50);
    test_async_copies(32, 128);
    test_async_copies(1000, 64);
    test_weight_upload(ELEM_BF16, "bf16", 20000003); /* 16M values fill a staging buffer */
    test_weight_upload(ELEM_F16, "f16", 20000003);
    test_weight_upload(ELEM_F32, "f32", 10000019);
    printf("%s: %d failure(s)\n", failures ? "FAILED" : "passed", failures);
    return failures ? 1 : 0;
}
