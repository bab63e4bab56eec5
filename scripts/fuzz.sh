#!/usr/bin/env bash
# Build the libFuzzer targets (fuzz/) with clang, AddressSanitizer and UBSan into
# build-fuzz/, write their seed corpora from tests/data, and run each for a bounded time.
# When the regular build's CLI exists (build/bin/moestream, as after scripts/test.sh's
# build), reference models converted by it join the packed seeds.
#   MST_FUZZ_SECONDS   seconds per target (default 20)
#   MST_FUZZ_JOBS      build jobs (default: all cores)
# A crash leaves its input in build-fuzz/artifacts/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${MST_FUZZ_SECONDS:-20}"
jobs="${MST_FUZZ_JOBS:-$(nproc)}"
if ! command -v clang++ > /dev/null; then
  echo "fuzz.sh: clang++ is not installed (apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMST_BUILD_FUZZERS=ON \
  -DMST_BUILD_TESTS=OFF -DMST_BUILD_EXAMPLES=OFF -DMST_BUILD_BENCH=OFF > /dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_safetensors_header fuzz_model_config fuzz_tokenizer fuzz_tiktoken fuzz_packed fuzz_jinja \
  fuzz_gguf mst_fuzz_seeds
rm -rf build-fuzz/seeds && mkdir -p build-fuzz/corpus build-fuzz/artifacts
# The seeds come from a sanitized build too, so writing them is one more test.
ASAN_OPTIONS=detect_leaks=1 ./build-fuzz/fuzz/mst_fuzz_seeds build-fuzz/seeds
if [ -x build/bin/moestream ]; then
  ./build/bin/moestream convert tests/data/qwen3_moe_tiny build-fuzz/seeds/packed/tiny_q4.mst --experts q4 --dense q8 2> /dev/null
  ./build/bin/moestream convert tests/data/gpt_oss_mxfp4 build-fuzz/seeds/packed/gpt_oss_zstd.mst --experts bf16 \
    --zstd 3 2> /dev/null || true
fi
status=0
for target in safetensors_header model_config tokenizer tiktoken packed jinja gguf; do
  mkdir -p "build-fuzz/corpus/$target"
  echo "fuzz_$target: ${seconds}s"
  # New inputs go to corpus/ (kept between runs); seeds/ is only read.
  if ! ./build-fuzz/fuzz/"fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="build-fuzz/artifacts/$target-" -print_final_stats=1 \
      "build-fuzz/corpus/$target" "build-fuzz/seeds/$target" 2> "build-fuzz/fuzz_$target.log"; then
    echo "fuzz_$target FAILED; see build-fuzz/fuzz_$target.log and build-fuzz/artifacts/" >&2
    tail -n 40 "build-fuzz/fuzz_$target.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" "build-fuzz/fuzz_$target.log" | tail -n 2
  fi
done
exit $status
