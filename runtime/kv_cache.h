/* A rank's KV cache: every layer's keys and values for CAPACITY positions, in one allocation on
 * the backend and in its KV format, viewed by the model as a kv_span. */
#ifndef STARINFER_RUNTIME_KV_CACHE_H
#define STARINFER_RUNTIME_KV_CACHE_H

#include "model/forward.h"

size_t kv_cache_bytes(const model_config *cfg, const backend *be, int capacity);
void kv_cache_alloc(kv_span *kv, const model_config *cfg, const backend *be, int capacity,
                    const char *what);
void kv_cache_free(kv_span *kv, const backend *be);

#endif
