# Symbol test (label `abi`): the dynamic symbol table of the built
# libautoenc.so (nm -D --defined-only) holds only public API: every symbol
# starts with ae_, none with the internal ae__, each is bound to a version
# node of lib/autoenc.map, and each name appears in a public header.
# The check itself is tests/symbols/check_symbols.cmake.
find_program(AE_NM NAMES ${CMAKE_NM} nm DOC "nm used by the symbol test")
if(AE_NM)
  add_test(NAME symbols_exported
    COMMAND ${CMAKE_COMMAND}
      -DAE_NM=${AE_NM}
      -DAE_LIBRARY=$<TARGET_FILE:autoenc>
      -DAE_HEADER_DIR=${PROJECT_SOURCE_DIR}/include/autoenc
      -P ${PROJECT_SOURCE_DIR}/tests/symbols/check_symbols.cmake)
  set_tests_properties(symbols_exported PROPERTIES LABELS abi)
else()
  message(WARNING "nm not found: symbols_exported test not registered")
endif()

# Dependency test (label `abi`): libautoenc.so has SONAME libautoenc.so.0 and
# needs nothing but BLAS (OpenBLAS), libm, libc, the dynamic loader (TLS) and
# libpthread; a sanitizer build may add its runtimes. readelf -d is parsed by
# tests/symbols/check_deps.cmake.
find_program(AE_READELF NAMES ${CMAKE_READELF} readelf DOC "readelf used by the dependency test")
if(AE_READELF)
  if(AE_SANITIZE)
    set(_ae_allow_sanitizers 1)
  else()
    set(_ae_allow_sanitizers 0)
  endif()
  add_test(NAME library_dependencies
    COMMAND ${CMAKE_COMMAND}
      -DAE_READELF=${AE_READELF}
      -DAE_LIBRARY=$<TARGET_FILE:autoenc>
      -DAE_SONAME=libautoenc.so.${PROJECT_VERSION_MAJOR}
      -DAE_ALLOW_SANITIZERS=${_ae_allow_sanitizers}
      -P ${PROJECT_SOURCE_DIR}/tests/symbols/check_deps.cmake)
  set_tests_properties(library_dependencies PROPERTIES LABELS abi)
else()
  message(WARNING "readelf not found: library_dependencies test not registered")
endif()
