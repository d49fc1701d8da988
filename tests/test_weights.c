/* Weights of a tiny Llama written from here (config.json and safetensors files, single or
 * sharded, BF16/F16/F32, tied or not) load to the exact values written; shapes that disagree
 * with config.json and missing tensors are refused with messages naming tensor and file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/convert.h"
#include "model/backend_weights.h"
#include "model/weights.h"
#include "test_util.h"

/* The tiny model: hidden 8, 2 heads of 4 (or opts.head_dim), 1 KV head, MLP 12, 2 layers,
 * vocabulary 16. */
enum { HIDDEN = 8, HEADS = 2, KV_HEADS = 1, INTER = 12, LAYERS = 2, VOCAB = 16 };

typedef struct {
    const char *dtype;   /* "BF16", "F16" or "F32" */
    int tied;            /* tie_word_embeddings true, and no lm_head.weight written */
    int head_dim;        /* written to config.json when non-zero */
    int sharded;         /* two shards and an index instead of model.safetensors */
    const char *omit;    /* a tensor left out of the files */
    const char *reshape; /* a tensor written with shape RESHAPE_TO instead */
    int reshape_ndim;
    int64_t reshape_to[2];
} model_opts;

typedef struct {
    char name[64];
    int ndim;
    int64_t shape[2];
} tensor_desc;

typedef struct {
    temp_dir tmp;
    model_config cfg;
    st_set set;
    model_weights w;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    *state = f;
    return temp_dir_init(&f->tmp);
}

static int teardown(void **state)
{
    fixture *f = *state;
    model_weights_free(&f->w);
    st_close(&f->set);
    temp_dir_remove(&f->tmp);
    free(f);
    return 0;
}

/* The value written at element J of the K-th tensor: exact in BF16 and F16. */
static float value_of(int k, size_t j)
{
    return (float)((int)((size_t)k * 7 + j) % 17 - 8) * 0.125f;
}

static void add_desc(tensor_desc *t, const char *name, int64_t rows, int64_t cols)
{
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
}

/* The model's tensors as the files hold them (before OMIT and RESHAPE). */
static int model_tensors(const model_opts *o, tensor_desc *ts)
{
    int hd = o->head_dim ? o->head_dim : HIDDEN / HEADS, n = 0;
    add_desc(&ts[n++], "model.embed_tokens.weight", VOCAB, HIDDEN);
    add_desc(&ts[n++], "model.norm.weight", HIDDEN, 0);
    if (!o->tied)
        add_desc(&ts[n++], "lm_head.weight", VOCAB, HIDDEN);
    for (int i = 0; i < LAYERS; i++) {
        const struct {
            const char *suffix;
            int64_t rows, cols;
        } layer[] = {
            {"input_layernorm", HIDDEN, 0},
            {"self_attn.q_proj", HEADS * hd, HIDDEN},
            {"self_attn.k_proj", KV_HEADS * hd, HIDDEN},
            {"self_attn.v_proj", KV_HEADS * hd, HIDDEN},
            {"self_attn.o_proj", HIDDEN, HEADS * hd},
            {"post_attention_layernorm", HIDDEN, 0},
            {"mlp.gate_proj", INTER, HIDDEN},
            {"mlp.up_proj", INTER, HIDDEN},
            {"mlp.down_proj", HIDDEN, INTER},
        };
        for (int j = 0; j < 9; j++) {
            char name[64];
            snprintf(name, sizeof name, "model.layers.%d.%s.weight", i, layer[j].suffix);
            add_desc(&ts[n++], name, layer[j].rows, layer[j].cols);
        }
    }
    return n;
}

static size_t desc_elems(const tensor_desc *t)
{
    return (size_t)t->shape[0] * (t->ndim == 2 ? (size_t)t->shape[1] : 1);
}

