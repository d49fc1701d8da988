/* What `starinfer bench` reports for one configuration: statistics over the repeats, a
 * llama-bench-style markdown row, and one JSON line (fields documented in README.md). */
#ifndef STARINFER_LAUNCHER_BENCH_REPORT_H
#define STARINFER_LAUNCHER_BENCH_REPORT_H

#include <cjson/cJSON.h>
#include <stdio.h>

typedef struct {
    double mean, std, min, max; /* std: the sample standard deviation (0 for one value) */
} bench_stats;

bench_stats bench_stats_of(const double *v, int n);

/* One configuration's figures, filled by cmd_bench on rank 0. */
typedef struct {
    const char *shape, *model_dir, *device, *gpu, *attn, *git_commit, *command;
    const char *merge_transport; /* "mpi" or "nccl" */
    int ranks, active_ranks, context, block, anchor, query_tokens, decode_tokens, repeat;
    const char *error; /* NULL when it ran */
    bench_stats ttft_s, decode_tokens_per_s, merge_ms_per_layer;
    double *phase1_s, *phase2_s, *peak_gib; /* per rank */
    double matmul_flops_per_s, mem_bytes_per_s;
    double matmul_sustained_flops_per_s; /* 0: not measured (--sustained) */
    double prefill_flops, prefill_fraction, decode_bytes, decode_fraction;
    double prefill_fraction_sustained; /* against the sustained rate, where measured */
} bench_record;

void bench_print_table_header(FILE *f);
void bench_print_table_row(FILE *f, const bench_record *b);
/* The record as one JSON line, appended to F and flushed. */
void bench_write_json(FILE *f, const bench_record *b);

#endif
