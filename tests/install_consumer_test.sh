#!/usr/bin/env bash
# Installs the built project into a scratch prefix, builds examples/c against it twice
# (CMake package and pkg-config) and runs it on the tiny test checkpoint.
# MST_EXAMPLE_PRELOAD: a library the example runs with preloaded (a sanitized build's
# AddressSanitizer runtime, which must come first).
set -euo pipefail
build_dir=$1 source_dir=$2 model_dir=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build_dir" --prefix "$scratch/prefix" > "$scratch/install.log"
cmake -S "$source_dir/examples/c" -B "$scratch/c" -DCMAKE_PREFIX_PATH="$scratch/prefix" -DCMAKE_BUILD_TYPE=Release > "$scratch/configure.log"
cmake --build "$scratch/c" > "$scratch/build.log"
LD_PRELOAD="${MST_EXAMPLE_PRELOAD:-}" LD_LIBRARY_PATH="$scratch/prefix/lib:${LD_LIBRARY_PATH:-}" "$scratch/c/moestream_c_example" "$model_dir" "Hello"
libdir=$(ls -d "$scratch"/prefix/lib*/pkgconfig | head -n1)
PKG_CONFIG_PATH="$libdir" cc -std=c99 -Wall -Wextra -pedantic -Werror "$source_dir/examples/c/main.c" \
  $(PKG_CONFIG_PATH="$libdir" pkg-config --cflags --libs moestream) -o "$scratch/c_pkgconfig"
LD_PRELOAD="${MST_EXAMPLE_PRELOAD:-}" LD_LIBRARY_PATH="$scratch/prefix/lib:${LD_LIBRARY_PATH:-}" "$scratch/c_pkgconfig" "$model_dir" "Hi" > /dev/null
echo "installed package consumed through CMake and pkg-config"
