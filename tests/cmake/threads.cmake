# The training and model suites under the `threads` label too, so the tsan
# pass (tests/run.sh) covers the batch-parallel training step, the threaded
# forward/backward passes, the row-parallel predict and the background batch
# reader of data sources.
foreach(suite test_train test_model test_source)
  add_test(NAME ${suite}_threads COMMAND ${AE_TEST_LAUNCHER} $<TARGET_FILE:${suite}>)
  set_tests_properties(${suite}_threads PROPERTIES LABELS threads
    ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=stdout;OPENBLAS_NUM_THREADS=1")
endforeach()
