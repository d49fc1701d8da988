#include "test_util.h"

#include "kernels/backend.h"

#include <dirent.h>
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
    be = gpus > 0 ? backend_cuda(local ? atoi(local) % gpus : 0, err, sizeof err) : NULL;
    if (!be)
        printf("skipped: no CUDA GPU here\n");
    return be;
}

double test_logit_tolerance(void)
{
    return test_backend()->host_memory ? 1e-4 : 3e-2;
}
