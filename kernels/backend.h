/* The backend interface: every operation the model's forward pass needs, on buffers that live
 * where the backend computes (host memory for the CPU, device memory for CUDA). The CPU backend is
 * the reference: fp32 throughout, the matrix products through BLAS.
 *
 * Attention is split so that partial results over different key sets (an anchor and a block, or
 * the KV caches of different MPI ranks) can be merged exactly (Star Attention, arXiv 2411.17116,
 * section 2.2): a row's state is its running max m, denominator l = sum exp(s - m) and
 * unnormalised numerator o = sum exp(s - m) v, as in online softmax. */
#ifndef STARINFER_KERNELS_BACKEND_H
#define STARINFER_KERNELS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/convert.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One set of keys and values attended to by NQ query tokens. Key j is visible to query i iff
 * j <= i + diag; diag >= nk makes every key visible (context keys), diag = 0 is plain causal
 * attention of new tokens over themselves. */
typedef struct {
    const void *k; /* [nk][kv_stride] in the backend's KV format, head g at g * head_dim */
    const void *v; /* [nk][kv_stride] */
    int nk;
    int kv_stride;
    int diag;
} attn_keys;

/* What a model's passes will run, for a backend that gets ready for them ahead (prepare). */
typedef struct {
    int hidden, inter, n_heads, n_kv_heads, head_dim;
    int chunk;           /* rows of a prefill's pass */
    size_t weight_bytes; /* what the weights are about to take on the backend */
} pass_shapes;

/* Attention state of NQ query tokens x N_HEADS heads; row r = i * n_heads + h. */
typedef struct {
    float *m; /* [rows] */
    float *l; /* [rows] */
    float *o; /* [rows][head_dim] */
} attn_state;

/* Weights and the KV cache are kept in the backend's own formats (fp32 on the CPU; bf16 on CUDA,
 * or fp32 in its CUDA_FP32 precision): WEIGHT_SIZE and KV_SIZE bytes per element.
 *
 * The rows that pass from one operation of a layer to the next (the normed rows the products
 * read, the queries, attention's output and the products' outputs) are in the backend's
 * activation format: ACT_SIZE bytes per element, fp32 on the CPU and in CUDA_FP32, bf16 on CUDA,
 * as bf16 inference keeps them. They are declared void *. The residual stream, the attention
 * state and the logits are fp32 everywhere (float *). */

/* A layer's query, key and value projections, and the rotation of the queries and keys. */
typedef struct {
    const void *wq, *wk, *wv; /* [n_heads * head_dim][cols], [n_kv_heads * head_dim][cols] x 2 */
    const void *wqkv;         /* wq, wk, wv back to back in one allocation, or NULL */
    const float *inv_freq;    /* [head_dim / 2], in backend memory */
    int cols, n_heads, n_kv_heads, head_dim;
} qkv_proj;

