/* cuDNN, loaded at run time: the prefill attention uses its fused flash attention where the
 * library is found, and our own kernel where it is not, so the binary needs no cuDNN to run.
 *
 * STARINFER_CUDNN=0 keeps cuDNN out; STARINFER_CUDNN=/path/libcudnn.so.9 names the library;
 * otherwise libcudnn.so.9 is looked up on the library path (LD_LIBRARY_PATH, ldconfig). */
#ifndef STARINFER_KERNELS_CUDA_CUDNN_API_H
#define STARINFER_KERNELS_CUDA_CUDNN_API_H

#include <cudnn_graph.h>

typedef struct {
    size_t version; /* cudnnGetVersion(), e.g. 91900 */
    cudnnHandle_t handle;
    decltype(&cudnnGetErrorString) get_error_string;
    decltype(&cudnnGetLastErrorString) get_last_error_string;
    decltype(&cudnnBackendCreateDescriptor) create;
    decltype(&cudnnBackendDestroyDescriptor) destroy;
    decltype(&cudnnBackendSetAttribute) set;
    decltype(&cudnnBackendGetAttribute) get;
    decltype(&cudnnBackendFinalize) finalize;
    decltype(&cudnnBackendExecute) execute;
} cudnn_api;

/* The loaded library with a handle on the current device and the default stream, or NULL where
 * cuDNN is absent, turned off, older than 9.0, or cannot start (the first call says why on
 * stderr once, when STARINFER_CUDNN names a library that fails). */
const cudnn_api *cudnn_api_get(void);

/* RC's name and cuDNN's own last message, into BUF. */
void cudnn_describe(const cudnn_api *api, cudnnStatus_t rc, char *buf, size_t len);

#endif
