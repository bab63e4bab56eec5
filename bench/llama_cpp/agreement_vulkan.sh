#!/usr/bin/env bash
# test_llama_cpp_agreement with llama.cpp's Vulkan backend as the other engine instead of its
# CPU backend: the same GGUF files, ids and comparisons, llama.cpp with every layer offloaded
# (-ngl 999). On a machine without a GPU that device is Mesa's lavapipe, which ggml-vulkan
# skips unless it is named (GGML_VK_VISIBLE_DEVICES=0). Used to tell whether the deepseek2
# rows' top-1 flips depend on which llama.cpp backend rounds (bench/README.md, "llama.cpp's
# Vulkan backend as the other engine").
#
#   bash bench/llama_cpp/agreement_vulkan.sh [GTEST_FILTER]    (default: the deepseek2 rows)
# BUILD: the build folder with test_llama_cpp_agreement (default build); LLAMA_DIR: a
# fetch.sh folder with lib-vulkan (MST_LLAMA_CPP_VULKAN=1 bench/llama_cpp/fetch.sh).
# The rows' bounds on the logits' difference were set against llama.cpp's CPU backend, so
# rows may fail them here and the script then exits non-zero (llama.cpp's Vulkan products
# round through f16: its F16 row is 2e-3 from the exact answer, its CPU build's 1.5e-4); the printed table lines are
# what this script is for.
set -euo pipefail
root=$(cd "${BASH_SOURCE[0]%/*}/../.." && pwd)
build=${BUILD:-$root/build}
llama=${LLAMA_DIR:-$build/llama_cpp}
filter=${1:-'*deepseek_v3_trained*'}
libs="$llama/lib-vulkan"
[ -d "$libs" ] || { echo "agreement_vulkan: no $libs (run MST_LLAMA_CPP_VULKAN=1 bench/llama_cpp/fetch.sh)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -std=c11 -O2 -o "$work/llama_runner.bin" "$root/bench/llama_cpp/llama_runner.c" -I "$llama/include" \
  -L "$libs" -l:libllama.vulkan.v0.5.0.so -l:libggml.vulkan.v0.5.0.so -l:libggml-base.so -lm -Wl,-rpath,"$libs"
# The test runs $MST_LLAMA_CPP_DIR/llama_runner with the CPU flags; this one adds the offload.
cat > "$work/llama_runner" <<EOF
#!/bin/sh
exec "$work/llama_runner.bin" "\$@" -ngl 999 --backends "$libs"
EOF
chmod +x "$work/llama_runner"
GGML_VK_VISIBLE_DEVICES=${GGML_VK_VISIBLE_DEVICES:-0} MST_CPU_ACT_BITS=16 MST_LLAMA_CPP_DIR="$work" \
  "$build/tests/test_llama_cpp_agreement" --gtest_filter="$filter"
