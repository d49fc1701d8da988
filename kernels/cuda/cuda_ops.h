/* The CUDA backend's operations: bf16 weights, KV cache and activations, an fp32 residual stream
 * and softmax state. Launched on the default stream; each is documented where backend.h declares
 * its slot. The _f32 forms are the fp32 precision's (CUDA_FP32): weights, KV cache and
 * activations in fp32, and every product in fp32, as the CPU computes them. */
#ifndef STARINFER_KERNELS_CUDA_OPS_H
#define STARINFER_KERNELS_CUDA_OPS_H

#include <cuda_bf16.h>

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Device scratch that grows on demand (never on the hot path once warmed up). */
void *cuda_scratch(int slot, size_t bytes);
enum {
    SCRATCH_IDS = 0,
    SCRATCH_POS,
    SCRATCH_QKV,
    SCRATCH_ATTN,
    SCRATCH_SAMPLE,
    SCRATCH_ATTN_DONE,
    SCRATCH_CUDNN_O,
    SCRATCH_CUDNN_STATS,
    SCRATCH_CUDNN_WORKSPACE,
    SCRATCH_COUNT
};
/* Host ints (token ids or positions) copied to device scratch, queued in order with the
 * operations (HOST may be reused at once). */
const int *cuda_upload_ints(int slot, const int *host, int n);
/* Host positions on the device, uploaded once while they are unchanged (rope.cu). */
const int *cuda_positions(const int *pos, int n);

/* The bf16 precision (CUDA_BF16): activations in bf16 (void * slots hold __nv_bfloat16). */
void cuda_f32_to_bf16(__nv_bfloat16 *dst, const float *src, size_t n);
/* N F16 values at V rounded to bf16 in place (an F16 checkpoint's weights, once uploaded). */
void cuda_f16_to_bf16_inplace(void *v, size_t n);
/* Weights as stored (TYPE at SRC) into bf16 or fp32 at DST, queued (weight_upload.cu). */
void cuda_weight_upload(void *dst, const void *src, elem_type type, size_t count);
void cuda_weight_upload_f32(void *dst, const void *src, elem_type type, size_t count);
void cuda_act_upload(void *dst, const float *src, size_t count);
void cuda_act_download(float *dst, const void *src, size_t count);
void cuda_kv_write(void *k_dst, void *v_dst, const float *k, const float *v, size_t count);
void cuda_embedding(float *out, const void *table, const int *ids, int n, int dim);
void cuda_rmsnorm(void *out, const float *x, const void *w, int n, int dim, float eps);
void cuda_gemm_init(void);
/* bf16 rows X times W: into bf16 OUT (cuda_matmul), fp32 OUT (cuda_matmul_logits), or added into
 * fp32 Y (cuda_matmul_add); one token (n = 1) through gemv.cu where it fits, more through
 * cuBLASLt (fp32 accumulation, rounded once at the end). */
void cuda_matmul(void *out, const void *x, const void *w, int n, int cols, int rows);
void cuda_matmul_logits(float *out, const void *x, const void *w, int n, int cols, int rows);
void cuda_matmul_add(float *y, const void *x, const void *w, int n, int cols, int rows);
/* cuBLASLt's product of N > 1 bf16 rows, into fp32 or bf16 OUT. */
void cuda_gemm_bf16(float *out, const __nv_bfloat16 *x, const void *w, int n, int cols, int rows);
void cuda_gemm_bf16_out(__nv_bfloat16 *out, const __nv_bfloat16 *x, const void *w, int n, int cols,
                        int rows);
/* One token's product (n = 1) by a bandwidth-bound kernel of ours, where the shapes allow it:
 * COLS a multiple of 8 and X and W on 16-byte boundaries (cuda_gemv_fits). */
int cuda_gemv_fits(const void *x, const void *w, int cols);
void cuda_gemv(float *out, const __nv_bfloat16 *x, const void *w, int cols, int rows);
void cuda_gemv_bf16_out(__nv_bfloat16 *out, const __nv_bfloat16 *x, const void *w, int cols,
                        int rows);
void cuda_gemv_add(float *y, const __nv_bfloat16 *x, const void *w, int cols, int rows);
void cuda_qkv(void *q, void *k, void *v, const void *x, const qkv_proj *p, const int *pos, int n);
void cuda_matmul_swiglu(void *out, const void *x, const void *w_gate_up, int cols, int inter);
void cuda_mlp(float *y, float *gate, float *up, const void *x, const void *w_gate, const void *w_up,
              const void *w_down, int n, int hidden, int inter);
void cuda_swiglu(float *gate, const float *up, size_t n);
void cuda_attn_init(attn_state *s, int rows, int head_dim);
void cuda_attn_accumulate(attn_state *s, const void *q, int nq, int n_heads, int n_kv_heads,
                          int head_dim, const attn_keys *keys, float scale);
/* Attention of at most 16 (query, head) rows per KV head over NK keys (flash-decoding, one
 * launch): where cuda_attn_decode_fits, cuda_attn_accumulate hands its work to it. It folds the
 * keys into S, or with OUT not NULL writes the normalised bf16 output there, S unused. */
