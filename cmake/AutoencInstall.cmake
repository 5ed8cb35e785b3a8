# Install rules: headers under include/autoenc/, libautoenc.so* and
# libautoenc.a, a CMake package (autoenc::autoenc, autoenc::autoenc_static)
# and autoenc.pc. Included from the top-level CMakeLists.txt.
include(CMakePackageConfigHelpers)

set(AE_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/autoenc CACHE STRING
  "Where autoencConfig.cmake is installed (relative to the prefix)")
set(AE_INSTALL_PKGCONFIGDIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig CACHE STRING
  "Where autoenc.pc is installed (relative to the prefix)")

install(TARGETS autoenc autoenc_static
  EXPORT autoencTargets
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime
          NAMELINK_COMPONENT development
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# mpi.h belongs to libautoenc_mpi: installed only with it
if(AE_BUILD_MPI)
  set(_ae_header_exclude "")
else()
  set(_ae_header_exclude PATTERN "mpi.h" EXCLUDE)
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/autoenc
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT development
  FILES_MATCHING PATTERN "*.h" ${_ae_header_exclude})

# ---- CMake package --------------------------------------------------------
install(EXPORT autoencTargets
  NAMESPACE autoenc::
  DESTINATION ${AE_INSTALL_CMAKEDIR} COMPONENT development)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/autoencConfig.cmake.in
  ${PROJECT_BINARY_DIR}/autoencConfig.cmake
  INSTALL_DESTINATION ${AE_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/autoencConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/autoencConfig.cmake ${PROJECT_BINARY_DIR}/autoencConfigVersion.cmake
  DESTINATION ${AE_INSTALL_CMAKEDIR} COMPONENT development)

# ---- pkg-config -----------------------------------------------------------
# The prefix is written at install time, so `cmake --install --prefix DIR`
# (as the consumer tests do) gets a .pc file that points into DIR. Stage 1
# (configure time) fills everything but the prefix; stage 2 (install time)
# fills the prefix.
find_package(PkgConfig QUIET)
set(AE_PC_REQUIRES_PRIVATE "")
set(AE_PC_LIBS_PRIVATE "-lm")
if(PKG_CONFIG_FOUND)
  pkg_check_modules(AE_PC_OPENBLAS QUIET openblas)
endif()
if(AE_PC_OPENBLAS_FOUND)
  set(AE_PC_REQUIRES_PRIVATE "openblas")
else()
  foreach(_lib ${BLAS_LIBRARIES})
    string(APPEND AE_PC_LIBS_PRIVATE " ${_lib}")
  endforeach()
endif()
if(CMAKE_THREAD_LIBS_INIT)
  string(APPEND AE_PC_LIBS_PRIVATE " ${CMAKE_THREAD_LIBS_INIT}")
endif()
foreach(_kind LIB INCLUDE)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_kind}DIR}")
    set(AE_PC_${_kind}DIR "${CMAKE_INSTALL_${_kind}DIR}")
  else()
    set(AE_PC_${_kind}DIR "\${prefix}/${CMAKE_INSTALL_${_kind}DIR}")
  endif()
endforeach()
set(AE_PC_PREFIX "@AE_PC_PREFIX@") # kept for stage 2
configure_file(${CMAKE_CURRENT_LIST_DIR}/autoenc.pc.in ${PROJECT_BINARY_DIR}/autoenc.pc.stage @ONLY)
install(CODE "
  set(AE_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  configure_file(\"${PROJECT_BINARY_DIR}/autoenc.pc.stage\" \"${PROJECT_BINARY_DIR}/autoenc.pc\" @ONLY)
" COMPONENT development)
install(FILES ${PROJECT_BINARY_DIR}/autoenc.pc
  DESTINATION ${AE_INSTALL_PKGCONFIGDIR} COMPONENT development)
