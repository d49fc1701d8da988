/* Built without NCCL: no device collectives (runtime/ refuses --merge-transport nccl first). */
#ifndef STARINFER_HAVE_NCCL
#include "kernels/check.h"
#include "kernels/device_comm.h"

int device_comm_available(void)
{
    return 0;
}

void device_comm_unique_id(unsigned char id[DEVICE_COMM_ID_BYTES])
{
    (void)id;
    si_fatal("this starinfer was built without NCCL");
}

int device_comm_gpu_bus_id(char *buf, size_t len)
{
    (void)buf;
    (void)len;
    return -1;
}

device_comm *device_comm_create(const unsigned char id[DEVICE_COMM_ID_BYTES], int nranks, int rank,
                                int max_rows)
{
    (void)id, (void)nranks, (void)rank, (void)max_rows;
    si_fatal("this starinfer was built without NCCL");
}

void device_comm_destroy(device_comm *c)
{
    (void)c;
}

void device_comm_merge_attn(device_comm *c, attn_state *s, int rows, int head_dim)
{
    (void)c, (void)s, (void)rows, (void)head_dim;
    si_fatal("this starinfer was built without NCCL");
}

double device_comm_merge_seconds(device_comm *c)
{
    (void)c;
    return 0.0;
}
#else
typedef int device_comm_none_is_empty; /* ISO C wants something in a translation unit */
#endif
