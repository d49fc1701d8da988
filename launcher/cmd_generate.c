/* starinfer generate: one process, global attention, greedy by default. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "launcher/args.h"
#include "launcher/commands.h"
#include "launcher/prompt.h"
#include "launcher/session.h"
#include "runtime/device.h"
#include "runtime/generation.h"
#include "runtime/global_attention.h"
#include "runtime/mpi_check.h"
#include "runtime/timer.h"

static const char *usage =
    "usage: starinfer generate --model DIR --prompt TEXT [options]\n"
    "Runs the model on one process with global attention and prints the continuation.\n"
    "  --model DIR            a Hugging Face model directory, as downloaded\n"
    "  --prompt TEXT          the prompt: one user turn of the chat template, or raw text\n"
    "  --json                 print the answer, timings and memory as JSON\n" DEVICE_FLAGS_HELP
        GEN_FLAGS_HELP;

typedef struct {
    const char *model_dir, *prompt;
    int json;
    device_kind device;
    compute_dtype dtype;
    gen_flags g;
} generate_opts;

/* 1 when FLAG is one of generate's own flags (VALUE taken), 0 when not, -1 on error. */
static int generate_flag(generate_opts *o, const char *flag, const char *value, si_error *err)
{
    if (!strcmp(flag, "--prompt")) {
        o->prompt = value;
        return 1;
    }
    return model_device_flags_parse(flag, value, &o->model_dir, &o->device, &o->dtype, err);
}

static int parse(generate_opts *o, int argc, char **argv, si_error *err)
{
    memset(o, 0, sizeof *o);
    gen_flags_init(&o->g);
    for (int i = 0; i < argc;) {
        const char *flag = argv[i++];
        if (!strcmp(flag, "--json") || gen_flags_switch(&o->g, flag)) {
            o->json |= !strcmp(flag, "--json");
            continue;
        }
        int has_value = i < argc;
        const char *value = has_value ? argv[i++] : ""; /* see args_flag_taken */
        int rc = gen_flags_parse(&o->g, flag, value, err);
        if (rc == 0)
            rc = generate_flag(o, flag, value, err);
        if (args_flag_taken(flag, rc, has_value, err))
            return -1;
    }
    if (!o->model_dir || !o->prompt)
        return si_error_set(err, "--model and --prompt are required\n%s", usage);
    gen_flags_warn(&o->g);
    return 0;
}

static void print_json(const generate_opts *o, int n_prompt, double load_s, double prefill_s,
                       const gen_result *r, size_t bytes)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "text", r->text);
    cJSON_AddStringToObject(root, "finish", r->finish);
    cJSON_AddNumberToObject(root, "prompt_tokens", n_prompt);
    cJSON_AddNumberToObject(root, "generated_tokens", r->n_tokens);
    cJSON_AddItemToObject(root, "tokens", cJSON_CreateIntArray(r->tokens, r->n_tokens));
    cJSON *t = cJSON_AddObjectToObject(root, "timings");
    cJSON_AddNumberToObject(t, "load_s", load_s);
    cJSON_AddNumberToObject(t, "prefill_s", prefill_s);
    cJSON_AddNumberToObject(t, "decode_s", r->seconds);
    cJSON_AddNumberToObject(t, "prefill_tokens_per_s", n_prompt / (prefill_s > 0 ? prefill_s : 1));
    cJSON_AddNumberToObject(t, "decode_tokens_per_s",
                            r->n_tokens > 1 ? (r->n_tokens - 1) / r->seconds : 0);
    cJSON_AddNumberToObject(root, "memory_bytes", (double)bytes);
    cJSON_AddStringToObject(root, "model", o->model_dir);
    char *s = cJSON_Print(root);
    printf("%s\n", s);
    free(s);
    cJSON_Delete(root);
}

