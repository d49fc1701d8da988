/* Helpers shared by the tests: the fixtures' folder, whole-file reads, temporary folders. */
#ifndef STARINFER_TESTS_TEST_UTIL_H
#define STARINFER_TESTS_TEST_UTIL_H

#include <stddef.h>

/* $STARINFER_FIXTURES joined with REL (static buffer, valid until the next call). */
const char *fixture_path(const char *rel);
/* Reads a whole file into a malloc'd, NUL-terminated buffer; NULL when it cannot. */
char *read_file(const char *path, size_t *len);
/* Writes LEN bytes to PATH; returns 0 on success. */
int write_file(const char *path, const void *data, size_t len);
/* Creates a fresh temporary folder and returns its malloc'd path. */
char *make_temp_dir(void);
/* Copies every regular file of SRC into DST. */
int copy_dir(const char *src, const char *dst);
/* Removes a folder and everything in it. */
void remove_dir(const char *path);

/* The backend the model tests run on: $STARINFER_TEST_DEVICE = cpu (default) or cuda; NULL
 * when cuda is asked for on a machine without a GPU (the test then exits 77: skipped). */
struct backend;
const struct backend *test_backend(void);
/* Relative tolerance of logits against the fp32 reference on that backend: fp32 everywhere on
 * the CPU; bf16 weights, KV cache and matrix inputs on CUDA. */
double test_logit_tolerance(void);

#endif
