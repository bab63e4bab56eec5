#!/usr/bin/env bash
# Fetches llama.cpp, prebuilt, from the npm registry (node-llama-cpp's CPU binaries for
# linux-x64), so that moestream can be compared with it on the same GGUF file. Nothing of
# it is committed and the library never links it: only bench/llama_cpp/llama_runner.c does.
#
#   bash bench/llama_cpp/fetch.sh
#
# Into $MST_LLAMA_CPP_DIR (default: build/llama_cpp of the repository) it installs
#   node_modules/       node-llama-cpp and @node-llama-cpp/linux-x64 (optional packages such
#                       as the CUDA builds are left out: they are ~600 MB and unused here)
#   include/            llama.h and ggml's headers of the same llama.cpp release, taken out
#                       of the git bundle node-llama-cpp ships (gitRelease.bundle)
#   lib -> .../bins/linux-x64   libllama.*.so, libggml*.so (CPU variants loaded by libggml)
#   vocab/              llama.cpp's tokenizer test files of the Qwen families and of
#                       Llama's SentencePiece vocabulary
#                       (models/ggml-vocab-{qwen2,qwen35,llama-spm}.gguf with their .inp
#                       texts and .out ids, which Hugging Face's tokenizers wrote), for
#                       test_tokenizer_reference's GGUF vocabulary checks
# and prints "libllama: PATH" and "include: PATH". MST_LLAMA_CPP_VULKAN=1 also installs
# @node-llama-cpp/linux-x64-vulkan (its lib is lib-vulkan).
#
# Without node/npm or without the registry it prints "skipped: <why>" and exits 0, so the
# tests and benchmarks that need llama.cpp skip; any other failure exits non-zero.
set -euo pipefail
here=${BASH_SOURCE[0]%/*}  # no dirname: the skip must work on a bare PATH too
[ "$here" = "${BASH_SOURCE[0]}" ] && here=.
root="$(cd "$here/../.." && pwd)"
dir="${MST_LLAMA_CPP_DIR:-$root/build/llama_cpp}"
version="${MST_LLAMA_CPP_NPM_VERSION:-3.22.1}"

skip() { echo "skipped: $*"; exit 0; }
command -v npm > /dev/null || skip "npm is not installed (scripts/install_node.sh installs node and npm)"
command -v git > /dev/null || skip "git is not installed (needed to read llama.cpp's headers out of the npm package's bundle)"

mkdir -p "$dir"
cd "$dir"
packages=("node-llama-cpp@$version" "@node-llama-cpp/linux-x64@$version")
[ "${MST_LLAMA_CPP_VULKAN:-0}" = 1 ] && packages+=("@node-llama-cpp/linux-x64-vulkan@$version")
bins=node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
if ! ls "$bins"/libllama*.so > /dev/null 2>&1 || { [ "${MST_LLAMA_CPP_VULKAN:-0}" = 1 ] && [ ! -d node_modules/@node-llama-cpp/linux-x64-vulkan ]; }; then
  [ -f package.json ] || echo '{"private": true}' > package.json
  if ! npm ping > /dev/null 2>&1; then skip "the npm registry ($(npm config get registry)) cannot be reached"; fi
  NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --ignore-scripts --no-audit --no-fund --omit=optional \
    --no-save --loglevel=error "${packages[@]}" > npm.log 2>&1 ||
    { cat npm.log >&2; echo "bench/llama_cpp/fetch.sh: npm install failed (above)" >&2; exit 1; }
fi
ln -sfn "$bins" lib
if [ -d node_modules/@node-llama-cpp/linux-x64-vulkan ]; then
  ln -sfn node_modules/@node-llama-cpp/linux-x64-vulkan/bins/linux-x64-vulkan lib-vulkan
fi

# Headers of the release the binaries were built from (llama.cpp.info.json names it).
bundle=node_modules/node-llama-cpp/llama/gitRelease.bundle
if [ ! -f include/llama.h ] || [ ! -f vocab/ggml-vocab-qwen35.gguf.out ] || [ ! -f vocab/ggml-vocab-llama-spm.gguf.out ]; then
  rm -rf src include vocab
  git clone --quiet "$bundle" src 2> git.log || { cat git.log >&2; exit 1; }
  mkdir -p include vocab
  cp src/include/llama.h src/ggml/include/*.h include/
  cp src/models/ggml-vocab-qwen2.gguf* src/models/ggml-vocab-qwen35.gguf* src/models/ggml-vocab-llama-spm.gguf* vocab/
  rm -rf src
fi
libllama="$(ls "$dir"/lib/libllama.*so* 2> /dev/null | head -n 1)"
[ -n "$libllama" ] || { echo "bench/llama_cpp/fetch.sh: no libllama in $dir/lib" >&2; exit 1; }
echo "llama.cpp: $(sed -n 's/.*"tag": *"\([^"]*\)".*/\1/p' node_modules/node-llama-cpp/llama/llama.cpp.info.json) (node-llama-cpp $version)"
echo "libllama: $libllama"
echo "include: $dir/include"

# The runner, compiled against exactly these headers and this library (rebuilt when its
# source is newer); the library's folder is its run path.
runner_src="$root/bench/llama_cpp/llama_runner.c"
if [ ! -x llama_runner ] || [ "$runner_src" -nt llama_runner ]; then
  command -v cc > /dev/null || { echo "bench/llama_cpp/fetch.sh: no C compiler (cc) to build llama_runner" >&2; exit 1; }
  cc -std=c11 -O2 -Wall -Wextra -o llama_runner "$runner_src" -I include -L lib -l:"$(basename "$libllama")" \
    -l:"$(basename "$(ls lib/libggml.*so* | head -n 1)")" -l:libggml-base.so -lm -Wl,-rpath,"$dir/lib"
fi
echo "llama_runner: $dir/llama_runner"
