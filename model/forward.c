#include "model/forward.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Every activation is sized in fp32 elements, enough for either activation format. */
static size_t act_floats(const model_config *c, int n_max, int logit_rows, size_t *parts)
{
    size_t n = (size_t)n_max, qd = (size_t)c->n_heads * c->head_dim;
    size_t rows = n * c->n_heads;
    size_t sizes[] = {
        n * c->hidden_size,       /* x */
        n * c->hidden_size,       /* xn */
        n * qd,                   /* q */
        n * qd,                   /* att */
        n * c->intermediate_size, /* hb */
        n * c->intermediate_size, /* hb2 */
        (size_t)logit_rows * c->vocab_size,
        rows,                             /* m */
        rows,                             /* l */
        n * qd,                           /* o */
        2 * (size_t)c->intermediate_size, /* gate_up: one token's gate and up, side by side */
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t aligned = (sizes[i] + 3) / 4 * 4; /* every part on a 16-byte boundary */
        if (parts)
            parts[i] = aligned;
        total += aligned;
    }
    return total;
}

size_t forward_state_bytes(const model_config *cfg, const backend *be, int n_max, int logit_rows)
{
    int qd = cfg->n_heads * cfg->head_dim, widest = cfg->intermediate_size;
    widest = widest > cfg->hidden_size ? widest : cfg->hidden_size;
    widest = widest > qd ? widest : qd;
    return sizeof(float) * act_floats(cfg, n_max, logit_rows, NULL) +
           be->scratch_bytes(n_max, widest, qd);
}

void forward_state_init(forward_state *fs, const model_config *cfg, const backend_weights *w,
                        const backend *be, int n_max, int logit_rows)
{
    memset(fs, 0, sizeof *fs);
    fs->cfg = cfg;
    fs->w = w;
    fs->be = be;
    fs->n_max = n_max;
    fs->logit_rows = logit_rows;
    enum { N_PARTS = 11 };
    size_t parts[N_PARTS];
    size_t total = act_floats(cfg, n_max, logit_rows, parts);
    float *p = be->alloc(sizeof(float) * total, "activations");
    void *slots[N_PARTS] = {&fs->x,       &fs->xn,      &fs->q,      &fs->att,
                            &fs->hb,      &fs->hb2,     &fs->logits, &fs->state.m,
                            &fs->state.l, &fs->state.o, &fs->gate_up};
    for (int i = 0; i < N_PARTS; i++) {
        *(void **)slots[i] = p;
        p += parts[i];
    }
    if (!be->host_memory)
        fs->logits_host =
            be->host_alloc(sizeof(float) * (size_t)logit_rows * cfg->vocab_size, "host logits");
}

void forward_state_free(forward_state *fs)
{
    if (fs->x)
        fs->be->free(fs->x);
    if (fs->logits_host)
        fs->be->host_free(fs->logits_host);
    memset(fs, 0, sizeof *fs);
}

void *kv_span_at(const kv_span *s, const backend *be, int which_v, int layer, int row, int kv_dim)
{
    size_t elem = (size_t)layer * s->layer_stride + (size_t)row * kv_dim;
    return (char *)(which_v ? s->v : s->k) + elem * be->kv_size;
}

static attn_keys span_keys(const forward_state *fs, const kv_span *s, int layer, int from, int nk,
                           int diag)
{
    int kvd = fs->cfg->n_kv_heads * fs->cfg->head_dim;
    attn_keys keys = {kv_span_at(s, fs->be, 0, layer, from, kvd),
                      kv_span_at(s, fs->be, 1, layer, from, kvd), nk, kvd, diag};
    return keys;
}

/* The new tokens' queries into fs->q (unless KV_ONLY) and their keys and values after the
 * store's rows (unless there is no store). */
static void project_qkv(forward_state *fs, int layer, const int *pos, int n, kv_span *st,
                        int kv_only)
{
    const model_config *c = fs->cfg;
    const layer_tensors *w = &fs->w->layers[layer];
    int kvd = c->n_kv_heads * c->head_dim;
    qkv_proj p = {w->wq,          w->wk,      w->wv,         w->wqkv,    fs->w->inv_freq,
                  c->hidden_size, c->n_heads, c->n_kv_heads, c->head_dim};
    void *k = st ? kv_span_at(st, fs->be, 0, layer, st->rows, kvd) : NULL;
    void *v = st ? kv_span_at(st, fs->be, 1, layer, st->rows, kvd) : NULL;
    fs->be->qkv(kv_only ? NULL : fs->q, k, v, fs->xn, &p, pos, n);
}

/* The store's keys the new tokens attend to (their own included, written by project_qkv): from
 * SELF_FROM on, causal for the new rows. */
static attn_keys store_keys(forward_state *fs, int layer, int n, const forward_args *args)
{
    const kv_span *st = args->store;
    return span_keys(fs, st, layer, args->self_from, st->rows + n - args->self_from,
                     st->rows - args->self_from);
}

/* Self-attention of layer L: Q from the normed input, K/V appended to the store, every key set
 * folded into the online-softmax state, combined across processes, normalised, projected and
 * added into the residual stream. With the store's keys alone the backend does all of it in one
 * call, in its shortest way. */
