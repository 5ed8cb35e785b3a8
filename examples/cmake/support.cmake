# Support code shared by the example programs (argument parsing, CSV,
# timer): a static helper library, not part of libautoenc. Example programs
# link ae_example_support, which brings the PNG image grids (ae_png_grid, in
# lib/cli/, shared with the autoenc command), the autoenc library and the
# header folder examples/support.
add_library(ae_example_support STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/support/args.c
  ${CMAKE_CURRENT_SOURCE_DIR}/support/csv.c
  ${CMAKE_CURRENT_SOURCE_DIR}/support/util.c
  ${CMAKE_CURRENT_SOURCE_DIR}/support/train_example.c)
target_include_directories(ae_example_support PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/support)
target_link_libraries(ae_example_support PUBLIC autoenc ae_png_grid m)
ae_target_warnings(ae_example_support)

# A self-test of the support code (options, font, PNG, CSV), run by ctest.
if(AE_BUILD_TESTS)
  add_executable(ae_example_support_selftest ${CMAKE_CURRENT_SOURCE_DIR}/support/selftest.c)
  target_link_libraries(ae_example_support_selftest PRIVATE ae_example_support)
  ae_target_warnings(ae_example_support_selftest)
  add_test(NAME example_support COMMAND ae_example_support_selftest
    ${CMAKE_CURRENT_BINARY_DIR}/support_selftest_out)
endif()
