#include "runtime/star_merge.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runtime/mpi_check.h"
#include "runtime/timer.h"

static float weight(float m, float max)
{
    return m == -INFINITY ? 0.0f : expf(m - max);
}

/* The user-defined reduction over (m, l, o[d]) records: inout = merge(in, inout). */
static void merge_records(void *in, void *inout, int *len, MPI_Datatype *type)
{
    int size;
    MPI_Type_size(*type, &size);
    int width = size / (int)sizeof(float), d = width - 2;
    const float *a = in;
    float *b = inout;
    for (int r = 0; r < *len; r++, a += width, b += width) {
        float max = fmaxf(a[0], b[0]);
        float wa = weight(a[0], max), wb = weight(b[0], max);
        b[0] = max;
        b[1] = a[1] * wa + b[1] * wb;
        for (int t = 0; t < d; t++)
            b[2 + t] = a[2 + t] * wa + b[2 + t] * wb;
    }
}

void star_merge_init(star_merge *mg, MPI_Comm comm, star_merge_mode mode, const backend *be,
                     int head_dim, int max_rows)
{
    memset(mg, 0, sizeof *mg);
    mg->comm = comm;
    mpiCheck(MPI_Comm_size(comm, &mg->n_ranks));
    mg->mode = mode;
    mg->be = be;
    mg->head_dim = head_dim;
    mg->max_rows = max_rows;
    mg->buf = mallocCheck(sizeof(float) * (size_t)max_rows * (head_dim + 2), "merge buffer");
    if (!be->host_memory) {
        float *h = be->host_alloc(sizeof(float) * (size_t)max_rows * (head_dim + 2), "merge staging");
        mg->host = (attn_state){h, h + max_rows, h + 2 * (size_t)max_rows};
    }
    mpiCheck(MPI_Type_contiguous(head_dim + 2, MPI_FLOAT, &mg->record));
    mpiCheck(MPI_Type_commit(&mg->record));
    mpiCheck(MPI_Op_create(merge_records, 1, &mg->op));
}

void star_merge_free(star_merge *mg)
{
    if (!mg->buf)
        return;
    free(mg->buf);
    if (mg->host.m)
        mg->be->host_free(mg->host.m);
    device_comm_destroy(mg->dc);
    MPI_Type_free(&mg->record);
    MPI_Op_free(&mg->op);
    memset(mg, 0, sizeof *mg);
}

static void merge_one_call(star_merge *mg, attn_state *s, int rows, int d)
{
    int w = d + 2;
    for (int r = 0; r < rows; r++) {
        float *rec = mg->buf + (size_t)r * w;
        rec[0] = s->m[r];
        rec[1] = s->l[r];
        memcpy(rec + 2, s->o + (size_t)r * d, sizeof(float) * d);
    }
    mpiCheck(MPI_Allreduce(MPI_IN_PLACE, mg->buf, rows, mg->record, mg->op, mg->comm));
    for (int r = 0; r < rows; r++) {
        const float *rec = mg->buf + (size_t)r * w;
        s->m[r] = rec[0];
        s->l[r] = rec[1];
        memcpy(s->o + (size_t)r * d, rec + 2, sizeof(float) * d);
    }
}

static void merge_two_calls(star_merge *mg, attn_state *s, int rows, int d)
{
    float *max = mg->buf + (size_t)rows * (d + 1);
    mpiCheck(MPI_Allreduce(s->m, max, rows, MPI_FLOAT, MPI_MAX, mg->comm));
    for (int r = 0; r < rows; r++) {
        float wr = weight(s->m[r], max[r]);
        mg->buf[r] = s->l[r] * wr;
        float *o = mg->buf + rows + (size_t)r * d;
        for (int t = 0; t < d; t++)
            o[t] = s->o[(size_t)r * d + t] * wr;
    }
    mpiCheck(MPI_Allreduce(MPI_IN_PLACE, mg->buf, rows * (d + 1), MPI_FLOAT, MPI_SUM, mg->comm));
    memcpy(s->m, max, sizeof(float) * rows);
    memcpy(s->l, mg->buf, sizeof(float) * rows);
    memcpy(s->o, mg->buf + rows, sizeof(float) * (size_t)rows * d);
}

/* Copies the state between the backend and the host staging buffers. */
static void stage(attn_state *dst, const attn_state *src, int rows, int d,
                  void (*copy)(void *, const void *, size_t))
{
    copy(dst->m, src->m, sizeof(float) * rows);
    copy(dst->l, src->l, sizeof(float) * rows);
    copy(dst->o, src->o, sizeof(float) * (size_t)rows * d);
}

