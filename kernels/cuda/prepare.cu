/* Getting the GPU ready for a model's passes while its weights load (backend.h: prepare). A
 * process's first request would otherwise wait, on the host, for what a host thread does here:
 * - cuDNN's loading and the plans of a prefill's first two chunks (the chunk's rows over as many
 *   keys, then over twice as many), about 45 ms a plan (attention_cudnn.cu);
 * - cuBLASLt's first calls for a chunk's four products (the query-key-value product, the output
 *   projection, the gate and up products, the down projection): each shape's algorithm chosen
 *   once and kept (gemm.cu), each kernel loaded at its first launch.
 * The products run once on zeroed scratch of the thread's own, freed before prepare_wait()
 * returns, and only where the GPU has room to spare: twice the weights (other ranks may share
 * the GPU), the scratch and a margin. Until then the thread is the only user of the plan caches;
 * the caller's weight copies share the stream. */
#include <pthread.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

typedef struct {
    pass_shapes s;
    int device;
    int fp32;
} prepare_job;

static prepare_job job;
static pthread_t thread;
static int started;

/* Leave this much free beside the weights and the scratch, for what the first pass allocates. */
#define MARGIN_BYTES ((size_t)2 << 30)

/* BYTES of zeroed device memory, or NULL where there are not so many free now. */
static void *zeroed(size_t bytes)
{
    void *p = NULL;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
        cudaGetLastError(); /* not sticky: clear it */
        return NULL;
    }
    cudaCheck(cudaMemset(p, 0, bytes));
    return p;
}

static size_t max3(size_t a, size_t b, size_t c)
{
    size_t m = a > b ? a : b;
    return m > c ? m : c;
}

/* A chunk's four products, as the forward pass calls them, on X, W and OUT. */
static void products(const pass_shapes *s, int fp32, void *x, void *w, void *out)
{
    int n = s->chunk, hid = s->hidden, inter = s->inter, qd = s->n_heads * s->head_dim;
    int ld = qd + 2 * s->n_kv_heads * s->head_dim;
    if (fp32) {
        cuda_matmul_f32(out, x, w, n, hid, ld);
        cuda_matmul_add_f32((float *)out, x, w, n, qd, hid);
        cuda_matmul_f32(out, x, w, n, hid, inter);
        cuda_matmul_add_f32((float *)out, x, w, n, inter, hid);
    } else {
        cuda_matmul(out, x, w, n, hid, ld);
        cuda_matmul_add((float *)out, x, w, n, qd, hid);
        cuda_matmul(out, x, w, n, hid, inter);
        cuda_matmul_add((float *)out, x, w, n, inter, hid);
    }
}

static void run_products(const prepare_job *j)
{
    const pass_shapes *s = &j->s;
    size_t n = (size_t)s->chunk, hid = s->hidden, inter = s->inter;
    size_t qd = (size_t)s->n_heads * s->head_dim, kvd = (size_t)s->n_kv_heads * s->head_dim;
    size_t ld = qd + 2 * kvd, width = j->fp32 ? 4 : 2;
    size_t x_bytes = n * max3(hid, qd, inter) * width;
    size_t w_bytes = max3(ld * hid, qd * hid, inter * hid) * width;
    size_t out_bytes = n * max3(ld, inter, hid) * 4;
    size_t free_bytes = 0, total = 0;
    cudaCheck(cudaMemGetInfo(&free_bytes, &total));
    if (free_bytes < 2 * s->weight_bytes + x_bytes + w_bytes + out_bytes + MARGIN_BYTES)
        return; /* no room to spare: the first pass makes these choices itself */
    void *x = zeroed(x_bytes), *w = zeroed(w_bytes), *out = zeroed(out_bytes);
    if (x && w && out)
        products(s, j->fp32, x, w, out);
    cudaCheck(cudaFree(x)); /* cudaFree waits for the products; NULL is let be */
    cudaCheck(cudaFree(w));
    cudaCheck(cudaFree(out));
}

static void *prepare_thread(void *arg)
{
    const prepare_job *j = (const prepare_job *)arg;
    cudaCheck(cudaSetDevice(j->device));
#ifdef STARINFER_HAVE_CUDNN
    if (!j->fp32) {
        const pass_shapes *s = &j->s;
        int kvd = s->n_kv_heads * s->head_dim;
        for (int k = 1; k <= 2; k++)
            cuda_attn_cudnn_prepare(s->chunk, k * s->chunk, s->n_heads, s->n_kv_heads, s->head_dim,
                                    kvd);
    }
#endif
    run_products(j);
    return NULL;
}

static void start(const pass_shapes *shapes, int fp32)
{
    if (started || shapes->chunk <= 0)
        return;
    job.s = *shapes;
    job.fp32 = fp32;
    cudaCheck(cudaGetDevice(&job.device));
    if (pthread_create(&thread, NULL, prepare_thread, &job) == 0)
        started = 1; /* otherwise the first pass does it all, as without prepare */
}

void cuda_prepare(const pass_shapes *shapes)
{
    start(shapes, 0);
}

void cuda_prepare_f32(const pass_shapes *shapes)
{
    start(shapes, 1);
}

void cuda_prepare_wait(void)
{
    if (started == 1) {
        pthread_join(thread, NULL);
        started = 2;
    }
}
