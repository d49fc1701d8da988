#include "runtime/global_attention.h"

#include "runtime/kv_cache.h"
#include "runtime/progress.h"

size_t global_runner_bytes(const model_config *cfg, const backend *be, int capacity, int chunk)
{
    return kv_cache_bytes(cfg, be, capacity) + forward_state_bytes(cfg, be, chunk, 1);
}

void global_runner_init(global_runner *g, const model_config *cfg, const backend_weights *w,
                        const backend *be, int capacity, int chunk)
{
    forward_state_init(&g->fs, cfg, w, be, chunk, 1);
    kv_cache_alloc(&g->kv, cfg, be, capacity, "KV cache");
}

void global_runner_free(global_runner *g)
{
    kv_cache_free(&g->kv, g->fs.be);
    forward_state_free(&g->fs);
}

const float *global_prefill(global_runner *g, const int *ids, int n, int first_pos)
{
    int pos[g->fs.n_max];
    const float *logits = NULL;
    progress pr;
    progress_start(&pr, "prefill", n);
    for (int start = 0; start < n; start += g->fs.n_max) {
        int len = n - start < g->fs.n_max ? n - start : g->fs.n_max;
        for (int i = 0; i < len; i++)
            pos[i] = first_pos + start + i;
        forward_args args = {.store = &g->kv,
                             .self_from = 0,
                             .logits = start + len == n ? FORWARD_LOGITS_LAST
                                                        : FORWARD_LOGITS_NONE};
        logits = forward(&g->fs, ids + start, pos, len, &args);
        progress_add(&pr, len);
    }
    return logits;
}

const float *global_step(void *runner, int token, int pos)
{
    global_runner *g = runner;
    forward_args args = {.store = &g->kv, .self_from = 0, .logits = FORWARD_LOGITS_LAST};
    return forward(&g->fs, &token, &pos, 1, &args);
}
