#!/usr/bin/env bash
# The build a machine without the Vulkan headers and without liburing gets (and the
# first step towards macOS and the BSDs), in build-minimal/: -DMST_VULKAN=OFF
# -DMST_URING=OFF, everything else built and tested. Then checks that libmoestream.so
# neither needs nor references Vulkan or liburing, and that examples/c links against it
# and generates (storage "auto", which must then be pread).
#   MST_JOBS   build and test jobs (default: all cores)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${MST_JOBS:-$(nproc)}"
cmake -S . -B build-minimal -G Ninja -DCMAKE_BUILD_TYPE=Release -DMST_VULKAN=OFF -DMST_URING=OFF > /dev/null
cmake --build build-minimal -j"$jobs"

lib=build-minimal/lib/libmoestream.so
if readelf -d "$lib" | grep -E 'NEEDED.*(vulkan|uring)'; then
  echo "build_minimal.sh: $lib needs Vulkan or liburing" >&2
  exit 1
fi
if nm -D --undefined-only "$lib" | grep -E ' (vk[A-Z]|io_uring_)'; then
  echo "build_minimal.sh: $lib references the Vulkan or io_uring symbols above" >&2
  exit 1
fi
ctest --test-dir build-minimal --output-on-failure -j"$jobs"
