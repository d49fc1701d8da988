#include "model/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/convert.h"

/* Every tensor starts on a cache line (and a SIMD vector) boundary. */
#define WEIGHT_ALIGN 64

typedef enum { D_HIDDEN, D_INTER, D_VOCAB, D_Q, D_KV } dim_kind;

/* One tensor to load: its Hugging Face name, the dimensions config.json implies, and the pointer
 * it is carved into (NULL when only sizes are wanted). */
typedef struct {
    char name[64];
    int ndim;
    dim_kind dims[2];
    float **dst;
} weight_spec;

static int64_t dim_size(const model_config *cfg, dim_kind d)
{
    switch (d) {
    case D_HIDDEN:
        return cfg->hidden_size;
    case D_INTER:
        return cfg->intermediate_size;
    case D_VOCAB:
        return cfg->vocab_size;
    case D_Q:
        return (int64_t)cfg->n_heads * cfg->head_dim;
    case D_KV:
        return (int64_t)cfg->n_kv_heads * cfg->head_dim;
    }
    return 0;
}

/* Where a dimension comes from in config.json, for messages. */
static void dim_label(char *buf, size_t cap, const model_config *cfg, dim_kind d)
{
    switch (d) {
    case D_HIDDEN:
        snprintf(buf, cap, "hidden_size=%d", cfg->hidden_size);
        break;
    case D_INTER:
        snprintf(buf, cap, "intermediate_size=%d", cfg->intermediate_size);
        break;
    case D_VOCAB:
        snprintf(buf, cap, "vocab_size=%d", cfg->vocab_size);
        break;
    case D_Q:
        snprintf(buf, cap, "num_attention_heads*head_dim=%d*%d", cfg->n_heads, cfg->head_dim);
        break;
    case D_KV:
        snprintf(buf, cap, "num_key_value_heads*head_dim=%d*%d", cfg->n_kv_heads, cfg->head_dim);
        break;
    }
}

static void set_spec(weight_spec *s, const char *name, float **dst, int ndim, dim_kind d0,
                     dim_kind d1)
{
    snprintf(s->name, sizeof s->name, "%s", name);
    s->dst = dst;
    s->ndim = ndim;
    s->dims[0] = d0;
    s->dims[1] = d1;
}

#define SLOT(p, field) ((p) ? &(p)->field : NULL)

/* Fills S (room for n_specs(CFG)) with every tensor of the model, in the order of the block
 * (the order model_weights_each documents); the destinations point into W, or are NULL when W
 * is. */
static int weight_specs(const model_config *cfg, model_weights *w, weight_spec *s)
{
    int n = 0;
    set_spec(&s[n++], "model.embed_tokens.weight", SLOT(w, embed), 2, D_VOCAB, D_HIDDEN);
    set_spec(&s[n++], "model.norm.weight", SLOT(w, norm), 1, D_HIDDEN, 0);
    if (!cfg->tie_word_embeddings)
        set_spec(&s[n++], "lm_head.weight", SLOT(w, lm_head), 2, D_VOCAB, D_HIDDEN);
    for (int i = 0; i < cfg->n_layers; i++) {
        layer_weights *l = w ? &w->layers[i] : NULL;
        const struct {
            const char *suffix;
            float **dst;
            int ndim;
            dim_kind d0, d1;
        } layer[] = {
            {"input_layernorm", SLOT(l, attn_norm), 1, D_HIDDEN, 0},
            {"self_attn.q_proj", SLOT(l, wq), 2, D_Q, D_HIDDEN},
            {"self_attn.k_proj", SLOT(l, wk), 2, D_KV, D_HIDDEN},
            {"self_attn.v_proj", SLOT(l, wv), 2, D_KV, D_HIDDEN},
            {"self_attn.o_proj", SLOT(l, wo), 2, D_HIDDEN, D_Q},
            {"post_attention_layernorm", SLOT(l, mlp_norm), 1, D_HIDDEN, 0},
            {"mlp.gate_proj", SLOT(l, w_gate), 2, D_INTER, D_HIDDEN},
            {"mlp.up_proj", SLOT(l, w_up), 2, D_INTER, D_HIDDEN},
            {"mlp.down_proj", SLOT(l, w_down), 2, D_HIDDEN, D_INTER},
        };
        for (size_t j = 0; j < sizeof layer / sizeof layer[0]; j++) {
            char name[64];
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", i, layer[j].suffix);
            set_spec(&s[n++], name, layer[j].dst, layer[j].ndim, layer[j].d0, layer[j].d1);
        }
    }
    return n;
}

