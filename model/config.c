#include "model/config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/json_file.h"

#define HINT_AS_DOWNLOADED                                                                         \
    "\n  HINT: use the file as downloaded with the model (Hugging Face format)"

static const char *const supported_archs[] = {"LlamaForCausalLM", "MistralForCausalLM"};
#define N_SUPPORTED_ARCHS (int)(sizeof supported_archs / sizeof supported_archs[0])

/* ITEM as an integer in [LO, HI]; FIELD names it in messages. */
static int int_value(const cJSON *item, const char *field, int lo, int hi, int *out,
                     const char *path, si_error *err)
{
    double v = item->valuedouble;
    if (!cJSON_IsNumber(item) || v != floor(v))
        return si_error_set(err, "%s: \"%s\" must be an integer" HINT_AS_DOWNLOADED, path, field);
    if (v < lo || v > hi)
        return si_error_set(err, "%s: \"%s\" is %.0f, outside the supported range [%d, %d]%s", path,
                            field, v, lo, hi, HINT_AS_DOWNLOADED);
    *out = (int)v;
    return 0;
}

/* Field getters: 1 when the field is there, 0 when absent or null, -1 (with ERR set) when it has
 * the wrong type or is out of range. Messages name the file and FIELD. */
static int get_int(const cJSON *obj, const char *key, const char *field, int lo, int hi, int *out,
                   const char *path, si_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!item || cJSON_IsNull(item))
        return 0;
    return int_value(item, field, lo, hi, out, path, err) ? -1 : 1;
}

static int get_float(const cJSON *obj, const char *key, const char *field, float *out,
                     const char *path, si_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!item || cJSON_IsNull(item))
        return 0;
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble) || item->valuedouble <= 0)
        return si_error_set(err, "%s: \"%s\" must be a positive number" HINT_AS_DOWNLOADED, path,
                            field);
    *out = (float)item->valuedouble;
    return 1;
}

static int get_bool(const cJSON *obj, const char *key, int *out, const char *path, si_error *err)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!item || cJSON_IsNull(item))
        return 0;
    if (!cJSON_IsBool(item))
        return si_error_set(err, "%s: \"%s\" must be true or false" HINT_AS_DOWNLOADED, path, key);
    *out = cJSON_IsTrue(item);
    return 1;
}

/* A field the model cannot do without. */
static int require(int got, const char *field, const char *path, si_error *err)
{
    if (got == 0)
        return si_error_set(err, "%s: required field \"%s\" is missing" HINT_AS_DOWNLOADED, path,
                            field);
    return got < 0 ? -1 : 0;
}

static int parse_architecture(model_config *cfg, const cJSON *root, const char *path, si_error *err)
{
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *first = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    if (!cJSON_IsString(first))
        return si_error_set(err, "%s: \"architectures\" is missing or not a list of names%s", path,
                            HINT_AS_DOWNLOADED);
    for (int i = 0; i < N_SUPPORTED_ARCHS; i++)
        if (!strcmp(first->valuestring, supported_archs[i])) {
            snprintf(cfg->architecture, sizeof cfg->architecture, "%s", supported_archs[i]);
            return 0;
        }
    return si_error_set(err,
                        "%s: architecture \"%.100s\" is not supported\n"
                        "  HINT: supported architectures: LlamaForCausalLM, MistralForCausalLM",
                        path, first->valuestring);
}

/* Features of the Llama family that the model code does not implement are refused rather than
 * silently ignored, since ignoring them would give wrong outputs. */
