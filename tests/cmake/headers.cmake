# Header tests: every public header under include/autoenc/ compiles on its
# own, included twice (include guards), as C99, C11 and C++11 with
# -Wall -Wextra -Wpedantic -Werror. One generated translation unit per header
# per mode (at configure time, from tests/headers/header_test.c.in); each is a
# compile-only ctest (label `headers`) that invokes the compiler directly, so
# the C-only main project needs no C++ language (AE_TEST_CXX comes from
# tests/CMakeLists.txt). New headers are picked up
# on the next configure (the glob is CONFIGURE_DEPENDS).
file(GLOB AE_PUBLIC_HEADERS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/include/autoenc/*.h)
set(AE_HEADER_TEST_DIR ${CMAKE_CURRENT_BINARY_DIR}/headers)
set(AE_HEADER_TEST_FLAGS -Wall -Wextra -Wpedantic -Werror)

set(_ae_header_modes c99 c11)
if(AE_TEST_CXX)
  list(APPEND _ae_header_modes cxx11)
else()
  message(WARNING "No C++ compiler found: the C++ header tests are not registered")
endif()

# mpi.h (libautoenc_mpi) needs MPI's headers: tested only when the component
# is built, with MPI's include path
set(_ae_mpi_includes "")
if(AE_BUILD_MPI)
  foreach(_dir ${MPI_C_INCLUDE_DIRS})
    list(APPEND _ae_mpi_includes -I${_dir})
  endforeach()
else()
  list(FILTER AE_PUBLIC_HEADERS EXCLUDE REGEX "/mpi\\.h$")
endif()

foreach(header ${AE_PUBLIC_HEADERS})
  get_filename_component(AE_HEADER_NAME ${header} NAME)     # e.g. model.h
  get_filename_component(_stem ${header} NAME_WE)           # e.g. model
  set(_extra "")
  if(_stem STREQUAL "mpi")
    set(_extra ${_ae_mpi_includes})
  endif()
  foreach(mode ${_ae_header_modes})
    if(mode STREQUAL "cxx11")
      set(_src ${AE_HEADER_TEST_DIR}/${_stem}_${mode}.cpp)
      set(_cmd ${AE_TEST_CXX} -std=c++11)
    else()
      set(_src ${AE_HEADER_TEST_DIR}/${_stem}_${mode}.c)
      set(_cmd ${CMAKE_C_COMPILER} -std=${mode})
    endif()
    configure_file(${PROJECT_SOURCE_DIR}/tests/headers/header_test.c.in ${_src} @ONLY)
    add_test(NAME header_${_stem}_${mode}
      COMMAND ${_cmd} ${AE_HEADER_TEST_FLAGS} -I${PROJECT_SOURCE_DIR}/include ${_extra}
              -c ${_src} -o ${AE_HEADER_TEST_DIR}/${_stem}_${mode}.o)
    set_tests_properties(header_${_stem}_${mode} PROPERTIES LABELS headers)
  endforeach()
endforeach()