static int n_specs(const model_config *cfg)
{
    return 2 + !cfg->tie_word_embeddings + 9 * cfg->n_layers;
}

static size_t spec_elems(const model_config *cfg, const weight_spec *s)
{
    size_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= (size_t)dim_size(cfg, s->dims[i]);
    return n;
}

static size_t aligned_bytes(size_t elems)
{
    size_t bytes = elems * sizeof(float);
    return (bytes + WEIGHT_ALIGN - 1) / WEIGHT_ALIGN * WEIGHT_ALIGN;
}

size_t model_weights_bytes(const model_config *cfg)
{
    weight_spec *specs = callocCheck((size_t)n_specs(cfg), sizeof *specs, "the weight list");
    int n = weight_specs(cfg, NULL, specs);
    size_t bytes = 0;
    for (int i = 0; i < n; i++)
        bytes += aligned_bytes(spec_elems(cfg, &specs[i]));
    free(specs);
    return bytes;
}

/* The error names the tensor, its file, both shapes and the config fields that disagree. */
static int check_shape(const model_config *cfg, const weight_spec *s, const st_tensor *t,
                       si_error *err)
{
    int64_t want[2];
    int ok = t->ndim == s->ndim;
    for (int i = 0; i < s->ndim; i++) {
        want[i] = dim_size(cfg, s->dims[i]);
        ok = ok && t->shape[i] == want[i];
    }
    if (ok)
        return 0;
    char found[128], expected[64], fields[256] = "";
    st_format_shape(found, sizeof found, t->shape, t->ndim);
    st_format_shape(expected, sizeof expected, want, s->ndim);
    for (int i = 0; i < s->ndim; i++) {
        if (t->ndim == s->ndim && t->shape[i] == want[i])
            continue;
        char label[96];
        dim_label(label, sizeof label, cfg, s->dims[i]);
        size_t len = strlen(fields);
        snprintf(fields + len, sizeof fields - len, "%s%s", len ? ", " : "", label);
    }
    return si_error_set(err,
                        "%s in %s has shape %s, expected %s from config.json (%s)\n"
                        "  HINT: the weights and config.json come from different models",
                        t->name, t->file, found, expected, fields);
}

/* The folder the set's files are in, for messages. */
static void set_dir(char *buf, size_t cap, const st_set *set)
{
    snprintf(buf, cap, "%s", set->n_files ? set->files[0].path : "(no safetensors files)");
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = 0;
}

static int find_tensors(const model_config *cfg, const st_set *set, const weight_spec *specs,
                        const st_tensor **src, int n, si_error *err)
{
    for (int i = 0; i < n; i++) {
        src[i] = st_find(set, specs[i].name);
        if (src[i]) {
            if (check_shape(cfg, &specs[i], src[i], err))
                return -1;
            continue;
        }
        char dir[4096];
        set_dir(dir, sizeof dir, set);
        if (!strcmp(specs[i].name, "lm_head.weight"))
            return si_error_set(err,
                                "lm_head.weight is missing from the safetensors files in %s, "
                                "and config.json says tie_word_embeddings is false\n"
                                "  HINT: the weights and config.json come from different models",
                                dir);
        return si_error_set(err,
                            "tensor %s is missing from the safetensors files in %s\n"
                            "  HINT: the download is incomplete or is not a Llama model; "
                            "download it again",
                            specs[i].name, dir);
    }
    return 0;
}