static int refuse_unsupported(const model_config *cfg, const cJSON *root, const char *path,
                              si_error *err)
{
    static const char *const bias_keys[] = {"attention_bias", "mlp_bias"};
    for (int i = 0; i < 2; i++) {
        int on = 0;
        if (get_bool(root, bias_keys[i], &on, path, err) < 0)
            return -1;
        if (on)
            return si_error_set(err,
                                "%s: \"%s\": true is not supported (biases in the linear layers)"
                                "\n  HINT: only models without biases (Llama 2/3, Mistral) run",
                                path, bias_keys[i]);
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (act && !(cJSON_IsString(act) && !strcmp(act->valuestring, "silu")))
        return si_error_set(err,
                            "%s: \"hidden_act\" must be \"silu\", the only activation supported"
                            "\n  HINT: only Llama-family models (SwiGLU MLP) run",
                            path);
    int window = 0;
    if (get_int(root, "sliding_window", "sliding_window", 0, 1 << 30, &window, path, err) < 0)
        return -1;
    if (window > 0 && window < cfg->max_position_embeddings)
        return si_error_set(err,
                            "%s: \"sliding_window\": %d is not supported (sliding-window "
                            "attention)\n  HINT: use a model without it (e.g. Mistral v0.2 or "
                            "later, sliding_window null)",
                            path, window);
    return 0;
}

static int parse_sizes(model_config *cfg, const cJSON *root, const char *path, si_error *err)
{
    /* The upper bounds keep the weights under 2^63 bytes, so size products cannot overflow. */
    const struct {
        const char *key;
        int hi;
        int *out;
    } required[] = {
        {"hidden_size", 1 << 20, &cfg->hidden_size},
        {"intermediate_size", 1 << 22, &cfg->intermediate_size},
        {"num_hidden_layers", 4096, &cfg->n_layers},
        {"num_attention_heads", 4096, &cfg->n_heads},
        {"vocab_size", 1 << 24, &cfg->vocab_size},
    };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        const char *key = required[i].key;
        if (require(get_int(root, key, key, 1, required[i].hi, required[i].out, path, err), key,
                    path, err))
            return -1;
    }
    /* The rest have the defaults of transformers' LlamaConfig. */
    cfg->n_kv_heads = cfg->n_heads;
    cfg->max_position_embeddings = 2048;
    if (get_int(root, "num_key_value_heads", "num_key_value_heads", 1, 4096, &cfg->n_kv_heads, path,
                err) < 0 ||
        get_int(root, "max_position_embeddings", "max_position_embeddings", 1, 1 << 30,
                &cfg->max_position_embeddings, path, err) < 0)
        return -1;
    if (cfg->n_heads % cfg->n_kv_heads != 0)
        return si_error_set(err,
                            "%s: \"num_attention_heads\" (%d) is not a multiple of "
                            "\"num_key_value_heads\" (%d)" HINT_AS_DOWNLOADED,
                            path, cfg->n_heads, cfg->n_kv_heads);
    int got = get_int(root, "head_dim", "head_dim", 1, 1 << 14, &cfg->head_dim, path, err);
    if (got < 0)
        return -1;
    if (got == 0) {
        if (cfg->hidden_size % cfg->n_heads != 0)
            return si_error_set(err,
                                "%s: \"hidden_size\" (%d) is not a multiple of "
                                "\"num_attention_heads\" (%d) and there is no \"head_dim\"%s",
                                path, cfg->hidden_size, cfg->n_heads, HINT_AS_DOWNLOADED);
        cfg->head_dim = cfg->hidden_size / cfg->n_heads;
    }
    if (cfg->head_dim % 2 != 0) /* rotary embeddings rotate pairs */
        return si_error_set(err, "%s: \"head_dim\" (%d) must be even" HINT_AS_DOWNLOADED, path,
                            cfg->head_dim);
    return 0;
}

static int parse_llama3_scaling(model_config *cfg, const cJSON *rs, const char *key,
                                const char *path, si_error *err)
{
    cfg->rope_scaling = ROPE_SCALING_LLAMA3;
    const struct {
        const char *key;
        float *out;
    } factors[] = {
        {"factor", &cfg->rope_factor},
        {"low_freq_factor", &cfg->rope_low_freq_factor},
        {"high_freq_factor", &cfg->rope_high_freq_factor},
    };
    for (size_t i = 0; i < sizeof factors / sizeof factors[0]; i++) {
        char field[64];
        snprintf(field, sizeof field, "%s.%s", key, factors[i].key);
        if (require(get_float(rs, factors[i].key, field, factors[i].out, path, err), field, path,
                    err))
            return -1;
    }
    char field[64];
    snprintf(field, sizeof field, "%s.original_max_position_embeddings", key);
    if (require(get_int(rs, "original_max_position_embeddings", field, 1, 1 << 30,
                        &cfg->rope_original_max_positions, path, err),
                field, path, err))
        return -1;
    /* The smoothing between the two bands divides by their difference. */
    if (cfg->rope_high_freq_factor <= cfg->rope_low_freq_factor)
        return si_error_set(err,
                            "%s: \"%s.high_freq_factor\" must be greater than "
                            "\"%s.low_freq_factor\"" HINT_AS_DOWNLOADED,
                            path, key, key);
    return 0;
}

/* Downloaded checkpoints carry "rope_theta" and "rope_scaling"; transformers 5 writes both into
 * one "rope_parameters" object instead. Either is read. */
