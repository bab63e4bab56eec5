# `cmake --install`: headers, libmoestream.so / .a, the CLI, a pkg-config file and a CMake
# package config so that consumers can use find_package(moestream) or pkg-config.
include(CMakePackageConfigHelpers)

install(FILES include/moestream.h include/moestream.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS moestream EXPORT moestreamTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# The static archive is installed as a plain file: its dependencies are listed in
# moestream.pc (Libs.private) for static consumers.
install(FILES $<TARGET_FILE:moestream_static> DESTINATION ${CMAKE_INSTALL_LIBDIR})

install(EXPORT moestreamTargets NAMESPACE moestream::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/moestream)
configure_package_config_file(cmake/moestreamConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/moestreamConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/moestream)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/moestreamConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/moestreamConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/moestreamConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/moestream)

# The optional dependencies a static consumer links: the Vulkan loader, liburing.
set(MST_PC_OPTIONAL "")
if(MST_HAVE_VULKAN)
  string(APPEND MST_PC_OPTIONAL "-lvulkan ")
endif()
if(MST_HAVE_URING)
  string(APPEND MST_PC_OPTIONAL "-luring ")
endif()
file(RELATIVE_PATH MST_PC_TO_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
configure_file(cmake/moestream.pc.in ${CMAKE_CURRENT_BINARY_DIR}/moestream.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/moestream.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
