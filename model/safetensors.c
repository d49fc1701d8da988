#include "model/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/json_file.h"

#define HINT_REDOWNLOAD "\n  HINT: the file is damaged or truncated; download it again"

/* The reference implementation's limit; real headers are well under 1 MiB. */
#define ST_MAX_HEADER ((uint64_t)100 << 20)

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {[ST_BF16] = {"BF16", 2}, [ST_F16] = {"F16", 2}, [ST_F32] = {"F32", 4}};
#define N_DTYPES (int)(sizeof dtypes / sizeof dtypes[0])

const char *st_dtype_name(st_dtype dtype)
{
    return dtypes[dtype].name;
}

size_t st_dtype_size(st_dtype dtype)
{
    return dtypes[dtype].size;
}

void st_format_shape(char *buf, size_t cap, const int64_t *shape, int ndim)
{
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < cap)
        snprintf(buf + len, cap - len, "]");
}

/* Reads a JSON number that must be an integer in [0, 2^63): sizes and offsets. Above 2^53 a
 * double is no longer exact, but such a value is already far beyond any real file, so the checks
 * that follow (sizes against byte ranges, ranges against the file) reject it anyway. */
static int json_u63(const cJSON *item, int64_t *out)
{
    if (!cJSON_IsNumber(item))
        return -1;
    double v = item->valuedouble;
    if (!(v >= 0 && v < 0x1p63) || v != (double)(int64_t)v)
        return -1;
    *out = (int64_t)v;
    return 0;
}

static int parse_dtype(st_tensor *t, const cJSON *entry, const char *path, si_error *err)
{
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    if (!cJSON_IsString(dtype))
        return si_error_set(err, "%s: tensor \"%s\" has no \"dtype\"" HINT_REDOWNLOAD, path,
                            t->name);
    for (int i = 0; i < N_DTYPES; i++)
        if (!strcmp(dtype->valuestring, dtypes[i].name)) {
            t->dtype = (st_dtype)i;
            return 0;
        }
    return si_error_set(err,
                        "%s: tensor \"%s\" has dtype %.32s, which is not supported\n"
                        "  HINT: only BF16, F16 and F32 checkpoints load (not quantized ones); "
                        "use the model's original safetensors files",
                        path, t->name, dtype->valuestring);
}

static int parse_shape(st_tensor *t, const cJSON *entry, const char *path, si_error *err)
{
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    int ndim = cJSON_GetArraySize(shape);
    if (!cJSON_IsArray(shape) || ndim > ST_MAX_DIMS)
        return si_error_set(err,
                            "%s: tensor \"%s\": \"shape\" must be a list of at most %d "
                            "sizes" HINT_REDOWNLOAD,
                            path, t->name, ST_MAX_DIMS);
    t->ndim = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, shape)
    {
        if (json_u63(dim, &t->shape[t->ndim]))
            return si_error_set(err,
                                "%s: tensor \"%s\": shape entry %d is not a non-negative "
                                "integer" HINT_REDOWNLOAD,
                                path, t->name, t->ndim);
        t->ndim++;
    }
    return 0;
}

/* The tensor's byte range [begin, end) inside the data section of DATA_SIZE bytes (*BEGIN is
 * returned), and its size from shape x dtype, which must equal end - begin. All arithmetic is
 * overflow-checked. */
static int parse_offsets(st_tensor *t, const cJSON *entry, uint64_t data_size, uint64_t *begin,
                         const char *path, si_error *err)
{
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    int64_t b, e;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        json_u63(cJSON_GetArrayItem(offs, 0), &b) || json_u63(cJSON_GetArrayItem(offs, 1), &e) ||
        b > e)
        return si_error_set(err,
                            "%s: tensor \"%s\": \"data_offsets\" must be [begin, end] with "
                            "0 <= begin <= end" HINT_REDOWNLOAD,
                            path, t->name);
    if ((uint64_t)e > data_size)
        return si_error_set(err,
                            "%s: tensor \"%s\": data_offsets [%lld, %lld] run past the end of the "
                            "data (%llu bytes)" HINT_REDOWNLOAD,
                            path, t->name, (long long)b, (long long)e,
                            (unsigned long long)data_size);
    char shape[160];
    st_format_shape(shape, sizeof shape, t->shape, t->ndim);
    uint64_t nbytes = st_dtype_size(t->dtype);
    for (int i = 0; i < t->ndim; i++)
        if (__builtin_mul_overflow(nbytes, (uint64_t)t->shape[i], &nbytes))
            return si_error_set(err,
                                "%s: tensor \"%s\": shape %s is too large (its size in bytes "
                                "overflows 64 bits)" HINT_REDOWNLOAD,
                                path, t->name, shape);
    if (nbytes != (uint64_t)(e - b))
        return si_error_set(err,
                            "%s: tensor \"%s\": shape %s of %s is %llu bytes, but data_offsets "
                            "[%lld, %lld] hold %llu" HINT_REDOWNLOAD,
                            path, t->name, shape, st_dtype_name(t->dtype),
                            (unsigned long long)nbytes, (long long)b, (long long)e,
                            (unsigned long long)(e - b));
    *begin = (uint64_t)b;
    t->nbytes = (size_t)nbytes;
    return 0;
}

