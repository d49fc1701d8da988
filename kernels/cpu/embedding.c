#include <string.h>

#include "kernels/cpu/cpu_ops.h"

void cpu_embedding(float *out, const float *table, const int *ids, int n, int dim)
{
#pragma omp parallel for
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * dim, table + (size_t)ids[i] * dim, sizeof(float) * dim);
}
