# ABI tests (label `abi`, beside symbols_exported and library_dependencies of
# tests/cmake/symbols.cmake). Policy: docs/versioning.md.
#
#   abi_baseline      cmake/abi_check.sh: abidw dump of the built libautoenc.so
#                     (public headers only) compared by abidiff with the
#                     committed baseline docs/abi/libautoenc.abi; fails on an
#                     ABI-incompatible change or on a new symbol in a released
#                     version node; additions pass. Skipped (77) without
#                     abigail-tools. abidw needs DWARF: in a Debug build the
#                     test reads the build's own library; otherwise (Release,
#                     sanitizers) the script builds a private Debug copy of the
#                     shared library in <build>/tests/abi/build (a few seconds,
#                     incremental afterwards).
#   abi_old_consumer  tests/abi/old_consumer.c, compiled against the 0.1.0
#                     header snapshot tests/abi/0.1.0/include (never against
#                     include/), linked to and run with the new libautoenc.so.
find_program(AE_SH_ABI NAMES sh)
set(AE_ABI_WORK ${CMAKE_CURRENT_BINARY_DIR}/abi)
file(MAKE_DIRECTORY ${AE_ABI_WORK})

if(AE_SH_ABI AND UNIX AND NOT APPLE)
  set(_ae_abi_lib "")
  if(CMAKE_BUILD_TYPE STREQUAL "Debug" AND NOT AE_SANITIZE)
    set(_ae_abi_lib $<TARGET_FILE:autoenc>)
  endif()
  add_test(NAME abi_baseline
    COMMAND ${AE_SH_ABI} ${PROJECT_SOURCE_DIR}/cmake/abi_check.sh
            --source ${PROJECT_SOURCE_DIR}
            --baseline ${PROJECT_SOURCE_DIR}/docs/abi/libautoenc.abi
            --work ${AE_ABI_WORK}
            --cmake ${CMAKE_COMMAND}
            --cc ${CMAKE_C_COMPILER}
            ${_ae_abi_lib})
  set_tests_properties(abi_baseline PROPERTIES
    LABELS abi
    SKIP_RETURN_CODE 77
    TIMEOUT 600)
else()
  message(STATUS "abi_baseline test not registered (needs sh and an ELF platform)")
endif()

# The old consumer. Linked by file name, not through the autoenc target, so
# that none of the target's usage requirements (the current include/) leak
# into its compile line.
add_executable(abi_old_consumer ${PROJECT_SOURCE_DIR}/tests/abi/old_consumer.c)
target_include_directories(abi_old_consumer PRIVATE ${PROJECT_SOURCE_DIR}/tests/abi/0.1.0/include)
target_link_libraries(abi_old_consumer PRIVATE $<TARGET_FILE:autoenc> m)
add_dependencies(abi_old_consumer autoenc)
set_target_properties(abi_old_consumer PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON
  C_EXTENSIONS OFF)
ae_target_warnings(abi_old_consumer)
add_test(NAME abi_old_consumer
  COMMAND abi_old_consumer ${AE_ABI_WORK}
  WORKING_DIRECTORY ${AE_ABI_WORK})
set_tests_properties(abi_old_consumer PROPERTIES
  LABELS abi
  ENVIRONMENT "OPENBLAS_NUM_THREADS=1;LD_LIBRARY_PATH=$<TARGET_FILE_DIR:autoenc>")
