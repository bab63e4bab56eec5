# Every dependency comes from a Debian package and is found here.
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(fmt REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(ICU REQUIRED IMPORTED_TARGET icu-uc)
# cpp-httplib is optional: without it `moestream serve` is not built (the CLI says so).
# Debian builds it as a library whose class layout depends on its feature macros, which
# its pkg-config file carries.
pkg_check_modules(HTTPLIB QUIET IMPORTED_TARGET cpp-httplib)
if(HTTPLIB_FOUND)
  message(STATUS "moestream serve: on (cpp-httplib ${HTTPLIB_VERSION})")
else()
  message(STATUS "moestream serve not built: cpp-httplib not found (Debian: libcpp-httplib-dev)")
endif()
# liburing is optional: without it the `uring` storage tier is not built and `auto` reads
# with `pread`. MST_URING=OFF leaves it out even where it is installed (CI builds that
# way to check that everything else still builds and links).
set(MST_HAVE_URING OFF)
if(NOT MST_URING STREQUAL "OFF")
  pkg_check_modules(URING QUIET IMPORTED_TARGET liburing)
  if(URING_FOUND)
    set(MST_HAVE_URING ON)
  elseif(MST_URING STREQUAL "ON")
    message(FATAL_ERROR "MST_URING=ON but liburing was not found (Debian: liburing-dev)")
  else()
    message(STATUS "io_uring storage tier not built: liburing not found (Debian: liburing-dev)")
  endif()
endif()
