/* The NCCL communicator of device_comm.h and the phase-2 merge on device buffers: no host
 * staging, the reductions run GPU to GPU (NVLink or PCIe within a node, the network across). */
#include <math.h>
#include <nccl.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/device_comm.h"

static_assert(NCCL_UNIQUE_ID_BYTES == DEVICE_COMM_ID_BYTES, "NCCL's unique id size changed");

struct device_comm {
    ncclComm_t comm;
    int rank, nranks, max_rows;
    float *max; /* [max_rows]: the merged m, before the local m is rescaled */
};

#define ncclCheck(c, call) nccl_check_at((c), (call), #call, __FILE__, __LINE__)

static void nccl_check_at(const device_comm *c, ncclResult_t rc, const char *what, const char *file,
                          int line)
{
    if (rc == ncclSuccess)
        return;
    int dev = -1;
    cudaGetDevice(&dev);
    si_fatal_at(file, line,
                "NCCL error on GPU %d, NCCL rank %d of %d, in %s: %s (%s)\n"
                "  HINT: NCCL_DEBUG=WARN shows why; --merge-transport mpi merges through MPI "
                "instead",
                dev, c ? c->rank : -1, c ? c->nranks : -1, what, ncclGetErrorString(rc),
                ncclGetLastError(c ? c->comm : NULL));
}

extern "C" int device_comm_available(void)
{
    return 1;
}

extern "C" void device_comm_unique_id(unsigned char id[DEVICE_COMM_ID_BYTES])
{
    ncclUniqueId u;
    ncclCheck(NULL, ncclGetUniqueId(&u));
    memcpy(id, u.internal, DEVICE_COMM_ID_BYTES);
}

extern "C" int device_comm_gpu_bus_id(char *buf, size_t len)
{
    int dev = -1;
    if (cudaGetDevice(&dev) != cudaSuccess)
        return -1;
    return cudaDeviceGetPCIBusId(buf, (int)len, dev) == cudaSuccess ? 0 : -1;
}

extern "C" device_comm *device_comm_create(const unsigned char id[DEVICE_COMM_ID_BYTES], int nranks,
                                           int rank, int max_rows)
{
    device_comm *c = (device_comm *)callocCheck(1, sizeof *c, "NCCL communicator");
    c->rank = rank;
    c->nranks = nranks;
    c->max_rows = max_rows;
    ncclUniqueId u;
    memcpy(u.internal, id, DEVICE_COMM_ID_BYTES);
    ncclCheck(c, ncclCommInitRank(&c->comm, nranks, u, rank));
    cudaCheck(cudaMalloc(&c->max, sizeof(float) * (size_t)(max_rows > 0 ? max_rows : 1)));
    return c;
}

extern "C" void device_comm_destroy(device_comm *c)
{
    if (!c)
        return;
    cudaCheck(cudaFree(c->max));
    ncclCheck(c, ncclCommDestroy(c->comm));
    free(c);
}

/* Scales a rank's (l, o) of every row by exp(m_r - M) and sets m to the merged M; a row that
 * saw no key here (m = -inf) contributes nothing. One block of HEAD_DIM threads per row. */
__global__ void rescale_kernel(float *m, float *l, float *o, const float *max, int head_dim)
{
    int r = blockIdx.x;
    float w = m[r] == -INFINITY ? 0.0f : expf(m[r] - max[r]);
    for (int t = threadIdx.x; t < head_dim; t += blockDim.x)
        o[(size_t)r * head_dim + t] *= w;
    __syncthreads(); /* every thread has read m[r] before it changes */
    if (threadIdx.x == 0) {
        l[r] *= w;
        m[r] = max[r];
    }
}

extern "C" void device_comm_merge_attn(device_comm *c, attn_state *s, int rows, int head_dim)
{
    if (rows > c->max_rows)
        si_fatal("NCCL merge of %d rows, sized for %d", rows, c->max_rows);
    cudaStream_t stream = 0;
    ncclCheck(c, ncclAllReduce(s->m, c->max, rows, ncclFloat32, ncclMax, c->comm, stream));
    int threads = head_dim < 128 ? head_dim : 128;
    rescale_kernel<<<rows, threads, 0, stream>>>(s->m, s->l, s->o, c->max, head_dim);
    cudaCheckLaunch("rescale_kernel");
    ncclCheck(c, ncclGroupStart());
    ncclCheck(c, ncclAllReduce(s->l, s->l, rows, ncclFloat32, ncclSum, c->comm, stream));
    ncclCheck(c, ncclAllReduce(s->o, s->o, (size_t)rows * head_dim, ncclFloat32, ncclSum, c->comm,
                               stream));
    ncclCheck(c, ncclGroupEnd());
    /* Complete before returning, so that the merge's time is measured as MPI's is. */
    cudaCheck(cudaStreamSynchronize(stream));
}
