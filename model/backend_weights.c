#include "model/backend_weights.h"

#include <stdlib.h>
#include <string.h>

/* The tensors of W in a fixed order, with their element counts; DST the matching slots. */
typedef struct {
    const float *src;
    const void **dst;
    size_t count;
} tensor_slot;

static int list_tensors(tensor_slot *s, const model_config *c, const model_weights *w,
                        backend_weights *bw)
{
    size_t hid = c->hidden_size, inter = c->intermediate_size, vocab = c->vocab_size;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    int n = 0;
    s[n++] = (tensor_slot){w->embed, &bw->embed, vocab * hid};
    s[n++] = (tensor_slot){w->norm, &bw->norm, hid};
    if (!c->tie_word_embeddings)
        s[n++] = (tensor_slot){w->lm_head, &bw->lm_head, vocab * hid};
    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights *lw = &w->layers[l];
        layer_tensors *lt = &bw->layers[l];
#define SLOT(field, n_elems) s[n++] = (tensor_slot){lw->field, &lt->field, (n_elems)}
        SLOT(attn_norm, hid);
        SLOT(wq, qd * hid);
        SLOT(wk, kvd * hid);
        SLOT(wv, kvd * hid);
        SLOT(wo, hid * qd);
        SLOT(mlp_norm, hid);
        SLOT(w_gate, inter * hid);
        SLOT(w_up, inter * hid);
        SLOT(w_down, hid * inter);
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

size_t backend_weights_bytes(const model_config *cfg, const backend *be)
{
    if (be->host_memory)
        return 0;
    size_t n_tensors = 3 + 9 * (size_t)cfg->n_layers;
    return total_elems(cfg) * be->weight_size + n_tensors * TENSOR_ALIGN +
           sizeof(float) * (cfg->head_dim / 2);
}

void backend_weights_upload(backend_weights *bw, const model_config *cfg, const model_weights *w,
                            const float *inv_freq, const backend *be)
{
    memset(bw, 0, sizeof *bw);
    bw->layers = callocCheck(cfg->n_layers, sizeof *bw->layers, "layer table");
    tensor_slot *slots = callocCheck(3 + 9 * (size_t)cfg->n_layers, sizeof *slots, "tensor list");
    int n = list_tensors(slots, cfg, w, bw);
    if (be->host_memory) {
        for (int i = 0; i < n; i++)
            *slots[i].dst = slots[i].src;
        bw->inv_freq = inv_freq;
    } else {
        bw->bytes = backend_weights_bytes(cfg, be);
        bw->block = be->alloc(bw->bytes, "weights");
        char *cursor = bw->block;
        for (int i = 0; i < n; i++) {
            be->weight_upload(cursor, slots[i].src, slots[i].count);
            *slots[i].dst = cursor;
            cursor += padded(slots[i].count * be->weight_size);
        }
        be->to_device(cursor, inv_freq, sizeof(float) * (cfg->head_dim / 2));
        bw->inv_freq = (const float *)cursor;
    }
    if (cfg->tie_word_embeddings)
        bw->lm_head = bw->embed;
    free(slots);
}

void backend_weights_free(backend_weights *bw, const backend *be)
{
    if (bw->block)
        be->free(bw->block);
    free(bw->layers);
    memset(bw, 0, sizeof *bw);
}
