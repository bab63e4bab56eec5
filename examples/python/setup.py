"""Build hook: record which libmoestream the package loads, and bundle the header.

At build time (``pip install ./examples/python``) the package is given:
- ``moestream/moestream.h``: a copy of the checkout's ``include/moestream.h``, the
  declarations the bindings are generated from at import;
- ``moestream/_build_config.py``: the library's absolute path, found as
  ``MOESTREAM_LIBRARY`` if set, else the checkout's CMake build directory
  (``build/lib/libmoestream.so.0``; ``MOESTREAM_BUILD_DIR`` names another one).
  When neither exists, nothing is recorded and the system loader finds the library
  at run time (an installed ``libmoestream.so.0``).
At run time ``MOESTREAM_LIBRARY`` still overrides the recorded path.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parents[1]


def find_header() -> Path:
    """The header to bundle: MOESTREAM_HEADER, else the checkout's."""
    header = Path(os.environ.get("MOESTREAM_HEADER") or CHECKOUT / "include" / "moestream.h")
    if not header.is_file():
        raise SystemExit(f"moestream: header {header} not found; set MOESTREAM_HEADER")
    return header


def find_library() -> str | None:
    """The library to record (see the module docstring), or None for the system loader."""
    given = os.environ.get("MOESTREAM_LIBRARY")
    if given:
        if not Path(given).exists():
            raise SystemExit(f"moestream: MOESTREAM_LIBRARY={given} does not exist")
        return str(Path(given).absolute())
    build = Path(os.environ.get("MOESTREAM_BUILD_DIR") or CHECKOUT / "build")
    for candidate in (build / "lib" / "libmoestream.so.0", build / "libmoestream.so.0"):
        if candidate.exists():
            return str(candidate.absolute())
    return None


class BuildWithConfig(build_py):
    """build_py that adds the header copy and the recorded library location."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "moestream"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(find_header(), target / "moestream.h")
        library = find_library()
        if library is None:
            print("moestream: no built library found; the system loader will be used at run time")
        (target / "_build_config.py").write_text(
            '"""Written by setup.py at build time: where libmoestream was found."""\n'
            f"LIBRARY = {library!r}\n",
            encoding="utf-8",
        )


setup(cmdclass={"build_py": BuildWithConfig})
