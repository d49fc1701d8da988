/* Checked CUDA and cuBLAS calls: a failure names the operation, the device and the error, and
 * ends the process through the fatal handler (MPI_Abort under the runtime). */
#ifndef STARINFER_KERNELS_CUDA_CHECK_H
#define STARINFER_KERNELS_CUDA_CHECK_H

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "kernels/check.h"

#define cudaCheck(call) cuda_check_at((call), #call, __FILE__, __LINE__)
#define cublasCheck(call) cublas_check_at((call), #call, __FILE__, __LINE__)
/* After a kernel launch: a bad configuration shows up here, a fault at the next sync. */
#define cudaCheckLaunch(name) cuda_check_at(cudaGetLastError(), name, __FILE__, __LINE__)

static inline void cuda_check_at(cudaError_t rc, const char *what, const char *file, int line)
{
    if (rc == cudaSuccess)
        return;
    int dev = -1;
    cudaGetDevice(&dev);
    si_fatal_at(file, line,
                "CUDA error on GPU %d in %s: %s (%s)\n"
                "  HINT: out of memory: lower --chunk or --block-size, or use more GPUs; other "
                "errors: check the driver with nvidia-smi",
                dev, what, cudaGetErrorString(rc), cudaGetErrorName(rc));
}

static inline void cublas_check_at(cublasStatus_t rc, const char *what, const char *file,
                                   int line)
{
    if (rc == CUBLAS_STATUS_SUCCESS)
        return;
    int dev = -1;
    cudaGetDevice(&dev);
    si_fatal_at(file, line, "cuBLAS error on GPU %d in %s: status %d", dev, what, (int)rc);
}

#endif
