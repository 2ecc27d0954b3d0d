# The optional CUDA backend: AUTO builds it when the toolkit, cuDNN and NCCL
# are all present, ON insists on them, OFF never builds it.
set(CTSWEEP_HAVE_CUDA OFF)
if(NOT CTSWEEP_CUDA STREQUAL "OFF")
  if(NOT DEFINED CUDAToolkit_ROOT AND EXISTS /usr/local/cuda)
    set(CUDAToolkit_ROOT /usr/local/cuda)
  endif()
  find_package(CUDAToolkit QUIET)
  find_library(CTSWEEP_CUDNN_LIB cudnn HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_ROOT}/lib64)
  find_library(CTSWEEP_NCCL_LIB nccl HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_ROOT}/lib64)
  find_path(CTSWEEP_CUDNN_INC cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_ROOT}/include)
  find_path(CTSWEEP_NCCL_INC nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_ROOT}/include)
  if(CUDAToolkit_FOUND AND CTSWEEP_CUDNN_LIB AND CTSWEEP_NCCL_LIB AND CTSWEEP_CUDNN_INC AND CTSWEEP_NCCL_INC)
    set(CTSWEEP_HAVE_CUDA ON)
  elseif(CTSWEEP_CUDA STREQUAL "ON")
    message(FATAL_ERROR "CTSWEEP_CUDA=ON but the CUDA toolkit, cuDNN or NCCL was not found "
      "(toolkit: ${CUDAToolkit_FOUND}, cudnn: ${CTSWEEP_CUDNN_LIB}, nccl: ${CTSWEEP_NCCL_LIB})")
  endif()
endif()
file(GLOB CTSWEEP_CUDA_SOURCES CONFIGURE_DEPENDS
     ${CMAKE_CURRENT_SOURCE_DIR}/src/backend/cuda/*.c
     ${CMAKE_CURRENT_SOURCE_DIR}/src/backend/cuda/*.cu)
if(CTSWEEP_HAVE_CUDA AND CTSWEEP_CUDA_SOURCES)
  if(NOT CMAKE_CUDA_COMPILER)
    set(CMAKE_CUDA_COMPILER ${CUDAToolkit_NVCC_EXECUTABLE})
  endif()
  if(NOT CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 80-real 90)
  endif()
  enable_language(CUDA)
endif()
# The toolkit's library folder and the folders cuDNN and NCCL were found in
# go into every binary's RUNPATH: on a machine whose loader does not know
# them (no ldconfig entry, libraries from pip wheels) the programs still
# start. CMake leaves the toolkit's folder out of the automatic RUNPATH as
# an implicit link directory of nvcc's, so it is named here. cuDNN's and
# NCCL's folders come first: a toolkit folder holding a cuDNN of its own
# must not shadow the one chosen (tests/gpu/check.sh refuses one built for
# another CUDA major).
if(CTSWEEP_HAVE_CUDA)
  set(ctsweep_cuda_rpath)
  foreach(lib ${CTSWEEP_CUDNN_LIB} ${CTSWEEP_NCCL_LIB})
    get_filename_component(real ${lib} REALPATH)
    get_filename_component(dir ${real} DIRECTORY)
    list(APPEND ctsweep_cuda_rpath ${dir})
  endforeach()
  list(APPEND ctsweep_cuda_rpath ${CUDAToolkit_LIBRARY_DIR})
  list(REMOVE_DUPLICATES ctsweep_cuda_rpath)
  list(APPEND CMAKE_BUILD_RPATH ${ctsweep_cuda_rpath})
  list(APPEND CMAKE_INSTALL_RPATH ${ctsweep_cuda_rpath})
endif()
if(CTSWEEP_HAVE_CUDA AND NOT CTSWEEP_CUDA_SOURCES)
  message(STATUS "ctsweep CUDA backend: toolkit, cuDNN and NCCL found; no CUDA sources to build yet (CPU only)")
else()
  message(STATUS "ctsweep CUDA backend: ${CTSWEEP_HAVE_CUDA}")
endif()

# The .c files of src/backend/cuda/ join the target (and its warnings); the
# .cu files form an object library of their own, compiled by nvcc with host
# flags it understands, whose objects are added to the target.
function(ctsweep_cuda_attach target)
  if(NOT CTSWEEP_HAVE_CUDA)
    return()
  endif()
  if(NOT CTSWEEP_CUDA_SOURCES)
    return()
  endif()
  set(c_sources ${CTSWEEP_CUDA_SOURCES})
  set(cu_sources ${CTSWEEP_CUDA_SOURCES})
  list(FILTER c_sources INCLUDE REGEX "\\.c$")
  list(FILTER cu_sources INCLUDE REGEX "\\.cu$")
  target_sources(${target} PRIVATE ${c_sources})
  if(cu_sources)
    add_library(${target}_kernels OBJECT ${cu_sources})
    target_include_directories(${target}_kernels PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src
      ${CTSWEEP_CUDNN_INC} ${CUDAToolkit_INCLUDE_DIRS})
    target_compile_definitions(${target}_kernels PRIVATE CTSWEEP_HAVE_CUDA=1)
    target_compile_options(${target}_kernels PRIVATE
      $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wno-unused-parameter>)
    set_target_properties(${target}_kernels PROPERTIES POSITION_INDEPENDENT_CODE ON
      CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON)
    target_sources(${target} PRIVATE $<TARGET_OBJECTS:${target}_kernels>)
  endif()
  target_compile_definitions(${target} PUBLIC CTSWEEP_HAVE_CUDA=1)
  target_include_directories(${target} PRIVATE ${CTSWEEP_CUDNN_INC} ${CTSWEEP_NCCL_INC})
  target_link_libraries(${target} PUBLIC CUDA::cudart CUDA::cublas CUDA::cublasLt
    ${CTSWEEP_CUDNN_LIB} ${CTSWEEP_NCCL_LIB})
endfunction()
