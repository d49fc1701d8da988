/* The CPU backend's operations (fp32, OpenMP over rows, BLAS for the matrix products). Each is
 * documented where backend.h declares its slot. */
#ifndef STARINFER_KERNELS_CPU_OPS_H
#define STARINFER_KERNELS_CPU_OPS_H

#include "kernels/backend.h"

void cpu_embedding(float *out, const void *table, const int *ids, int n, int dim);
void cpu_rmsnorm(void *out, const float *x, const void *w, int n, int dim, float eps);
void cpu_matmul(void *out, const void *x, const void *w, int n, int cols, int rows);
void cpu_matmul_logits(float *out, const void *x, const void *w, int n, int cols, int rows);
void cpu_matmul_add(float *y, const void *x, const void *w, int n, int cols, int rows);
void cpu_rope(float *x, const int *pos, int n, int row, int n_heads, int head_dim,
              const float *inv_freq);
void cpu_qkv(void *q, void *k, void *v, const void *x, const qkv_proj *p, const int *pos, int n);
void cpu_swiglu(float *gate, const float *up, size_t n);
void cpu_mlp(float *y, float *gate, float *up, const void *x, const void *w_gate, const void *w_up,
             const void *w_down, int n, int hidden, int inter);
void cpu_matmul_swiglu(void *out, const void *x, const void *w_gate_up, int cols, int inter);
void cpu_attn_init(attn_state *s, int rows, int head_dim);
void cpu_attn_accumulate(attn_state *s, const void *q, int nq, int n_heads, int n_kv_heads,
                         int head_dim, const attn_keys *keys, float scale);
void cpu_attend_project(float *y, attn_state *s, void *att, const void *q, int nq, int n_heads,
                        int n_kv_heads, int head_dim, const attn_keys *keys, float scale,
                        const void *w_o, int rows);
void cpu_attn_finalize(void *out, const attn_state *s, int rows, int head_dim);
void cpu_weight_random(void *dst, size_t count, uint64_t seed, float scale);
double cpu_matmul_rate(double seconds);
double cpu_copy_rate(void);
void cpu_device_name(char *buf, size_t len);
int cpu_sample(const float *logits, int vocab, float temperature, float top_p, float u);

#endif
