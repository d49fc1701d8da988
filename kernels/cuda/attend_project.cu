/* A layer's attention over one key set alone, then its output projection (global attention's
 * prefill and decoding). Where cuDNN takes the shape (prefill), its normalised bf16 output goes as
 * it is to the projection's GEMM: no attention state to set up, fold and normalise. Decoding's
 * kernel does the same: its last block per KV head writes the normalised rows. Elsewhere (short
 * chunks, cuDNN absent) it is the composition every backend has: init, accumulate, finalize,
 * matmul_add. The projection is added into the residual stream Y. */
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

void cuda_attend_project(float *y, attn_state *s, void *att, const void *q, int nq, int n_heads,
                         int n_kv_heads, int head_dim, const attn_keys *keys, float scale,
                         const void *w_o, int rows)
{
#ifdef STARINFER_HAVE_CUDNN
    const __nv_bfloat16 *o = cuda_attn_cudnn_alone((const __nv_bfloat16 *)q, nq, n_heads,
                                                   n_kv_heads, head_dim, keys, scale);
    if (o) {
        cuda_matmul_add(y, o, w_o, nq, n_heads * head_dim, rows);
        return;
    }
#endif
    if (cuda_attn_decode_alone(att, q, nq, n_heads, n_kv_heads, head_dim, keys, scale)) {
        cuda_matmul_add(y, att, w_o, nq, n_heads * head_dim, rows);
        return;
    }
    cuda_attn_init(s, nq * n_heads, head_dim);
    cuda_attn_accumulate(s, q, nq, n_heads, n_kv_heads, head_dim, keys, scale);
    cuda_attn_finalize(att, s, nq * n_heads, head_dim);
    cuda_matmul_add(y, att, w_o, nq, n_heads * head_dim, rows);
}

void cuda_attend_project_f32(float *y, attn_state *s, void *att, const void *q, int nq, int n_heads,
                             int n_kv_heads, int head_dim, const attn_keys *keys, float scale,
                             const void *w_o, int rows)
{
    cuda_attn_init(s, nq * n_heads, head_dim);
    cuda_attn_accumulate_f32(s, q, nq, n_heads, n_kv_heads, head_dim, keys, scale);
    cuda_attn_finalize_f32(att, s, nq * n_heads, head_dim);
    cuda_matmul_add_f32(y, att, w_o, nq, n_heads * head_dim, rows);
}
