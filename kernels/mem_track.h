/* Accounting of the bytes a backend holds (its allocations and its scratch), for the memory
 * figures of benchmarks: what is allocated now and the high-water mark since the last reset. */
#ifndef STARINFER_KERNELS_MEM_TRACK_H
#define STARINFER_KERNELS_MEM_TRACK_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

void mem_track_add(const void *p, size_t bytes);
/* Forgets P; a pointer that was never added is ignored. */
void mem_track_remove(const void *p);
size_t mem_track_current(void);
size_t mem_track_peak(void);
/* Starts a new high-water mark from what is allocated now. */
void mem_track_reset_peak(void);

#ifdef __cplusplus
}
#endif

#endif
