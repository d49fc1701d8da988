# The CUDA backend: kernels/cuda/*.cu, part of si_kernels, for Hopper (sm_90a) with a portable
# sm_80 path. It compiles wherever the toolkit is present, with or without a GPU.
file(GLOB CUDA_KERNEL_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/kernels/cuda/*.cu)
# The kernels need sm_80 or later (bf16 tensor-core mma, cp.async): CMake's own default
# (the compiler's oldest target) is not used.
set(STARINFER_CUDA_ARCHS "80-real;90a-real;90-virtual" CACHE STRING
    "CUDA architectures of the kernels (sm_80 or later), e.g. 90a-real for one H100/H200")
# NCCL (the toolkit's, or a system package) for --merge-transport nccl: compiled in when found.
option(STARINFER_NCCL "Build the NCCL phase-2 merge when NCCL is found" ON)
set(STARINFER_HAVE_NCCL OFF)
if(STARINFER_NCCL)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR})
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    set(STARINFER_HAVE_NCCL ON)
  endif()
endif()
message(STATUS "starinfer: NCCL merge ${STARINFER_HAVE_NCCL}")
if(STARINFER_HAVE_NCCL)
  target_include_directories(si_kernels PRIVATE ${NCCL_INCLUDE_DIR})
  target_link_libraries(si_kernels PUBLIC ${NCCL_LIBRARY})
  target_compile_definitions(si_kernels PUBLIC STARINFER_HAVE_NCCL=1)
else()
  list(FILTER CUDA_KERNEL_SOURCES EXCLUDE REGEX "device_comm\\.cu$")
endif()
# cuDNN's fused attention for the prefill: its headers at build time, the library loaded at run
# time (dlopen), so that a binary runs, on its own kernels, where cuDNN is absent.
option(STARINFER_CUDNN "Build the cuDNN prefill attention when cuDNN's headers are found" ON)
set(STARINFER_HAVE_CUDNN OFF)
if(STARINFER_CUDNN)
  find_path(CUDNN_INCLUDE_DIR cudnn_graph.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  if(CUDNN_INCLUDE_DIR)
    set(STARINFER_HAVE_CUDNN ON)
  endif()
endif()
message(STATUS "starinfer: cuDNN prefill attention ${STARINFER_HAVE_CUDNN}")
if(STARINFER_HAVE_CUDNN)
  target_include_directories(si_kernels PRIVATE ${CUDNN_INCLUDE_DIR})
  target_link_libraries(si_kernels PUBLIC ${CMAKE_DL_LIBS})
  target_compile_definitions(si_kernels PRIVATE STARINFER_HAVE_CUDNN=1)
else()
  list(FILTER CUDA_KERNEL_SOURCES EXCLUDE REGEX "(cudnn_api|attention_cudnn)\\.cu$")
endif()
target_sources(si_kernels PRIVATE ${CUDA_KERNEL_SOURCES})
set_target_properties(si_kernels PROPERTIES CUDA_ARCHITECTURES "${STARINFER_CUDA_ARCHS}")
target_compile_options(si_kernels PRIVATE
  "$<$<COMPILE_LANGUAGE:CUDA>:-std=c++20;-Xcompiler=-Wall,-Wextra,-Werror;--Werror=all-warnings>")
target_compile_definitions(si_kernels PUBLIC STARINFER_HAVE_CUDA=1)
target_link_libraries(si_kernels PUBLIC CUDA::cudart CUDA::cublasLt)
