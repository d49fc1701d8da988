#include "launcher/bench_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bench_stats bench_stats_of(const double *v, int n)
{
    bench_stats s = {0, 0, n ? v[0] : 0, n ? v[0] : 0};
    for (int i = 0; i < n; i++) {
        s.mean += v[i] / n;
        s.min = v[i] < s.min ? v[i] : s.min;
        s.max = v[i] > s.max ? v[i] : s.max;
    }
    double sq = 0;
    for (int i = 0; i < n; i++)
        sq += (v[i] - s.mean) * (v[i] - s.mean);
    s.std = n > 1 ? sqrt(sq / (n - 1)) : 0;
    return s;
}

static const char *name_of(const bench_record *b)
{
    if (b->shape)
        return b->shape;
    const char *slash = strrchr(b->model_dir, '/');
    return slash && slash[1] ? slash + 1 : b->model_dir;
}

void bench_print_table_header(FILE *f)
{
    fprintf(f, "| shape | attn | ranks | context | block | anchor | ttft s | prefill t/s | "
               "prefill roofline %% (sustained) | decode t/s | decode roofline %% | "
               "merge ms/layer | "
               "peak GiB |\n");
    fprintf(f, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
               "---: | ---: |\n");
    fflush(f);
}

void bench_print_table_row(FILE *f, const bench_record *b)
{
    fprintf(f, "| %s | %s | %d | %d | %d | %d | ", name_of(b), b->attn, b->ranks, b->context,
            b->block, b->anchor);
    if (b->error) {
        fprintf(f, "error (see stderr) | | | | | | |\n");
        fflush(f);
        return;
    }
    double peak = 0;
    for (int r = 0; r < b->ranks; r++)
        peak = b->peak_gib[r] > peak ? b->peak_gib[r] : peak;
    fprintf(f, "%.3f ± %.3f | %.0f | %.1f", b->ttft_s.mean, b->ttft_s.std,
            (b->context + b->query_tokens) / b->ttft_s.mean, 100 * b->prefill_fraction);
    if (b->matmul_sustained_flops_per_s > 0)
        fprintf(f, " (%.1f)", 100 * b->prefill_fraction_sustained);
    fprintf(f, " | %.2f ± %.2f | %.1f | %.4f | %.2f |\n", b->decode_tokens_per_s.mean,
            b->decode_tokens_per_s.std, 100 * b->decode_fraction, b->merge_ms_per_layer.mean, peak);
    fflush(f);
}

static cJSON *stats_json(const bench_stats *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "mean", s->mean);
    cJSON_AddNumberToObject(o, "std", s->std);
    cJSON_AddNumberToObject(o, "min", s->min);
    cJSON_AddNumberToObject(o, "max", s->max);
    return o;
}

static cJSON *string_or_null(const char *s)
{
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static void add_measured(cJSON *o, const bench_record *b)
{
    cJSON_AddItemToObject(o, "ttft_s", stats_json(&b->ttft_s));
    cJSON_AddItemToObject(o, "decode_tokens_per_s", stats_json(&b->decode_tokens_per_s));
    cJSON_AddItemToObject(o, "merge_ms_per_layer", stats_json(&b->merge_ms_per_layer));
    cJSON_AddItemToObject(o, "phase1_s", cJSON_CreateDoubleArray(b->phase1_s, b->ranks));
    cJSON_AddItemToObject(o, "phase2_s", cJSON_CreateDoubleArray(b->phase2_s, b->ranks));
    cJSON_AddItemToObject(o, "peak_gib_per_rank", cJSON_CreateDoubleArray(b->peak_gib, b->ranks));
    cJSON *r = cJSON_AddObjectToObject(o, "roofline");
    cJSON_AddNumberToObject(r, "matmul_tflops", b->matmul_flops_per_s / 1e12);
    cJSON_AddNumberToObject(r, "mem_gbps", b->mem_bytes_per_s / 1e9);
    cJSON_AddNumberToObject(r, "prefill_flops", b->prefill_flops);
    cJSON_AddNumberToObject(r, "prefill_fraction", b->prefill_fraction);
    cJSON_AddNumberToObject(r, "decode_bytes", b->decode_bytes);
    cJSON_AddNumberToObject(r, "decode_fraction", b->decode_fraction);
    int sustained = b->matmul_sustained_flops_per_s > 0;
    cJSON_AddItemToObject(r, "matmul_tflops_sustained",
                          sustained ? cJSON_CreateNumber(b->matmul_sustained_flops_per_s / 1e12)
                                    : cJSON_CreateNull());
    cJSON_AddItemToObject(r, "prefill_fraction_sustained",
                          sustained ? cJSON_CreateNumber(b->prefill_fraction_sustained)
                                    : cJSON_CreateNull());
}

void bench_write_json(FILE *f, const bench_record *b)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "tool", "starinfer");
    cJSON_AddItemToObject(o, "shape", string_or_null(b->shape));
    cJSON_AddItemToObject(o, "model", string_or_null(b->model_dir));
    cJSON_AddStringToObject(o, "device", b->device);
    cJSON_AddStringToObject(o, "gpu", b->gpu);
    cJSON_AddStringToObject(o, "attn", b->attn);
    cJSON_AddNumberToObject(o, "ranks", b->ranks);
    cJSON_AddNumberToObject(o, "active_ranks", b->active_ranks);
    cJSON_AddNumberToObject(o, "context", b->context);
    cJSON_AddNumberToObject(o, "block", b->block);
    cJSON_AddNumberToObject(o, "anchor", b->anchor);
    cJSON_AddStringToObject(o, "merge_transport", b->merge_transport);
    cJSON_AddNumberToObject(o, "query_tokens", b->query_tokens);
    cJSON_AddNumberToObject(o, "decode_tokens", b->decode_tokens);
    cJSON_AddNumberToObject(o, "repeat", b->repeat);
    if (b->error) {
        const char *measured[] = {"ttft_s",   "decode_tokens_per_s", "merge_ms_per_layer",
                                  "phase1_s", "phase2_s", "peak_gib_per_rank", "roofline"};
        for (size_t i = 0; i < sizeof measured / sizeof measured[0]; i++)
            cJSON_AddNullToObject(o, measured[i]);
        cJSON_AddStringToObject(o, "error", b->error);
    } else {
        add_measured(o, b);
    }
    cJSON_AddStringToObject(o, "git_commit", b->git_commit);
    cJSON_AddStringToObject(o, "command", b->command);
    char *s = cJSON_PrintUnformatted(o);
    fprintf(f, "%s\n", s);
    fflush(f);
    free(s);
    cJSON_Delete(o);
}
