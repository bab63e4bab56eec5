#!/usr/bin/env bash
# Installs the official `openai` npm client into this folder's node_modules (ignored by
# git) for serve_test.sh. Exits 77, saying why, without node/npm or the registry: the
# server test then runs its curl part only.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
  echo "tests/server/fetch.sh: node and npm are needed (scripts/install_node.sh)" >&2
  exit 77
fi
if ! npm install --no-audit --no-fund --silent > /dev/null 2>&1; then
  echo "tests/server/fetch.sh: npm could not install openai (no registry?)" >&2
  exit 77
fi