static int parse_rope(model_config *cfg, const cJSON *root, const char *path, si_error *err)
{
    const char *key = "rope_parameters";
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!rs || cJSON_IsNull(rs)) {
        key = "rope_scaling";
        rs = cJSON_GetObjectItemCaseSensitive(root, key);
    }
    if (rs && !cJSON_IsNull(rs) && !cJSON_IsObject(rs))
        return si_error_set(err, "%s: \"%s\" must be an object or null" HINT_AS_DOWNLOADED, path,
                            key);
    char field[64];
    snprintf(field, sizeof field, "%s.rope_theta", key);
    cfg->rope_theta = 10000.0f;
    if (get_float(root, "rope_theta", "rope_theta", &cfg->rope_theta, path, err) < 0 ||
        (cJSON_IsObject(rs) && get_float(rs, "rope_theta", field, &cfg->rope_theta, path, err) < 0))
        return -1;
    cfg->rope_scaling = ROPE_SCALING_NONE;
    if (!cJSON_IsObject(rs))
        return 0;
    /* transformers writes "rope_type"; older configs wrote "type". */
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!type)
        type = cJSON_GetObjectItemCaseSensitive(rs, "type");
    if (!cJSON_IsString(type))
        return si_error_set(err, "%s: \"%s.rope_type\" is missing" HINT_AS_DOWNLOADED, path, key);
    if (!strcmp(type->valuestring, "default"))
        return 0;
    if (!strcmp(type->valuestring, "llama3"))
        return parse_llama3_scaling(cfg, rs, key, path, err);
    return si_error_set(err,
                        "%s: \"%s.rope_type\" \"%.64s\" is not supported\n"
                        "  HINT: supported: \"llama3\", or no rope scaling",
                        path, key, type->valuestring);
}

/* bos_token_id and eos_token_id (a number or a list) from ROOT, when present. */
static int parse_special_ids(model_config *cfg, const cJSON *root, const char *path, si_error *err)
{
    int max_id = cfg->vocab_size - 1;
    if (get_int(root, "bos_token_id", "bos_token_id", 0, max_id, &cfg->bos_token_id, path, err) < 0)
        return -1;
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id");
    if (!eos || cJSON_IsNull(eos))
        return 0;
    if (cJSON_IsNumber(eos)) {
        cfg->n_eos = 1;
        return int_value(eos, "eos_token_id", 0, max_id, &cfg->eos_ids[0], path, err);
    }
    if (!cJSON_IsArray(eos) || cJSON_GetArraySize(eos) > MODEL_MAX_EOS)
        return si_error_set(err,
                            "%s: \"eos_token_id\" must be a number or a list of at most %d "
                            "numbers" HINT_AS_DOWNLOADED,
                            path, MODEL_MAX_EOS);
    cfg->n_eos = cJSON_GetArraySize(eos);
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, eos)
    {
        char field[32];
        snprintf(field, sizeof field, "eos_token_id[%d]", i);
        if (int_value(item, field, 0, max_id, &cfg->eos_ids[i++], path, err))
            return -1;
    }
    return 0;
}

static int parse_config(model_config *cfg, const cJSON *root, const char *path, si_error *err)
{
    cfg->bos_token_id = -1;
    if (parse_architecture(cfg, root, path, err) || parse_sizes(cfg, root, path, err) ||
        refuse_unsupported(cfg, root, path, err) || parse_rope(cfg, root, path, err))
        return -1;
    cfg->rms_norm_eps = 1e-6f;
    if (get_float(root, "rms_norm_eps", "rms_norm_eps", &cfg->rms_norm_eps, path, err) < 0 ||
        get_bool(root, "tie_word_embeddings", &cfg->tie_word_embeddings, path, err) < 0)
        return -1;
    return parse_special_ids(cfg, root, path, err);
}

int model_config_load(model_config *cfg, const char *dir, si_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    int missing;
    cJSON *root = json_file_load(path, &missing, err);
    if (missing)
        return si_error_set(err,
                            "%s not found\n  HINT: pass the directory of a Hugging Face model "
                            "download (config.json, *.safetensors, tokenizer.json)",
                            path);
    if (!root)
        return -1;
    int rc = parse_config(cfg, root, path, err);
    cJSON_Delete(root);
    if (rc)
        return -1;

    /* generation_config.json is optional; its ids are the ones generation uses. */
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    root = json_file_load(path, &missing, err);
    if (!root)
        return missing ? 0 : -1;
    rc = parse_special_ids(cfg, root, path, err);
    cJSON_Delete(root);
    return rc;
}

int model_config_is_eos(const model_config *cfg, int token)
{
    for (int i = 0; i < cfg->n_eos; i++)
        if (cfg->eos_ids[i] == token)
            return 1;
    return 0;
}
