"""moestream for Python: run Mixture-of-Experts models whose weights stream from SSD.

    import moestream

    with moestream.Model("tests/data/qwen3_moe_tiny", expert_cache_bytes=1 << 30) as model:
        for piece in model.generate("Hello", max_tokens=32, temperature=0):
            print(piece, end="", flush=True)

The bindings are generated from ``include/moestream.h`` at import (cffi), so they follow
the C API exactly. Which ``libmoestream.so`` is loaded: ``MOESTREAM_LIBRARY``, else the
one recorded when the package was installed, else the system loader's
(see ``moestream._library``). ``OMP_WAIT_POLICY`` is set to ``passive`` before the
library loads unless it is already set (the README's "Python" section says why).
"""

from __future__ import annotations

from ._library import ffi, lib, loaded_paths
from .chat import apply_chat_template
from .convert import convert, synthesize
from .enums import LogLevel, Status, StopReason
from .errors import (
    EXCEPTION_NAMES,
    BackendError,
    BadFormatError,
    BusyError,
    CancelledError,
    ChecksumError,
    ClosedError,
    ContextFullError,
    InvalidArgumentError,
    MoestreamError,
    MoestreamIOError,
    MoestreamMemoryError,
    UnsupportedError,
)
from .generation import Generation
from .logs import log_to_python, log_to_stderr
from .model import Model
from .session import Session, eval_batch

__all__ = [
    "Model",
    "Session",
    "eval_batch",
    "Generation",
    "Status",
    "StopReason",
    "LogLevel",
    *EXCEPTION_NAMES,
    "apply_chat_template",
    "convert",
    "synthesize",
    "log_to_python",
    "log_to_stderr",
    "version",
    "library_version",
    "library_path",
    "ffi",
    "lib",
]

__version__ = "0.1.0"


def library_version() -> str:
    """The version of the loaded C library (``mst_version_string()``)."""
    return ffi.string(lib.mst_version_string()).decode()


def version() -> str:
    """The version of this package (the C header it was made for)."""
    return __version__


def library_path() -> str:
    """The path (or soname) the C library was loaded from."""
    return loaded_paths()[0]
