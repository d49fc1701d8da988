#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

/* Keys are folded in chunks so that the per-chunk scores stay on the stack. */
#define KEY_CHUNK 128

void cpu_attn_init(attn_state *s, int rows, int head_dim)
{
    for (int r = 0; r < rows; r++) {
        s->m[r] = -INFINITY;
        s->l[r] = 0.0f;
    }
    memset(s->o, 0, sizeof(float) * (size_t)rows * head_dim);
}

/* Online softmax over one query row and one head: the state (m, l, o) absorbs each chunk of
 * scores, rescaling what it held by exp(m_old - m_new). */
static void fold_row(float *m, float *l, float *o, const float *q, const attn_keys *keys,
                     int visible, int kv_offset, int head_dim, float scale)
{
    float scores[KEY_CHUNK];
    for (int j0 = 0; j0 < visible; j0 += KEY_CHUNK) {
        int jn = visible - j0 < KEY_CHUNK ? visible - j0 : KEY_CHUNK;
        float cmax = -INFINITY;
        for (int jj = 0; jj < jn; jj++) {
            const float *k = (const float *)keys->k + (size_t)(j0 + jj) * keys->kv_stride + kv_offset;
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int t = 0; t < head_dim; t++)
                dot += q[t] * k[t];
            scores[jj] = dot * scale;
            cmax = fmaxf(cmax, scores[jj]);
        }
        float m_new = fmaxf(*m, cmax);
        float alpha = expf(*m - m_new); /* 0 when the row held nothing (m = -inf) */
        *l *= alpha;
        for (int t = 0; t < head_dim; t++)
            o[t] *= alpha;
        for (int jj = 0; jj < jn; jj++) {
            const float *v = (const float *)keys->v + (size_t)(j0 + jj) * keys->kv_stride + kv_offset;
            float p = expf(scores[jj] - m_new);
            *l += p;
            for (int t = 0; t < head_dim; t++)
                o[t] += p * v[t];
        }
        *m = m_new;
    }
}

void cpu_attn_accumulate(attn_state *s, const void *queries, int nq, int n_heads, int n_kv_heads,
                         int head_dim, const attn_keys *keys, float scale)
{
    const float *q = queries;
    int group = n_heads / n_kv_heads;
#pragma omp parallel for collapse(2) schedule(dynamic, 4)
    for (int i = 0; i < nq; i++) {
        for (int h = 0; h < n_heads; h++) {
            long last = (long)i + keys->diag; /* last visible key */
            int visible = last + 1 < keys->nk ? (int)(last + 1) : keys->nk;
            if (visible <= 0)
                continue;
            size_t r = (size_t)i * n_heads + h;
            fold_row(&s->m[r], &s->l[r], s->o + r * head_dim,
                     q + (size_t)i * n_heads * head_dim + (size_t)h * head_dim, keys, visible,
                     (h / group) * head_dim, head_dim, scale);
        }
    }
}

void cpu_attn_finalize(void *normalised, const attn_state *s, int rows, int head_dim)
{
    float *out = normalised;
#pragma omp parallel for
    for (int r = 0; r < rows; r++) {
        float inv = s->l[r] > 0.0f ? 1.0f / s->l[r] : 0.0f;
        for (int t = 0; t < head_dim; t++)
            out[(size_t)r * head_dim + t] = s->o[(size_t)r * head_dim + t] * inv;
    }
}

void cpu_attend_project(float *y, attn_state *s, void *att, const void *q, int nq, int n_heads,
                        int n_kv_heads, int head_dim, const attn_keys *keys, float scale,
                        const void *w_o, int rows)
{
    cpu_attn_init(s, nq * n_heads, head_dim);
    cpu_attn_accumulate(s, q, nq, n_heads, n_kv_heads, head_dim, keys, scale);
    cpu_attn_finalize(att, s, nq * n_heads, head_dim);
    cpu_matmul_add(y, att, w_o, nq, n_heads * head_dim, rows);
}
