#include "launcher/session.h"

#include <string.h>

#include "model/shapes.h"
#include "runtime/mpi_check.h"

int session_open(session *s, star_flags *flags)
{
    memset(s, 0, sizeof *s);
    s->rank = mpi_rank();
    si_error err;
    int local, local_size;
    mpi_local_rank(&local, &local_size);
    s->be = device_open(flags->device, flags->dtype, local, local_size, flags->share_gpus, &err);
    int ok = s->be != NULL;
    if (ok)
        ok = s->loaded = (flags->shape ? model_shape_init(&s->m, flags->shape, &err)
                                       : model_load_mapped(&s->m, flags->model_dir, &err)) == 0;
    if (!ok)
        si_log("error: %s", err.msg);
    if (!mpi_all_ok(ok))
        return -1;
    /* The backend's own copy of the weights (bf16 on a GPU, fp32 on the CPU), converted piece by
     * piece from the mapped files: the host never holds a second copy of the model. */
    if (flags->shape)
        backend_weights_random(&s->w, &s->m.cfg, s->m.inv_freq, s->be, flags->weight_seed);
    else if (backend_weights_stream(&s->w, &s->m.cfg, &s->m.set, s->m.inv_freq, s->be, &err))
        si_fatal("%s", err.msg); /* checked while loading: the files changed since */
    if (s->m.set.n_files)
        st_close(&s->m.set); /* the backend has its copy: unmap the files */
    flags->req.be = s->be;
    if (!flags->req.chunk)
        flags->req.chunk = session_default_chunk(s->be);
    flags->req.w = &s->w;
    return 0;
}

int session_default_chunk(const backend *be)
{
    return be->host_memory ? 512 : 8192;
}

void session_close(session *s)
{
    if (s->be)
        backend_weights_free(&s->w, s->be);
    if (s->loaded)
        model_free(&s->m);
}
