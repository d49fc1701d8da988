/* Phase 2's merge, the two forms side by side (DESIGN.md 1.3): MPI_MAX then MPI_SUM on packed
 * (l, o), against one MPI_Allreduce with a user-defined op on packed (m, l, o) records. Times
 * both on the same random states, as one decoded token (1 x heads rows) and as a query chunk
 * (64 x heads rows), and checks that they agree.
 *   mpirun -np R bench_merge [heads] [head_dim] [iterations]
 * Prints a table on rank 0 and one JSON line per case on stdout. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/mpi_check.h"
#include "runtime/star_merge.h"
#include "runtime/timer.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void fill(attn_state *s, int rows, int d, unsigned seed)
{
    srand(seed);
    for (int r = 0; r < rows; r++) {
        s->m[r] = (float)rand() / RAND_MAX * 8.0f;
        s->l[r] = 1.0f + (float)rand() / RAND_MAX * 100.0f;
        for (int t = 0; t < d; t++)
            s->o[(size_t)r * d + t] = (float)rand() / RAND_MAX - 0.5f;
    }
}

/* Median microseconds of ITERS merges of ROWS rows in MODE; OUT receives the last result. */
static double time_merge(star_merge_mode mode, int rows, int d, int iters, attn_state *out)
{
    star_merge mg;
    star_merge_init(&mg, MPI_COMM_WORLD, mode, backend_cpu(), d, rows);
    double *us = malloc(sizeof(double) * iters);
    for (int i = -10; i < iters; i++) {
        fill(out, rows, d, 1234 + mpi_rank());
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = timer_now();
        star_merge_combine(&mg, backend_cpu(), out, rows, d);
        double dt = (timer_now() - t0) * 1e6, slowest;
        MPI_Allreduce(&dt, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (i >= 0)
            us[i] = slowest;
    }
    qsort(us, iters, sizeof(double), cmp_double);
    double median = us[iters / 2];
    free(us);
    star_merge_free(&mg);
    return median;
}

static attn_state alloc_state(int rows, int d)
{
    float *p = malloc(sizeof(float) * (size_t)rows * (d + 2));
    return (attn_state){p, p + rows, p + 2 * (size_t)rows};
}

int main(int argc, char **argv)
{
    mpi_start(&argc, &argv);
    int heads = argc > 1 ? atoi(argv[1]) : 32, d = argc > 2 ? atoi(argv[2]) : 128;
    int iters = argc > 3 ? atoi(argv[3]) : 200, rank = mpi_rank(), ranks = mpi_size();
    int tokens[] = {1, 64};
    if (rank == 0)
        printf("ranks | rows | two-call us | one-call us | one/two | max diff\n");
    for (int c = 0; c < 2; c++) {
        int rows = tokens[c] * heads;
        attn_state a = alloc_state(rows, d), b = alloc_state(rows, d);
        double two = time_merge(STAR_MERGE_TWO_CALLS, rows, d, iters, &a);
        double one = time_merge(STAR_MERGE_ONE_CALL, rows, d, iters, &b);
        double diff = 0;
        for (size_t i = 0; i < (size_t)rows * d; i++)
            diff = fmax(diff, fabs(a.o[i] / a.l[i / d] - b.o[i] / b.l[i / d]));
        if (rank == 0) {
            printf("%5d | %4d | %11.1f | %11.1f | %7.2f | %.1e\n", ranks, rows, two, one,
                   one / two, diff);
            fprintf(stderr,
                    "{\"bench\": \"merge\", \"ranks\": %d, \"tokens\": %d, \"heads\": %d, "
                    "\"head_dim\": %d, \"two_call_us\": %.2f, \"one_call_us\": %.2f, "
                    "\"max_diff\": %.3g}\n",
                    ranks, tokens[c], heads, d, two, one, diff);
        }
        free(a.m);
        free(b.m);
    }
    mpi_stop();
    return 0;
}
