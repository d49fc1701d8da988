#include "runtime/device.h"

#include <hwloc.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/backend_weights.h"
#include "runtime/mpi_check.h"

int device_parse(const char *value, device_kind *kind, si_error *err)
{
    if (!strcmp(value, "auto"))
        *kind = DEVICE_AUTO;
    else if (!strcmp(value, "cpu"))
        *kind = DEVICE_CPU;
    else if (!strcmp(value, "cuda"))
        *kind = DEVICE_CUDA;
    else
        return si_error_set(err, "--device must be auto, cpu or cuda, got '%s'", value);
    return 0;
}

int dtype_parse(const char *value, compute_dtype *dtype, si_error *err)
{
    if (!strcmp(value, "auto"))
        *dtype = DTYPE_AUTO;
    else if (!strcmp(value, "bf16") || !strcmp(value, "bfloat16"))
        *dtype = DTYPE_BF16;
    else if (!strcmp(value, "fp32") || !strcmp(value, "float32"))
        *dtype = DTYPE_FP32;
    else
        return si_error_set(err, "--dtype must be auto, bf16 or fp32, got '%s'", value);
    return 0;
}

/* Binds this process to the cores nearest the PCI device BUS_ID; a machine whose topology does
 * not show the device keeps the launcher's binding. */
static void bind_near(const char *bus_id)
{
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0)
        return;
    hwloc_topology_set_io_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    if (hwloc_topology_load(topo) == 0) {
        hwloc_obj_t pci = hwloc_get_pcidev_by_busidstring(topo, bus_id);
        hwloc_obj_t near = pci ? hwloc_get_non_io_ancestor_obj(topo, pci) : NULL;
        if (near && hwloc_set_cpubind(topo, near->cpuset, HWLOC_CPUBIND_PROCESS) == 0) {
            char *cpus = NULL;
            hwloc_bitmap_list_asprintf(&cpus, near->cpuset);
            si_log("bound to cores %s, near GPU %s", cpus ? cpus : "?", bus_id);
            free(cpus);
        }
    }
    hwloc_topology_destroy(topo);
}

void device_share_threads(int local_size)
{
    int decide = getenv("OMP_NUM_THREADS") == NULL;
    char *cpus = NULL;
    int cores = 0;
    hwloc_topology_t topo;
    if (decide && hwloc_topology_init(&topo) == 0) {
        hwloc_bitmap_t set = hwloc_bitmap_alloc();
        if (set && hwloc_topology_load(topo) == 0 &&
            hwloc_get_cpubind(topo, set, HWLOC_CPUBIND_PROCESS) == 0 &&
            hwloc_bitmap_list_asprintf(&cpus, set) >= 0)
            cores = hwloc_bitmap_weight(set);
        hwloc_bitmap_free(set);
        hwloc_topology_destroy(topo);
    }
    /* Every rank of the node takes part, whatever it found: a rank that left the count out
     * would leave the others waiting. Those that do not decide pass 0 and act on nothing. */
    /* the same cores give the same key on every rank of a node */
    uint64_t key = cpus && cores > 0 ? mpi_key_add(MPI_KEY_START, cpus, strlen(cpus)) : 0;
    int sharing = local_size > 1 ? mpi_local_count(key) : 1;
    if (key && sharing > 1) {
        int threads = cores / sharing > 1 ? cores / sharing : 1;
        omp_set_num_threads(threads);
        si_log("%d thread(s): %d local ranks share cores %s (OMP_NUM_THREADS sets another count)",
               threads, sharing, cpus);
    }
    free(cpus);
}

static int opened_gpu;

int device_memory_pool(const backend *be)
{
    return be->host_memory ? -1 : opened_gpu;
}

const backend *device_open(device_kind kind, compute_dtype dtype, int local_rank, int local_size,
                           int share_gpus, si_error *err)
{
    int gpus = kind == DEVICE_CPU ? 0 : backend_cuda_device_count();
    if (kind == DEVICE_CPU || (kind == DEVICE_AUTO && gpus == 0)) {
        if (dtype == DTYPE_BF16) {
            si_error_set(err,
                         "--dtype bf16: the CPU backend computes in fp32 only%s\n"
                         "  HINT: drop --dtype (or pass --dtype fp32), or run on a GPU with "
                         "--device cuda",
                         kind == DEVICE_AUTO ? " (no CUDA GPU is visible here)" : "");
            return NULL;
        }
        return backend_cpu();
    }
    char host[256] = "?";
    gethostname(host, sizeof host);
    if (gpus == 0) {
        si_error_set(err, "--device cuda: no CUDA GPU is visible on %s (local rank %d)\n"
                          "  HINT: run on a GPU node, check CUDA_VISIBLE_DEVICES, or use "
                          "--device cpu",
                     host, local_rank);
        return NULL;
    }
    if (local_size > gpus && !share_gpus) {
        si_error_set(err, "%d ranks run on %s but it has %d GPU(s) (this is local rank %d)\n"
                          "  HINT: launch one rank per GPU (starinfer-mpirun --ranks-per-node %d), "
                          "or pass --share-gpus to let ranks share GPUs (for testing)",
                     local_size, host, gpus, local_rank, gpus);
        return NULL;
    }
    int dev = opened_gpu = local_rank % gpus;
    char msg[512];
    const backend *be =
        backend_cuda(dev, dtype == DTYPE_FP32 ? CUDA_FP32 : CUDA_BF16, msg, sizeof msg);
    if (!be) {
        si_error_set(err, "%s: GPU %d for local rank %d: %s", host, dev, local_rank, msg);
        return NULL;
    }
    char bus[64];
    if (backend_cuda_pci_bus_id(dev, bus, sizeof bus) == 0)
        bind_near(bus);
    return be;
}

void device_prepare(const backend *be, const model_config *cfg, int chunk)
{
    if (!be->prepare)
        return;
    pass_shapes s = {cfg->hidden_size,
                     cfg->intermediate_size,
                     cfg->n_heads,
                     cfg->n_kv_heads,
                     cfg->head_dim,
                     chunk,
                     backend_weights_bytes(cfg, be)};
    be->prepare(&s);
}

void device_prepare_wait(const backend *be)
{
    if (be->prepare_wait)
        be->prepare_wait();
}
