#include <math.h>

#include "kernels/cpu/cpu_ops.h"

/* The products side by side in OUT, then the gating over the first half. */
void cpu_matmul_swiglu(float *out, const float *x, const void *w_gate_up, int cols, int inter)
{
    cpu_matmul(out, x, w_gate_up, 1, cols, 2 * inter);
    cpu_swiglu(out, out + inter, (size_t)inter);
}

/* Gated in place, then the product. */
void cpu_matmul_gated(float *out, float *gate, const float *up, const void *w, int n, int cols,
                      int rows)
{
    cpu_swiglu(gate, up, (size_t)n * cols);
    cpu_matmul(out, gate, w, n, cols, rows);
}

void cpu_swiglu(float *gate, const float *up, size_t n)
{
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}
