/* Which backend a rank computes on: the CPU, or the GPU of its local index on the node (one rank
 * per GPU), with the rank's threads bound near that GPU through hwloc. */
#ifndef STARINFER_RUNTIME_DEVICE_H
#define STARINFER_RUNTIME_DEVICE_H

#include "kernels/backend.h"
#include "kernels/check.h"

typedef enum { DEVICE_AUTO = 0, DEVICE_CPU, DEVICE_CUDA } device_kind;

/* Parses --device's value: auto (CUDA when a GPU is present), cpu or cuda. */
int device_parse(const char *value, device_kind *kind, si_error *err);

/* LOCAL_RANK of LOCAL_SIZE ranks on this node. With SHARE_GPUS several ranks may use one GPU
 * (for tests); otherwise more ranks than GPUs on a node is an error naming the node and rank. */
const backend *device_open(device_kind kind, int local_rank, int local_size, int share_gpus,
                           si_error *err);

#endif
