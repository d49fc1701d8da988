#include "runtime/kv_cache.h"

#include <string.h>

size_t kv_cache_bytes(const model_config *cfg, const backend *be, int capacity)
{
    return 2 * be->kv_size * (size_t)cfg->n_layers * capacity * cfg->n_kv_heads * cfg->head_dim;
}

void kv_cache_alloc(kv_span *kv, const model_config *cfg, const backend *be, int capacity,
                    const char *what)
{
    memset(kv, 0, sizeof *kv);
    size_t layer = (size_t)capacity * cfg->n_kv_heads * cfg->head_dim;
    kv->k = be->alloc(kv_cache_bytes(cfg, be, capacity > 0 ? capacity : 1), what);
    kv->v = (char *)kv->k + layer * cfg->n_layers * be->kv_size;
    kv->layer_stride = layer;
    kv->capacity = capacity;
}

void kv_cache_free(kv_span *kv, const backend *be)
{
    if (kv->k)
        be->free(kv->k);
    memset(kv, 0, sizeof *kv);
}
