#include "launcher/args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
    long n;
    double f;
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

char *read_text(const char *path, const char *flag, size_t *len, si_error *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        si_error_set(err, "%s: cannot open '%s': %s", flag, path, strerror(errno));
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
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}