static int by_data(const void *a, const void *b)
{
    const st_tensor *x = a, *y = b;
    const char *px = x->data, *py = y->data;
    return px < py ? -1 : px > py;
}

/* Sorted by where they start, no tensor may begin before the previous one ends. Empty tensors
 * occupy no bytes and cannot overlap. */
static int check_overlap(st_tensor *ts, int n, const char *path, si_error *err)
{
    qsort(ts, (size_t)n, sizeof *ts, by_data);
    const st_tensor *prev = NULL;
    for (int i = 0; i < n; i++) {
        if (ts[i].nbytes == 0)
            continue;
        if (prev && (const char *)ts[i].data < (const char *)prev->data + prev->nbytes)
            return si_error_set(err,
                                "%s: the data of tensors \"%s\" and \"%s\" overlap" HINT_REDOWNLOAD,
                                path, prev->name, ts[i].name);
        prev = &ts[i];
    }
    return 0;
}

static char *dup_string(const char *s)
{
    size_t len = strlen(s) + 1;
    return memcpy(mallocCheck(len, "a file or tensor name"), s, len);
}

/* Maps PATH read-only; an empty file is not mapped (M->map stays NULL). */
static int map_file(st_mapping *m, const char *path, si_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return si_error_set(err, "cannot open %s: %s\n  HINT: check that it exists and is readable",
                            path, strerror(errno));
    struct stat st = {0};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return si_error_set(err, "%s is %s\n  HINT: check the model directory", path,
                            S_ISDIR(st.st_mode) ? "a directory, not a safetensors file"
                                                : "not a regular file");
    }
    m->size = (size_t)st.st_size;
    m->map = NULL;
    if (m->size > 0) {
        m->map = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m->map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return si_error_set(err, "cannot map %s (%zu bytes): %s", path, m->size, strerror(e));
        }
    }
    close(fd);
    m->path = dup_string(path);
    return 0;
}

static void unmap_file(st_mapping *m)
{
    if (m->map)
        munmap(m->map, m->size);
    free(m->path);
}

/* Parses the LEN-byte header TEXT of PATH: one JSON value followed by nothing but the spaces
 * that pad it. */
static cJSON *parse_header_json(const void *text, size_t len, const char *path, si_error *err)
{
    /* cJSON gets a NUL-terminated copy: a mapping has no terminator after its last byte. */
    char *copy = mallocCheck(len + 1, "a JSON text");
    if (len)
        memcpy(copy, text, len);
    copy[len] = 0;
    size_t at = 0;
    cJSON *root = json_file_parse(copy, len, &at);
    free(copy);
    if (!root)
        si_error_set(err, "%s: the header is not valid JSON (error near byte %zu)" HINT_REDOWNLOAD,
                     path, at);
    return root;
}

static void free_tensors(st_tensor *ts, int n)
{
    for (int i = 0; i < n; i++)
        free(ts[i].name);
    free(ts);
}

