# Support code shared by the example programs (argument parsing, the
# examples' pictures, CSV, the training report, timer): a static helper
# library, not part of libautoenc. The library calls of each tutorial section
# are in the examples' main functions. Example programs link
# ae_example_support, which brings the PNG image grids (ae_png_grid, in
# lib/cli/, shared with the autoenc command), the autoenc library and the
# header folder examples/support.
add_library(ae_example_support STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/support/args.c
  ${CMAKE_CURRENT_SOURCE_DIR}/support/csv.c
  ${CMAKE_CURRENT_SOURCE_DIR}/support/pca.c
  ${CMAKE_CURRENT_SOURCE_DIR}/support/pictures.c
  ${CMAKE_CURRENT_SOURCE_DIR}/support/report.c
  ${CMAKE_CURRENT_SOURCE_DIR}/support/util.c)
target_include_directories(ae_example_support PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/support)
# pca.c calls CBLAS and LAPACK (ssyevd) directly: OpenBLAS holds both.
target_include_directories(ae_example_support PRIVATE ${AE_CBLAS_INCLUDE_DIR})
target_link_libraries(ae_example_support PUBLIC autoenc ae_png_grid ${BLAS_LIBRARIES} m)
ae_target_warnings(ae_example_support)

# A self-test of the support code (options, font, PNG, CSV), run by ctest.
if(AE_BUILD_TESTS)
  add_executable(ae_example_support_selftest ${CMAKE_CURRENT_SOURCE_DIR}/support/selftest.c)
  target_link_libraries(ae_example_support_selftest PRIVATE ae_example_support)
  ae_target_warnings(ae_example_support_selftest)
  add_test(NAME example_support COMMAND ae_example_support_selftest
    ${CMAKE_CURRENT_BINARY_DIR}/support_selftest_out)
endif()
