# Downloads the Quick, Draw! numpy_bitmap files the examples use.
#
#   cmake -DDEST=dir [-DBASE_URL=url] [-DCATEGORIES="cat;smiley face"]
#         [-DHASHES="cat=SHA256=<hex>;smiley_face=SHA256=<hex>"] [-DHASHES_FILE=SHA256SUMS]
#         [-DFORCE=ON] [-DTIMEOUT=seconds] -P cmake/fetch_quickdraw.cmake
#
# DEST          folder to fill (created if missing). Files are named like the
#               category with spaces as underscores ("smiley_face.npy"), which
#               is what ae_dataset_load expects.
# BASE_URL      default: Google's public bucket
#               https://storage.googleapis.com/quickdraw_dataset/full/numpy_bitmap
#               The file of a category is <BASE_URL>/<category>.npy with spaces
#               URL-encoded as %20 ("smiley%20face.npy").
# CATEGORIES    default: the ten of the tutorial. A list (';' or ',' separated);
#               spaces or underscores in names both work.
# HASHES        expected hashes, entries "<category>=<ALGO>=<hex>" (ALGO is one
#               of cmake's file() hashes: MD5, SHA1, SHA256, SHA512, ...).
# HASHES_FILE   a file in `sha256sum` output format ("<hex>  <file name>"),
#               e.g. written by `sha256sum *.npy > SHA256SUMS` after a first
#               download, to check later downloads against.
#               Google publishes no checksums for these files and they are not
#               known here, so by default no hash is checked: the download's
#               status and the .npy magic bytes are.
# FORCE         download again even when the file already exists.
# TIMEOUT       give up on a download when no data arrived for this many
#               seconds (default 120).
#
# Every file is downloaded to a hidden temporary name in DEST (".<name>.part",
# ignored by the loader), checked, and only then renamed to its final name,
# so an interrupted or failed download never leaves a partial .npy behind.
# Note: Google's full files hold 100,000+ drawings each (roughly 80 to 200 MB
# per category); the examples read the first --per-category N (default
# 10,000) of each.
cmake_minimum_required(VERSION 3.16)

if(NOT DEFINED DEST OR DEST STREQUAL "")
  message(FATAL_ERROR "usage: cmake -DDEST=dir [-DBASE_URL=url] [-DCATEGORIES=a;b] "
                      "[-DHASHES=name=SHA256=hex;...] [-DHASHES_FILE=file] -P fetch_quickdraw.cmake")
endif()
if(NOT DEFINED BASE_URL OR BASE_URL STREQUAL "")
  set(BASE_URL "https://storage.googleapis.com/quickdraw_dataset/full/numpy_bitmap")
endif()
string(REGEX REPLACE "/+$" "" BASE_URL "${BASE_URL}")
if(NOT DEFINED CATEGORIES OR CATEGORIES STREQUAL "")
  set(CATEGORIES "airplane;book;cat;circle;clock;crown;dog;rainbow;smiley face;star")
endif()
string(REPLACE "," ";" CATEGORIES "${CATEGORIES}")
if(NOT DEFINED TIMEOUT OR TIMEOUT STREQUAL "")
  set(TIMEOUT 120)
endif()

# File name stem of a category: spaces as underscores, no ".npy".
function(_qd_stem out name)
  string(STRIP "${name}" name)
  string(REGEX REPLACE "\\.npy$" "" name "${name}")
  string(REPLACE " " "_" name "${name}")
  set(${out} "${name}" PARENT_SCOPE)
endfunction()

# ---- expected hashes: _QD_HASH_<stem> = "ALGO=hex" -----------------------------
foreach(entry IN LISTS HASHES)
  if(NOT entry MATCHES "^([^=]+)=([A-Za-z0-9_]+)=([0-9a-fA-F]+)$")
    message(FATAL_ERROR "HASHES entry '${entry}' is not <category>=<ALGO>=<hex>")
  endif()
  _qd_stem(stem "${CMAKE_MATCH_1}")
  string(TOUPPER "${CMAKE_MATCH_2}" algo)
  string(TOLOWER "${CMAKE_MATCH_3}" hex)
  set(_QD_HASH_${stem} "${algo}=${hex}")
