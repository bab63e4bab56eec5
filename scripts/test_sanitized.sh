#!/usr/bin/env bash
# The test suite once more under AddressSanitizer + UndefinedBehaviorSanitizer
# (-DMST_SANITIZE=ON) in build-asan/: any invalid access, leak or undefined behaviour
# fails the test that caused it. The benchmarks are not built. A leak of a library that
# is not ours (OpenMP's runtime, the Vulkan driver) is suppressed in
# scripts/sanitizer/lsan.supp, one by one with the reason.
#   MST_JOBS   build and test jobs (default: all cores)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${MST_JOBS:-$(nproc)}"
supp="$PWD/scripts/sanitizer/lsan.supp"
# Set for the build too: gtest_discover_tests runs each test program while building.
export ASAN_OPTIONS="detect_leaks=1:check_initialization_order=1"
export LSAN_OPTIONS="suppressions=$supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# -O1: with both sanitizers a source took 3.5 times its plain -O3 compile time at -O3
# and 1.7 times at -O1 (lib/model/deepseek_v3.cpp), which keeps .ci/run within its time.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" \
  -DCMAKE_C_FLAGS_RELEASE="-O1 -DNDEBUG" -DMST_SANITIZE=ON -DMST_BUILD_BENCH=OFF > /dev/null
cmake --build build-asan -j"$jobs"
ctest --test-dir build-asan --output-on-failure -j"$jobs"
