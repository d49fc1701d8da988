/* out[n][rows] = x[n][cols] . w[rows][cols]^T through cuBLASLt: bf16 operands (the activations
 * and the weights as stored in the checkpoint), fp32 accumulation, the result rounded once to
 * bf16 (an activation) or kept in fp32 (the logits), as the reference's bf16 inference computes;
 * or added in fp32 into the fp32 residual stream (beta = 1: the output projections), which saves
 * the norm after it a read and a write of the stream (bench/NOTES.md entry 14).
 * One token's product (decoding) goes to gemv.cu instead. In the fp32 precision both operands
 * and the result are fp32 and so is the arithmetic (CUBLAS_COMPUTE_32F: no TF32).
 *
 * Column-major view: W (row-major rows x cols) is a cols x rows matrix, X is cols x n, and the
 * wanted row-major out is the rows x n column-major product W^T X. */
#include <string.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/mem_track.h"

#define WORKSPACE_BYTES (32u << 20)
#define PLAN_CACHE 64

typedef struct {
    int n, cols, rows;
    cudaDataType_t type; /* of both operands */
    cudaDataType_t out;  /* of the result */
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
} gemm_plan;

static cublasLtHandle_t lt;
static void *workspace;
static gemm_plan plans[PLAN_CACHE];
static int n_plans, next_evict;

void cuda_gemm_init(void)
{
    cublasCheck(cublasLtCreate(&lt));
    cudaCheck(cudaMalloc(&workspace, WORKSPACE_BYTES));
    mem_track_add(workspace, WORKSPACE_BYTES);
}

static void plan_destroy(gemm_plan *p)
{
    cublasLtMatmulDescDestroy(p->op);
    cublasLtMatrixLayoutDestroy(p->a);
    cublasLtMatrixLayoutDestroy(p->b);
    cublasLtMatrixLayoutDestroy(p->c);
}

/* The descriptors and the heuristic's algorithm for one shape and operand type, made once and
 * kept. */
static const gemm_plan *plan_for(int n, int cols, int rows, cudaDataType_t type, cudaDataType_t out)
{
    for (int i = 0; i < n_plans; i++)
        if (plans[i].n == n && plans[i].cols == cols && plans[i].rows == rows &&
            plans[i].type == type && plans[i].out == out)
            return &plans[i];
    gemm_plan *p;
    if (n_plans < PLAN_CACHE) {
        p = &plans[n_plans++];
    } else {
        p = &plans[next_evict];
        next_evict = (next_evict + 1) % PLAN_CACHE;
        plan_destroy(p);
    }
    memset(p, 0, sizeof *p);
    p->n = n;
    p->cols = cols;
    p->rows = rows;
    p->type = type;
    p->out = out;
    cublasOperation_t trans = CUBLAS_OP_T, none = CUBLAS_OP_N;
    cublasCheck(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasCheck(
        cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof trans));
    cublasCheck(
        cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof none));
    cublasCheck(cublasLtMatrixLayoutCreate(&p->a, type, cols, rows, cols));
    cublasCheck(cublasLtMatrixLayoutCreate(&p->b, type, cols, n, cols));
    cublasCheck(cublasLtMatrixLayoutCreate(&p->c, out, rows, n, rows));
    cublasLtMatmulPreference_t pref;
    cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
    size_t ws = WORKSPACE_BYTES;
    cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                     &ws, sizeof ws));
    cublasLtMatmulHeuristicResult_t result;
    int found = 0;
    cublasCheck(cublasLtMatmulAlgoGetHeuristic(lt, p->op, p->a, p->b, p->c, p->c, pref, 1, &result,
                                               &found));
    cublasLtMatmulPreferenceDestroy(pref);
    if (!found)
        si_fatal("cuBLASLt has no algorithm for a%s GEMM of %d x %d x %d",
                 type == CUDA_R_32F ? "n fp32" : " bf16", rows, n, cols);
    p->algo = result.algo;
    return p;
}

/* out = x . w^T + beta * out through the plan for the shape and the types. */
static void gemm(void *out, const void *x, const void *w, int n, int cols, int rows,
                 cudaDataType_t type, cudaDataType_t out_type, float beta)
{
    const gemm_plan *p = plan_for(n, cols, rows, type, out_type);
    float one = 1.0f;
    cublasCheck(cublasLtMatmul(lt, p->op, &one, w, p->a, x, p->b, &beta, out, p->c, out, p->c,
                               &p->algo, workspace, WORKSPACE_BYTES, 0));
}

void cuda_gemm_bf16(float *out, const __nv_bfloat16 *x, const void *w, int n, int cols, int rows)
{
    gemm(out, x, w, n, cols, rows, CUDA_R_16BF, CUDA_R_32F, 0.0f);
}

