# Checks the exported symbols of libautoenc.so (run by ctest as
# cmake -DAE_NM=... -DAE_LIBRARY=... -DAE_HEADER_DIR=... -P check_symbols.cmake).
# Fails, listing the offenders, when a defined dynamic symbol
#  - does not start with ae_ (version-node names like AUTOENC_0.1 excepted),
#  - starts with ae__ (internal helper leaking out),
#  - has no version (the version script was not applied),
#  - is not named in any public header under AE_HEADER_DIR.
if(NOT DEFINED AE_VERSION_NODE_REGEX)
  set(AE_VERSION_NODE_REGEX "^AUTOENC_[0-9]+[.][0-9]+$") # lib/autoenc.map node names
endif()
foreach(var AE_NM AE_LIBRARY AE_HEADER_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_symbols.cmake: ${var} not set")
  endif()
endforeach()

execute_process(COMMAND ${AE_NM} -D --defined-only ${AE_LIBRARY}
  OUTPUT_VARIABLE nm_out ERROR_VARIABLE nm_err RESULT_VARIABLE nm_rc)
if(NOT nm_rc EQUAL 0)
  message(FATAL_ERROR "${AE_NM} -D --defined-only ${AE_LIBRARY} failed (${nm_rc}):\n${nm_err}")
endif()

# Every public header's text, comments stripped, for the "declared" check.
file(GLOB headers ${AE_HEADER_DIR}/*.h)
set(header_text "")
foreach(h ${headers})
  file(READ ${h} text)
  string(REGEX REPLACE "/\\*([^*]|\\*+[^*/])*\\*+/" " " text "${text}")
  string(REGEX REPLACE "//[^\n]*" " " text "${text}")
  string(APPEND header_text "\n${text}")
endforeach()

string(REPLACE "\n" ";" lines "${nm_out}")
set(exported "")
set(bad_prefix "")
set(internal "")
set(unversioned "")
set(undeclared "")
foreach(line ${lines})
  # "<address> <type> <name>[@@VERSION]"; absolute symbols may lack an address.
  if(NOT line MATCHES "^([0-9a-fA-F]+ +)?([A-Za-z]) +([^ @]+)(@@?([^ ]+))?$")
    continue()
  endif()
  set(type "${CMAKE_MATCH_2}")
  set(name "${CMAKE_MATCH_3}")
  set(version "${CMAKE_MATCH_5}")
  if(type STREQUAL "A" AND name MATCHES "${AE_VERSION_NODE_REGEX}")
    continue() # the version node itself
  endif()
  list(APPEND exported "${name}")
  if(name MATCHES "^ae__")
    list(APPEND internal "${name}")
  elseif(NOT name MATCHES "^ae_")
    list(APPEND bad_prefix "${name}")
  endif()
  if(NOT version MATCHES "${AE_VERSION_NODE_REGEX}")
    list(APPEND unversioned "${name} (version: ${version})")
  endif()
  if(NOT header_text MATCHES "(^|[^A-Za-z0-9_])${name}([^A-Za-z0-9_]|$)")
    list(APPEND undeclared "${name}")
  endif()
endforeach()

list(LENGTH exported n)
if(n EQUAL 0)
  message(FATAL_ERROR "no exported symbols found in ${AE_LIBRARY}:\n${nm_out}")
endif()

set(report "")
foreach(kind bad_prefix internal unversioned undeclared)
  if(${kind})
    list(JOIN ${kind} "\n  " items)
    string(APPEND report "\n${kind}:\n  ${items}")
  endif()
endforeach()
if(report)
  message(FATAL_ERROR
    "${AE_LIBRARY} exports symbols it should not"
    " (bad_prefix: not ae_*; internal: ae__*; unversioned: not in a node of"
    " lib/autoenc.map; undeclared: named in no public header):${report}")
endif()
message(STATUS "${n} exported symbols, all ae_*, versioned and declared in public headers")
