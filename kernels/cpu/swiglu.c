#include <math.h>

#include "kernels/cpu/cpu_ops.h"

void cpu_swiglu(float *gate, const float *up, size_t n)
{
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}
