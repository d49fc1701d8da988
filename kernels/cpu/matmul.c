#include <cblas.h>

#include "kernels/cpu/cpu_ops.h"

/* out[n][rows] = x[n][cols] . w[rows][cols]^T; w is stored as torch stores a Linear's weight. */
void cpu_matmul(float *out, const float *x, const void *w, int n, int cols, int rows)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, rows, cols, 1.0f, x, cols, w, cols,
                0.0f, out, rows);
}

void cpu_matmul_many(float *const *out, const float *x, const void *const *w, const int *rows,
                     int count, int n, int cols)
{
    for (int i = 0; i < count; i++)
        cpu_matmul(out[i], x, w[i], n, cols, rows[i]);
}
