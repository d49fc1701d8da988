#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_util.h"

#include "kernels/backend.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *fixture_path(const char *rel)
{
    static char buf[4096];
    const char *root = getenv("STARINFER_FIXTURES");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : "tests/fixtures", rel);
    return buf;
}

char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[size] = 0;
        if (len)
            *len = (size_t)size;
    }
    return buf;
}

int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && n == len) ? 0 : -1;
}

char *make_temp_dir(void)
{
    char tmpl[] = "/tmp/starinfer-test-XXXXXX";
    if (!mkdtemp(tmpl))
        return NULL;
    return strdup(tmpl);
}

int copy_dir(const char *src, const char *dst)
{
    DIR *d = opendir(src);
    if (!d)
        return -1;
    struct dirent *e;
    int rc = 0;
    char from[4096], to[4096];
    while ((e = readdir(d))) {
        snprintf(from, sizeof from, "%s/%s", src, e->d_name);
        struct stat st;
        if (stat(from, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        snprintf(to, sizeof to, "%s/%s", dst, e->d_name);
        size_t len;
        char *data = read_file(from, &len);
        if (!data || write_file(to, data, len) != 0)
            rc = -1;
        free(data);
    }
    closedir(d);
    return rc;
}

void remove_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            remove_dir(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(path);
}

int temp_dir_init(temp_dir *t)
{
    t->dir = make_temp_dir();
    return t->dir ? 0 : -1;
}

void temp_dir_remove(temp_dir *t)
{
    remove_dir(t->dir);
    free(t->dir);
    t->dir = NULL;
}

int temp_dir_setup(void **state)
{
    temp_dir *t = calloc(1, sizeof *t);
    *state = t;
    return temp_dir_init(t);
}

int temp_dir_teardown(void **state)
{
    temp_dir_remove(*state);
    free(*state);
    return 0;
}

const char *file_in(temp_dir *t, const char *name)
{
    snprintf(t->path, sizeof t->path, "%s/%s", t->dir, name);
    return t->path;
}

void write_text(temp_dir *t, const char *name, const char *text)
{
    assert_int_equal(write_file(file_in(t, name), text, strlen(text)), 0);
}

void write_json(temp_dir *t, const char *name, cJSON *json)
{
    char *text = cJSON_Print(json);
    write_text(t, name, text);
    free(text);
    cJSON_Delete(json);
}

void safetensors_add_tensor(cJSON *header, const char *name, const char *dtype, int ndim,
                            const int64_t *shape, size_t begin, size_t end)
{
    cJSON *t = cJSON_AddObjectToObject(header, name);
    cJSON_AddStringToObject(t, "dtype", dtype);
    cJSON *dims = cJSON_AddArrayToObject(t, "shape");
    for (int d = 0; d < ndim; d++)
        cJSON_AddItemToArray(dims, cJSON_CreateNumber((double)shape[d]));
    cJSON *offsets = cJSON_AddArrayToObject(t, "data_offsets");
    cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)begin));
    cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)end));
}

void write_safetensors_raw(const char *path, const char *header, const void *data, size_t data_len)
{
    size_t hlen = strlen(header), len = 8 + hlen + data_len;
    unsigned char *buf = malloc(len);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, header, hlen);
    if (data_len)
        memcpy(buf + 8 + hlen, data, data_len);
    assert_int_equal(write_file(path, buf, len), 0);
    free(buf);
}

void write_safetensors(const char *path, const cJSON *header, const void *data, size_t data_len)
{
    char *text = cJSON_PrintUnformatted(header);
    size_t len = strlen(text), padded = (len + 7) / 8 * 8;
    char *padded_text = malloc(padded + 1);
    memset(padded_text, ' ', padded);
    memcpy(padded_text, text, len);
    padded_text[padded] = 0;
    write_safetensors_raw(path, padded_text, data, data_len);
    free(padded_text);
    free(text);
}

void assert_has(const char *msg, const char *needle)
{
    if (!strstr(msg, needle))
        fail_msg("the message \"%s\" does not contain \"%s\"", msg, needle);
}

int *json_ints(const cJSON *a, int *n)
{
    *n = cJSON_GetArraySize(a);
    int *v = malloc(sizeof(int) * (*n + 1));
    for (int i = 0; i < *n; i++)
        v[i] = cJSON_GetArrayItem(a, i)->valueint;
    return v;
}

float *reference_rows(const char *file, size_t count)
{
    char rel[256];
    snprintf(rel, sizeof rel, "reference/%s", file);
    size_t len = 0;
    float *rows = (float *)read_file(fixture_path(rel), &len);
    assert_non_null(rows);
    assert_int_equal(len, count * sizeof(float));
    return rows;
}

double rel_error(const float *a, const float *ref, int n)
{
    double diff = 0, scale = 1e-30;
    for (int i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - ref[i]));
        scale = fmax(scale, fabs((double)ref[i]));
    }
    return diff / scale;
}

const struct backend *test_backend(void)
{
    static const backend *be;
    if (be)
        return be;
    const char *dev = getenv("STARINFER_TEST_DEVICE");
    if (!dev || !strcmp(dev, "cpu"))
        return be = backend_cpu();
    char err[512];
    /* Under mpirun each rank of a node takes its own GPU, several ranks sharing when fewer. */
    int gpus = backend_cuda_device_count();
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    cuda_precision precision = !strcmp(dev, "cuda-fp32") ? CUDA_FP32 : CUDA_BF16;
    be = gpus > 0 ? backend_cuda(local ? atoi(local) % gpus : 0, precision, err, sizeof err) : NULL;
    if (!be)
        printf("skipped: no CUDA GPU here\n");
    return be;
}

double test_logit_tolerance(void)
{
    return test_backend()->weight_size == sizeof(float) ? 1e-4 : 3e-2;
}
