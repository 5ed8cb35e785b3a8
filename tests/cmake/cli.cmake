# The autoenc command end to end (label `cli`): tests/cli/cli_test.sh drives
# the built command on data the tests generate (make_tiny_quickdraw writes
# three categories of 28x28 drawings; cli_helper writes PNG and float32
# inputs and computes the library's own answer to a search). One ctest test
# per section; cli_setup trains and indexes the model the others share.
if(AE_BUILD_CLI AND UNIX)
  if(NOT TARGET make_tiny_quickdraw) # shared with tests/cmake/examples.cmake
    add_executable(make_tiny_quickdraw ${CMAKE_CURRENT_SOURCE_DIR}/examples/make_tiny_quickdraw.c)
    target_link_libraries(make_tiny_quickdraw PRIVATE ae_test_support)
    ae_target_warnings(make_tiny_quickdraw)
  endif()
  find_package(PNG REQUIRED)
  add_executable(cli_helper ${CMAKE_CURRENT_SOURCE_DIR}/cli/cli_helper.c)
  target_link_libraries(cli_helper PRIVATE autoenc PNG::PNG m)
  ae_target_warnings(cli_helper)

  set(_ae_cli_sections setup commands errors roundtrip png progress manpage installed)
  foreach(section ${_ae_cli_sections})
    add_test(NAME cli_${section}
      COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/cli/cli_test.sh ${section}
              $<TARGET_FILE:autoenc_cli> $<TARGET_FILE:cli_helper>
              $<TARGET_FILE:make_tiny_quickdraw> ${CMAKE_CURRENT_BINARY_DIR}/cli_work
              ${PROJECT_SOURCE_DIR})
    set_tests_properties(cli_${section} PROPERTIES
      LABELS cli
      TIMEOUT 300
      SKIP_RETURN_CODE 77
      ENVIRONMENT "OPENBLAS_NUM_THREADS=1;CMAKE=${CMAKE_COMMAND};AE_BUILD_DIR=${PROJECT_BINARY_DIR}")
    if(section STREQUAL "setup")
      set_tests_properties(cli_setup PROPERTIES FIXTURES_SETUP autoenc_cli_data)
    else()
      set_tests_properties(cli_${section} PROPERTIES FIXTURES_REQUIRED autoenc_cli_data)
    endif()
  endforeach()
endif()
