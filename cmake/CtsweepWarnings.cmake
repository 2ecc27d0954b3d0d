# Warnings, optimisation and sanitizer flags applied to every ctsweep target.
function(ctsweep_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wno-unused-parameter
    $<$<CONFIG:Release>:-O3>)
  if(CTSWEEP_NATIVE)
    target_compile_options(${target} PRIVATE -march=native)
  endif()
  if(CTSWEEP_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${CTSWEEP_SANITIZE} -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=${CTSWEEP_SANITIZE})
  endif()
endfunction()