typedef struct backend {
    const char *name;
    int host_memory;    /* buffers are host memory: weights are used where they were loaded */
    size_t weight_size; /* bytes per weight element */
    size_t kv_size;     /* bytes per K/V cache element */
    size_t act_size;    /* bytes per activation element */
    /* Bytes free where this backend allocates (host memory, or the GPU's). */
    size_t (*mem_available)(void);
    void *(*alloc)(size_t bytes, const char *what);
    void (*free)(void *p);
    /* Host memory the backend copies from and to fastest (pinned for CUDA). */
    void *(*host_alloc)(size_t bytes, const char *what);
    void (*host_free)(void *p);
    void (*to_device)(void *dst, const void *src, size_t bytes);
    void (*to_host)(void *dst, const void *src, size_t bytes);
    /* The same copies queued in order with the operations, returning at once: the host side is
     * host_alloc memory, left alone until synchronize() has returned (a copy to the host has
     * landed then, and one to the device has been read). */
    void (*to_device_async)(void *dst, const void *src, size_t bytes);
    void (*to_host_async)(void *dst, const void *src, size_t bytes);
    /* COUNT host values of TYPE at SRC (any alignment: a mapped file) into the backend's weight
     * format at DST. It may return before a device has the values, ordered before the work that
     * follows; SRC may be unmapped as soon as it returns. */
    void (*weight_upload)(void *dst, const void *src, elem_type type, size_t count);
    /* COUNT fp32 host values into the activation format at DST (backend memory), and back. */
    void (*act_upload)(void *dst, const float *src, size_t count);
    void (*act_download)(float *dst, const void *src, size_t count);
    /* COUNT fp32 values of K and V into the cache's format at K_DST and V_DST. */
    void (*kv_write)(void *k_dst, void *v_dst, const float *k, const float *v, size_t count);

    /* out[i] = table[ids[i]], rows of DIM, into the residual stream. IDS is a host array. */
    void (*embedding)(float *out, const void *table, const int *ids, int n, int dim);
    /* out[i] = x[i] / rms(x[i]) * w, per row of DIM (HF LlamaRMSNorm, in fp32), written in the
     * activation format. */
    void (*rmsnorm)(void *out, const float *x, const void *w, int n, int dim, float eps);
    /* out[n][rows] = x[n][cols] . w[rows][cols]^T (a torch Linear without bias), activations in
     * and out. */
    void (*matmul)(void *out, const void *x, const void *w, int n, int cols, int rows);
    /* The same product into fp32 OUT: the logits. */
    void (*matmul_logits)(float *out, const void *x, const void *w, int n, int cols, int rows);
    /* The same product added into the residual stream: y[n][rows] += x . w^T, the sum of fp32
     * Y and the product's fp32 accumulation (a block's output projection). */
    void (*matmul_add)(float *y, const void *x, const void *w, int n, int cols, int rows);
    /* The attention's inputs of N new tokens at positions POS (host array) from their normed
     * rows X: the queries rope(x . wq^T) into Q ([n][n_heads * head_dim]; none where Q is NULL),
     * and the keys rope(x . wk^T) and values x . wv^T into the KV cache's rows at K and V
     * ([n][n_kv_heads * head_dim] each, in the cache's format; none where K is NULL). Rotary
     * embedding in the rotate-half convention of HF checkpoints, angle pos * inv_freq[j]
     * rounded to fp32 as the reference computes it. */
    void (*qkv)(void *q, void *k, void *v, const void *x, const qkv_proj *p, const int *pos, int n);
    /* One token's MLP first half: out[j] = silu(x . w_gate[j]) * (x . w_up[j]) for j < INTER,
     * where W_GATE_UP is w_gate then w_up back to back ([2 inter][cols]). OUT has room for
     * 2 * INTER fp32 values (a backend may compute both products there first). */
    void (*matmul_swiglu)(void *out, const void *x, const void *w_gate_up, int cols, int inter);
    /* The MLP of N rows added into the residual stream: y[n][hidden] +=
     * (silu(x . w_gate^T) * (x . w_up^T)) . w_down^T, with
     * W_GATE and W_UP [inter][hidden] and W_DOWN [hidden][inter]. GATE and UP (room for
     * n * inter fp32 values each) are the backend's scratch: the CPU keeps the two products there
     * in fp32 and gates in fp32; CUDA keeps them in bf16, as bf16 inference does. */
    void (*mlp)(float *y, float *gate, float *up, const void *x, const void *w_gate,
                const void *w_up, const void *w_down, int n, int hidden, int inter);

    /* Sets ROWS rows to m = -inf, l = 0, o = 0. */
    void (*attn_init)(attn_state *s, int rows, int head_dim);
    /* Folds the keys KEYS into the state of NQ queries Q [nq][n_heads * head_dim] (grouped-query
     * attention: query head h reads KV head h / (n_heads / n_kv_heads)). */
    void (*attn_accumulate)(attn_state *s, const void *q, int nq, int n_heads, int n_kv_heads,
                            int head_dim, const attn_keys *keys, float scale);
    /* out[r] = o[r] / l[r] (zero where l = 0: a row that saw no key), in the activation format.
     * OUT and s->o are distinct. */
    void (*attn_finalize)(void *out, const attn_state *s, int rows, int head_dim);
    /* A layer's attention where no other key set or process is merged in (global attention):
     * NQ queries over KEYS alone, normalised, then the output projection added into the
     * residual stream, y[nq][rows] += attention . w_o[rows][n_heads * head_dim]^T. S
     * (nq * n_heads rows) and ATT ([nq][n_heads * head_dim]) are scratch: attn_init,
     * attn_accumulate and attn_finalize into ATT, then matmul_add, unless the backend has a
     * shorter way (CUDA hands cuDNN's bf16 output to the projection as it is). */
    void (*attend_project)(float *y, attn_state *s, void *att, const void *q, int nq, int n_heads,
                           int n_kv_heads, int head_dim, const attn_keys *keys, float scale,
                           const void *w_o, int rows);

    /* For benchmarks. COUNT weights at DST set to SCALE * random_weight_unit(SEED, i)
     * (kernels/random_weights.h) in the backend's weight format: the same values everywhere. */
    void (*weight_random)(void *dst, size_t count, uint64_t seed, float scale);
    /* Returns once every operation issued so far has finished: call it before reading a timer. */
    void (*synchronize)(void);
    /* Bytes held through alloc and the backend's own scratch: the high-water mark since the last
     * mem_peak_reset, which restarts it from what is held now. */
    size_t (*mem_peak)(void);
    void (*mem_peak_reset)(void);
    /* Scratch the operations allocate on their own for a forward pass of N tokens whose GEMM
     * inputs have rows of at most WIDEST values and whose queries have Q_DIM (bf16 copies of
     * GEMM inputs and of the queries, cuDNN attention's output), for the memory plan. */
    size_t (*scratch_bytes)(int n, int widest, int q_dim);
    /* Rates measured now, for the roofline: a large matrix product (bf16 GEMM through cuBLAS on
     * CUDA, BLAS sgemm on the CPU) in FLOP/s, and a large copy in bytes read + written per s.
     * SECONDS 0 times a short burst of products, as a device runs before its power or thermal
     * limits act; SECONDS > 0 runs them back to back that long and gives the rate of all but
     * the first second (all of it under 2 s): what the device sustains once they act. */
    double (*matmul_rate)(double seconds);
    double (*copy_rate)(void);
    /* Gets ready for passes of SHAPES on a host thread while the caller goes on (loads the
     * weights): on a GPU, cuDNN loaded with the plans of a prefill's first two chunks, and a
     * chunk's products run once on scratch, so that cuBLASLt's choices are made and its kernels
     * loaded. A process's first request otherwise waits for these, about 0.25 s at 16K on an
     * H100. prepare_wait() returns once it is done, and comes before any other operation; each
     * is called at most once. NULL where there is nothing to get ready (the CPU). */
    void (*prepare)(const pass_shapes *shapes);
    void (*prepare_wait)(void);
    /* The device's name ("NVIDIA H100 80GB HBM3", or the CPU's model name). */
    void (*device_name)(char *buf, size_t len);
    /* The next token from one row of VOCAB logits in backend memory; only the id comes back.
     * TEMPERATURE <= 0: the lowest id of the largest logit (as torch.argmax). Otherwise nucleus
     * sampling with the caller's uniform draw U in [0, 1), the same rule on every backend:
     * p_i = exp((logit_i - max) / temperature) in fp32; sort by p descending (ties: lower id
     * first); cum_j = the sum of the first j + 1 in double; keep the first k = 1 + the least j
     * with cum_j >= top_p * cum_last (all where rounding finds none); pick the least j < k with
     * cum_j > u * cum_(k-1) (the last kept where rounding finds none). -1 when a logit is NaN or
     * the largest is not finite: the model's numbers have gone wrong, and no token is right. */
    int (*sample)(const float *logits, int vocab, float temperature, float top_p, float u);
} backend;

