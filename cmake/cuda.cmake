# The CUDA backend: kernels/cuda/*.cu and *.c, for Hopper (sm_90a) with a portable sm_80 path.
# It compiles wherever the toolkit is present, with or without a GPU.
file(GLOB CUDA_KERNEL_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/kernels/cuda/*.cu
     ${CMAKE_SOURCE_DIR}/kernels/cuda/*.c)
if(CUDA_KERNEL_SOURCES)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "52")
    set(CMAKE_CUDA_ARCHITECTURES 80-real 90a-real 90-virtual)
  endif()
  add_library(si_kernels_cuda STATIC ${CUDA_KERNEL_SOURCES})
  target_include_directories(si_kernels_cuda PUBLIC ${CMAKE_SOURCE_DIR})
  target_compile_options(si_kernels_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
  target_link_libraries(si_kernels_cuda PUBLIC CUDA::cudart CUDA::cublasLt CUDA::cublas)
  target_compile_definitions(si_kernels PUBLIC STARINFER_HAVE_CUDA=1)
  target_link_libraries(si_kernels PUBLIC si_kernels_cuda)
endif()
