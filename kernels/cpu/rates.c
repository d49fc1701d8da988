/* The CPU's matrix and memory rates, measured where the benchmark runs (the roofline's ceilings):
 * a BLAS sgemm (fp32, the CPU backend's matrix format) and a memcpy, best of a few runs, or the
 * sgemm back to back for a given time (backend.h). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/check.h"
#include "kernels/cpu/cpu_ops.h"

#define RATE_RUNS 3

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double cpu_matmul_rate(double seconds)
{
    const int n = 1024;
    size_t elems = (size_t)n * n;
    float *a = mallocCheck(3 * sizeof(float) * elems, "sgemm rate");
    cpu_weight_random(a, 2 * elems, 1, 1.0f);
    double best = 1e30, counted = 0, skip = seconds < 2 ? 0 : 1, start = now();
    long runs_counted = 0;
    for (int r = 0; seconds > 0 ? now() - start < seconds : r < RATE_RUNS; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, a + elems, n,
                    0.0f, a + 2 * elems, n);
        double t = now() - t0;
        best = t < best ? t : best;
        if (t0 - start >= skip)
            counted += t, runs_counted++;
    }
    free(a);
    double flops = 2.0 * n * (double)n * n;
    return seconds > 0 && runs_counted ? flops * runs_counted / counted : flops / best;
}

double cpu_copy_rate(void)
{
    const size_t bytes = (size_t)64 << 20;
    char *src = mallocCheck(2 * bytes, "copy rate");
    memset(src, 1, 2 * bytes); /* touch every page before timing */
    double best = 1e30;
    for (int r = 0; r < RATE_RUNS; r++) {
        double t0 = now();
        memcpy(src + bytes, src, bytes);
        double t = now() - t0;
        best = t < best ? t : best;
    }
    free(src);
    return 2.0 * bytes / best;
}

void cpu_device_name(char *buf, size_t len)
{
    snprintf(buf, len, "cpu");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!strncmp(line, "model name", 10) && colon) {
            colon += 1 + (colon[1] == ' ');
            colon[strcspn(colon, "\n")] = 0;
            snprintf(buf, len, "%s", colon);
            break;
        }
    }
    if (f)
        fclose(f);
}
