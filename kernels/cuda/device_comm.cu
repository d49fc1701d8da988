/* The NCCL communicator of device_comm.h and the phase-2 merge on device buffers: no host
 * staging, the reductions run GPU to GPU (NVLink or PCIe within a node, the network across). */
#include <math.h>
#include <nccl.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/device_comm.h"

static_assert(NCCL_UNIQUE_ID_BYTES == DEVICE_COMM_ID_BYTES, "NCCL's unique id size changed");

/* Merges timed so far: CUDA events around each, read when the time is asked for (or when
 * every pair is in use). */
#define TIMED_MERGES 4096

struct device_comm {
    ncclComm_t comm;
    int rank, nranks, max_rows;
    int record;      /* floats per row record: 2 + head_dim (m, l, o), set by the first merge */
    int room;        /* rows SEND has room for: the most merged so far (a decoded token's few
                      * rows, a query chunk's many), not MAX_ROWS ahead of need */
    float *send;     /* [room][record]: this rank's rows */
    float *gathered; /* [nranks][room][record]: every rank's, in rank order */
    cudaEvent_t start[TIMED_MERGES], stop[TIMED_MERGES];
    int timed;      /* event pairs recorded and not yet read */
    double seconds; /* GPU time of the merges read so far */
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
    return c;
}

extern "C" void device_comm_destroy(device_comm *c)
{
    if (!c)
        return;
    cudaCheck(cudaFree(c->send));
    cudaCheck(cudaFree(c->gathered));
    for (int i = 0; i < TIMED_MERGES && c->start[i]; i++) {
        cudaCheck(cudaEventDestroy(c->start[i]));
        cudaCheck(cudaEventDestroy(c->stop[i]));
    }
    ncclCheck(c, ncclCommDestroy(c->comm));
    free(c);
}

/* Row R of the state into its record of SEND: m, l, then o. One block per row. */
__global__ void pack_kernel(float *send, const float *m, const float *l, const float *o,
                            int head_dim)
{
    int r = blockIdx.x;
    float *rec = send + (size_t)r * (head_dim + 2);
    for (int t = threadIdx.x; t < head_dim; t += blockDim.x)
        rec[2 + t] = o[(size_t)r * head_dim + t];
    if (threadIdx.x == 0) {
        rec[0] = m[r];
        rec[1] = l[r];
    }
}

/* Row R merged from every rank's record, in rank order (so every rank computes the same
 * values): M = max m_k, L = sum l_k exp(m_k - M), O = sum o_k exp(m_k - M); a rank that saw
 * no key for the row (m = -inf) contributes nothing, and a row no rank saw stays empty. */
__global__ void merge_gathered_kernel(float *m, float *l, float *o, const float *gathered, int rows,
                                      int nranks, int head_dim)
{
    int r = blockIdx.x;
    size_t stride = (size_t)rows * (head_dim + 2); /* from one rank's records to the next's */
    const float *rec = gathered + (size_t)r * (head_dim + 2);
    float mx = -INFINITY;
    for (int k = 0; k < nranks; k++)
        mx = fmaxf(mx, rec[k * stride]);
    float lsum = 0.0f;
    for (int k = 0; k < nranks; k++) {
        float mk = rec[k * stride];
        lsum += mk == -INFINITY ? 0.0f : rec[k * stride + 1] * expf(mk - mx);
    }
    for (int t = threadIdx.x; t < head_dim; t += blockDim.x) {
        float acc = 0.0f;
        for (int k = 0; k < nranks; k++) {
            float mk = rec[k * stride];
            acc += mk == -INFINITY ? 0.0f : rec[k * stride + 2 + t] * expf(mk - mx);
        }
        o[(size_t)r * head_dim + t] = acc;
    }
    if (threadIdx.x == 0) {
        m[r] = mx;
        l[r] = lsum;
    }
}

/* Adds the recorded merges' GPU time to C->seconds, waiting for the last to finish. */
static void read_timers(device_comm *c)
{
    if (!c->timed)
        return;
    cudaCheck(cudaEventSynchronize(c->stop[c->timed - 1]));
    for (int i = 0; i < c->timed; i++) {
        float ms = 0.0f;
        cudaCheck(cudaEventElapsedTime(&ms, c->start[i], c->stop[i]));
        c->seconds += ms / 1e3;
    }
    c->timed = 0;
}

extern "C" double device_comm_merge_seconds(device_comm *c)
{
    read_timers(c);
    return c->seconds;
}

/* One all-gather of every rank's (m, l, o) records and one kernel that merges them, queued on
 * the stream like the layer's other work: the host neither waits for the GPU before the merge
 * nor after it. (Three all-reduces, a rescaling kernel and the host waiting twice per layer took
 * 49 us per layer of a decoded token on two H200s, 19% of it at 128K: bench/NOTES.md 16.) */
extern "C" void device_comm_merge_attn(device_comm *c, attn_state *s, int rows, int head_dim)
{
    if (rows > c->max_rows)
        si_fatal("NCCL merge of %d rows, sized for %d", rows, c->max_rows);
    if (!c->record)
        c->record = head_dim + 2;
    if (head_dim + 2 != c->record)
        si_fatal("NCCL merge of head_dim %d, sized for %d", head_dim, c->record - 2);
    if (rows > c->room) { /* cudaFree waits for the device: only when a larger merge comes */
        cudaCheck(cudaFree(c->send));
        cudaCheck(cudaFree(c->gathered));
        size_t bytes = sizeof(float) * (size_t)rows * c->record;
        cudaCheck(cudaMalloc(&c->send, bytes));
        cudaCheck(cudaMalloc(&c->gathered, bytes * c->nranks));
        c->room = rows;
    }
    if (c->timed == TIMED_MERGES)
        read_timers(c);
    int i = c->timed++;
    if (!c->start[i]) {
        cudaCheck(cudaEventCreate(&c->start[i]));
        cudaCheck(cudaEventCreate(&c->stop[i]));
    }
    cudaStream_t stream = 0;
    int threads = head_dim < 128 ? head_dim : 128;
    cudaCheck(cudaEventRecord(c->start[i], stream));
    pack_kernel<<<rows, threads, 0, stream>>>(c->send, s->m, s->l, s->o, head_dim);
    cudaCheckLaunch("pack_kernel");
    ncclCheck(c, ncclAllGather(c->send, c->gathered, (size_t)rows * c->record, ncclFloat32, c->comm,
                               stream));
    merge_gathered_kernel<<<rows, threads, 0, stream>>>(s->m, s->l, s->o, c->gathered, rows,
                                                        c->nranks, head_dim);
    cudaCheckLaunch("merge_gathered_kernel");
    cudaCheck(cudaEventRecord(c->stop[i], stream));
}