static int parse_entries(st_tensor *ts, int *n, const cJSON *root, const unsigned char *data,
                         uint64_t data_size, const char *path, si_error *err)
{
    const cJSON *entry;
    cJSON_ArrayForEach(entry, root)
    {
        if (!strcmp(entry->string, "__metadata__")) {
            if (!cJSON_IsObject(entry))
                return si_error_set(err, "%s: \"__metadata__\" is not an object" HINT_REDOWNLOAD,
                                    path);
            continue;
        }
        st_tensor *t = &ts[(*n)++];
        t->name = dup_string(entry->string);
        t->file = path;
        uint64_t begin = 0;
        if (!cJSON_IsObject(entry))
            return si_error_set(err, "%s: tensor \"%s\" is not described by an object%s", path,
                                t->name, HINT_REDOWNLOAD);
        if (parse_dtype(t, entry, path, err) || parse_shape(t, entry, path, err) ||
            parse_offsets(t, entry, data_size, &begin, path, err))
            return -1;
        t->data = data + begin;
    }
    return 0;
}

/* Validates the header of M (layout: u64 little-endian length N, N bytes of JSON, the data) and
 * returns its tensors in *OUT. */
static int parse_header(const st_mapping *m, st_tensor **out, int *n_out, si_error *err)
{
    const unsigned char *map = m->map;
    if (m->size < 8)
        return si_error_set(err,
                            "%s is %zu bytes, too short for a safetensors file" HINT_REDOWNLOAD,
                            m->path, m->size);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)map[i] << (8 * i);
    if (hlen > m->size - 8)
        return si_error_set(err,
                            "%s: the header length (%llu bytes) runs past the end of the file "
                            "(%zu bytes)" HINT_REDOWNLOAD,
                            m->path, (unsigned long long)hlen, m->size);
    if (hlen > ST_MAX_HEADER)
        return si_error_set(err,
                            "%s: the header length (%llu bytes) is over the 100 MiB limit; this "
                            "is not a safetensors file" HINT_REDOWNLOAD,
                            m->path, (unsigned long long)hlen);
    cJSON *root = parse_header_json(map + 8, hlen, m->path, err);
    if (!root)
        return -1;
    int rc = 0, n = 0;
    st_tensor *ts = NULL;
    if (!cJSON_IsObject(root))
        rc = si_error_set(err, "%s: the header is not a JSON object" HINT_REDOWNLOAD, m->path);
    else {
        ts = callocCheck((size_t)cJSON_GetArraySize(root), sizeof *ts, "the tensor list");
        rc = parse_entries(ts, &n, root, map + 8 + hlen, m->size - 8 - hlen, m->path, err);
    }
    cJSON_Delete(root);
    if (!rc)
        rc = check_overlap(ts, n, m->path, err);
    if (rc) {
        free_tensors(ts, n);
        return -1;
    }
    *out = ts;
    *n_out = n;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    const st_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* A name may appear once in the whole set, whichever files it spans. */
static int check_duplicates(const st_set *set, const st_tensor *ts, int n, si_error *err)
{
    int total = set->n_tensors + n;
    const st_tensor **all = callocCheck((size_t)total, sizeof *all, "the tensor names");
    for (int i = 0; i < set->n_tensors; i++)
        all[i] = &set->tensors[i];
    for (int i = 0; i < n; i++)
        all[set->n_tensors + i] = &ts[i];
    qsort(all, (size_t)total, sizeof *all, by_name);
    int rc = 0;
    for (int i = 1; i < total && !rc; i++) {
        const st_tensor *a = all[i - 1], *b = all[i];
        if (strcmp(a->name, b->name))
            continue;
        if (a->file == b->file)
            rc = si_error_set(err, "%s: tensor \"%s\" appears twice in the header" HINT_REDOWNLOAD,
                              a->file, a->name);
        else
            rc = si_error_set(err,
                              "tensor \"%s\" appears twice, in %s and in %s\n"
                              "  HINT: keep the files of one model only in the directory",
                              a->name, a->file, b->file);
    }
    free(all);
    return rc;
}

int st_open_file(st_set *set, const char *path, si_error *err)
{
    st_mapping m = {0};
    if (map_file(&m, path, err))
        return -1;
    st_tensor *ts = NULL;
    int n = 0;
    if (parse_header(&m, &ts, &n, err) || check_duplicates(set, ts, n, err)) {
        free_tensors(ts, n);
        unmap_file(&m);
        return -1;
    }
    set->files = realloc(set->files, (size_t)(set->n_files + 1) * sizeof *set->files);
    set->tensors = realloc(set->tensors, (size_t)(set->n_tensors + n + 1) * sizeof *set->tensors);
    if (!set->files || !set->tensors)
        si_fatal("out of host memory for the tensor list of %s", path);
    set->files[set->n_files++] = m;
    memcpy(set->tensors + set->n_tensors, ts, (size_t)n * sizeof *ts);
    set->n_tensors += n;
    free(ts); /* the names moved into the set */
    return 0;
}

