#include <string.h>

#include "kernels/cpu/cpu_ops.h"

void cpu_embedding(float *out, const void *weights, const int *ids, int n, int dim)
{
    const float *table = weights;
#pragma omp parallel for
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * dim, table + (size_t)ids[i] * dim, sizeof(float) * dim);
}
