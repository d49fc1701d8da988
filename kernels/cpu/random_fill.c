#include "kernels/cpu/cpu_ops.h"
#include "kernels/random_weights.h"

void cpu_weight_random(void *dst, size_t count, uint64_t seed, float scale)
{
    float *w = dst;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++)
        w[i] = scale * random_weight_unit(seed, i);
}
