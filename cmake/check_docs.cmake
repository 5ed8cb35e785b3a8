# Completes doxygen's undocumented-member warnings for the `docs` target in
# strict mode (cmake/AutoencDocs.cmake runs it after doxygen):
#
#   cmake -DAE_DOXY_XML_DIR=<build>/docs/xml -P cmake/check_docs.cmake
#
# Doxygen (1.9.4) warns about undocumented functions, typedefs, enums and
# macros but not about an undocumented enumerator, so a new status code or
# key without a comment would slip through. This script reads doxygen's XML
# output for the public headers (*_8h.xml) and fails, listing them, when an
# enumerator, or any other member, has neither a brief nor a detailed
# description.
if(NOT DEFINED AE_DOXY_XML_DIR)
  message(FATAL_ERROR "check_docs.cmake: AE_DOXY_XML_DIR not set")
endif()
file(GLOB _xml_files ${AE_DOXY_XML_DIR}/*_8h.xml)
if(NOT _xml_files)
  message(FATAL_ERROR "check_docs.cmake: no header XML in ${AE_DOXY_XML_DIR} (GENERATE_XML off?)")
endif()

set(_undocumented "")
set(_n_members 0)
set(_n_values 0)
foreach(_f ${_xml_files})
  get_filename_component(_file_name ${_f} NAME)
  string(REGEX REPLACE "_8h\\.xml$" ".h" _header "${_file_name}")
  file(READ ${_f} _xml)
  # One list item per "<enumvalue " or "<memberdef " opening tag. Semicolons
  # in the text would split list items and square brackets would keep CMake
  # from splitting at all: replace them first.
  string(REPLACE ";" "," _xml "${_xml}")
  string(REPLACE "[" "(" _xml "${_xml}")
  string(REPLACE "]" ")" _xml "${_xml}")
  string(REPLACE "<enumvalue " ";<enumvalue " _xml "${_xml}")
  string(REPLACE "<memberdef " ";<memberdef " _xml "${_xml}")
  foreach(_chunk IN LISTS _xml)
    if(_chunk MATCHES "^<enumvalue ")
      set(_kind enumerator)
      math(EXPR _n_values "${_n_values} + 1")
    elseif(_chunk MATCHES "^<memberdef kind=\"([a-z]+)\"")
      set(_kind "${CMAKE_MATCH_1}")
      math(EXPR _n_members "${_n_members} + 1")
    else()
      continue()
    endif()
    if(_kind STREQUAL "enum")
      continue() # doxygen itself warns about an undocumented enum type
    endif()
    # Cut the chunk at the member's end tag, so it holds exactly this
    # member's name, brief and detailed text (the descriptions of an enum
    # type come after its enumvalues, those of the file after its members).
    string(FIND "${_chunk}" "</enumvalue>" _end)
    if(_end EQUAL -1)
      string(FIND "${_chunk}" "</memberdef>" _end)
    endif()
    if(NOT _end EQUAL -1)
      string(SUBSTRING "${_chunk}" 0 ${_end} _chunk)
    endif()
    string(REGEX MATCH "<name>([^<]*)</name>" _m "${_chunk}")
    set(_name "${CMAKE_MATCH_1}")
    string(REGEX MATCH "<briefdescription>(.*)</briefdescription>" _m "${_chunk}")
    set(_brief "${CMAKE_MATCH_1}")
    string(REGEX MATCH "<detaileddescription>(.*)</detaileddescription>" _m "${_chunk}")
    set(_detail "${CMAKE_MATCH_1}")
    if(NOT _brief MATCHES "<para>" AND NOT _detail MATCHES "<para>")
      list(APPEND _undocumented "${_header}: ${_kind} ${_name}")
    endif()
  endforeach()
endforeach()

if(_undocumented)
  list(REMOVE_DUPLICATES _undocumented)
  list(JOIN _undocumented "\n  " _items)
  message(FATAL_ERROR "undocumented public members (add a /** ... */ or ///< comment):\n  ${_items}")
endif()
list(LENGTH _xml_files _n_files)
message(STATUS "check_docs: ${_n_members} members and ${_n_values} enumerators of "
               "${_n_files} headers, all documented")
