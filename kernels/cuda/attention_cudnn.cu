/* Prefill attention through cuDNN's fused flash attention, where cuDNN is loaded (cudnn_api.h):
 * on Hopper it runs at about twice the rate of our tile kernel (bench/NOTES.md). It reads the
 * bf16 query rows as they are, writes the normalised output O (bf16) and each row's log-sum-exp
 * (fp32, natural base), and a small kernel folds (O, lse) into the caller's online-softmax state
 * as one more partial state with m = lse, l = 1, o = O, exactly as the merge of Star Attention's
 * phase 2 folds a rank's partial (arXiv 2411.17116, section 2.2).
 *
 * The graph is the one cuDNN documents for its fused SDPA forward: Q K^T, the scale, the causal
 * mask aligned to the bottom right (query i sees key j iff j <= i + nk - nq, our `diag`), softmax
 * with its statistics, then P V. cuDNN builds a plan per shape, about 45 ms each on an H100
 * (each chunk of a prefill has more keys than the last, so a 128K prefill in chunks of 8192 builds
 * 16); plans are kept for the process. cuDNN's dynamic shapes (a kernel cache shared by plans)
 * were tried and gave wrong results: bench/NOTES.md entry 8. Where a layer attends to one key set
 * alone (global attention's prefill), O goes as it is to the output projection instead
 * (cuda_attn_cudnn_alone; attend_project.cu). */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/cudnn_api.h"

/* Fewer query rows than this stay on our kernels: a plan costs its build once per shape, and
 * short chunks gain little. */
#define MIN_QUERY_ROWS 256
#define MAX_PLANS 64
#define MAX_DESCS 96
#define MAX_OPS 16

enum {
    UID_Q = 1,
    UID_K,
    UID_V,
    UID_O,
    UID_STATS,
    UID_SCALE,
    UID_FILL,
    UID_SKV,
    UID_SQ,
    UID_VIRTUAL = 100
};

typedef struct {
    int nq, nk, n_heads, n_kv_heads, d, kv_stride, causal;
} sdpa_shape;

/* One shape's plan and every descriptor it was built from (kept alive with it). */
typedef struct {
    sdpa_shape shape;
    cudnnBackendDescriptor_t plan; /* NULL: cuDNN has no engine for this shape */
    int64_t workspace;
    cudnnBackendDescriptor_t desc[MAX_DESCS];
    int n_desc;
    unsigned long used;
} sdpa_plan;

/* A graph being built: the first failing call is remembered and every later call is skipped. */
typedef struct {
    const cudnn_api *api;
    sdpa_plan *p;
    cudnnBackendDescriptor_t ops[MAX_OPS];
    int n_ops;
    int64_t next_uid;
    const char *failed;
    cudnnStatus_t rc;
} graph;

static cudnnBackendDescriptor_t make(graph *g, cudnnBackendDescriptorType_t type)
{
    cudnnBackendDescriptor_t d = NULL;
    if (g->failed)
        return NULL;
    if (g->p->n_desc == MAX_DESCS) {
        g->failed = "too many descriptors";
        return NULL;
    }
    if ((g->rc = g->api->create(type, &d)) != CUDNN_STATUS_SUCCESS) {
        g->failed = "cudnnBackendCreateDescriptor";
        return NULL;
    }
    g->p->desc[g->p->n_desc++] = d;
    return d;
}

