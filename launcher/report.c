#include "launcher/report.h"

#include <stdlib.h>

static cJSON *per_rank(const double *v, int n, double scale)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i] * scale));
    return a;
}

cJSON *report_json(const request_result *res)
{
    const gen_result *g = &res->gen;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "answer", g->text ? g->text : "");
    cJSON_AddStringToObject(o, "finish", g->finish ? g->finish : "");
    cJSON_AddItemToObject(o, "tokens", cJSON_CreateIntArray(g->tokens, g->n_tokens));
    cJSON_AddStringToObject(o, "attn", res->attn == ATTN_GLOBAL ? "global" : "star");
    cJSON_AddStringToObject(o, "backend", res->backend ? res->backend : "");
    cJSON_AddNumberToObject(o, "context_tokens", res->n_ctx);
    cJSON_AddNumberToObject(o, "query_tokens", res->n_query);
    cJSON_AddNumberToObject(o, "block_size", res->block);
    cJSON_AddNumberToObject(o, "anchor_size", res->anchor);
    cJSON_AddNumberToObject(o, "blocks", res->n_blocks);
    cJSON_AddNumberToObject(o, "ranks", res->n_ranks);
    cJSON_AddNumberToObject(o, "active_ranks", res->n_active);
    cJSON *t = cJSON_AddObjectToObject(o, "timings");
    cJSON_AddNumberToObject(t, "time_to_first_token_s", res->ttft_s);
    cJSON_AddNumberToObject(t, "decode_s", g->seconds);
    cJSON_AddNumberToObject(t, "decode_tokens_per_s",
                            g->n_tokens > 1 && g->seconds > 0 ? (g->n_tokens - 1) / g->seconds : 0);
    cJSON_AddItemToObject(t, "phase1_s", per_rank(res->phase1_s, res->n_ranks, 1));
    cJSON_AddItemToObject(t, "phase2_s", per_rank(res->phase2_s, res->n_ranks, 1));
    cJSON_AddItemToObject(t, "merge_s", per_rank(res->merge_s, res->n_ranks, 1));
    cJSON_AddItemToObject(o, "memory_mib", per_rank(res->mem_bytes, res->n_ranks, 1.0 / 1048576));
    cJSON_AddItemToObject(o, "peak_memory_mib",
                          per_rank(res->peak_bytes, res->n_ranks, 1.0 / 1048576));
    cJSON_AddItemToObject(o, "rank_context_tokens",
                          cJSON_CreateIntArray(res->ctx_tokens, res->n_ranks));
    return o;
}

void report_print_json(FILE *f, const request_result *res, const char *model_dir, double load_s)
{
    cJSON *o = report_json(res);
    cJSON_AddNumberToObject(cJSON_GetObjectItem(o, "timings"), "load_s", load_s);
    cJSON_AddStringToObject(o, "model", model_dir);
    char *s = cJSON_Print(o);
    fprintf(f, "%s\n", s);
    free(s);
    cJSON_Delete(o);
}
