/* Programmatic dependent launch (Hopper and later): a kernel launched with launch_overlapped may
 * start while the kernel before it on the stream is still finishing, so that its blocks are
 * resident by the time its inputs are ready. A decoded token is a chain of about ten short
 * kernels per layer, each paying a ramp and a tail; this hides part of them. RMSNorm, the
 * rotation of q and k with their store, the attention state's init and finalize, the decode
 * attention and the GEMVs launch this way; the GEMVs request their first weights before they
 * wait (gemv_warp.cuh; bench/NOTES.md entries 7 and 16).
 *
 * The rules, for every kernel launched this way:
 *   - call overlap_wait() before reading anything an earlier kernel writes, and before writing
 *     anything at all: it returns once the kernel before has completed and its writes are
 *     visible (and that kernel waited for its own predecessor, so the whole chain has);
 *   - every thread that touches memory after its start must have called overlap_wait() (a
 *     kernel whose threads all leave without waiting could finish before its predecessor);
 *   - overlap_release() lets the next kernel launch once every block of this one has called
 *     it: at the start of a short kernel; after the main loop of a long one (released at the
 *     start, the next kernels' blocks, and those of the kernels after them, would be placed
 *     beside its own and crowd them: measured slower, bench/NOTES.md entry 7).
 * On older GPUs (or with STARINFER_OVERLAP=0, to compare in one run) the kernels launch in plain
 * stream order and the two calls do nothing. */
#ifndef STARINFER_KERNELS_CUDA_OVERLAP_CUH
#define STARINFER_KERNELS_CUDA_OVERLAP_CUH

#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_check.h"

__device__ __forceinline__ void overlap_wait(void)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void overlap_release(void)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

/* Whether launches overlap: compute capability 9.0 or later, unless STARINFER_OVERLAP=0. */
static inline int overlap_enabled(void)
{
    static int enabled = -1;
    if (enabled < 0) {
        int dev = 0, major = 0;
        cudaCheck(cudaGetDevice(&dev));
        cudaCheck(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
        const char *env = getenv("STARINFER_OVERLAP");
        enabled = major >= 9 && !(env && !strcmp(env, "0"));
    }
    return enabled;
}

/* KERNEL<<<GRID, BLOCK, SMEM>>>(ARGS...) on the default stream, allowed to overlap the kernel
 * before it; NAME is the operation a launch error is reported against. */
template <typename... Params, typename... Args>
static void launch_overlapped(const char *name, void (*kernel)(Params...), dim3 grid, dim3 block,
                              size_t smem, Args... args)
{
    cudaLaunchAttribute attr;
    attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr.val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = 0;
    cfg.attrs = &attr;
    cfg.numAttrs = overlap_enabled() ? 1 : 0;
    cuda_check_at(cudaLaunchKernelEx(&cfg, kernel, args...), name, __FILE__, __LINE__);
}

#endif
