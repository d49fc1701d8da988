/* Phase 2's distributed softmax (arXiv 2411.17116, section 2.2; DESIGN.md 1.3): every rank holds,
 * per (query token, head) row, its local max m_r, denominator l_r and unnormalised numerator o_r;
 * the ranks combine them exactly in fp32:
 *   M = max_r m_r,  L = sum_r l_r exp(m_r - M),  O = sum_r o_r exp(m_r - M).
 * Two forms: MPI_MAX on m then MPI_SUM on the rescaled (l, o) packed in one buffer, or a single
 * MPI_Allreduce with a user-defined associative, commutative MPI_Op on packed (m, l, o) records.
 * A rank with no keys for a row holds m = -inf, l = 0, o = 0 and contributes nothing. */
#ifndef STARINFER_RUNTIME_STAR_MERGE_H
#define STARINFER_RUNTIME_STAR_MERGE_H

#include <mpi.h>

#include "kernels/backend.h"
#include "kernels/check.h"
#include "kernels/device_comm.h"

/* AUTO takes one call for a few rows (a decoded token: latency) and two calls for many (a query
 * chunk: MPI's built-in vectorised SUM beats the scalar user op); bench/README.md has the
 * measurements behind the threshold. */
typedef enum { STAR_MERGE_AUTO = 0, STAR_MERGE_ONE_CALL, STAR_MERGE_TWO_CALLS } star_merge_mode;
#define STAR_MERGE_AUTO_MAX_ROWS 256

/* Where the reductions run: MPI on host buffers (a device backend stages through pinned host
 * memory, the MPI here is not CUDA-aware), or an NCCL all-gather of the device buffers (one GPU
 * per rank; MPI stays the launcher and makes the communicator). */
typedef enum { STAR_MERGE_MPI = 0, STAR_MERGE_NCCL } star_merge_transport;

typedef struct {
    MPI_Comm comm;
    int n_ranks; /* of COMM: with one there is nothing to merge */
    star_merge_mode mode;
    const backend *be;
    int head_dim;
    int max_rows;
    attn_state host;     /* the state staged in host memory, for a device backend (the MPI here
                          * is not CUDA-aware) */
    float *buf;          /* packed rows */
    MPI_Datatype record; /* (2 + head_dim) floats: m, l, o */
    MPI_Op op;
    device_comm *dc; /* with --merge-transport nccl; NULL: MPI */
    double seconds;  /* time spent merging through MPI (star_merge_seconds has both) */
    long calls;
} star_merge;

void star_merge_init(star_merge *mg, MPI_Comm comm, star_merge_mode mode, const backend *be,
                     int head_dim, int max_rows);
void star_merge_free(star_merge *mg);
/* An attn_combine_fn: USER is a star_merge. Through MPI it returns with the merge done; through
 * NCCL it queues the merge on the device's stream and returns. */
void star_merge_combine(void *user, const backend *be, attn_state *s, int rows, int head_dim);
/* Time spent merging so far, for the per-stage report: host time of the MPI merges (each from
 * its rows landing in host memory to its copies back queued), GPU time of the NCCL merges (CUDA
 * events; waits for the last). */
double star_merge_seconds(star_merge *mg);
/* Moves MG's merges to NCCL (collective over MG's communicator): refused, on every rank alike,
 * where a rank computes on the CPU, the build has no NCCL, or two ranks share a GPU. */
int star_merge_use_nccl(star_merge *mg, si_error *err);
/* Parses --merge-transport's value: "mpi" or "nccl". */
int star_merge_parse_transport(const char *value, star_merge_transport *t);
/* Parses --merge's value: "auto", "one-call" or "two-call". */
int star_merge_parse_mode(const char *value, star_merge_mode *mode);

#endif
