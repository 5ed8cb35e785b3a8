# Index module: extra test registrations and settings, and the benchmark program.
# (Included by tests/CMakeLists.txt; test_index itself comes from the glob
# and carries the `unit` label.)

# The concurrency test alone (4 threads searching one const index), for a
# -DAE_SANITIZE=thread build: ctest -L threads
add_test(NAME test_index_threads COMMAND ${AE_TEST_LAUNCHER} $<TARGET_FILE:test_index> threads
  WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(test_index_threads PROPERTIES LABELS threads
  ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=stdout;OPENBLAS_NUM_THREADS=1")

# Benchmark (built, never run by ctest): see tests/bench/bench_index.py.
add_executable(bench_index ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_index.c)
target_link_libraries(bench_index PRIVATE autoenc_static m Threads::Threads)
ae_target_warnings(bench_index)

# The file-format test reads the committed version-1 files in tests/data.
target_compile_definitions(test_index_format PRIVATE
  AE_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/data")