int cmd_generate(int argc, char **argv)
{
    generate_opts o;
    si_error err;
    if (mpi_launched_size() > 1) {
        /* Each process would answer on its own: refused on every one, said once, by rank 0. */
        mpi_start(&argc, &argv);
        si_error_set(&err, "generate runs on one process; use `starinfer run` across ranks");
        return star_args_exit(-1, "generate", usage, &err);
    }
    if (args_want_help(argc, argv)) {
        fputs(usage, stdout);
        return 0;
    }
    if (parse(&o, argc, argv, &err) != 0) {
        fprintf(stderr, "starinfer generate: %s\n", err.msg);
        return 2;
    }
    const backend *be = device_open(o.device, o.dtype, 0, 1, 0, &err);
    if (!be) {
        fprintf(stderr, "starinfer generate: %s\n", err.msg);
        return 1;
    }
    model m;
    int *ids = NULL, n = 0;
    int loaded =
        model_dir_check(o.model_dir, &err) == 0 && model_load_mapped(&m, o.model_dir, &err) == 0;
    if (!loaded || prompt_encode(&m, o.g.use_chat, o.prompt, &ids, &n, &err) != 0) {
        fprintf(stderr, "starinfer generate: %s\n", err.msg);
        if (loaded)
            model_free(&m);
        return 1;
    }
    model_warn_unused(&m);
    int capacity = n + o.g.gen.max_new_tokens;
    if (capacity > m.cfg.max_position_embeddings) {
        fprintf(stderr,
                "starinfer generate: the prompt (%d tokens) plus --max-new-tokens (%d) needs %d "
                "positions, more than the model's max_position_embeddings (%d, config.json)\n"
                "  HINT: shorten the prompt or lower --max-new-tokens\n",
                n, o.g.gen.max_new_tokens, capacity, m.cfg.max_position_embeddings);
        return 1;
    }
    int chunk = session_default_chunk(be);
    if (n < chunk)
        chunk = n;
    backend_weights bw;
    /* The backend's own copy, converted tensor by tensor from the mapped files. */
    double load_s;
    device_prepare(be, &m.cfg, chunk);
    if (session_load_weights(&bw, &m, be, 1, &load_s, &err))
        si_fatal("%s", err.msg); /* checked while loading: the files changed since */
    device_prepare_wait(be);
    size_t weights = bw.bytes;
    size_t bytes = weights + global_runner_bytes(&m.cfg, be, capacity, chunk);
    si_log("%d prompt tokens; memory on %s: %.1f MiB (weights %.1f MiB, KV cache and activations "
           "%.1f MiB)",
           n, be->name, bytes / 1048576.0, weights / 1048576.0, (bytes - weights) / 1048576.0);
    global_runner g;
    global_runner_init(&g, &m.cfg, &bw, be, capacity, chunk);
    double t0 = timer_now();
    const float *logits = global_prefill(&g, ids, n, 0);
    be->synchronize(); /* the logits stay on the device: wait for them */
    double prefill_s = timer_now() - t0;
    si_log("prefill: %d tokens in %.3f s (%.1f tokens/s)", n, prefill_s, n / prefill_s);
    gen_driver d = {
        .step = global_step, .user = &g, .be = be, .is_root = 1, .stream = o.json ? NULL : stdout};
    gen_result r;
    generate_tokens(&m, logits, n, &o.g.gen, &d, &r);
    int finite = !r.not_finite;
    if (finite) {
        si_log("decode: %d tokens in %.3f s (%.1f tokens/s), finished by %s", r.n_tokens, r.seconds,
               r.n_tokens > 1 ? (r.n_tokens - 1) / r.seconds : 0.0, r.finish);
    } else {
        gen_not_finite_error(r.n_tokens, &err);
        si_log("error: %s", err.msg);
    }
    if (o.json && finite)
        print_json(&o, n, load_s, prefill_s, &r, bytes);
    gen_result_free(&r);
    global_runner_free(&g);
    backend_weights_free(&bw, be);
    free(ids);
    model_free(&m);
    return finite ? 0 : 1;
}
