#include "launcher/args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/mpi_check.h"

int parse_int(const char *flag, const char *value, long min, long max, long *out, si_error *err)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end)
        return si_error_set(err, "%s expects a whole number, got '%s'", flag, value);
    if (v < min || v > max)
        return si_error_set(err, "%s must be between %ld and %ld, got %ld", flag, min, max, v);
    *out = v;
    return 0;
}

int parse_float(const char *flag, const char *value, double min, double max, double *out,
                si_error *err)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || v != v)
        return si_error_set(err, "%s expects a number, got '%s'", flag, value);
    if (v < min || v > max)
        return si_error_set(err, "%s must be between %g and %g, got %g", flag, min, max, v);
    *out = v;
    return 0;
}

int parse_u64(const char *flag, const char *value, uint64_t *out, si_error *err)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno || end == value || *end || value[0] == '-')
        return si_error_set(err, "%s expects a non-negative whole number, got '%s'", flag, value);
    *out = v;
    return 0;
}

void gen_flags_init(gen_flags *g)
{
    memset(g, 0, sizeof *g);
    g->gen = (gen_params){.max_new_tokens = 64, .top_p = 1.0f, .stop = g->stop};
    g->use_chat = 1;
}

int gen_flags_parse(gen_flags *g, const char *flag, const char *value, si_error *err)
{
    long n = 0;
    double f = 0;
    if (!strcmp(flag, "--max-new-tokens")) {
        if (parse_int(flag, value, 0, 1 << 24, &n, err))
            return -1;
        g->gen.max_new_tokens = (int)n;
    } else if (!strcmp(flag, "--temperature")) {
        if (parse_float(flag, value, 0, 100, &f, err))
            return -1;
        g->gen.temperature = (float)f;
    } else if (!strcmp(flag, "--top-p")) {
        if (parse_float(flag, value, 1e-6, 1, &f, err))
            return -1;
        g->gen.top_p = (float)f;
    } else if (!strcmp(flag, "--seed")) {
        if (parse_u64(flag, value, &g->gen.seed, err))
            return -1;
    } else if (!strcmp(flag, "--stop")) {
        if (g->gen.n_stop == MAX_STOP_STRINGS || !*value)
            return si_error_set(err, "--stop takes a non-empty string, at most %d times",
                                MAX_STOP_STRINGS);
        g->stop[g->gen.n_stop++] = value;
    } else if (!strcmp(flag, "--chat-template")) {
        if (!strcmp(value, "auto") || !strcmp(value, "none"))
            g->use_chat = !strcmp(value, "auto");
        else
            return si_error_set(err, "--chat-template must be 'auto' or 'none', got '%s'", value);
    } else {
        return 0;
    }
    return 1;
}

void star_flags_init(star_flags *s)
{
    memset(s, 0, sizeof *s);
    s->req.attn = ATTN_STAR;
    s->req.chunk = 0; /* by backend, once it is known: session_open */
    s->req.merge = STAR_MERGE_AUTO;
}

int model_device_flags_parse(const char *flag, const char *value, const char **model_dir,
                             device_kind *device, compute_dtype *dtype, si_error *err)
{
    if (!strcmp(flag, "--model")) {
        if (!*value)
            return si_error_set(err, "--model needs a directory");
        *model_dir = value;
    } else if (!strcmp(flag, "--device")) {
        if (device_parse(value, device, err))
            return -1;
    } else if (!strcmp(flag, "--dtype")) {
        if (dtype_parse(value, dtype, err))
            return -1;
    } else {
        return 0;
    }
    return 1;
}

int star_flags_parse(star_flags *s, const char *flag, const char *value, si_error *err)
{
    long n = 0;
    int rc = model_device_flags_parse(flag, value, &s->model_dir, &s->device, &s->dtype, err);
    if (rc)
        return rc;
    if (!strcmp(flag, "--attn")) {
        if (strcmp(value, "star") && strcmp(value, "global"))
            return si_error_set(err, "--attn must be 'star' or 'global', got '%s'", value);
        s->req.attn = strcmp(value, "star") ? ATTN_GLOBAL : ATTN_STAR;
    } else if (!strcmp(flag, "--block-size")) {
        if (parse_int(flag, value, 1, 1L << 30, &n, err))
            return -1;
        s->req.block = (int)n;
    } else if (!strcmp(flag, "--anchor-size")) {
        if (parse_int(flag, value, 1, 1L << 30, &n, err))
            return -1;
        s->req.anchor = (int)n;
    } else if (!strcmp(flag, "--chunk")) {
        if (parse_int(flag, value, 1, 1L << 20, &n, err))
            return -1;
        s->req.chunk = (int)n;
    } else if (!strcmp(flag, "--merge-transport")) {
        if (star_merge_parse_transport(value, &s->req.merge_transport))
            return si_error_set(err, "--merge-transport must be mpi or nccl, got '%s'", value);
    } else if (!strcmp(flag, "--merge")) {
        if (star_merge_parse_mode(value, &s->req.merge))
            return si_error_set(err, "--merge must be auto, one-call or two-call, got '%s'",
                                value);
    } else {
        return 0;
    }
    return 1;
}

int star_flags_switch(star_flags *s, const char *flag)
{
    if (strcmp(flag, "--share-gpus"))
        return 0;
    s->share_gpus = 1;
    return 1;
}

/* Checks what the flags say together, once all are read. */
int star_flags_check(const star_flags *s, si_error *err)
{
    if (!s->model_dir)
        return si_error_set(err, "--model DIR is required");
    if (s->req.block && s->req.anchor > s->req.block)
        return si_error_set(err,
                            "--anchor-size (%d) is larger than --block-size (%d); the anchor is "
                            "the start of block 0, so it must satisfy 1 <= anchor <= block",
                            s->req.anchor, s->req.block);
    return 0;
}

