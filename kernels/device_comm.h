/* Collectives between processes directly on device buffers (NCCL), for Star Attention's phase-2
 * merge when every rank computes on its own GPU. The kernels layer knows nothing of MPI: the
 * caller makes the unique id on one process and hands it to the others (MPI_Bcast in runtime/).
 * Compiled in where CMake finds NCCL (STARINFER_HAVE_NCCL); elsewhere device_comm_available()
 * is 0 and nothing else may be called. */
#ifndef STARINFER_KERNELS_DEVICE_COMM_H
#define STARINFER_KERNELS_DEVICE_COMM_H

#include <stddef.h>

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { DEVICE_COMM_ID_BYTES = 128 };

typedef struct device_comm device_comm;

int device_comm_available(void);
/* A fresh communicator id, made on one process and given to all. */
void device_comm_unique_id(unsigned char id[DEVICE_COMM_ID_BYTES]);
/* The PCI bus id of this process's current GPU (two processes on one node with the same one
 * share a GPU, which NCCL refuses). 0, or -1 where it cannot be told. */
int device_comm_gpu_bus_id(char *buf, size_t len);
/* Joins the communicator ID as RANK of NRANKS (every rank calls it), with room to merge up to
 * MAX_ROWS attention rows. */
device_comm *device_comm_create(const unsigned char id[DEVICE_COMM_ID_BYTES], int nranks, int rank,
                                int max_rows);
void device_comm_destroy(device_comm *c);
/* Merges the ROWS rows of S (device memory) across the ranks in place (backend.h's state):
 * M = max m_r, L = sum l_r exp(m_r - M), O = sum o_r exp(m_r - M), from one NCCL all-gather of
 * every rank's rows. Queued on the device's stream, in order with the backend's operations:
 * returns before the merge is done. */
void device_comm_merge_attn(device_comm *c, attn_state *s, int rows, int head_dim);
/* The GPU time of C's merges so far, in seconds (waits for the last to finish). */
double device_comm_merge_seconds(device_comm *c);

#ifdef __cplusplus
}
#endif

#endif
