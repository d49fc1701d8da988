# The CUDA backend: kernels/cuda/*.cu, part of si_kernels, for Hopper (sm_90a) with a portable
# sm_80 path. It compiles wherever the toolkit is present, with or without a GPU.
file(GLOB CUDA_KERNEL_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/kernels/cuda/*.cu)
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "52")
  set(CMAKE_CUDA_ARCHITECTURES 80-real 90a-real 90-virtual)
endif()
target_sources(si_kernels PRIVATE ${CUDA_KERNEL_SOURCES})
set_target_properties(si_kernels PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
target_compile_options(si_kernels PRIVATE
  "$<$<COMPILE_LANGUAGE:CUDA>:-std=c++20;-Xcompiler=-Wall,-Wextra,-Werror;--Werror=all-warnings>")
target_compile_definitions(si_kernels PUBLIC STARINFER_HAVE_CUDA=1)
target_link_libraries(si_kernels PUBLIC CUDA::cudart CUDA::cublasLt)
