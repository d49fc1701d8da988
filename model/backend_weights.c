#include "model/backend_weights.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/random_weights.h"

/* The tensors of W (NULL: no host tensors) in a fixed order, model_weights_each's, with their
 * element counts and fan-in (0 for a norm's scale); DST the matching slots. */
typedef struct {
    const float *src;
    const void **dst;
    size_t count;
    size_t fan_in;
} tensor_slot;

static int list_tensors(tensor_slot *s, const model_config *c, const model_weights *w,
                        backend_weights *bw)
{
    size_t hid = c->hidden_size, inter = c->intermediate_size, vocab = c->vocab_size;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    int n = 0;
    s[n++] = (tensor_slot){w ? w->embed : NULL, &bw->embed, vocab * hid, hid};
    s[n++] = (tensor_slot){w ? w->norm : NULL, &bw->norm, hid, 0};
    if (!c->tie_word_embeddings)
        s[n++] = (tensor_slot){w ? w->lm_head : NULL, &bw->lm_head, vocab * hid, hid};
    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights *lw = w ? &w->layers[l] : NULL;
        layer_tensors *lt = &bw->layers[l];
#define SLOT(field, n_elems, fan_in)                                                               \
    s[n++] = (tensor_slot){lw ? lw->field : NULL, &lt->field, (n_elems), (fan_in)}
        SLOT(attn_norm, hid, 0);
        SLOT(wq, qd * hid, hid);
        SLOT(wk, kvd * hid, hid);
        SLOT(wv, kvd * hid, hid);
        SLOT(wo, hid * qd, qd);
        SLOT(mlp_norm, hid, 0);
        SLOT(w_gate, inter * hid, hid);
        SLOT(w_up, inter * hid, hid);
        SLOT(w_down, hid * inter, inter);
#undef SLOT
    }
    return n;
}

/* Each tensor starts on this boundary in a device allocation (vector loads). */
#define TENSOR_ALIGN 256

static size_t padded(size_t bytes)
{
    return (bytes + TENSOR_ALIGN - 1) / TENSOR_ALIGN * TENSOR_ALIGN;
}

static size_t total_elems(const model_config *c)
{
    size_t hid = c->hidden_size, qd = (size_t)c->n_heads * c->head_dim;
    size_t kvd = (size_t)c->n_kv_heads * c->head_dim, inter = c->intermediate_size;
    size_t layer = 2 * hid + 2 * qd * hid + 2 * kvd * hid + 3 * inter * hid;
    size_t heads = (c->tie_word_embeddings ? 1 : 2) * (size_t)c->vocab_size * hid;
    return heads + hid + layer * c->n_layers;
}

/* Bytes of one backend allocation holding every tensor and the RoPE frequencies. */
static size_t block_bytes(const model_config *cfg, const backend *be)
{
    size_t n_tensors = 3 + 9 * (size_t)cfg->n_layers;
    return total_elems(cfg) * be->weight_size + n_tensors * TENSOR_ALIGN +
           sizeof(float) * (cfg->head_dim / 2);
}

/* Whether B starts where A's BYTES end. */
static int follows(const void *a, size_t bytes, const void *b)
{
    return (const char *)a + bytes == (const char *)b;
}

/* Sets each layer's wqkv and w_gate_up where the carved tensors lie back to back (every tensor's
 * size a multiple of TENSOR_ALIGN, as in the real shapes). */
static void link_side_by_side(backend_weights *bw, const model_config *c, const backend *be)
{
    size_t hid = c->hidden_size, ws = be->weight_size;
    size_t q = (size_t)c->n_heads * c->head_dim * hid * ws;
    size_t kv = (size_t)c->n_kv_heads * c->head_dim * hid * ws;
    size_t inter = (size_t)c->intermediate_size * hid * ws;
    for (int l = 0; l < c->n_layers; l++) {
        layer_tensors *t = &bw->layers[l];
        t->wqkv = follows(t->wq, q, t->wk) && follows(t->wk, kv, t->wv) ? t->wq : NULL;
        t->w_gate_up = follows(t->w_gate, inter, t->w_up) ? t->w_gate : NULL;
    }
}

/* One allocation on BE holding every tensor of CFG, each on a TENSOR_ALIGN boundary, then the
 * RoPE frequencies (copied in): BW's pointers are set into it (lm_head to embed when tied).
 * Returns the tensor list in list_tensors' order, with W's host tensors as sources (W may be
 * NULL), its length in *N; each slot's destination is where its tensor is to be written. */