/* The element type T's data has, for the converters. */
static elem_type stored_type(const st_tensor *t)
{
    switch (t->dtype) {
    case ST_F16:
        return ELEM_F16;
    case ST_F32:
        return ELEM_F32;
    case ST_BF16:
        break;
    }
    return ELEM_BF16;
}

/* Carves every tensor out of one block and converts it there. */
static int fill_block(model_weights *w, const model_config *cfg, const weight_spec *specs,
                      const st_tensor **src, int n, si_error *err)
{
    w->bytes = model_weights_bytes(cfg);
    if (posix_memalign(&w->block, WEIGHT_ALIGN, w->bytes) != 0) {
        w->block = NULL;
        return si_error_set(err,
                            "cannot allocate %.2f GiB of host memory for the weights in fp32\n"
                            "  HINT: use a node with more memory, or a smaller model",
                            (double)w->bytes / (1 << 30));
    }
    char *cursor = w->block;
    for (int i = 0; i < n; i++) {
        size_t elems = spec_elems(cfg, &specs[i]);
        *specs[i].dst = (float *)cursor;
        elems_to_f32(*specs[i].dst, src[i]->data, stored_type(src[i]), elems);
        cursor += aligned_bytes(elems);
    }
    return 0;
}

int model_weights_load(model_weights *w, const model_config *cfg, const st_set *set, si_error *err)
{
    memset(w, 0, sizeof *w);
    int n = n_specs(cfg);
    weight_spec *specs = callocCheck((size_t)n, sizeof *specs, "the weight list");
    const st_tensor **src = callocCheck((size_t)n, sizeof *src, "the weight list");
    w->layers = callocCheck((size_t)cfg->n_layers, sizeof *w->layers, "the layer table");
    weight_specs(cfg, w, specs);
    /* Every name and shape is checked before the (large) block is allocated. */
    int rc = find_tensors(cfg, set, specs, src, n, err);
    if (!rc)
        rc = fill_block(w, cfg, specs, src, n, err);
    if (!rc && cfg->tie_word_embeddings)
        w->lm_head = w->embed;
    free(specs);
    free(src);
    if (rc)
        model_weights_free(w);
    return rc;
}

int model_weights_each(const model_config *cfg, const st_set *set, weight_put_fn put, void *user,
                       si_error *err)
{
    int n = n_specs(cfg);
    weight_spec *specs = callocCheck((size_t)n, sizeof *specs, "the weight list");
    const st_tensor **src = callocCheck((size_t)n, sizeof *src, "the weight list");
    weight_specs(cfg, NULL, specs);
    int rc = find_tensors(cfg, set, specs, src, n, err);
    if (!rc && put)
        for (int i = 0; i < n; i++)
            put(user, i, src[i]->data, stored_type(src[i]), spec_elems(cfg, &specs[i]));
    free(specs);
    free(src);
    return rc;
}

int model_weights_unused(const model_config *cfg, const st_set *set, const char **first)
{
    int n = n_specs(cfg), unused = 0;
    weight_spec *specs = callocCheck((size_t)n, sizeof *specs, "the weight list");
    weight_specs(cfg, NULL, specs);
    *first = NULL;
    for (int t = 0; t < set->n_tensors; t++) {
        const char *name = set->tensors[t].name;
        int used = strstr(name, "rotary_emb.inv_freq") != NULL;
        for (int i = 0; i < n && !used; i++)
            used = !strcmp(specs[i].name, name);
        if (!used && !unused++)
            *first = name;
    }
    free(specs);
    return unused;
}

void model_weights_free(model_weights *w)
{
    free(w->block);
    free(w->layers);
    memset(w, 0, sizeof *w);
}
