#include "launcher/session.h"

#include <string.h>
#include <unistd.h>

#include "model/shapes.h"
#include "runtime/mpi_check.h"
#include "runtime/timer.h"

/* The key of the sizes and constants of CFG that the ranks' computations must share. */
static uint64_t config_key(const model_config *c)
{
    float f[] = {c->rms_norm_eps, c->rope_theta, c->rope_factor, c->rope_low_freq_factor,
                 c->rope_high_freq_factor};
    int n[] = {c->hidden_size,
               c->intermediate_size,
               c->n_layers,
               c->n_heads,
               c->n_kv_heads,
               c->head_dim,
               c->vocab_size,
               (int)c->rope_scaling,
               c->rope_original_max_positions,
               c->tie_word_embeddings};
    return mpi_key_add(mpi_key_add(MPI_KEY_START, f, sizeof f), n, sizeof n);
}

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
                                       : model_dir_check(flags->model_dir, &err) ||
                                             model_load_mapped(&s->m, flags->model_dir, &err)) == 0;
    if (!ok)
        si_log("error: %s", err.msg);
    if (!mpi_all_ok(ok))
        return -1;
    /* The same --model path on every rank, but each node reads its own copy of the files. */
    int odd = mpi_first_differing(config_key(&s->m.cfg));
    if (odd >= 0) {
        if (s->rank == odd) {
            char host[256] = "?";
            gethostname(host, sizeof host);
            si_log("error: the model in '%s' on %s is not rank 0's: its config.json gives other "
                   "sizes (hidden %d, %d layers, vocabulary %d)\n"
                   "  HINT: every node must hold the same model at the --model path",
                   flags->model_dir ? flags->model_dir : flags->shape, host, s->m.cfg.hidden_size,
                   s->m.cfg.n_layers, s->m.cfg.vocab_size);
        }
        return -1;
    }
    if (s->rank == 0 && !flags->shape)
        model_warn_unused(&s->m);
    device_share_threads(local_size);
    if (!flags->req.chunk)
        flags->req.chunk = session_default_chunk(s->be);
    device_prepare(s->be, &s->m.cfg, flags->req.chunk);
    /* The backend's own copy of the weights (bf16 on a GPU, fp32 on the CPU), converted tensor by
     * tensor from the mapped files: the host never holds a second copy of the model. */
    double t0 = timer_now(), load_s;
    if (flags->shape) {
        backend_weights_random(&s->w, &s->m.cfg, s->m.inv_freq, s->be, flags->weight_seed);
        s->be->synchronize();
        load_s = timer_now() - t0;
    } else if (session_load_weights(&s->w, &s->m, s->be, s->rank == 0, &load_s, &err)) {
        si_fatal("%s", err.msg); /* checked while loading: the files changed since */
    }
    device_prepare_wait(s->be);
    s->load_s = mpi_all_max(load_s);
    if (s->m.set.n_files)
        st_close(&s->m.set); /* the backend has its copy: unmap the files */
    flags->req.be = s->be;
    flags->req.w = &s->w;
    return 0;
}

typedef struct {
    double start, last;
} load_clock;

static void load_progress(void *user, size_t done, size_t total)
{
    load_clock *c = user;
    double now = timer_now();
    if (done < total && now - c->last >= 5.0) {
        c->last = now;
        si_log("weights: %.0f%% (%.1f of %.1f GB) in %.0f s", 100.0 * done / total, done / 1e9,
               total / 1e9, now - c->start);
    }
}

int session_load_weights(backend_weights *w, const model *m, const backend *be, int report,
                         double *seconds, si_error *err)
{
    load_clock c = {timer_now(), timer_now()};
    if (backend_weights_stream(w, &m->cfg, &m->set, m->inv_freq, be, report ? load_progress : NULL,
                               &c, err))
        return -1;
    double s = *seconds = timer_now() - c.start;
    if (report)
        si_log("weights: %.2f GB onto %s in %.2f s (%.1f GB/s)", w->bytes / 1e9, be->name, s,
               w->bytes / 1e9 / s);
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
