"""Find the header and the shared library, and load them once per process.

Which library is loaded (the first that exists wins):

1. the ``MOESTREAM_LIBRARY`` environment variable: a path to ``libmoestream.so``;
2. the location recorded when the package was built or installed
   (``moestream/_build_config.py``, written by ``setup.py`` or the CMake install);
   a source checkout records nothing and uses its CMake build directory instead
   (``build/lib/libmoestream.so.0`` beside ``examples/``), when it exists;
3. the system loader: ``libmoestream.so.0`` through the usual search path
   (``LD_LIBRARY_PATH``, ``/etc/ld.so.conf``), e.g. after ``cmake --install``.

The declarations come from a copy of ``include/moestream.h`` installed inside the
package, or, when the package runs from the source checkout, from the checkout's header.
``MOESTREAM_HEADER`` overrides both (for a library built from another checkout).
"""

from __future__ import annotations

import ctypes.util
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import cffi

from ._header import cdef_from_file

__all__ = ["ffi", "lib", "library_path", "header_path", "load", "loaded_paths"]

_PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT_HEADER = _PACKAGE_DIR.parents[2] / "include" / "moestream.h"
_CHECKOUT_LIBRARY = _PACKAGE_DIR.parents[2] / "build" / "lib" / "libmoestream.so.0"
_SONAME = "libmoestream.so.0"

_lock = threading.Lock()
_loaded: tuple[cffi.FFI, Any, str, Path] | None = None


def _build_config() -> dict[str, str | None]:
    """What setup.py / the CMake install recorded; empty in a plain source checkout."""
    try:
        from . import _build_config as config  # type: ignore[attr-defined]
    except ImportError:
        return {}
    return {"library": getattr(config, "LIBRARY", None), "header": getattr(config, "HEADER", None)}


def header_path() -> Path:
    """The header the bindings are generated from (see the module docstring)."""
    override = os.environ.get("MOESTREAM_HEADER")
    if override:
        return Path(override)
    installed = _PACKAGE_DIR / "moestream.h"
    if installed.is_file():
        return installed
    return _CHECKOUT_HEADER


def library_path() -> str:
    """The library to load, by the rule in the module docstring."""
    override = os.environ.get("MOESTREAM_LIBRARY")
    if override:
        return override
    config = _build_config()
    recorded = config.get("library")
    if recorded and Path(recorded).exists():
        return recorded
    if not config and _CHECKOUT_LIBRARY.exists():
        return str(_CHECKOUT_LIBRARY)
    # find_library searches the loader cache; dlopen of the bare soname then asks the
    # loader itself, which also honours LD_LIBRARY_PATH.
    return ctypes.util.find_library("moestream") or _SONAME


def _set_omp_wait_policy() -> None:
    """Make OpenMP threads sleep, not spin, between parallel regions, unless the user chose.

    libgomp reads OMP_WAIT_POLICY once, when it is loaded, so it must be in the
    environment before the library (which links libgomp) is opened. Its default spins
    after each parallel region, taking the cores the expert-read threads need: on
    2 cores decoding ran 15 times slower (README, "The command-line tool").
    """
    if os.environ.get("OMP_WAIT_POLICY"):  # an empty value counts as unset, as for libgomp
        return
    os.environ["OMP_WAIT_POLICY"] = "passive"
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return
    if "libgomp" in maps:
        warnings.warn(
            "libgomp was loaded before moestream (by another package), so OMP_WAIT_POLICY=passive "
            "cannot take effect and OpenMP threads will spin; set OMP_WAIT_POLICY=passive in the "
            "environment before starting Python",
            RuntimeWarning,
            stacklevel=3,
        )


def load() -> tuple[cffi.FFI, Any]:
    """Return ``(ffi, lib)``, loading the library on first use (thread-safe)."""
    global _loaded
    with _lock:
        if _loaded is None:
            header = header_path()
            ffi = cffi.FFI()
            ffi.cdef(cdef_from_file(header))
            _set_omp_wait_policy()
            path = library_path()
            try:
                lib = ffi.dlopen(path)
            except OSError as exc:
                raise ImportError(
                    f"moestream: cannot load the library {path!r} ({exc}); set MOESTREAM_LIBRARY to "
                    "the path of libmoestream.so, or reinstall the package after building it"
                ) from exc
            linked = lib.mst_version_number()
            if linked // 10000 != lib.MST_VERSION_MAJOR:
                raise ImportError(
                    f"moestream: {path} is version {ffi.string(lib.mst_version_string()).decode()}, "
                    f"but the header {header} is {lib.MST_VERSION_MAJOR}.x"
                )
            _loaded = (ffi, lib, path, header)
        return _loaded[0], _loaded[1]


def loaded_paths() -> tuple[str, Path]:
    """The library and header actually loaded (after ``load()``)."""
    load()
    assert _loaded is not None
    return _loaded[2], _loaded[3]


ffi, lib = load()
