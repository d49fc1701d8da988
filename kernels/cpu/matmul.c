#include <cblas.h>

#include "kernels/cpu/cpu_ops.h"

/* out[n][rows] = x[n][cols] . w[rows][cols]^T; w is stored as torch stores a Linear's weight. */
void cpu_matmul(void *out, const void *x, const void *w, int n, int cols, int rows)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, rows, cols, 1.0f, x, cols, w, cols,
                0.0f, out, rows);
}

/* y[n][rows] += x[n][cols] . w[rows][cols]^T: BLAS adds the product into Y (beta = 1). */
void cpu_matmul_add(float *y, const void *x, const void *w, int n, int cols, int rows)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, rows, cols, 1.0f, x, cols, w, cols,
                1.0f, y, rows);
}

/* The CPU's activations are fp32: the logits' product is the same. */
void cpu_matmul_logits(float *out, const void *x, const void *w, int n, int cols, int rows)
{
    cpu_matmul(out, x, w, n, cols, rows);
}