int cuda_attn_decode_fits(int nq, int n_heads, int n_kv_heads);
void cuda_attn_decode(attn_state *s, void *out, const __nv_bfloat16 *q, int nq, int n_heads,
                      int n_kv_heads, int head_dim, const attn_keys *keys, int nk, float scale);
/* The decoded rows' attention over KEYS alone, normalised into OUT (bf16 [nq][n_heads][d]) in
 * one launch, no state to set up and finalize: 1, or 0 where the decode kernel does not take
 * the shape (the caller then composes init, accumulate and finalize). */
int cuda_attn_decode_alone(void *out, const void *q, int nq, int n_heads, int n_kv_heads,
                           int head_dim, const attn_keys *keys, float scale);
/* Prefill attention (at least 256 query rows, every key visible or causal from the bottom right)
 * through cuDNN's fused kernel, where cuDNN is loaded and has an engine for the shape
 * (attention_cudnn.cu): 1 when it folded KEYS into S, 0 when the caller's kernels must. */
int cuda_attn_cudnn(attn_state *s, const __nv_bfloat16 *q, int nq, int n_heads, int n_kv_heads,
                    int head_dim, const attn_keys *keys, int nk, float scale);
void cuda_attn_finalize(void *out, const attn_state *s, int rows, int head_dim);
/* cuDNN's normalised output O (bf16 [nq][n_heads][d], in scratch) of NQ queries over KEYS alone,
 * or NULL where cuDNN does not take them (attention_cudnn.cu). */
const __nv_bfloat16 *cuda_attn_cudnn_alone(const __nv_bfloat16 *q, int nq, int n_heads,
                                           int n_kv_heads, int head_dim, const attn_keys *keys,
                                           float scale);
/* Loads cuDNN and builds the plan of NQ queries over NK keys from the bottom right, causal, as a
 * prefill's chunk asks for it (prepare.cu). */
void cuda_attn_cudnn_prepare(int nq, int nk, int n_heads, int n_kv_heads, int head_dim,
                             int kv_stride);
/* backend.h's prepare slots (prepare.cu). */
void cuda_prepare(const pass_shapes *shapes);
void cuda_prepare_f32(const pass_shapes *shapes);
void cuda_prepare_wait(void);
void cuda_attend_project(float *y, attn_state *s, void *att, const void *q, int nq, int n_heads,
                         int n_kv_heads, int head_dim, const attn_keys *keys, float scale,
                         const void *w_o, int rows);
void cuda_weight_random(void *dst, size_t count, uint64_t seed, float scale);
/* Seconds that RUNS calls of OP(USER) take on the GPU after WARMUP more, by CUDA events. */
double cuda_time_runs(void (*op)(void *user), void *user, int warmup, int runs);
double cuda_matmul_rate(double seconds);
double cuda_matmul_rate_f32(double seconds);
double cuda_copy_rate(void);
void cuda_device_name(char *buf, size_t len);
/* BE itself, or, with STARINFER_OP_PROFILE=1, BE with its operations timed (op_profile.cu). */
const backend *cuda_op_profile_wrap(const backend *be);
int cuda_sample(const float *logits, int vocab, float temperature, float top_p, float u);

/* The fp32 precision (CUDA_FP32): activations in fp32. */
void cuda_kv_write_f32(void *k_dst, void *v_dst, const float *k, const float *v, size_t count);
void cuda_embedding_f32(float *out, const void *table, const int *ids, int n, int dim);
void cuda_rmsnorm_f32(void *out, const float *x, const void *w, int n, int dim, float eps);
void cuda_matmul_f32(void *out, const void *x, const void *w, int n, int cols, int rows);
void cuda_matmul_logits_f32(float *out, const void *x, const void *w, int n, int cols, int rows);
void cuda_matmul_add_f32(float *y, const void *x, const void *w, int n, int cols, int rows);
void cuda_qkv_f32(void *q, void *k, void *v, const void *x, const qkv_proj *p, const int *pos,
                  int n);
void cuda_matmul_swiglu_f32(void *out, const void *x, const void *w_gate_up, int cols, int inter);
void cuda_mlp_f32(float *y, float *gate, float *up, const void *x, const void *w_gate,
                  const void *w_up, const void *w_down, int n, int hidden, int inter);
/* Attention in fp32 throughout (attention_f32.cu): any head_dim up to 256. */
void cuda_attn_accumulate_f32(attn_state *s, const void *q, int nq, int n_heads, int n_kv_heads,
                              int head_dim, const attn_keys *keys, float scale);
void cuda_attn_finalize_f32(void *out, const attn_state *s, int rows, int head_dim);
void cuda_weight_random_f32(void *dst, size_t count, uint64_t seed, float scale);
void cuda_attend_project_f32(float *y, attn_state *s, void *att, const void *q, int nq, int n_heads,
                             int n_kv_heads, int head_dim, const attn_keys *keys, float scale,
                             const void *w_o, int rows);

#ifdef __cplusplus
}
#endif

#endif
