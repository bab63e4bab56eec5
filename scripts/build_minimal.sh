#!/usr/bin/env bash
# The build a machine without the Vulkan headers and without liburing gets (and the
# first step towards macOS and the BSDs), in build-minimal/: -DMST_VULKAN=OFF
# -DMST_URING=OFF. Builds the library, the CLI and the storage tier tests; checks that
# libmoestream.so neither needs nor references Vulkan or liburing; runs the storage
# registry and tier tests (no uring tier, `auto` = pread) and the install-consumer test,
# which links examples/c against the installed shared library and generates with it.
# The other tests and the benchmarks have no code that depends on either library and
# are left out to keep .ci/run short; MST_MINIMAL_ALL=1 builds and runs everything.
#   MST_JOBS   build and test jobs (default: all cores)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${MST_JOBS:-$(nproc)}"
cmake -S . -B build-minimal -G Ninja -DCMAKE_BUILD_TYPE=Release -DMST_VULKAN=OFF -DMST_URING=OFF > /dev/null
if [ "${MST_MINIMAL_ALL:-0}" = 1 ]; then
  cmake --build build-minimal -j"$jobs"
else
  cmake --build build-minimal -j"$jobs" --target moestream moestream_cli test_storage_tiers
fi

lib=build-minimal/lib/libmoestream.so
if readelf -d "$lib" | grep -E 'NEEDED.*(vulkan|uring)'; then
  echo "build_minimal.sh: $lib needs Vulkan or liburing" >&2
  exit 1
fi
if nm -D --undefined-only "$lib" | grep -E ' (vk[A-Z]|io_uring_)'; then
  echo "build_minimal.sh: $lib references the Vulkan or io_uring symbols above" >&2
  exit 1
fi
if [ "${MST_MINIMAL_ALL:-0}" = 1 ]; then
  ctest --test-dir build-minimal --output-on-failure -j"$jobs"
else
  ctest --test-dir build-minimal --output-on-failure -j"$jobs" \
    -R '^(StorageRegistry\.|AllTiers/|InstallConsumer\.)'
fi