static void set_at(graph *g, cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t name,
                   cudnnBackendAttributeType_t type, int64_t count, const void *value,
                   const char *what)
{
    if (!g->failed && (g->rc = g->api->set(d, name, type, count, value)) != CUDNN_STATUS_SUCCESS)
        g->failed = what;
}
#define SET(g, d, name, type, count, value)                                                        \
    set_at((g), (d), (name), (type), (count), (value), #name)

static void finalize(graph *g, cudnnBackendDescriptor_t d, const char *what)
{
    if (!g->failed && (g->rc = g->api->finalize(d)) != CUDNN_STATUS_SUCCESS)
        g->failed = what;
}

static cudnnBackendDescriptor_t tensor(graph *g, int64_t uid, cudnnDataType_t type,
                                       const int64_t dims[4], const int64_t strides[4],
                                       bool is_virtual, bool by_value)
{
    cudnnBackendDescriptor_t t = make(g, CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    int64_t align = 16;
    SET(g, t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type);
    SET(g, t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims);
    SET(g, t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides);
    SET(g, t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    SET(g, t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align);
    SET(g, t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual);
    if (by_value)
        SET(g, t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value);
    finalize(g, t, "a tensor descriptor");
    return t;
}

static cudnnBackendDescriptor_t virt(graph *g, cudnnDataType_t type, const int64_t dims[4],
                                     const int64_t strides[4])
{
    return tensor(g, g->next_uid++, type, dims, strides, true, false);
}

static void add_op(graph *g, cudnnBackendDescriptor_t op, const char *what)
{
    finalize(g, op, what);
    if (!g->failed)
        g->ops[g->n_ops++] = op;
}

/* Y = MODE(X, B) (B may be NULL; T, the BINARY_SELECT mask, too), computed in PREC; AXIS is the
 * GEN_INDEX axis, else negative. */
static void pointwise(graph *g, cudnnPointwiseMode_t mode, cudnnDataType_t prec,
                      cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t b,
                      cudnnBackendDescriptor_t t, cudnnBackendDescriptor_t y, int64_t axis)
{
    cudnnBackendDescriptor_t pw = make(g, CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    SET(g, pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode);
    SET(g, pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec);
    if (axis >= 0)
        SET(g, pw, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis);
    finalize(g, pw, "a pointwise descriptor");
    cudnnBackendDescriptor_t op = make(g, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    SET(g, op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw);
    SET(g, op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
    if (b)
        SET(g, op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b);
    if (t)
        SET(g, op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &t);
    SET(g, op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y);
    add_op(g, op, "a pointwise operation");
}

/* C = A B, batched over the first two dimensions (broadcast where B has fewer heads: GQA). */
static void matmul(graph *g, cudnnBackendDescriptor_t a, cudnnBackendDescriptor_t b,
                   cudnnBackendDescriptor_t c)
{
    cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    cudnnBackendDescriptor_t mm = make(g, CUDNN_BACKEND_MATMUL_DESCRIPTOR);
    SET(g, mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp);
    finalize(g, mm, "a matmul descriptor");
    cudnnBackendDescriptor_t op = make(g, CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
    SET(g, op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &a);
    SET(g, op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b);
    SET(g, op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c);
    SET(g, op, CUDNN_ATTR_OPERATION_MATMUL_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &mm);
    add_op(g, op, "a matmul operation");
}

/* Y = reduction of X over its last dimension. */
static void reduce(graph *g, cudnnReduceTensorOp_t how, cudnnBackendDescriptor_t x,
                   cudnnBackendDescriptor_t y)
{
    cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    cudnnBackendDescriptor_t red = make(g, CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
    SET(g, red, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &how);
    SET(g, red, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp);
    finalize(g, red, "a reduction descriptor");
    cudnnBackendDescriptor_t op = make(g, CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
    SET(g, op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &red);
    SET(g, op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
    SET(g, op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y);
    add_op(g, op, "a reduction operation");
}

/* The SDPA forward graph of shape S, in the layouts of our buffers: Q and O as [nq][heads][d]
 * (bf16), K and V as the cache's [nk][kv_stride] rows, the statistics as [heads][nq]. */
static void build_graph(graph *g, const sdpa_shape *s)
{
    const cudnnDataType_t F32 = CUDNN_DATA_FLOAT, BF16 = CUDNN_DATA_BFLOAT16,
                          I32 = CUDNN_DATA_INT32, BOOL = CUDNN_DATA_BOOLEAN;
    int64_t h = s->n_heads, hk = s->n_kv_heads, nq = s->nq, nk = s->nk, d = s->d;
    int64_t kvs = s->kv_stride, qs = h * d;
    int64_t q_dims[4] = {1, h, nq, d}, q_str[4] = {nq * qs, d, qs, 1};
    int64_t kt_dims[4] = {1, hk, d, nk}, kt_str[4] = {nk * kvs, d, 1, kvs};
    int64_t v_dims[4] = {1, hk, nk, d}, v_str[4] = {nk * kvs, d, kvs, 1};
    int64_t s_dims[4] = {1, h, nq, nk}, s_str[4] = {h * nq * nk, nq * nk, nk, 1};
    int64_t r_dims[4] = {1, h, nq, 1}, r_str[4] = {h * nq, nq, 1, 1};
    int64_t one[4] = {1, 1, 1, 1};

    cudnnBackendDescriptor_t q = tensor(g, UID_Q, BF16, q_dims, q_str, false, false);
    cudnnBackendDescriptor_t kt = tensor(g, UID_K, BF16, kt_dims, kt_str, false, false);
    cudnnBackendDescriptor_t v = tensor(g, UID_V, BF16, v_dims, v_str, false, false);
    cudnnBackendDescriptor_t o = tensor(g, UID_O, BF16, q_dims, q_str, false, false);
    cudnnBackendDescriptor_t stats = tensor(g, UID_STATS, F32, r_dims, r_str, false, false);
    cudnnBackendDescriptor_t scale = tensor(g, UID_SCALE, F32, one, one, false, true);

    cudnnBackendDescriptor_t scores = virt(g, F32, s_dims, s_str);
    matmul(g, q, kt, scores);
    cudnnBackendDescriptor_t scaled = virt(g, F32, s_dims, s_str);
    pointwise(g, CUDNN_POINTWISE_MUL, F32, scores, scale, NULL, scaled, -1);
    cudnnBackendDescriptor_t logits = scaled;
    if (s->causal) {
        cudnnBackendDescriptor_t row = virt(g, I32, s_dims, s_str);
        cudnnBackendDescriptor_t col = virt(g, I32, s_dims, s_str);
        pointwise(g, CUDNN_POINTWISE_GEN_INDEX, F32, scaled, NULL, NULL, row, 2);
        pointwise(g, CUDNN_POINTWISE_GEN_INDEX, F32, scaled, NULL, NULL, col, 3);
        /* Bottom-right alignment: row + nk - nq >= col. */
        cudnnBackendDescriptor_t skv = tensor(g, UID_SKV, I32, one, one, false, true);
        cudnnBackendDescriptor_t sq = tensor(g, UID_SQ, I32, one, one, false, true);
        cudnnBackendDescriptor_t row_plus = virt(g, I32, s_dims, s_str);
        cudnnBackendDescriptor_t row_shift = virt(g, I32, s_dims, s_str);
        pointwise(g, CUDNN_POINTWISE_ADD, I32, row, skv, NULL, row_plus, -1);
        pointwise(g, CUDNN_POINTWISE_SUB, I32, row_plus, sq, NULL, row_shift, -1);
        cudnnBackendDescriptor_t visible = virt(g, BOOL, s_dims, s_str);
        pointwise(g, CUDNN_POINTWISE_CMP_GE, BOOL, row_shift, col, NULL, visible, -1);
        cudnnBackendDescriptor_t fill = tensor(g, UID_FILL, F32, one, one, false, true);
        logits = virt(g, F32, s_dims, s_str);
        pointwise(g, CUDNN_POINTWISE_BINARY_SELECT, F32, scaled, fill, visible, logits, -1);
    }
    cudnnBackendDescriptor_t max = virt(g, F32, r_dims, r_str);
    reduce(g, CUDNN_REDUCE_TENSOR_MAX, logits, max);
    cudnnBackendDescriptor_t shifted = virt(g, F32, s_dims, s_str);
    pointwise(g, CUDNN_POINTWISE_SUB, F32, logits, max, NULL, shifted, -1);
    cudnnBackendDescriptor_t e = virt(g, F32, s_dims, s_str);
    pointwise(g, CUDNN_POINTWISE_EXP, F32, shifted, NULL, NULL, e, -1);
    cudnnBackendDescriptor_t sum = virt(g, F32, r_dims, r_str);
    reduce(g, CUDNN_REDUCE_TENSOR_ADD, e, sum);
    cudnnBackendDescriptor_t log_sum = virt(g, F32, r_dims, r_str);
    pointwise(g, CUDNN_POINTWISE_LOG, F32, sum, NULL, NULL, log_sum, -1);
    pointwise(g, CUDNN_POINTWISE_ADD, F32, max, log_sum, NULL, stats, -1);
    cudnnBackendDescriptor_t p = virt(g, BF16, s_dims, s_str);
    pointwise(g, CUDNN_POINTWISE_DIV, F32, e, sum, NULL, p, -1);
    matmul(g, p, v, o);
}

/* Builds P's plan: the graph, cuDNN's heuristics (mode A), then the first engine configuration
 * that finalizes. Returns NULL, or what failed (P->plan is then NULL, and the status in *RC). */
static const char *build_plan(const cudnn_api *api, sdpa_plan *p, cudnnStatus_t *rc)
{
    graph g;
    memset(&g, 0, sizeof g);
    g.api = api;
    g.p = p;
    g.next_uid = UID_VIRTUAL;
    build_graph(&g, &p->shape);

    cudnnBackendDescriptor_t og = make(&g, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    SET(&g, og, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &api->handle);
    SET(&g, og, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, g.n_ops, g.ops);
    finalize(&g, og, "the operation graph");
    cudnnBackendDescriptor_t heur = make(&g, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
    SET(&g, heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &og);
    SET(&g, heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    finalize(&g, heur, "the engine heuristics");

    enum { MAX_CONFIGS = 4 };
    cudnnBackendDescriptor_t cfg[MAX_CONFIGS];
    int64_t n_cfg = 0;
    for (int i = 0; i < MAX_CONFIGS; i++)
        cfg[i] = make(&g, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
    if (!g.failed &&
        (g.rc = api->get(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                         MAX_CONFIGS, &n_cfg, cfg)) != CUDNN_STATUS_SUCCESS)
        g.failed = "CUDNN_ATTR_ENGINEHEUR_RESULTS";
    for (int i = 0; !g.failed && i < n_cfg && !p->plan; i++) {
        cudnnBackendDescriptor_t plan = make(&g, CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
        SET(&g, plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &api->handle);
        SET(&g, plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
            &cfg[i]);
        if (!g.failed && (g.rc = api->finalize(plan)) == CUDNN_STATUS_SUCCESS)
            p->plan = plan;
    }
    if (!g.failed && !p->plan)
        g.failed = n_cfg ? "every engine configuration's execution plan" : "no engine found";
    int64_t got = 0;
    if (p->plan &&
        (g.rc = api->get(p->plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1,
                         &got, &p->workspace)) != CUDNN_STATUS_SUCCESS)
        g.failed = "CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE";
    if (g.failed)
        p->plan = NULL;
    *rc = g.rc;
    return g.failed;
}

/* P's plan; where cuDNN builds none, P->plan stays NULL and the first such shape is reported on
 * stderr. */
static void make_plan(const cudnn_api *api, sdpa_plan *p)
{
    cudnnStatus_t rc;
    const char *failed = build_plan(api, p, &rc);
    static int told;
    if (failed && !told++) {
        const sdpa_shape *s = &p->shape;
        char why[768] = "";
        if (rc != CUDNN_STATUS_SUCCESS)
            cudnn_describe(api, rc, why, sizeof why);
        fprintf(stderr,
                "[%s] warning: cuDNN %zu has no fused attention for %d queries x %d keys "
                "(%d/%d heads, head_dim %d%s): %s failed%s%s\n"
                "  starinfer's own kernel runs it, and any other shape cuDNN refuses\n",
                si_log_prefix(), api->version, s->nq, s->nk, s->n_heads, s->n_kv_heads, s->d,
                s->causal ? ", causal" : "", failed, *why ? ": " : "", why);
    }
}

static int same_shape(const sdpa_shape *a, const sdpa_shape *b)
{
    return !memcmp(a, b, sizeof *a);
}

/* The plan for S, built on first use; the least recently used one makes room. */
static sdpa_plan *plan_for(const cudnn_api *api, const sdpa_shape *s)
{
    static sdpa_plan plans[MAX_PLANS];
    static int n_plans;
    static unsigned long clock;
    sdpa_plan *p = NULL;
    for (int i = 0; i < n_plans && !p; i++)
        if (same_shape(&plans[i].shape, s))
            p = &plans[i];
    if (!p) {
        if (n_plans < MAX_PLANS) {
            p = &plans[n_plans++];
        } else {
            p = &plans[0];
            for (int i = 1; i < MAX_PLANS; i++)
                if (plans[i].used < p->used)
                    p = &plans[i];
            cudaCheck(cudaDeviceSynchronize()); /* a plan may still be running */
            for (int i = p->n_desc - 1; i >= 0; i--)
                api->destroy(p->desc[i]);
        }
        memset(p, 0, sizeof *p);
        p->shape = *s;
        make_plan(api, p);
    }
    p->used = ++clock;
    return p;
}

/* Folds one partial state per row, (m = lse, l = 1, o = out), into (m, l, o); one warp a row. */
__global__ void fold_lse_kernel(float *m, float *l, float *o, const __nv_bfloat16 *out,
                                const float *lse, int nq, int n_heads, int d)
{
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= nq * n_heads)
        return;
    int i = row / n_heads, h = row % n_heads;
    float s = lse[(size_t)h * nq + i], m_old = m[row], mx = fmaxf(m_old, s);
    float a = m_old == -INFINITY ? 0.0f : expf(m_old - mx);
    float b = s == -INFINITY ? 0.0f : expf(s - mx);
    float *orow = o + (size_t)row * d;
    const __nv_bfloat16 *src = out + (size_t)row * d;
    if (m_old == -INFINITY) /* the row saw no key before: the partial as it is, o unread */
        for (int j = lane; j < d; j += 32)
            orow[j] = __bfloat162float(src[j]) * b;
    else
        for (int j = lane; j < d; j += 32)
            orow[j] = orow[j] * a + __bfloat162float(src[j]) * b;
    if (lane == 0) {
        l[row] = l[row] * a + b;
        m[row] = mx;
    }
}

/* cuDNN's SDPA of the NQ queries over KEYS' first NK: its output O (bf16, [nq][n_heads][d]) and
 * the log-sum-exp of each row in *LSE, both in scratch; NULL where cuDNN is not loaded or does
 * not take the shape (the caller's kernels must then run). */
static const __nv_bfloat16 *sdpa(const __nv_bfloat16 *q, int nq, int n_heads, int n_kv_heads,
                                 int head_dim, const attn_keys *keys, int nk, float scale,
                                 const float **lse_out)
{
    int all_visible = keys->diag >= nk, causal = keys->diag == nk - nq;
    if (nq < MIN_QUERY_ROWS || nq > nk || !(all_visible || causal) || head_dim % 8)
        return NULL;
    const cudnn_api *api = cudnn_api_get();
    if (!api)
        return NULL;
    sdpa_shape shape = {nq, nk, n_heads, n_kv_heads, head_dim, keys->kv_stride, !all_visible};
    sdpa_plan *p = plan_for(api, &shape);
    if (!p->plan)
        return NULL;

    size_t elems = (size_t)nq * n_heads * head_dim, rows = (size_t)nq * n_heads;
    __nv_bfloat16 *ob = (__nv_bfloat16 *)cuda_scratch(SCRATCH_CUDNN_O, 2 * elems);
    float *lse = (float *)cuda_scratch(SCRATCH_CUDNN_STATS, sizeof(float) * rows);
    void *ws = cuda_scratch(SCRATCH_CUDNN_WORKSPACE, (size_t)p->workspace + 16);

    float fill = -INFINITY;
    int32_t skv = nk, sq = nq;
    int64_t uids[] = {UID_Q, UID_K, UID_V, UID_O, UID_STATS, UID_SCALE, UID_FILL, UID_SKV, UID_SQ};
    void *ptrs[] = {
        (void *)q, (void *)keys->k, (void *)keys->v, ob, lse, (void *)&scale, &fill, &skv, &sq};
    int64_t n = shape.causal ? 9 : 6;
    cudnnBackendDescriptor_t pack = NULL;
    cudnnStatus_t rc = api->create(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack);
    if (rc == CUDNN_STATUS_SUCCESS)
        rc = api->set(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids);
    if (rc == CUDNN_STATUS_SUCCESS)
        rc = api->set(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs);
    if (rc == CUDNN_STATUS_SUCCESS)
        rc = api->set(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
    if (rc == CUDNN_STATUS_SUCCESS)
        rc = api->finalize(pack);
    if (rc == CUDNN_STATUS_SUCCESS)
        rc = api->execute(api->handle, p->plan, pack);
    if (pack)
        api->destroy(pack);
    if (rc != CUDNN_STATUS_SUCCESS) {
        int dev = -1;
        char why[768];
        cudaGetDevice(&dev);
        cudnn_describe(api, rc, why, sizeof why);
        si_fatal("cuDNN's fused attention failed on GPU %d (%d queries x %d keys): %s\n"
                 "  HINT: STARINFER_CUDNN=0 runs starinfer's own attention kernel instead",
                 dev, nq, nk, why);
    }
    *lse_out = lse;
    return ob;
}

void cuda_attn_cudnn_prepare(int nq, int nk, int n_heads, int n_kv_heads, int head_dim,
                             int kv_stride)
{
    const cudnn_api *api = cudnn_api_get();
    if (!api || nq < MIN_QUERY_ROWS || nq > nk || head_dim % 8)
        return;
    sdpa_shape shape = {nq, nk, n_heads, n_kv_heads, head_dim, kv_stride, 1};
    plan_for(api, &shape);
}

int cuda_attn_cudnn(attn_state *s, const __nv_bfloat16 *q, int nq, int n_heads, int n_kv_heads,
                    int head_dim, const attn_keys *keys, int nk, float scale)
{
    const float *lse;
    const __nv_bfloat16 *ob = sdpa(q, nq, n_heads, n_kv_heads, head_dim, keys, nk, scale, &lse);
    if (!ob)
        return 0;
    size_t rows = (size_t)nq * n_heads;
    int warps = 8;
    fold_lse_kernel<<<(int)((rows + warps - 1) / warps), 32 * warps>>>(s->m, s->l, s->o, ob, lse,
                                                                       nq, n_heads, head_dim);
    cudaCheckLaunch("fold_lse");
    return 1;
}

const __nv_bfloat16 *cuda_attn_cudnn_alone(const __nv_bfloat16 *q, int nq, int n_heads,
                                           int n_kv_heads, int head_dim, const attn_keys *keys,
                                           float scale)
{
    long reach = (long)nq + keys->diag; /* keys any query row can see */
    int nk = (int)(reach < keys->nk ? reach : keys->nk);
    const float *lse;
    return sdpa(q, nq, n_heads, n_kv_heads, head_dim, keys, nk, scale, &lse);
}