endforeach()
if(DEFINED HASHES_FILE AND NOT HASHES_FILE STREQUAL "")
  if(NOT EXISTS "${HASHES_FILE}")
    message(FATAL_ERROR "HASHES_FILE '${HASHES_FILE}' does not exist")
  endif()
  file(STRINGS "${HASHES_FILE}" _lines)
  foreach(line IN LISTS _lines)
    if(line MATCHES "^[ \t]*$" OR line MATCHES "^#")
      continue()
    endif()
    if(NOT line MATCHES "^([0-9a-fA-F]+)[ \t]+\\*?(.+)$")
      message(FATAL_ERROR "${HASHES_FILE}: line '${line}' is not '<sha256>  <file>'")
    endif()
    string(LENGTH "${CMAKE_MATCH_1}" _len)
    if(NOT _len EQUAL 64)
      message(FATAL_ERROR "${HASHES_FILE}: '${CMAKE_MATCH_1}' is not a SHA-256 (64 hex digits)")
    endif()
    string(TOLOWER "${CMAKE_MATCH_1}" hex)
    get_filename_component(_fname "${CMAKE_MATCH_2}" NAME)
    _qd_stem(stem "${_fname}")
    set(_QD_HASH_${stem} "SHA256=${hex}")
  endforeach()
endif()

# Sets ${out} to TRUE when file f has hash "ALGO=hex" (else FALSE) and ${actual}
# to its hash.
function(_qd_check_hash out actual f expected)
  string(REGEX MATCH "^[^=]+" algo "${expected}")
  string(REGEX REPLACE "^[^=]+=" "" want "${expected}")
  file(${algo} "${f}" got)
  string(TOLOWER "${got}" got)
  set(${actual} "${got}" PARENT_SCOPE)
  if(got STREQUAL want)
    set(${out} TRUE PARENT_SCOPE)
  else()
    set(${out} FALSE PARENT_SCOPE)
  endif()
endfunction()

file(MAKE_DIRECTORY "${DEST}")
set(_failed "")
set(_done 0)
foreach(cat IN LISTS CATEGORIES)
  _qd_stem(stem "${cat}")
  if(stem STREQUAL "")
    continue()
  endif()
  string(REPLACE "_" " " display "${stem}")
  string(REPLACE " " "%20" url_name "${display}")
  set(url "${BASE_URL}/${url_name}.npy")
  set(final "${DEST}/${stem}.npy")
  set(tmp "${DEST}/.${stem}.npy.part")
  set(expected "${_QD_HASH_${stem}}")

  if(EXISTS "${final}" AND NOT FORCE)
    if(expected)
      _qd_check_hash(ok got "${final}" "${expected}")
      if(ok)
        message(STATUS "${stem}.npy: present, hash matches")
        math(EXPR _done "${_done} + 1")
        continue()
      endif()
      message(STATUS "${stem}.npy: present but its hash differs: downloading again")
    else()
      message(STATUS "${stem}.npy: present, kept (no hash known; -DFORCE=ON downloads again)")
      math(EXPR _done "${_done} + 1")
      continue()
    endif()
  endif()

  message(STATUS "downloading ${display}: ${url}")
  file(REMOVE "${tmp}")
  file(DOWNLOAD "${url}" "${tmp}" SHOW_PROGRESS STATUS st INACTIVITY_TIMEOUT ${TIMEOUT}
       TLS_VERIFY ON)
  list(GET st 0 code)
  list(GET st 1 why)
  if(NOT code EQUAL 0)
    file(REMOVE "${tmp}")
    message(WARNING "${display}: download failed (${code}: ${why}) from ${url}")
    list(APPEND _failed "${display}")
    continue()
  endif()
  file(READ "${tmp}" magic LIMIT 6 HEX)
  if(NOT magic STREQUAL "934e554d5059")
    file(REMOVE "${tmp}")
    message(WARNING "${display}: ${url} did not return a .npy file (magic '${magic}')")
    list(APPEND _failed "${display}")
    continue()
  endif()
  if(expected)
    _qd_check_hash(ok got "${tmp}" "${expected}")
    if(NOT ok)
      file(REMOVE "${tmp}")
      message(WARNING "${display}: hash mismatch: expected ${expected}, got ${got}")
      list(APPEND _failed "${display}")
      continue()
    endif()
  endif()
  file(RENAME "${tmp}" "${final}")
  file(SIZE "${final}" size)
  if(expected)
    message(STATUS "${stem}.npy: ${size} bytes, ${expected} verified")
  else()
    message(STATUS "${stem}.npy: ${size} bytes")
  endif()
  math(EXPR _done "${_done} + 1")
endforeach()

if(_failed)
  message(FATAL_ERROR "fetch_quickdraw: ${_done} file(s) in ${DEST}; failed: ${_failed}")
endif()
message(STATUS "fetch_quickdraw: ${_done} file(s) in ${DEST}")
