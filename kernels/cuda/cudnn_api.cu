/* cuDNN loaded with dlopen (cudnn_api.h): the few backend-API entry points the fused attention
 * needs, resolved once per process. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/check.h"
#include "kernels/cuda/cudnn_api.h"

static int resolve(void *lib, const char *name, void **fn)
{
    *fn = dlsym(lib, name);
    return *fn ? 0 : -1;
}

/* Fills API from LIB; -1 where an entry point is missing (a cuDNN older than 9). */
static int resolve_all(void *lib, cudnn_api *api)
{
    decltype(&cudnnGetVersion) version;
    decltype(&cudnnCreate) create_handle;
    int bad = resolve(lib, "cudnnGetVersion", (void **)&version) |
              resolve(lib, "cudnnCreate", (void **)&create_handle) |
              resolve(lib, "cudnnGetErrorString", (void **)&api->get_error_string) |
              resolve(lib, "cudnnGetLastErrorString", (void **)&api->get_last_error_string) |
              resolve(lib, "cudnnBackendCreateDescriptor", (void **)&api->create) |
              resolve(lib, "cudnnBackendDestroyDescriptor", (void **)&api->destroy) |
              resolve(lib, "cudnnBackendSetAttribute", (void **)&api->set) |
              resolve(lib, "cudnnBackendGetAttribute", (void **)&api->get) |
              resolve(lib, "cudnnBackendFinalize", (void **)&api->finalize) |
              resolve(lib, "cudnnBackendExecute", (void **)&api->execute);
    if (bad)
        return -1;
    api->version = version();
    if (api->version < 90000)
        return -1;
    return create_handle(&api->handle) == CUDNN_STATUS_SUCCESS ? 0 : -1;
}

const cudnn_api *cudnn_api_get(void)
{
    static cudnn_api api;
    static int state; /* 0 not tried, 1 loaded, -1 absent */
    if (state)
        return state > 0 ? &api : NULL;
    state = -1;
    const char *env = getenv("STARINFER_CUDNN");
    if (env && !strcmp(env, "0"))
        return NULL;
    const char *path = env && *env ? env : "libcudnn.so.9";
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib || resolve_all(lib, &api)) {
        if (env && *env)
            fprintf(stderr,
                    "[%s] warning: STARINFER_CUDNN=%s: %s; the prefill attention runs on "
                    "starinfer's own kernel\n",
                    si_log_prefix(), env, lib ? "not a usable cuDNN 9 library" : dlerror());
        if (lib)
            dlclose(lib);
        return NULL;
    }
    state = 1;
    return &api;
}

void cudnn_describe(const cudnn_api *api, cudnnStatus_t rc, char *buf, size_t len)
{
    char last[512] = "";
    api->get_last_error_string(last, sizeof last);
    snprintf(buf, len, "%s%s%s", api->get_error_string(rc), *last ? ": " : "", last);
}
