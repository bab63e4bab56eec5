#!/usr/bin/env bash
# node and npm, for the reference tokenizer test (tests/reference/tokenizers/fetch.sh),
# from Debian where they are absent. They are not in .ci/packages.txt: an image that
# already has NodeSource's nodejs (npm built in) cannot take Debian's npm, which
# conflicts with it, so they are installed only when missing.
set -euo pipefail
command -v node > /dev/null && command -v npm > /dev/null && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm > /dev/null
