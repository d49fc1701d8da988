/* One family of checked calls, used by every call site (after llm.c's cudaCheck/fopenCheck).
 *
 * A failed check prints file:line, what failed and a HINT for the user, then calls the fatal
 * handler. The default handler exits; the runtime installs one that calls MPI_Abort so that a
 * failing rank ends the whole job instead of hanging it. Recoverable input errors (a bad model
 * directory, a malformed request) do not come through here: loaders return them as si_error. */
#ifndef STARINFER_KERNELS_CHECK_H
#define STARINFER_KERNELS_CHECK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A recoverable error: a message that names the file, tensor, flag or rank at fault and says
 * what to do. Functions that can fail on user input take `si_error *err` and return 0 or -1. */
typedef struct {
    char msg[1024];
} si_error;

__attribute__((format(printf, 2, 3))) int si_error_set(si_error *err, const char *fmt, ...);

typedef void (*si_fatal_handler)(int exit_code);
void si_set_fatal_handler(si_fatal_handler handler);
/* Prefix for log lines and fatal messages, e.g. "rank 3". */
void si_set_log_prefix(const char *prefix);
const char *si_log_prefix(void);

__attribute__((noreturn, format(printf, 3, 4))) void si_fatal_at(const char *file, int line,
                                                                 const char *fmt, ...);
#define si_fatal(...) si_fatal_at(__FILE__, __LINE__, __VA_ARGS__)

void *si_malloc_check(size_t bytes, const char *what, const char *file, int line);
void *si_calloc_check(size_t n, size_t size, const char *what, const char *file, int line);
FILE *si_fopen_check(const char *path, const char *mode, const char *file, int line);

#define mallocCheck(bytes, what) si_malloc_check((bytes), (what), __FILE__, __LINE__)
#define callocCheck(n, size, what) si_calloc_check((n), (size), (what), __FILE__, __LINE__)
#define fopenCheck(path, mode) si_fopen_check((path), (mode), __FILE__, __LINE__)

/* Logging on stderr, prefixed with the rank (see si_set_log_prefix). */
__attribute__((format(printf, 1, 2))) void si_log(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void si_warn(const char *fmt, ...);

#ifdef __cplusplus
}
#endif

#endif