const backend *backend_cpu(void);

/* The CUDA backend's number formats. BF16: weights and KV cache in bf16, the products' inputs
 * rounded to bf16 (the fast default). FP32: weights, KV cache and every product in fp32 as the
 * CPU backend keeps them (no TF32, no bf16 anywhere), for answers that match the CPU's. */
typedef enum { CUDA_BF16 = 0, CUDA_FP32 } cuda_precision;

/* The CUDA backend on device DEVICE in PRECISION (NULL, with a message in ERR, where it cannot
 * start; one device and one precision per process). Compiled in when the CUDA toolkit is
 * present (STARINFER_HAVE_CUDA). */
const backend *backend_cuda(int device, cuda_precision precision, char *err, size_t err_len);
/* Number of CUDA devices visible (0 without the toolkit, a driver or a GPU). */
int backend_cuda_device_count(void);
/* The PCI bus id ("0000:65:00.0") of DEVICE, for placing the rank near its GPU. */
int backend_cuda_pci_bus_id(int device, char *buf, size_t len);
/* The cuDNN version whose fused attention runs long prefill chunks (e.g. 91900), or 0 where
 * starinfer's own kernel runs them (no cuDNN 9 found, STARINFER_CUDNN=0, or built without
 * cuDNN's headers). */
int backend_cuda_cudnn_version(void);

#ifdef __cplusplus
}
#endif

#endif
