/* safetensors files, memory-mapped: one file, or the shards that model.safetensors.index.json
 * lists. Every header field is validated before any tensor is handed out. */
#ifndef STARINFER_MODEL_SAFETENSORS_H
#define STARINFER_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/check.h"

#define ST_MAX_DIMS 4

typedef enum { ST_BF16 = 0, ST_F16, ST_F32 } st_dtype;

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data; /* inside the mapping; valid until st_close */
    size_t nbytes;
    const char *file; /* the file it came from, for error messages */
} st_tensor;

typedef struct {
    char *path;
    void *map;
    size_t size;
} st_mapping;

typedef struct {
    st_mapping *files;
    int n_files;
    st_tensor *tensors;
    int n_tensors;
} st_set;

/* Opens DIR/model.safetensors, or every shard named by DIR/model.safetensors.index.json (and
 * checks that each tensor the index names is in the shard it names). */
int st_open_dir(st_set *set, const char *dir, si_error *err);
/* Maps one file and appends its tensors to SET (SET zero-initialised before the first call). */
int st_open_file(st_set *set, const char *path, si_error *err);
const st_tensor *st_find(const st_set *set, const char *name);
void st_close(st_set *set);

const char *st_dtype_name(st_dtype dtype);
size_t st_dtype_size(st_dtype dtype);
/* Writes SHAPE as "[d0, d1, ...]" into BUF (CAP bytes, cut short when it does not fit). */
void st_format_shape(char *buf, size_t cap, const int64_t *shape, int ndim);

#endif
