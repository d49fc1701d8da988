#include "kernels/check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static si_fatal_handler fatal_handler;
static char log_prefix[64] = "starinfer";

int si_error_set(si_error *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void si_set_fatal_handler(si_fatal_handler handler)
{
    fatal_handler = handler;
}

void si_set_log_prefix(const char *prefix)
{
    snprintf(log_prefix, sizeof log_prefix, "%s", prefix);
}

const char *si_log_prefix(void)
{
    return log_prefix;
}

void si_fatal_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%s] error at %s:%d: ", log_prefix, file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    if (fatal_handler)
        fatal_handler(1);
    exit(1);
}

void *si_malloc_check(size_t bytes, const char *what, const char *file, int line)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        si_fatal_at(file, line,
                    "out of host memory allocating %zu bytes for %s\n"
                    "  HINT: use a smaller context or more ranks, or free memory on this node",
                    bytes, what);
    return p;
}

void *si_calloc_check(size_t n, size_t size, const char *what, const char *file, int line)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        si_fatal_at(file, line,
                    "out of host memory allocating %zu x %zu bytes for %s\n"
                    "  HINT: use a smaller context or more ranks, or free memory on this node",
                    n, size, what);
    return p;
}

FILE *si_fopen_check(const char *path, const char *mode, const char *file, int line)
{
    FILE *f = fopen(path, mode);
    if (!f)
        si_fatal_at(file, line,
                    "cannot open '%s' (mode %s): %s\n"
                    "  HINT: check the path and its permissions",
                    path, mode, strerror(errno));
    return f;
}

/* One write per line, so that lines of ranks sharing a terminal do not interleave. */
static void vlog(const char *level, const char *fmt, va_list ap)
{
    char line[2048];
    int n = snprintf(line, sizeof line, "[%s] %s", log_prefix, level);
    vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    fprintf(stderr, "%s\n", line);
}

void si_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("", fmt, ap);
    va_end(ap);
}

void si_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("warning: ", fmt, ap);
    va_end(ap);
}
