#include <math.h>

#include "kernels/cpu/cpu_ops.h"

/* HF LlamaRMSNorm: x * rsqrt(mean(x^2) + eps) * w, all in fp32. */
void cpu_rmsnorm(void *normed, const float *x, const void *weights, int n, int dim, float eps)
{
    const float *w = weights;
    float *out = normed;
#pragma omp parallel for
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * dim;
        float *oi = out + (size_t)i * dim;
        float ss = 0.0f;
        for (int j = 0; j < dim; j++)
            ss += xi[j] * xi[j];
        float inv = 1.0f / sqrtf(ss / dim + eps);
        for (int j = 0; j < dim; j++)
            oi[j] = w[j] * (xi[j] * inv);
    }
}
