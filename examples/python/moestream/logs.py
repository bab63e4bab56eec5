"""Route the library's log lines to Python's ``logging`` (``mst_log_set``).

By default the library writes warnings and errors to stderr itself. After
:func:`log_to_python`, every line up to ``max_level`` goes to the ``moestream`` logger
instead, from whichever thread logged it (cffi takes the GIL for the callback).
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Any

from ._library import ffi, lib
from .enums import LogLevel

__all__ = ["log_to_python", "log_to_stderr"]

_PYTHON_LEVELS = {
    int(LogLevel.ERROR): logging.ERROR,
    int(LogLevel.WARN): logging.WARNING,
    int(LogLevel.INFO): logging.INFO,
    int(LogLevel.DEBUG): logging.DEBUG,
}

_lock = threading.Lock()
_logger: logging.Logger | None = None


@ffi.callback("void(mst_log_level, const char *, void *)")
def _on_log(level: int, message: Any, user_data: Any) -> None:
    """The C log callback: one library line to the chosen logger."""
    logger = _logger
    if logger is None:
        return
    try:
        logger.log(_PYTHON_LEVELS.get(int(level), logging.INFO), ffi.string(message).decode("utf-8", "replace"))
    except Exception:  # never unwind into C; a broken handler must not stop the library
        pass


def log_to_python(max_level: int = LogLevel.INFO, logger: logging.Logger | None = None) -> None:
    """Send library log lines up to ``max_level`` (a :class:`LogLevel`) to ``logger``
    (default: the ``moestream`` logger)."""
    global _logger
    with _lock:
        _logger = logger or logging.getLogger("moestream")
        lib.mst_log_set(_on_log, int(max_level), ffi.NULL)


def log_to_stderr() -> None:
    """Restore the library's default: warnings and errors to stderr."""
    global _logger
    with _lock:
        lib.mst_log_set(ffi.NULL, int(LogLevel.WARN), ffi.NULL)
        _logger = None


# A library thread logging while the interpreter shuts down must not call into Python.
atexit.register(log_to_stderr)