void star_merge_combine(void *user, const backend *be, attn_state *s, int rows, int head_dim)
{
    star_merge *mg = user;
    if (rows > mg->max_rows || head_dim != mg->head_dim)
        si_fatal("merge of %d rows x %d sized for %d x %d", rows, head_dim, mg->max_rows,
                 mg->head_dim);
    if (mg->n_ranks == 1)
        return; /* the merge over one rank is the identity */
    if (mg->dc) { /* queued behind the layer's work, timed on the device */
        device_comm_merge_attn(mg->dc, s, rows, head_dim);
        mg->calls++;
        return;
    }
    /* The rows to the host: three copies queued behind the layer's work, one wait for all of it.
     * The merge's time starts when they have landed (the copies' few microseconds on the GPU count
     * in the layer's time, with the work they wait for). */
    attn_state *h = be->host_memory ? s : &mg->host;
    if (!be->host_memory)
        stage(h, s, rows, head_dim, be->to_host_async);
    be->synchronize();
    double t0 = timer_now();
    int one_call = mg->mode == STAR_MERGE_ONE_CALL ||
                   (mg->mode == STAR_MERGE_AUTO && rows <= STAR_MERGE_AUTO_MAX_ROWS);
    if (one_call)
        merge_one_call(mg, h, rows, head_dim);
    else
        merge_two_calls(mg, h, rows, head_dim);
    /* queued, the layer's next operations behind them; the staging is written again only after
     * the next merge's synchronize() */
    if (!be->host_memory)
        stage(s, h, rows, head_dim, be->to_device_async);
    mg->seconds += timer_now() - t0;
    mg->calls++;
}

double star_merge_seconds(star_merge *mg)
{
    return mg->seconds + (mg->dc ? device_comm_merge_seconds(mg->dc) : 0.0);
}

/* Why this rank cannot merge through NCCL ("" if it can), and its GPU as "host/bus id". */
static void nccl_readiness(const star_merge *mg, char why[256], char gpu[128])
{
    why[0] = 0;
    char host[64] = "?", bus[32] = "?";
    gethostname(host, sizeof host);
    host[sizeof host - 1] = 0;
    if (mg->be->host_memory)
        snprintf(why, 256, "it computes on the CPU (--merge-transport nccl needs --device cuda)");
    else if (!device_comm_available())
        snprintf(why, 256, "this starinfer was built without NCCL (use --merge-transport mpi)");
    else if (device_comm_gpu_bus_id(bus, sizeof bus) != 0)
        snprintf(why, 256, "its GPU's PCI bus id cannot be read");
    snprintf(gpu, 128, "%s/%s", host, bus);
}

int star_merge_use_nccl(star_merge *mg, si_error *err)
{
    int rank, size;
    MPI_Comm_rank(mg->comm, &rank);
    MPI_Comm_size(mg->comm, &size);
    enum { WHY = 256, GPU = 128, REC = WHY + GPU };
    char mine[REC];
    nccl_readiness(mg, mine, mine + WHY);
    char *all = mallocCheck((size_t)REC * size, "NCCL readiness");
    mpiCheck(MPI_Allgather(mine, REC, MPI_CHAR, all, REC, MPI_CHAR, mg->comm));
    int rc = 0;
    for (int r = 0; r < size && rc == 0; r++)
        if (all[(size_t)r * REC])
            rc = si_error_set(err, "--merge-transport nccl: rank %d cannot use NCCL: %s", r,
                              all + (size_t)r * REC);
    for (int a = 0; a < size && rc == 0; a++)
        for (int b = a + 1; b < size && rc == 0; b++)
            if (!strcmp(all + (size_t)a * REC + WHY, all + (size_t)b * REC + WHY))
                rc = si_error_set(err,
                                  "--merge-transport nccl: ranks %d and %d share GPU %s, and "
                                  "NCCL needs one GPU per rank\n"
                                  "  HINT: launch one rank per GPU, or merge through MPI "
                                  "(--merge-transport mpi) when ranks share GPUs",
                                  a, b, all + (size_t)a * REC + WHY);
    free(all);
    if (rc != 0)
        return rc;
    unsigned char id[DEVICE_COMM_ID_BYTES] = {0};
    if (rank == 0)
        device_comm_unique_id(id);
    mpiCheck(MPI_Bcast(id, DEVICE_COMM_ID_BYTES, MPI_BYTE, 0, mg->comm));
    mg->dc = device_comm_create(id, size, rank, mg->max_rows);
    return 0;
}

int star_merge_parse_transport(const char *value, star_merge_transport *t)
{
    if (!strcmp(value, "mpi"))
        *t = STAR_MERGE_MPI;
    else if (!strcmp(value, "nccl"))
        *t = STAR_MERGE_NCCL;
    else
        return -1;
    return 0;
}

int star_merge_parse_mode(const char *value, star_merge_mode *mode)
{
    if (!strcmp(value, "auto"))
        *mode = STAR_MERGE_AUTO;
    else if (!strcmp(value, "one-call"))
        *mode = STAR_MERGE_ONE_CALL;
    else if (!strcmp(value, "two-call"))
        *mode = STAR_MERGE_TWO_CALLS;
    else
        return -1;
    return 0;
}
