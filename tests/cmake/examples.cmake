# The example programs end to end on a tiny generated QuickDraw-like data set
# (tests never need the real data).
if(AE_BUILD_EXAMPLES AND UNIX)
  if(NOT TARGET make_tiny_quickdraw) # shared with tests/cmake/cli.cmake
    add_executable(make_tiny_quickdraw ${CMAKE_CURRENT_SOURCE_DIR}/examples/make_tiny_quickdraw.c)
    target_link_libraries(make_tiny_quickdraw PRIVATE ae_test_support)
    ae_target_warnings(make_tiny_quickdraw)
  endif()
  add_test(NAME examples_end_to_end
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/examples/run_examples.sh
            $<TARGET_FILE:make_tiny_quickdraw> $<TARGET_FILE_DIR:simple_autoencoder>
            ${CMAKE_CURRENT_BINARY_DIR}/examples_work)
  set_tests_properties(examples_end_to_end PROPERTIES TIMEOUT 600 LABELS examples)
endif()
