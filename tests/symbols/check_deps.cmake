# Checks the dynamic section of libautoenc.so (run by ctest as
# cmake -DAE_READELF=... -DAE_LIBRARY=... -DAE_SONAME=... -P check_deps.cmake):
# the SONAME is AE_SONAME and every DT_NEEDED entry is an allowed dependency.
foreach(var AE_READELF AE_LIBRARY AE_SONAME)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_deps.cmake: ${var} not set")
  endif()
endforeach()

execute_process(COMMAND ${AE_READELF} -d ${AE_LIBRARY}
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${AE_READELF} -d ${AE_LIBRARY} failed (${rc}):\n${err}")
endif()

# OpenBLAS (or a generic CBLAS/BLAS alternative), libm, libc, the loader
# (needed for __tls_get_addr by _Thread_local data), libpthread (old glibc).
set(allowed "^(libopenblas[a-z0-9_]*|libcblas|libblas|libm|libc|libpthread|ld-linux[-a-z0-9_.]*)\\.so(\\.[0-9]+)*$")
set(allowed_sanitizers "^(libasan|libubsan|liblsan|libtsan|libstdc\\+\\+|libgcc_s|libdl|librt)\\.so(\\.[0-9]+)*$")

string(REPLACE "\n" ";" lines "${out}")
set(soname "")
set(needed "")
set(offenders "")
foreach(line ${lines})
  if(line MATCHES "\\(SONAME\\).*\\[(.*)\\]")
    set(soname "${CMAKE_MATCH_1}")
  elseif(line MATCHES "\\(NEEDED\\).*\\[(.*)\\]")
    set(lib "${CMAKE_MATCH_1}")
    list(APPEND needed "${lib}")
    if(NOT lib MATCHES "${allowed}" AND NOT (AE_ALLOW_SANITIZERS AND lib MATCHES "${allowed_sanitizers}"))
      list(APPEND offenders "${lib}")
    endif()
  endif()
endforeach()

if(NOT soname STREQUAL AE_SONAME)
  message(FATAL_ERROR "${AE_LIBRARY}: SONAME is '${soname}', expected '${AE_SONAME}'")
endif()
if(offenders)
  list(JOIN offenders "\n  " items)
  message(FATAL_ERROR "${AE_LIBRARY} needs libraries outside BLAS/libm/libc/pthread:\n  ${items}")
endif()
list(JOIN needed ", " needed_text)
message(STATUS "SONAME ${soname}; NEEDED: ${needed_text}")
