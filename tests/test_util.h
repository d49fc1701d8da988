/* Helpers shared by the tests: the fixtures' folder, whole-file reads, temporary folders, model
 * files written from a test, and comparisons against the reference. */
#ifndef STARINFER_TESTS_TEST_UTIL_H
#define STARINFER_TESTS_TEST_UTIL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

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

/* A temporary folder for one test, and scratch for the paths of files in it. */
typedef struct {
    char *dir;
    char path[4096];
} temp_dir;
/* Makes T's folder; returns 0 on success. */
int temp_dir_init(temp_dir *t);
/* Removes T's folder and everything in it. */
void temp_dir_remove(temp_dir *t);
/* cmocka setup and teardown for tests whose state is a temp_dir. */
int temp_dir_setup(void **state);
int temp_dir_teardown(void **state);
/* T's folder joined with NAME, in T->path (valid until the next call). */
const char *file_in(temp_dir *t, const char *name);
/* Writes TEXT as the file NAME of T's folder. */
void write_text(temp_dir *t, const char *name, const char *text);
/* Writes JSON, printed, as the file NAME of T's folder, and frees it. */
void write_json(temp_dir *t, const char *name, cJSON *json);

/* safetensors files as the reference writer makes them. Adds tensor NAME to HEADER: DTYPE,
 * SHAPE[NDIM] and data bytes [BEGIN, END). */
void safetensors_add_tensor(cJSON *header, const char *name, const char *dtype, int ndim,
                            const int64_t *shape, size_t begin, size_t end);
/* Writes PATH: the length of HEADER (u64, little-endian), HEADER as given, then DATA_LEN bytes
 * of DATA. */
void write_safetensors_raw(const char *path, const char *header, const void *data, size_t data_len);
/* The same with HEADER printed and padded with spaces to a multiple of 8 bytes. */
void write_safetensors(const char *path, const cJSON *header, const void *data, size_t data_len);

/* Fails the test unless MSG contains NEEDLE. */
void assert_has(const char *msg, const char *needle);

/* The integers of the JSON array A, malloc'd (*N of them). */
int *json_ints(const cJSON *a, int *n);
/* The reference's FILE (under the fixtures' reference/): COUNT floats, malloc'd. */
float *reference_rows(const char *file, size_t count);
/* max |a - ref| / max |ref| over N values (one row of logits). */
double rel_error(const float *a, const float *ref, int n);

/* The backend the model tests run on: $STARINFER_TEST_DEVICE = cpu (default), cuda or cuda-fp32
 * (the CUDA backend's fp32 precision); NULL when a GPU is asked for on a machine without one (the
 * test then exits 77: skipped). */
struct backend;
const struct backend *test_backend(void);
/* Relative tolerance of logits against the fp32 reference on that backend: fp32 everywhere on
 * the CPU and in CUDA's fp32 precision; bf16 weights, KV cache and matrix inputs on CUDA. */
double test_logit_tolerance(void);

#endif