/* Appends tensor K's values, encoded as DTYPE, to DATA at *LEN. */
static void encode(unsigned char *data, size_t *len, const char *dtype, int k, size_t elems)
{
    for (size_t j = 0; j < elems; j++) {
        float v = value_of(k, j);
        if (!strcmp(dtype, "F32")) {
            memcpy(data + *len, &v, 4);
            *len += 4;
            continue;
        }
        uint16_t h = !strcmp(dtype, "BF16") ? f32_to_bf16(v) : f32_to_f16(v);
        memcpy(data + *len, &h, 2);
        *len += 2;
    }
}

/* Writes tensors [FIRST, LAST) of TS to NAME, as the reference writer does (contiguous data, the
 * header padded with spaces to a multiple of 8 bytes). */
static void write_shard(fixture *f, const char *name, const model_opts *o, const tensor_desc *ts,
                        int first, int last)
{
    size_t len = 0;
    unsigned char *data = malloc(64 * 1024);
    cJSON *header = cJSON_CreateObject();
    for (int k = first; k < last; k++) {
        if (o->omit && !strcmp(ts[k].name, o->omit))
            continue;
        tensor_desc t = ts[k];
        if (o->reshape && !strcmp(t.name, o->reshape)) {
            t.ndim = o->reshape_ndim;
            memcpy(t.shape, o->reshape_to, sizeof t.shape);
        }
        size_t begin = len;
        encode(data, &len, o->dtype, k, desc_elems(&t));
        safetensors_add_tensor(header, t.name, o->dtype, t.ndim, t.shape, begin, len);
    }
    write_safetensors(file_in(&f->tmp, name), header, data, len);
    free(data);
    cJSON_Delete(header);
}

static void write_config(fixture *f, const model_opts *o)
{
    char text[1024], head_dim[32] = "";
    if (o->head_dim)
        snprintf(head_dim, sizeof head_dim, "\"head_dim\": %d, ", o->head_dim);
    snprintf(text, sizeof text,
             "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": %d, %s"
             "\"intermediate_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d, "
             "\"num_key_value_heads\": %d, \"vocab_size\": %d, \"tie_word_embeddings\": %s, "
             "\"torch_dtype\": \"bfloat16\"}",
             HIDDEN, head_dim, INTER, LAYERS, HEADS, KV_HEADS, VOCAB, o->tied ? "true" : "false");
    write_text(&f->tmp, "config.json", text);
}

/* Writes the model directory, then loads its config and opens its safetensors files. */
static void write_model(fixture *f, const model_opts *o)
{
    tensor_desc ts[64];
    int n = model_tensors(o, ts);
    write_config(f, o);
    if (!o->sharded) {
        write_shard(f, "model.safetensors", o, ts, 0, n);
    } else {
        const char *shards[2] = {"model-00001-of-00002.safetensors",
                                 "model-00002-of-00002.safetensors"};
        write_shard(f, shards[0], o, ts, 0, n / 2);
        write_shard(f, shards[1], o, ts, n / 2, n);
        cJSON *index = cJSON_CreateObject();
        cJSON *map = cJSON_AddObjectToObject(index, "weight_map");
        for (int k = 0; k < n; k++)
            if (!o->omit || strcmp(ts[k].name, o->omit))
                cJSON_AddStringToObject(map, ts[k].name, shards[k >= n / 2]);
        write_json(&f->tmp, "model.safetensors.index.json", index);
    }
    si_error err = {0};
    if (model_config_load(&f->cfg, f->tmp.dir, &err) || st_open_dir(&f->set, f->tmp.dir, &err))
        fail_msg("%s", err.msg);
}

/* Where the loaded copy of the tensor NAME is, found independently of weights.c's tables. */
static const float *loaded(const model_weights *w, const char *name)
{
    static const char *const suffixes[] = {
        "input_layernorm.weight",  "self_attn.q_proj.weight", "self_attn.k_proj.weight",
        "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
        "mlp.gate_proj.weight",    "mlp.up_proj.weight",      "mlp.down_proj.weight"};
    if (!strcmp(name, "model.embed_tokens.weight"))
        return w->embed;
    if (!strcmp(name, "model.norm.weight"))
        return w->norm;
    if (!strcmp(name, "lm_head.weight"))
        return w->lm_head;
    int layer;
    char suffix[64];
    assert_int_equal(sscanf(name, "model.layers.%d.%63s", &layer, suffix), 2);
    const layer_weights *l = &w->layers[layer];
    const float *const ptrs[] = {l->attn_norm, l->wq,     l->wk,   l->wv,    l->wo,
                                 l->mlp_norm,  l->w_gate, l->w_up, l->w_down};
    for (int i = 0; i < 9; i++)
        if (!strcmp(suffix, suffixes[i]))
            return ptrs[i];
    fail_msg("unknown tensor %s", name);
    return NULL;
}