/* The path of the shard that ENTRY of the weight map names; only a plain file name inside DIR
 * is accepted. */
static int shard_path(char *buf, size_t cap, const char *dir, const cJSON *entry, const char *index,
                      si_error *err)
{
    const char *shard = cJSON_IsString(entry) ? entry->valuestring : NULL;
    if (!shard || !*shard || strchr(shard, '/') || strstr(shard, ".."))
        return si_error_set(err,
                            "%s: tensor \"%s\" maps to %s%.200s%s, not a file name in the model "
                            "directory\n  HINT: the index is damaged; download it again",
                            index, entry->string, shard ? "\"" : "", shard ? shard : "a non-string",
                            shard ? "\"" : "");
    snprintf(buf, cap, "%s/%s", dir, shard);
    return 0;
}

static int is_open(const st_set *set, const char *path)
{
    for (int i = 0; i < set->n_files; i++)
        if (!strcmp(set->files[i].path, path))
            return 1;
    return 0;
}

/* Opens each distinct shard of the weight map once, then checks every tensor is where the index
 * says: a tensor in the wrong or no shard means the index and shards do not belong together. */
static int open_shards(st_set *set, const char *dir, const char *index, const cJSON *weight_map,
                       si_error *err)
{
    char path[4096];
    const cJSON *entry;
    cJSON_ArrayForEach(entry, weight_map)
    {
        if (shard_path(path, sizeof path, dir, entry, index, err))
            return -1;
        if (is_open(set, path))
            continue;
        if (access(path, F_OK) != 0)
            return si_error_set(err,
                                "%s, listed in %s, is missing\n  HINT: download every shard "
                                "(model-*-of-*.safetensors) into %s",
                                path, index, dir);
        if (st_open_file(set, path, err))
            return -1;
    }
    cJSON_ArrayForEach(entry, weight_map)
    {
        shard_path(path, sizeof path, dir, entry, index, err);
        const st_tensor *t = st_find(set, entry->string);
        if (!t || strcmp(t->file, path))
            return si_error_set(err,
                                "tensor \"%s\" is not in %s, where %s puts it%s%s\n"
                                "  HINT: the index and the shards come from different downloads; "
                                "download them again",
                                entry->string, path, index, t ? "; it is in " : "",
                                t ? t->file : "");
    }
    return 0;
}

static int open_index(st_set *set, const char *dir, const char *index, si_error *err)
{
    cJSON *root = json_file_load(index, NULL, err);
    if (!root)
        return -1;
    const cJSON *weight_map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    int rc;
    if (!cJSON_IsObject(weight_map) || !weight_map->child)
        rc = si_error_set(err, "%s: \"weight_map\" is missing or empty" HINT_REDOWNLOAD, index);
    else
        rc = open_shards(set, dir, index, weight_map, err);
    cJSON_Delete(root);
    return rc;
}

int st_open_dir(st_set *set, const char *dir, si_error *err)
{
    memset(set, 0, sizeof *set);
    char single[4096], index[4096];
    snprintf(single, sizeof single, "%s/model.safetensors", dir);
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", dir);
    int rc;
    /* Like transformers, a single file wins over an index. */
    if (access(single, F_OK) == 0)
        rc = st_open_file(set, single, err);
    else if (access(index, F_OK) == 0)
        rc = open_index(set, dir, index, err);
    else
        rc = si_error_set(err,
                          "no weights in %s: neither model.safetensors nor "
                          "model.safetensors.index.json is there\n  HINT: download the model's "
                          "*.safetensors files (and the index, when sharded) into it",
                          dir);
    if (rc)
        st_close(set);
    return rc;
}

const st_tensor *st_find(const st_set *set, const char *name)
{
    for (int i = 0; i < set->n_tensors; i++)
        if (!strcmp(set->tensors[i].name, name))
            return &set->tensors[i];
    return NULL;
}

void st_close(st_set *set)
{
    for (int i = 0; i < set->n_tensors; i++)
        free(set->tensors[i].name);
    for (int i = 0; i < set->n_files; i++)
        unmap_file(&set->files[i]);
    free(set->tensors);
    free(set->files);
    memset(set, 0, sizeof *set);
}
