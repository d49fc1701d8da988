/* What every rank of run and eval sets up before serving requests: MPI, the model, the backend
 * of its GPU (or CPU) and the weights on it. A failure on any rank is reported by that rank and
 * ends every rank together. */
#ifndef STARINFER_LAUNCHER_SESSION_H
#define STARINFER_LAUNCHER_SESSION_H

#include "launcher/args.h"
#include "model/backend_weights.h"
#include "model/model.h"

typedef struct {
    model m;
    backend_weights w;
    const backend *be;
    int rank;
    int loaded;
    double load_s; /* the slowest rank's time to put the weights on its backend */
} session;

/* Returns 0 when every rank is ready; fills FLAGS->req's backend and weights. With FLAGS->shape
 * the model is that shape with seeded random weights made on the backend. */
int session_open(session *s, star_flags *flags);
/* The most tokens per forward pass when --chunk is not given: 512 on a CPU (longer chunks only
 * cost memory there), 8192 on a GPU (longer chunks keep its matrix units busy, and each chunk
 * length costs cuDNN's attention a plan of its own: bench/NOTES.md 8). */
int session_default_chunk(const backend *be);
/* M's weights from its mapped files onto BE (backend_weights_stream), in *SECONDS. With REPORT
 * (rank 0) it says on stderr how far it is every few seconds, then how long it took. */
int session_load_weights(backend_weights *w, const model *m, const backend *be, int report,
                         double *seconds, si_error *err);
void session_close(session *s);

#endif
