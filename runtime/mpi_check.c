#include "runtime/mpi_check.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

static void abort_job(int code)
{
    MPI_Abort(MPI_COMM_WORLD, code);
}

void mpi_check_at(int rc, const char *call, const char *file, int line)
{
    if (rc == MPI_SUCCESS)
        return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    si_fatal_at(file, line,
                "%s failed: %s\n"
                "  HINT: another rank may have died (see the launcher's messages above), or the "
                "network between nodes failed",
                call, msg);
}

int mpi_rank(void)
{
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int mpi_size(void)
{
    int n = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

int mpi_launched_size(void)
{
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 0)
            return atoi(v);
    }
    return 1;
}

void mpi_start(int *argc, char ***argv)
{
    MPI_Init(argc, argv);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "rank %d", mpi_rank());
    si_set_log_prefix(prefix);
    si_set_fatal_handler(abort_job);
}

void mpi_stop(void)
{
    si_set_fatal_handler(NULL);
    MPI_Finalize();
}

int mpi_all_ok(int ok)
{
    int all = 0;
    mpiCheck(MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    return all;
}

double mpi_all_max(double v)
{
    double max = 0;
    mpiCheck(MPI_Allreduce(&v, &max, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
    return max;
}

void mpi_wait_all(void)
{
    mpiCheck(MPI_Barrier(MPI_COMM_WORLD));
}

uint64_t mpi_key_add(uint64_t key, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        key = (key ^ b[i]) * 1099511628211ull;
    return key;
}

int mpi_first_failing(int ok)
{
    int mine = ok ? INT_MAX : mpi_rank(), first = INT_MAX;
    mpiCheck(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    return first == INT_MAX ? -1 : first;
}

int mpi_first_differing(uint64_t key)
{
    uint64_t root = key;
    mpiCheck(MPI_Bcast(&root, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD));
    return mpi_first_failing(key == root);
}

int mpi_local_count(uint64_t key)
{
    MPI_Comm node;
    int size = 0, count = 0;
    mpiCheck(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
    MPI_Comm_size(node, &size);
    uint64_t *keys = mallocCheck(sizeof *keys * (size_t)size, "the node's keys");
    mpiCheck(MPI_Allgather(&key, 1, MPI_UINT64_T, keys, 1, MPI_UINT64_T, node));
    for (int i = 0; i < size; i++)
        count += keys[i] == key;
    free(keys);
    MPI_Comm_free(&node);
    return count;
}

void mpi_local_rank(int *local_rank, int *local_size)
{
    MPI_Comm node;
    mpiCheck(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
    MPI_Comm_rank(node, local_rank);
    MPI_Comm_size(node, local_size);
    MPI_Comm_free(&node);
}
