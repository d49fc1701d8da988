#include "runtime/device.h"

#include <hwloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

const backend *device_open(device_kind kind, int local_rank, int local_size, int share_gpus,
                           si_error *err)
{
    int gpus = kind == DEVICE_CPU ? 0 : backend_cuda_device_count();
    if (kind == DEVICE_CPU || (kind == DEVICE_AUTO && gpus == 0))
        return backend_cpu();
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
    int dev = local_rank % gpus;
    char msg[512];
    const backend *be = backend_cuda(dev, msg, sizeof msg);
    if (!be) {
        si_error_set(err, "%s: GPU %d for local rank %d: %s", host, dev, local_rank, msg);
        return NULL;
    }
    char bus[64];
    if (backend_cuda_pci_bus_id(dev, bus, sizeof bus) == 0)
        bind_near(bus);
    return be;
}
