#include "launcher/session.h"

#include <string.h>

#include "model/shapes.h"
#include "runtime/mpi_check.h"

int session_open(session *s, star_flags *flags)
{
    memset(s, 0, sizeof *s);
    s->rank = mpi_rank();
    si_error err;
    int ok = (flags->shape ? model_shape_init(&s->m, flags->shape, &err)
                           : model_load(&s->m, flags->model_dir, &err)) == 0;
    s->loaded = ok;
    if (ok) {
        int local, local_size;
        mpi_local_rank(&local, &local_size);
        s->be = device_open(flags->device, local, local_size, flags->share_gpus, &err);
        ok = s->be != NULL;
    }
    if (!ok)
        si_log("error: %s", err.msg);
    if (!mpi_all_ok(ok))
        return -1;
    if (flags->shape)
        backend_weights_random(&s->w, &s->m.cfg, s->m.inv_freq, s->be, flags->weight_seed);
    else
        backend_weights_upload(&s->w, &s->m.cfg, &s->m.w, s->m.inv_freq, s->be);
    /* A device keeps its own copy: the fp32 host tensors (32 GB for an 8B model) can go. */
    if (!s->be->host_memory)
        model_weights_free(&s->m.w);
    flags->req.be = s->be;
    /* Longer chunks keep a GPU's matrix units busy; on the CPU they only cost memory. */
    if (!flags->req.chunk)
        flags->req.chunk = s->be->host_memory ? 512 : 4096;
    flags->req.w = &s->w;
    return 0;
}

void session_close(session *s)
{
    if (s->be)
        backend_weights_free(&s->w, s->be);
    if (s->loaded)
        model_free(&s->m);
}
