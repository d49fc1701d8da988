/* Which backend a rank computes on: the CPU, or the GPU of its local index on the node (one rank
 * per GPU), with the rank's threads bound near that GPU through hwloc. */
#ifndef STARINFER_RUNTIME_DEVICE_H
#define STARINFER_RUNTIME_DEVICE_H

#include "kernels/backend.h"
#include "kernels/check.h"
#include "model/config.h"

typedef enum { DEVICE_AUTO = 0, DEVICE_CPU, DEVICE_CUDA } device_kind;

/* The number formats a rank computes in (--dtype): auto (bf16 on a GPU, fp32 on the CPU), bf16
 * (GPU only) or fp32 (on a GPU: fp32 weights, KV cache and products, whose answers match the
 * CPU's, at about twice the memory and a fraction of the speed). */
typedef enum { DTYPE_AUTO = 0, DTYPE_BF16, DTYPE_FP32 } compute_dtype;

/* Parses --device's value: auto (CUDA when a GPU is present), cpu or cuda. */
int device_parse(const char *value, device_kind *kind, si_error *err);
/* Parses --dtype's value: auto, bf16 (or bfloat16) or fp32 (or float32). */
int dtype_parse(const char *value, compute_dtype *dtype, si_error *err);

/* LOCAL_RANK of LOCAL_SIZE ranks on this node. With SHARE_GPUS several ranks may use one GPU
 * (for tests); otherwise more ranks than GPUs on a node is an error naming the node and rank.
 * DTYPE bf16 on the CPU is an error naming --dtype. */
const backend *device_open(device_kind kind, compute_dtype dtype, int local_rank, int local_size,
                           int share_gpus, si_error *err);
/* Where several ranks of this node (LOCAL_SIZE in all) are bound to the same cores, each runs
 * its share of them as OpenMP threads, not one thread per core each: threads that spin while
 * they wait would take each other's cores. Collective over the node's ranks: call it on every
 * rank once each has opened its device. OMP_NUM_THREADS, where set, is left to decide. */
void device_share_threads(int local_size);
/* Which memory BE allocates from among its node's: -1 the host's, else the GPU's ordinal that
 * device_open gave this rank (0 for a backend opened otherwise). */
int device_memory_pool(const backend *be);
/* Starts BE getting ready for passes of CHUNK rows of a CFG model (backend.h: prepare), to run
 * while the weights load; device_prepare_wait() comes after the load, before the first pass. */
void device_prepare(const backend *be, const model_config *cfg, int chunk);
void device_prepare_wait(const backend *be);

#endif
