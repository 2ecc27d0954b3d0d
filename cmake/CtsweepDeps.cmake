# Finds the libraries ctsweep needs and gathers them in one interface target,
# ctsweep_deps. Missing ones stop the configure with the Debian package name.
find_package(PkgConfig REQUIRED)

find_package(MPI REQUIRED COMPONENTS C)
set(HDF5_PREFER_PARALLEL OFF)
find_package(HDF5 REQUIRED COMPONENTS C)
# oneDNN's own CMake config (Debian's) insists on OpenCL for its GPU runtime,
# which ctsweep does not use, so the library is found directly.
find_path(DNNL_INCLUDE_DIR dnnl.h)
find_library(DNNL_LIBRARY dnnl)
if(NOT DNNL_INCLUDE_DIR OR NOT DNNL_LIBRARY)
  message(FATAL_ERROR "oneDNN not found: install libdnnl-dev (scripts/bootstrap)")
endif()
find_package(OpenMP REQUIRED COMPONENTS C)
# zlib: only the tests' PNG builders (real deflate streams of every kind);
# ctsweep itself inflates with libdeflate.
find_package(ZLIB REQUIRED)

function(ctsweep_pkg var module debian)
  pkg_check_modules(${var} IMPORTED_TARGET ${module})
  if(NOT ${var}_FOUND)
    message(FATAL_ERROR "${module} not found: install ${debian} (scripts/bootstrap)")
  endif()
endfunction()
ctsweep_pkg(FYAML libfyaml libfyaml-dev)
ctsweep_pkg(SPNG spng libspng-dev)
ctsweep_pkg(DEFLATE libdeflate libdeflate-dev)
ctsweep_pkg(TURBOJPEG libturbojpeg libturbojpeg0-dev)

add_library(ctsweep_deps INTERFACE)
target_include_directories(ctsweep_deps INTERFACE ${HDF5_C_INCLUDE_DIRS} ${DNNL_INCLUDE_DIR})
target_compile_definitions(ctsweep_deps INTERFACE ${HDF5_C_DEFINITIONS})
target_link_libraries(ctsweep_deps INTERFACE
  MPI::MPI_C ${HDF5_C_LIBRARIES} ${DNNL_LIBRARY} OpenMP::OpenMP_C
  PkgConfig::FYAML PkgConfig::SPNG PkgConfig::DEFLATE PkgConfig::TURBOJPEG)