static void attention_block(forward_state *fs, int layer, const int *pos, int n,
                            const forward_args *args)
{
    const model_config *c = fs->cfg;
    const layer_tensors *w = &fs->w->layers[layer];
    const backend *be = fs->be;
    int qd = c->n_heads * c->head_dim;
    float scale = 1.0f / sqrtf((float)c->head_dim);

    project_qkv(fs, layer, pos, n, args->store, 0);
    /* one key set alone: global attention, or a Star block that is its own anchor */
    if (args->store && !args->n_prefix && !args->combine) {
        attn_keys keys = store_keys(fs, layer, n, args);
        be->attend_project(fs->x, &fs->state, fs->att, fs->q, n, c->n_heads, c->n_kv_heads,
                           c->head_dim, &keys, scale, w->wo, c->hidden_size);
        return;
    }
    be->attn_init(&fs->state, n * c->n_heads, c->head_dim);
    for (int i = 0; i < args->n_prefix; i++) {
        const kv_span *s = &args->prefix[i];
        attn_keys keys = span_keys(fs, s, layer, 0, s->rows, INT_MAX);
        be->attn_accumulate(&fs->state, fs->q, n, c->n_heads, c->n_kv_heads, c->head_dim, &keys,
                            scale);
    }
    if (args->store) {
        attn_keys keys = store_keys(fs, layer, n, args);
        be->attn_accumulate(&fs->state, fs->q, n, c->n_heads, c->n_kv_heads, c->head_dim, &keys,
                            scale);
    }
    if (args->combine)
        args->combine(args->combine_user, be, &fs->state, n * c->n_heads, c->head_dim);
    be->attn_finalize(fs->att, &fs->state, n * c->n_heads, c->head_dim);
    be->matmul_add(fs->x, fs->att, w->wo, n, qd, c->hidden_size);
}

/* The MLP's norm, then the MLP added into the residual stream. One token (decoding) takes one
 * product over the gate and up weights where they lie back to back, gated as it goes. */
static void mlp_block(forward_state *fs, int layer, int n)
{
    const model_config *c = fs->cfg;
    const layer_tensors *w = &fs->w->layers[layer];
    const backend *be = fs->be;
    int inter = c->intermediate_size;
    be->rmsnorm(fs->xn, fs->x, w->mlp_norm, n, c->hidden_size, c->rms_norm_eps);
    if (n == 1 && w->w_gate_up) {
        be->matmul_swiglu(fs->gate_up, fs->xn, w->w_gate_up, c->hidden_size, inter);
        be->matmul_add(fs->x, fs->gate_up, w->w_down, n, inter, c->hidden_size);
    } else {
        be->mlp(fs->x, fs->hb, fs->hb2, fs->xn, w->w_gate, w->w_up, w->w_down, n, c->hidden_size,
                inter);
    }
}

static const float *lm_head(forward_state *fs, int n, forward_logits which)
{
    const model_config *c = fs->cfg;
    const backend *be = fs->be;
    int first = which == FORWARD_LOGITS_LAST ? n - 1 : 0, rows = n - first;
    if (rows > fs->logit_rows)
        si_fatal("forward asked for %d rows of logits, sized for %d", rows, fs->logit_rows);
    const float *x = fs->x + (size_t)first * c->hidden_size;
    be->rmsnorm(fs->xn, x, fs->w->norm, rows, c->hidden_size, c->rms_norm_eps);
    be->matmul_logits(fs->logits, fs->xn, fs->w->lm_head, rows, c->hidden_size, c->vocab_size);
    return fs->logits;
}

const float *forward_logits_host(forward_state *fs, int rows)
{
    if (rows > fs->logit_rows)
        si_fatal("%d rows of host logits asked for, sized for %d", rows, fs->logit_rows);
    if (fs->be->host_memory)
        return fs->logits;
    fs->be->to_host(fs->logits_host, fs->logits,
                    sizeof(float) * (size_t)rows * fs->cfg->vocab_size);
    return fs->logits_host;
}

const float *forward(forward_state *fs, const int *tokens, const int *pos, int n,
                     const forward_args *args)
{
    const model_config *c = fs->cfg;
    if (n <= 0 || n > fs->n_max)
        si_fatal("forward called with %d tokens, sized for 1..%d", n, fs->n_max);
    if (args->store && args->store->rows + n > args->store->capacity)
        si_fatal("KV cache overflow: %d rows + %d new > capacity %d", args->store->rows, n,
                 args->store->capacity);
    const backend *be = fs->be;
    /* When only the keys and values are wanted (encoding context), the last layer's attention
     * and MLP feed nothing that is kept: compute its K/V and stop. */
    int kv_only = args->logits == FORWARD_LOGITS_NONE && !args->combine && args->store;
    be->embedding(fs->x, fs->w->embed, tokens, n, c->hidden_size);
    for (int layer = 0; layer < c->n_layers; layer++) {
        be->rmsnorm(fs->xn, fs->x, fs->w->layers[layer].attn_norm, n, c->hidden_size,
                    c->rms_norm_eps);
        if (kv_only && layer == c->n_layers - 1) {
            project_qkv(fs, layer, pos, n, args->store, 1);
            break;
        }
        attention_block(fs, layer, pos, n, args);
        mlp_block(fs, layer, n);
    }
    if (args->store)
        args->store->rows += n;
    if (args->logits == FORWARD_LOGITS_NONE)
        return NULL;
    return lm_head(fs, n, args->logits);
}
