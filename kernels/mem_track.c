#include "kernels/mem_track.h"

#include <stdlib.h>

#include "kernels/check.h"

/* A backend holds a few dozen buffers (weights, KV caches, activations, scratch): a plain list. */
typedef struct {
    const void *p;
    size_t bytes;
} tracked;

static tracked *list;
static size_t n_list, cap_list, current, peak;

void mem_track_add(const void *p, size_t bytes)
{
    if (n_list == cap_list) {
        size_t cap = cap_list ? 2 * cap_list : 64;
        tracked *grown = realloc(list, sizeof *list * cap);
        if (!grown)
            si_fatal("out of memory tracking allocations");
        list = grown;
        cap_list = cap;
    }
    list[n_list++] = (tracked){p, bytes};
    current += bytes;
    if (current > peak)
        peak = current;
}

void mem_track_remove(const void *p)
{
    for (size_t i = 0; i < n_list; i++)
        if (list[i].p == p) {
            current -= list[i].bytes;
            list[i] = list[--n_list];
            return;
        }
}

size_t mem_track_current(void)
{
    return current;
}

size_t mem_track_peak(void)
{
    return peak;
}

void mem_track_reset_peak(void)
{
    peak = current;
}
