#!/usr/bin/env bash
# The Python package's tests (examples/python): install the package from the checkout
# into a temporary folder the way a user would (pip, offline: Debian's setuptools, no
# build isolation, no index), then run its pytest suite against that installed copy.
# Needs the library built in ./build (scripts/test.sh builds it first) and Debian's
# python3-cffi, python3-numpy, python3-pytest, python3-pip (.ci/packages.txt).
# MST_PYTHON picks the interpreter (default: Debian's /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${MST_PYTHON:-/usr/bin/python3}"
[ -x "$PYTHON" ] || PYTHON=python3
if ! "$PYTHON" -c "import cffi, numpy, pytest, pip" 2> /dev/null; then
  echo "test_python.sh: $PYTHON lacks cffi, numpy, pytest or pip (install .ci/packages.txt)" >&2
  exit 1
fi
if [ ! -e build/lib/libmoestream.so.0 ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
  cmake --build build -j"$(nproc)" --target moestream
fi
SITE="$(mktemp -d)"
trap 'rm -rf "$SITE"' EXIT
PIP_NO_CACHE_DIR=1 "$PYTHON" -m pip install --quiet --no-build-isolation --no-deps --no-index \
  --root-user-action=ignore --disable-pip-version-check --target "$SITE" ./examples/python
# The tests' own subprocesses check what OMP_WAIT_POLICY does; the rest run as the
# library's users should, with it passive (the package sets it, this only makes it explicit).
PYTHONPATH="$SITE" OMP_WAIT_POLICY=passive "$PYTHON" -m pytest -q -p no:cacheprovider examples/python/tests
