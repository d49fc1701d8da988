#include <math.h>

#include "kernels/cpu/cpu_ops.h"

/* The attention's inputs of new tokens: the query, key and value products, and the rotary
 * embedding of the queries and keys.
 *
 * Rotary embedding in the rotate-half convention of HF checkpoints: for j < d/2,
 * x'[j] = x[j] cos - x[j + d/2] sin and x'[j + d/2] = x[j + d/2] cos + x[j] sin, with the angle
 * pos * inv_freq[j] rounded to fp32 as the reference computes it. */
void cpu_rope(float *x, const int *pos, int n, int row, int n_heads, int head_dim,
              const float *inv_freq)
{
    int half = head_dim / 2;
#pragma omp parallel for
    for (int i = 0; i < n; i++) {
        float p = (float)pos[i];
        for (int j = 0; j < half; j++) {
            float angle = p * inv_freq[j];
            float c = cosf(angle), s = sinf(angle);
            for (int h = 0; h < n_heads; h++) {
                float *xh = x + (size_t)i * row + (size_t)h * head_dim;
                float a = xh[j], b = xh[j + half];
                xh[j] = a * c - b * s;
                xh[j + half] = b * c + a * s;
            }
        }
    }
}

/* The products straight into Q and the cache's rows (fp32 both), then the rotations in place. */
void cpu_qkv(void *q, void *k, void *v, const void *x, const qkv_proj *p, const int *pos, int n)
{
    int qd = p->n_heads * p->head_dim, kvd = p->n_kv_heads * p->head_dim;
    if (q) {
        cpu_matmul(q, x, p->wq, n, p->cols, qd);
        cpu_rope(q, pos, n, qd, p->n_heads, p->head_dim, p->inv_freq);
    }
    if (k) {
        cpu_matmul(k, x, p->wk, n, p->cols, kvd);
        cpu_matmul(v, x, p->wv, n, p->cols, kvd);
        cpu_rope(k, pos, n, kvd, p->n_kv_heads, p->head_dim, p->inv_freq);
    }
}
