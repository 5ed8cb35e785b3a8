# Reliability tests (docs/reliability.md). test_alloc_fail, test_crash_save
# and test_threads come from the glob in tests/CMakeLists.txt (label unit, so
# the asan and valgrind passes run them); this fragment adds labels, timeouts
# and the ThreadSanitizer registration.

# Kill-during-save: ~30-60 s of real I/O (fsync) in a normal build; the
# asan and valgrind passes shrink it through AE_TEST_SMALL=1.
set_tests_properties(test_crash_save PROPERTIES LABELS "unit;reliability" RUN_SERIAL ON)
set_tests_properties(test_alloc_fail PROPERTIES LABELS "unit;reliability")
# Kill-during-training and exact resume: a few seconds of training per trial.
set_tests_properties(test_crash_resume PROPERTIES LABELS "unit;reliability" RUN_SERIAL ON)

# The training thread pool (lib/parallel.c) and threaded predict/encode, for
# a -DAE_SANITIZE=thread build: ctest -L threads (tests/run.sh tsan).
# OpenBLAS is not TSan-instrumented: tests/tsan.supp silences reports whose
# stack lies in libopenblas only.
add_test(NAME test_threads_tsan COMMAND ${AE_TEST_LAUNCHER} $<TARGET_FILE:test_threads>
  WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
# OPENBLAS_NUM_THREADS=2: OpenBLAS' own threads run beside the library's.
set_tests_properties(test_threads_tsan PROPERTIES LABELS threads
  ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=stdout;OPENBLAS_NUM_THREADS=2")