void cuda_gemm_bf16_out(__nv_bfloat16 *out, const __nv_bfloat16 *x, const void *w, int n, int cols,
                        int rows)
{
    gemm(out, x, w, n, cols, rows, CUDA_R_16BF, CUDA_R_16BF, 0.0f);
}

void cuda_matmul(void *out, const void *x, const void *w, int n, int cols, int rows)
{
    const __nv_bfloat16 *xb = (const __nv_bfloat16 *)x;
    if (n == 1 && cuda_gemv_fits(x, w, cols))
        cuda_gemv_bf16_out((__nv_bfloat16 *)out, xb, w, cols, rows);
    else
        cuda_gemm_bf16_out((__nv_bfloat16 *)out, xb, w, n, cols, rows);
}

void cuda_matmul_logits(float *out, const void *x, const void *w, int n, int cols, int rows)
{
    const __nv_bfloat16 *xb = (const __nv_bfloat16 *)x;
    if (n == 1 && cuda_gemv_fits(x, w, cols))
        cuda_gemv(out, xb, w, cols, rows);
    else
        cuda_gemm_bf16(out, xb, w, n, cols, rows);
}

void cuda_matmul_add(float *y, const void *x, const void *w, int n, int cols, int rows)
{
    const __nv_bfloat16 *xb = (const __nv_bfloat16 *)x;
    if (n == 1 && cuda_gemv_fits(x, w, cols))
        cuda_gemv_add(y, xb, w, cols, rows);
    else
        gemm(y, xb, w, n, cols, rows, CUDA_R_16BF, CUDA_R_32F, 1.0f);
}

/* The fp32 precision's products: X and W as they are, one token included. */
void cuda_matmul_f32(void *out, const void *x, const void *w, int n, int cols, int rows)
{
    gemm(out, x, w, n, cols, rows, CUDA_R_32F, CUDA_R_32F, 0.0f);
}

void cuda_matmul_logits_f32(float *out, const void *x, const void *w, int n, int cols, int rows)
{
    cuda_matmul_f32(out, x, w, n, cols, rows);
}

void cuda_matmul_add_f32(float *y, const void *x, const void *w, int n, int cols, int rows)
{
    gemm(y, x, w, n, cols, rows, CUDA_R_32F, CUDA_R_32F, 1.0f);
}

struct product_args {
    const void *w, *x;
    void *out;
    int n;
    cudaDataType_t type;
};

static void product_once(void *user)
{
    const product_args *g = (const product_args *)user;
    gemm(g->out, g->x, g->w, g->n, g->n, g->n, g->type, CUDA_R_32F, 0.0f);
}

/* The matrix rate of this GPU through the same cuBLASLt path as the model's products (bf16 or fp32
 * operands, fp32 accumulation and output): a square product of N, timed with CUDA events; a
 * burst, or SECONDS of products back to back (backend.h). An H100 at its power cap runs the
 * burst at about 790 TFLOP/s and sustains about 680 (bench/NOTES.md 19). */
static double matmul_rate_of(cudaDataType_t type, size_t elem_size, double seconds)
{
    const int n = 8192, warmup = 3, runs = type == CUDA_R_32F ? 5 : 20;
    size_t elems = (size_t)n * n;
    void *a, *b, *c;
    cudaCheck(cudaMalloc(&a, elem_size * elems));
    cudaCheck(cudaMalloc(&b, elem_size * elems));
    cudaCheck(cudaMalloc(&c, 4 * elems));
    if (type == CUDA_R_32F) {
        cuda_weight_random_f32(a, elems, 1, 1.0f);
        cuda_weight_random_f32(b, elems, 2, 1.0f);
    } else {
        cuda_weight_random(a, elems, 1, 1.0f);
        cuda_weight_random(b, elems, 2, 1.0f);
    }
    product_args g = {a, b, c, n, type};
    double counted = 0; /* seconds of the products counted, RUNS_COUNTED of them */
    long runs_counted = 0;
    if (seconds <= 0) {
        counted = cuda_time_runs(product_once, &g, warmup, runs);
        runs_counted = runs;
    } else {
        double skip = seconds < 2 ? 0 : 1, elapsed = 0;
        while (elapsed < seconds) {
            double t = cuda_time_runs(product_once, &g, 0, runs);
            if (elapsed >= skip)
                counted += t, runs_counted += runs;
            elapsed += t;
        }
    }
    cudaCheck(cudaFree(a));
    cudaCheck(cudaFree(b));
    cudaCheck(cudaFree(c));
    return 2.0 * n * (double)n * n * runs_counted / counted;
}

double cuda_matmul_rate(double seconds)
{
    return matmul_rate_of(CUDA_R_16BF, 2, seconds);
}

double cuda_matmul_rate_f32(double seconds)
{
    return matmul_rate_of(CUDA_R_32F, 4, seconds);
}
