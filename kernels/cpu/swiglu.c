#include <math.h>

#include "kernels/cpu/cpu_ops.h"

/* The products side by side in OUT, then the gating over the first half. */
void cpu_matmul_swiglu(void *out, const void *x, const void *w_gate_up, int cols, int inter)
{
    cpu_matmul(out, x, w_gate_up, 1, cols, 2 * inter);
    cpu_swiglu(out, (const float *)out + inter, (size_t)inter);
}

/* The two products, gated in place, then the down projection added into Y. */
void cpu_mlp(float *y, float *gate, float *up, const void *x, const void *w_gate, const void *w_up,
             const void *w_down, int n, int hidden, int inter)
{
    cpu_matmul(gate, x, w_gate, n, hidden, inter);
    cpu_matmul(up, x, w_up, n, hidden, inter);
    cpu_swiglu(gate, up, (size_t)n * inter);
    cpu_matmul_add(y, gate, w_down, n, inter, hidden);
}

void cpu_swiglu(float *gate, const float *up, size_t n)
{
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}
