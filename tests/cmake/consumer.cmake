# Installed-consumer tests (label `consumer`). At test time the just-built
# tree is installed into a fresh prefix inside the build dir, then programs
# that know only that prefix are built and run (tests/consumer/consumer.sh):
#   consumer_install         cmake --install <build> --prefix <prefix>  (fixture)
#   consumer_pkgconfig       C, `pkg-config --cflags --libs autoenc`, libautoenc.so
#   consumer_pkgconfig_static C, `pkg-config --static ...`, libautoenc.a
#   consumer_cmake           separate CMake project: find_package(autoenc),
#                            C++ program on autoenc::autoenc and C program on
#                            autoenc::autoenc_static
find_program(AE_SH NAMES sh REQUIRED)
set(AE_CONSUMER_DIR ${CMAKE_CURRENT_BINARY_DIR}/consumer)
set(AE_CONSUMER_PREFIX ${AE_CONSUMER_DIR}/prefix)
set(AE_CONSUMER_SCRIPT ${PROJECT_SOURCE_DIR}/tests/consumer/consumer.sh)
set(AE_CONSUMER_FLAGS "")
if(AE_SANITIZE)
  set(AE_CONSUMER_FLAGS -fsanitize=${AE_SANITIZE})
endif()

add_test(NAME consumer_install
  COMMAND ${AE_SH} ${AE_CONSUMER_SCRIPT} install ${PROJECT_BINARY_DIR} ${AE_CONSUMER_PREFIX})
set_tests_properties(consumer_install PROPERTIES FIXTURES_SETUP autoenc_prefix)

add_test(NAME consumer_pkgconfig
  COMMAND ${AE_SH} ${AE_CONSUMER_SCRIPT} pkgconfig ${AE_CONSUMER_PREFIX}
          ${AE_CONSUMER_DIR}/pkgconfig ${CMAKE_C_COMPILER} ${AE_CONSUMER_FLAGS})
add_test(NAME consumer_pkgconfig_static
  COMMAND ${AE_SH} ${AE_CONSUMER_SCRIPT} static ${AE_CONSUMER_PREFIX}
          ${AE_CONSUMER_DIR}/static ${CMAKE_C_COMPILER} ${AE_CONSUMER_FLAGS})
set(_ae_consumer_tests consumer_install consumer_pkgconfig consumer_pkgconfig_static)
if(AE_BUILD_MPI)
  add_test(NAME consumer_pkgconfig_mpi
    COMMAND ${AE_SH} ${AE_CONSUMER_SCRIPT} mpi ${AE_CONSUMER_PREFIX}
            ${AE_CONSUMER_DIR}/mpi ${CMAKE_C_COMPILER} ${AE_MPIEXEC} ${AE_CONSUMER_FLAGS})
  list(APPEND _ae_consumer_tests consumer_pkgconfig_mpi)
endif()

if(AE_TEST_CXX)
  add_test(NAME consumer_cmake
    COMMAND ${AE_SH} ${AE_CONSUMER_SCRIPT} cmake ${AE_CONSUMER_PREFIX}
            ${AE_CONSUMER_DIR}/cmake-build ${CMAKE_C_COMPILER} ${AE_TEST_CXX}
            ${CMAKE_GENERATOR} ${PROJECT_VERSION} ${AE_CONSUMER_FLAGS})
  list(APPEND _ae_consumer_tests consumer_cmake)
else()
  message(WARNING "No C++ compiler found: consumer_cmake (C++ consumer) is not registered")
endif()

set_tests_properties(${_ae_consumer_tests} PROPERTIES
  LABELS consumer
  ENVIRONMENT "OPENBLAS_NUM_THREADS=1;CMAKE=${CMAKE_COMMAND}")
set_tests_properties(consumer_pkgconfig consumer_pkgconfig_static PROPERTIES
  FIXTURES_REQUIRED autoenc_prefix)
if(TEST consumer_cmake)
  set_tests_properties(consumer_cmake PROPERTIES FIXTURES_REQUIRED autoenc_prefix)
endif()