int gen_flags_switch(gen_flags *g, const char *flag)
{
    if (strcmp(flag, "--ignore-eos"))
        return 0;
    g->gen.ignore_eos = 1;
    return 1;
}

/* Warns that those of flags A and B that were given are ignored, and WHY. */
static void warn_ignored(const char *a, int a_given, const char *b, int b_given, const char *why)
{
    if (a_given || b_given)
        si_warn("%s%s%s ignored: %s", a_given ? a : "", a_given && b_given ? " and " : "",
                b_given ? b : "", why);
}

void star_flags_warn(attn_mode attn, int block, int anchor)
{
    if (attn == ATTN_GLOBAL)
        warn_ignored("--block-size", block, "--anchor-size", anchor,
                     "--attn global encodes the whole context as one block, on rank 0");
}

void gen_flags_warn(const gen_flags *g)
{
    if (g->gen.temperature == 0)
        warn_ignored("--top-p", g->gen.top_p < 1, "--seed", g->gen.seed != 0,
                     "sampling needs --temperature above 0; decoding is greedy");
}

int args_want_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    return 0;
}

int star_args_parse(star_flags *s, gen_flags *g, own_flags_fn own, void *opts, int argc,
                    char **argv, si_error *err)
{
    if (args_want_help(argc, argv))
        return 1;
    star_flags_init(s);
    gen_flags_init(g);
    for (int i = 0; i < argc;) {
        const char *flag = argv[i++];
        if (own(opts, flag, NULL) || gen_flags_switch(g, flag) || star_flags_switch(s, flag))
            continue;
        int has_value = i < argc;
        const char *value = has_value ? argv[i++] : ""; /* see args_flag_taken */
        int rc = star_flags_parse(s, flag, value, err);
        if (rc == 0)
            rc = gen_flags_parse(g, flag, value, err);
        if (rc == 0)
            rc = own(opts, flag, value);
        if (args_flag_taken(flag, rc, has_value, err))
            return -1;
    }
    if (star_flags_check(s, err))
        return -1;
    if (mpi_rank() == 0) {
        star_flags_warn(s->req.attn, s->req.block != 0, s->req.anchor != 0);
        gen_flags_warn(g);
    }
    return 0;
}

int args_flag_taken(const char *flag, int rc, int has_value, si_error *err)
{
    if (rc == 0)
        return si_error_set(err, "unknown argument '%s' (see --help)", flag);
    if (!has_value)
        return si_error_set(err, "%s needs a value (see --help)", flag);
    return rc < 0 ? -1 : 0;
}

/* The arguments' key, each with its terminating NUL. */
static uint64_t args_key(int argc, char **argv)
{
    uint64_t key = MPI_KEY_START;
    for (int i = 0; i < argc; i++)
        key = mpi_key_add(key, argv[i], strlen(argv[i]) + 1);
    return key;
}

int star_args_agree(int parsed, int argc, char **argv, si_error *err)
{
    int odd = mpi_first_differing(args_key(argc, argv));
    if (odd >= 0) {
        si_error_set(err,
                     "rank %d was given other arguments than rank 0: every rank must run the same "
                     "command line\n"
                     "  HINT: check each part of an MPMD launch (mpirun ... : ...) or the script "
                     "that starts the ranks",
                     odd);
        return -1;
    }
    /* The same arguments read the same way everywhere, so a failure is rank 0's too, which reports
     * it; should one rank alone fail, it says why itself. */
    int failed = mpi_first_failing(parsed >= 0);
    if (failed > 0 && mpi_rank() == failed)
        si_log("error: %s", err->msg);
    if (failed > 0 && parsed >= 0)
        si_error_set(err, "rank %d could not read its arguments (see its message)", failed);
    return failed >= 0 ? -1 : parsed;
}

int star_args_exit(int parsed, const char *name, const char *usage, const si_error *err)
{
    if (mpi_rank() == 0) {
        if (parsed > 0)
            fputs(usage, stdout);
        else
            fprintf(stderr, "starinfer %s: %s\n", name, err->msg);
    }
    mpi_stop();
    return parsed > 0 ? 0 : 2;
}

int model_dir_check(const char *dir, si_error *err)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return si_error_set(err,
                                "--model %s: no such directory\n  HINT: give the directory of a "
                                "Hugging Face model download (config.json, *.safetensors, "
                                "tokenizer.json)",
                                dir);
        return 0; /* permissions and the like: the loader names the file it cannot open */
    }
    if (!S_ISDIR(st.st_mode))
        return si_error_set(err,
                            "--model %s is a file, not a model directory (give the directory "
                            "that holds config.json)",
                            dir);
    return 0;
}

char *read_text(const char *path, const char *flag, size_t *len, si_error *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        si_error_set(err, "%s: cannot open '%s': %s", flag, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        if (f != stdin)
            fclose(f);
        si_error_set(err, "%s %s is a directory; give a text file", flag, path);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = mallocCheck(cap, path);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            char *grown = realloc(buf, cap);
            if (!grown)
                si_fatal("out of memory reading '%s' (%zu bytes so far)", path, n);
            buf = grown;
        }
    }
    int failed = ferror(f);
    if (f != stdin)
        fclose(f);
    if (failed) {
        free(buf);
        si_error_set(err, "%s: error reading '%s'", flag, path);
        return NULL;
    }
    /* The text goes on as a C string: a NUL would end it there, silently. */
    const char *nul = memchr(buf, 0, n);
    if (nul) {
        si_error_set(err, "%s %s: byte %zu is a NUL (a binary file?); give a text file", flag, path,
                     (size_t)(nul - buf));
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}
