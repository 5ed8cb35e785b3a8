# `docs` target: the API reference from include/autoenc/ (and docs/*.md),
# built with doxygen into <build>/docs/html. Only defined where doxygen is
# found; never part of `all`. AE_DOCS_STRICT=ON turns every warning,
# undocumented members included, into an error, and adds the XML output and
# cmake/check_docs.cmake, which also fails on an undocumented enumerator
# (doxygen 1.9 does not warn about those). tests/run.sh's `docs` pass builds
# the target in strict mode.
find_package(Doxygen QUIET)
if(DOXYGEN_FOUND)
  set(_ae_docs_check_cmd "")
  if(AE_DOCS_STRICT)
    set(AE_DOXY_WARN_AS_ERROR FAIL_ON_WARNINGS)
    set(AE_DOXY_GENERATE_XML YES)
    set(_ae_docs_check_cmd COMMAND ${CMAKE_COMMAND} -DAE_DOXY_XML_DIR=${PROJECT_BINARY_DIR}/docs/xml
        -P ${PROJECT_SOURCE_DIR}/cmake/check_docs.cmake)
  else()
    set(AE_DOXY_WARN_AS_ERROR NO)
    set(AE_DOXY_GENERATE_XML NO)
  endif()
  set(AE_DOXY_OUTPUT_DIR ${PROJECT_BINARY_DIR}/docs)
  configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${AE_DOXY_OUTPUT_DIR}/Doxyfile @ONLY)
  file(GLOB _ae_doc_inputs CONFIGURE_DEPENDS
    ${PROJECT_SOURCE_DIR}/include/autoenc/*.h ${PROJECT_SOURCE_DIR}/docs/*.md)
  add_custom_command(OUTPUT ${AE_DOXY_OUTPUT_DIR}/html/index.html
    COMMAND ${DOXYGEN_EXECUTABLE} ${AE_DOXY_OUTPUT_DIR}/Doxyfile
    ${_ae_docs_check_cmd}
    DEPENDS ${_ae_doc_inputs} ${AE_DOXY_OUTPUT_DIR}/Doxyfile
            ${PROJECT_SOURCE_DIR}/cmake/check_docs.cmake
    WORKING_DIRECTORY ${AE_DOXY_OUTPUT_DIR}
    COMMENT "API reference (doxygen) -> ${AE_DOXY_OUTPUT_DIR}/html/index.html"
    VERBATIM)
  add_custom_target(docs DEPENDS ${AE_DOXY_OUTPUT_DIR}/html/index.html)
else()
  message(STATUS "doxygen not found: no `docs` target")
endif()
