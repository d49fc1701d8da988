/* Checked MPI calls: a failure names the call, the rank and the error, then ends the whole job
 * with MPI_Abort so that no rank waits forever in a collective. */
#ifndef STARINFER_RUNTIME_MPI_CHECK_H
#define STARINFER_RUNTIME_MPI_CHECK_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/check.h"

void mpi_check_at(int rc, const char *call, const char *file, int line);
#define mpiCheck(call) mpi_check_at((call), #call, __FILE__, __LINE__)

/* How many processes the launcher started, read from its environment without starting MPI:
 * Open MPI's mpirun, MPICH's Hydra and Slurm's srun say so (not SLURM_NTASKS, which a batch
 * script of a job of several tasks also has). 1 outside a launcher. */
int mpi_launched_size(void);
/* Starts MPI (errors returned rather than fatal, so they can be reported), names the log prefix
 * after the rank, and makes every fatal error end the job through MPI_Abort. */
void mpi_start(int *argc, char ***argv);
void mpi_stop(void);
int mpi_rank(void);
int mpi_size(void);
/* True on every rank when OK holds on every rank of MPI_COMM_WORLD. */
int mpi_all_ok(int ok);
/* How many ranks of this node pass the same KEY as this one (itself included); collective over
 * the node's ranks. */
int mpi_local_count(uint64_t key);
/* Keys that ranks compare (mpi_first_differing, mpi_local_count): FNV-1a over N bytes at P,
 * continuing KEY (MPI_KEY_START for a new one). */
#define MPI_KEY_START 1469598103934665603ull
uint64_t mpi_key_add(uint64_t key, const void *p, size_t n);
/* The lowest rank whose KEY differs from rank 0's, on every rank; -1 when all match. */
int mpi_first_differing(uint64_t key);
/* The lowest rank where OK is false, on every rank; -1 when it holds everywhere. */
int mpi_first_failing(int ok);
/* The largest V of every rank of MPI_COMM_WORLD, on every rank. */
double mpi_all_max(double v);
/* Returns once every rank of MPI_COMM_WORLD has called it. */
void mpi_wait_all(void);
/* This rank's index among the ranks of its node, and how many share the node. */
void mpi_local_rank(int *local_rank, int *local_size);

#endif
