# cmake/fetch_quickdraw.cmake, tested offline: a shell driver serves small
# generated .npy files from a local python3 http.server on 127.0.0.1 and runs
# the script against it. Skipped (not failed) without python3.
find_program(AE_PYTHON3 python3)
if(AE_PYTHON3 AND UNIX)
  add_test(NAME fetch_quickdraw
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/fetch/run_fetch_test.sh ${CMAKE_COMMAND}
            ${PROJECT_SOURCE_DIR}/cmake/fetch_quickdraw.cmake
            ${CMAKE_CURRENT_BINARY_DIR}/fetch_test_work)
  set_tests_properties(fetch_quickdraw PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
    ENVIRONMENT "PYTHON3=${AE_PYTHON3}")
else()
  message(STATUS "fetch_quickdraw test skipped: python3 not found")
endif()
