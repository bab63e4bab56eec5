#!/usr/bin/env bash
# Fresh Debian 12: install the dependencies and build moestream (into ./build).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(cat .ci/packages.txt) > /dev/null
bash scripts/install_node.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j"$(nproc)"
# tests/reference/gen_chat_templates.py runs on /usr/bin/python3 with python3-jinja2 (listed in .ci/packages.txt).
