# Convention test (label `abi`): the public headers follow the naming and
# argument rules of docs/conventions.md (tests/conventions/check_conventions.cmake).
add_test(NAME conventions_headers
  COMMAND ${CMAKE_COMMAND} -DAE_HEADER_DIR=${PROJECT_SOURCE_DIR}/include/autoenc
    -P ${PROJECT_SOURCE_DIR}/tests/conventions/check_conventions.cmake)
set_tests_properties(conventions_headers PROPERTIES LABELS abi)