/* Loads the weights and checks every value, and that each tensor lies aligned in the block. */
static void load_and_check(fixture *f, const model_opts *o)
{
    si_error err = {0};
    if (model_weights_load(&f->w, &f->cfg, &f->set, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(f->w.bytes, model_weights_bytes(&f->cfg));
    tensor_desc ts[64];
    int n = model_tensors(o, ts);
    const char *block = f->w.block;
    for (int k = 0; k < n; k++) {
        const float *p = loaded(&f->w, ts[k].name);
        assert_true((const char *)p >= block && (const char *)p < block + f->w.bytes);
        assert_int_equal((uintptr_t)p % 64, 0);
        for (size_t j = 0; j < desc_elems(&ts[k]); j++)
            if (p[j] != value_of(k, j))
                fail_msg("%s[%zu] is %g, expected %g", ts[k].name, j, p[j], value_of(k, j));
    }
    if (o->tied)
        assert_ptr_equal(f->w.lm_head, f->w.embed);
    else
        assert_ptr_not_equal(f->w.lm_head, f->w.embed);
}

/* The same files streamed into a backend's own allocation (as a GPU is filled, without the model
 * in fp32 on the host) hold exactly what the host load holds, tensor by tensor. Run after
 * load_and_check. */
static void stream_and_compare(fixture *f, const model_opts *o)
{
    const backend *be = backend_cpu();
    float inv_freq[64] = {0};
    backend_weights bw;
    si_error err = {0};
    if (backend_weights_stream(&bw, &f->cfg, &f->set, inv_freq, be, NULL, NULL, &err))
        fail_msg("%s", err.msg);
    model_weights sw = {.embed = (float *)bw.embed, .norm = (float *)bw.norm,
                        .lm_head = (float *)bw.lm_head};
    sw.layers = calloc(f->cfg.n_layers, sizeof *sw.layers);
    for (int l = 0; l < f->cfg.n_layers; l++) {
        const layer_tensors *t = &bw.layers[l];
        sw.layers[l] = (layer_weights){(float *)t->attn_norm, (float *)t->wq, (float *)t->wk,
                                       (float *)t->wv,        (float *)t->wo, (float *)t->mlp_norm,
                                       (float *)t->w_gate,    (float *)t->w_up,
                                       (float *)t->w_down};
    }
    tensor_desc ts[64];
    int n = model_tensors(o, ts);
    for (int k = 0; k < n; k++)
        if (memcmp(loaded(&sw, ts[k].name), loaded(&f->w, ts[k].name),
                   sizeof(float) * desc_elems(&ts[k])))
            fail_msg("%s streamed differs from %s loaded", ts[k].name, ts[k].name);
    if (o->tied)
        assert_ptr_equal(bw.lm_head, bw.embed);
    else
        assert_ptr_not_equal(bw.lm_head, bw.embed);
    free(sw.layers);
    backend_weights_free(&bw, be);
}

/* model_weights_each: every tensor, in the documented order, arrives once and whole, as its
 * file stores it (here in TYPE), and converts to what model_load loaded. */
typedef struct {
    const fixture *f;
    const char *const *order;
    elem_type type;
    int next_index;
    size_t total;
} stored_check;

static void put_checked(void *user, int index, const void *data, elem_type type, size_t count)
{
    stored_check *c = user;
    assert_int_equal(index, c->next_index);
    c->next_index++;
    assert_int_equal(type, c->type);
    c->total += count;
    const float *want = loaded(&c->f->w, c->order[index]);
    float *got = malloc(sizeof(float) * count);
    elems_to_f32(got, data, type, count);
    for (size_t j = 0; j < count; j++)
        if (got[j] != want[j])
            fail_msg("%s[%zu]: %g, expected %g", c->order[index], j, got[j], want[j]);
    free(got);
}

static void each_as_stored(void **state)
{
    fixture *f = *state;
    model_opts o = {.dtype = "BF16"};
    write_model(f, &o);
    load_and_check(f, &o);
    const char *order[3 + 9 * LAYERS] = {"model.embed_tokens.weight", "model.norm.weight",
                                        "lm_head.weight"};
    static const char *const per_layer[] = {
        "input_layernorm.weight",  "self_attn.q_proj.weight", "self_attn.k_proj.weight",
        "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
        "mlp.gate_proj.weight",    "mlp.up_proj.weight",      "mlp.down_proj.weight"};
    static char names[9 * LAYERS][64];
    for (int l = 0; l < LAYERS; l++)
        for (int j = 0; j < 9; j++) {
            snprintf(names[l * 9 + j], 64, "model.layers.%d.%s", l, per_layer[j]);
            order[3 + l * 9 + j] = names[l * 9 + j];
        }
    stored_check c = {.f = f, .order = order, .type = ELEM_BF16};
    si_error err = {0};
    assert_int_equal(model_weights_each(&f->cfg, &f->set, put_checked, &c, &err), 0);
    assert_int_equal(c.next_index, 3 + 9 * LAYERS);
    tensor_desc ts[64];
    int n = model_tensors(&o, ts);
    size_t total = 0;
    for (int k = 0; k < n; k++)
        total += desc_elems(&ts[k]);
    assert_int_equal(c.total, total); /* every element of every tensor, once */
}

static void bf16_single_file_untied(void **state)
{
    model_opts o = {.dtype = "BF16"};
    write_model(*state, &o);
    load_and_check(*state, &o);
    stream_and_compare(*state, &o);
}

static void f16_tied(void **state)
{
    model_opts o = {.dtype = "F16", .tied = 1};
    write_model(*state, &o);
    load_and_check(*state, &o);
    stream_and_compare(*state, &o);
}

static void f32_sharded(void **state)
{
    fixture *f = *state;
    model_opts o = {.dtype = "F32", .sharded = 1};
    write_model(f, &o);
    assert_int_equal(f->set.n_files, 2);
    load_and_check(f, &o);
    stream_and_compare(f, &o);
}

static void head_dim_not_hidden_over_heads(void **state)
{
    fixture *f = *state;
    model_opts o = {.dtype = "BF16", .head_dim = 6, .sharded = 1, .tied = 1};
    write_model(f, &o);
    assert_int_equal(f->cfg.head_dim, 6);
    load_and_check(f, &o);
}

/* Sizes by hand: each tensor rounded up to 64 bytes. */
static void bytes_of_the_tiny_model(void **state)
{
    (void)state;
    model_config c = {.hidden_size = HIDDEN,
                      .intermediate_size = INTER,
                      .n_layers = LAYERS,
                      .n_heads = HEADS,
                      .n_kv_heads = KV_HEADS,
                      .head_dim = 4,
                      .vocab_size = VOCAB};
    size_t layer = 64 + 256 + 128 + 128 + 256 + 64 + 3 * 384;
    assert_int_equal(model_weights_bytes(&c), 512 + 512 + 64 + LAYERS * layer);
    c.tie_word_embeddings = 1;
    assert_int_equal(model_weights_bytes(&c), 512 + 64 + LAYERS * layer);
}

static void shape_mismatch(void **state)
{
    fixture *f = *state;
    model_opts o = {.dtype = "BF16",
                    .sharded = 1,
                    .reshape = "model.layers.1.mlp.up_proj.weight",
                    .reshape_ndim = 2,
                    .reshape_to = {6, 8}};
    write_model(f, &o);
    si_error err = {0};
    assert_int_equal(model_weights_load(&f->w, &f->cfg, &f->set, &err), -1);
    assert_null(f->w.block);
    assert_has(err.msg, "model.layers.1.mlp.up_proj.weight in ");
    assert_has(err.msg, file_in(&f->tmp, "model-00002-of-00002.safetensors"));
    assert_has(err.msg, "has shape [6, 8], expected [12, 8]");
    assert_has(err.msg, "(intermediate_size=12)");
}

static void shape_rank_mismatch(void **state)
{
    fixture *f = *state;
    model_opts o = {.dtype = "F16",
                    .reshape = "model.norm.weight",
                    .reshape_ndim = 2,
                    .reshape_to = {HIDDEN, 1}};
    write_model(f, &o);
    si_error err = {0};
    assert_int_equal(model_weights_load(&f->w, &f->cfg, &f->set, &err), -1);
    assert_has(err.msg, "model.norm.weight in ");
    assert_has(err.msg, file_in(&f->tmp, "model.safetensors"));
    assert_has(err.msg, "has shape [8, 1], expected [8]");
}

static void kv_heads_mismatch(void **state)
{
    fixture *f = *state;
    model_opts o = {.dtype = "F32",
                    .reshape = "model.layers.0.self_attn.k_proj.weight",
                    .reshape_ndim = 2,
                    .reshape_to = {8, 8}};
    write_model(f, &o);
    si_error err = {0};
    assert_int_equal(model_weights_load(&f->w, &f->cfg, &f->set, &err), -1);
    assert_has(err.msg, "model.layers.0.self_attn.k_proj.weight");
    assert_has(err.msg, "num_key_value_heads*head_dim=1*4");
}

static void missing_tensor(void **state)
{
    fixture *f = *state;
    model_opts o = {.dtype = "BF16", .omit = "model.layers.1.self_attn.k_proj.weight"};
    write_model(f, &o);
    si_error err = {0};
    assert_int_equal(model_weights_load(&f->w, &f->cfg, &f->set, &err), -1);
    assert_has(err.msg, "model.layers.1.self_attn.k_proj.weight is missing");
    assert_has(err.msg, f->tmp.dir);
}

static void untied_without_lm_head(void **state)
{
    fixture *f = *state;
    model_opts o = {.dtype = "BF16", .sharded = 1, .omit = "lm_head.weight"};
    write_model(f, &o);
    si_error err = {0};
    assert_int_equal(model_weights_load(&f->w, &f->cfg, &f->set, &err), -1);
    assert_has(err.msg, "lm_head.weight is missing");
    assert_has(err.msg, f->tmp.dir);
    assert_has(err.msg, "tie_word_embeddings");
}

/* Streaming checks every tensor before it allocates or converts anything. */
static void missing_tensor_streamed(void **state)
{
    fixture *f = *state;
    model_opts o = {.dtype = "BF16", .omit = "model.layers.0.mlp.up_proj.weight"};
    write_model(f, &o);
    si_error err = {0};
    assert_int_equal(model_weights_each(&f->cfg, &f->set, NULL, NULL, &err), -1);
    assert_has(err.msg, "model.layers.0.mlp.up_proj.weight is missing");
    float inv_freq[64] = {0};
    backend_weights bw;
    err.msg[0] = 0;
    assert_int_equal(
        backend_weights_stream(&bw, &f->cfg, &f->set, inv_freq, backend_cpu(), NULL, NULL, &err),
        -1);
    assert_has(err.msg, "model.layers.0.mlp.up_proj.weight is missing");
    assert_has(err.msg, f->tmp.dir);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(bf16_single_file_untied),
        TEST(f16_tied),
        TEST(f32_sharded),
        TEST(head_dim_not_hidden_over_heads),
        TEST(bytes_of_the_tiny_model),
        TEST(shape_mismatch),
        TEST(shape_rank_mismatch),
        TEST(kv_heads_mismatch),
        TEST(missing_tensor),
        TEST(untied_without_lm_head),
        TEST(missing_tensor_streamed),
        TEST(each_as_stored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