static tensor_slot *carve(backend_weights *bw, const model_config *cfg, const model_weights *w,
                          const float *inv_freq, const backend *be, int *n)
{
    memset(bw, 0, sizeof *bw);
    bw->layers = callocCheck(cfg->n_layers, sizeof *bw->layers, "layer table");
    tensor_slot *slots = callocCheck(3 + 9 * (size_t)cfg->n_layers, sizeof *slots, "tensor list");
    *n = list_tensors(slots, cfg, w, bw);
    bw->bytes = block_bytes(cfg, be);
    bw->block = be->alloc(bw->bytes, "weights");
    char *cursor = bw->block;
    for (int i = 0; i < *n; i++) {
        *slots[i].dst = cursor;
        cursor += padded(slots[i].count * be->weight_size);
    }
    be->to_device(cursor, inv_freq, sizeof(float) * (cfg->head_dim / 2));
    bw->inv_freq = (const float *)cursor;
    if (cfg->tie_word_embeddings)
        bw->lm_head = bw->embed;
    link_side_by_side(bw, cfg, be);
    return slots;
}

/* Where a carved slot's tensor is written. */
static char *slot_start(const tensor_slot *slot)
{
    return (char *)*slot->dst;
}

void backend_weights_upload(backend_weights *bw, const model_config *cfg, const model_weights *w,
                            const float *inv_freq, const backend *be)
{
    int n;
    tensor_slot *slots;
    if (be->host_memory) {
        memset(bw, 0, sizeof *bw);
        bw->layers = callocCheck(cfg->n_layers, sizeof *bw->layers, "layer table");
        slots = callocCheck(3 + 9 * (size_t)cfg->n_layers, sizeof *slots, "tensor list");
        n = list_tensors(slots, cfg, w, bw);
        for (int i = 0; i < n; i++)
            *slots[i].dst = slots[i].src;
        bw->inv_freq = inv_freq;
        if (cfg->tie_word_embeddings)
            bw->lm_head = bw->embed;
    } else {
        slots = carve(bw, cfg, w, inv_freq, be, &n);
        for (int i = 0; i < n; i++)
            be->weight_upload(slot_start(&slots[i]), slots[i].src, ELEM_F32, slots[i].count);
    }
    free(slots);
}

/* Where model_weights_each's tensors go: the INDEX-th tensor of the list (the same order). */
typedef struct {
    const backend *be;
    const tensor_slot *slots;
    int n;
    size_t done, total; /* bytes as stored */
    weight_progress_fn progress;
    void *user;
} stream_target;

static void put_tensor(void *user, int index, const void *data, elem_type type, size_t count)
{
    stream_target *t = user;
    if (index >= t->n || count != t->slots[index].count)
        si_fatal("weight %d: %zu elements do not fit its slot of %zu", index, count,
                 index < t->n ? t->slots[index].count : 0);
    t->be->weight_upload(slot_start(&t->slots[index]), data, type, count);
    t->done += count * elem_size(type);
    if (t->progress)
        t->progress(t->user, t->done, t->total);
}

static void add_size(void *user, int index, const void *data, elem_type type, size_t count)
{
    (void)index;
    (void)data;
    *(size_t *)user += count * elem_size(type);
}

int backend_weights_stream(backend_weights *bw, const model_config *cfg, const st_set *set,
                           const float *inv_freq, const backend *be, weight_progress_fn progress,
                           void *user, si_error *err)
{
    memset(bw, 0, sizeof *bw);
    size_t total = 0;
    if (model_weights_each(cfg, set, add_size, &total, err) != 0)
        return -1; /* every tensor checked before the block is allocated */
    int n;
    tensor_slot *slots = carve(bw, cfg, NULL, inv_freq, be, &n);
    stream_target t = {be, slots, n, 0, total, progress, user};
    int rc = model_weights_each(cfg, set, put_tensor, &t, err);
    be->synchronize(); /* the last copies have landed: the files may be unmapped */
    free(slots);
    if (rc != 0)
        backend_weights_free(bw, be);
    return rc;
}

void backend_weights_random(backend_weights *bw, const model_config *cfg, const float *inv_freq,
                            const backend *be, uint64_t seed)
{
    int n;
    tensor_slot *slots = carve(bw, cfg, NULL, inv_freq, be, &n);
    float *ones = mallocCheck(sizeof(float) * cfg->hidden_size, "norm scales");
    for (int i = 0; i < cfg->hidden_size; i++)
        ones[i] = 1.0f;
    for (int i = 0; i < n; i++) {
        if (slots[i].fan_in)
            be->weight_random(slot_start(&slots[i]), slots[i].count, splitmix64(seed) + (uint64_t)i,
                              1.0f / sqrtf((float)slots[i].fan_in));
        else
            be->weight_upload(slot_start(&slots[i]), ones, ELEM_F32, slots[i].count);
    }
    free(ones);
    free(slots);
}

size_t backend_weights_bytes(const model_config *cfg, const backend *be)
{
    return block_bytes(cfg, be);
}

void backend_weights_free(backend_weights *bw, const backend *be)
{
    if (bw->block)
        be->free(bw->block);
    free(bw->layers);
    memset(bw, 0, sizeof *bw);
}
