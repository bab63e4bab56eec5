"""Exceptions: every failing C call becomes a :class:`MoestreamError`.

Each carries the ``mst_status`` value, its name from ``mst_status_string()`` and the
thread-local ``mst_last_error()`` message, read on the thread that made the call (the
message is per thread, so it must be captured there, before anything else runs).
Subclasses also derive from the matching built-in exception, so ``except OSError`` and
``except ValueError`` work as a Python user expects.
"""

from __future__ import annotations

from ._library import ffi, lib

# The exception classes, which the package also exports (moestream/__init__.py).
EXCEPTION_NAMES = (
    "MoestreamError",
    "InvalidArgumentError",
    "MoestreamIOError",
    "BadFormatError",
    "UnsupportedError",
    "MoestreamMemoryError",
    "ChecksumError",
    "BackendError",
    "ContextFullError",
    "CancelledError",
    "BusyError",
    "ClosedError",
)

__all__ = [*EXCEPTION_NAMES, "check", "error_for"]


class MoestreamError(Exception):
    """A moestream call failed.

    Attributes:
        status: the ``mst_status`` value (an int; compare with ``moestream.Status``).
        status_name: ``mst_status_string(status)``, e.g. ``"invalid argument"``.
        message: ``mst_last_error()`` at the failure: names the file, tensor or expert.
        function: the C function that failed.
    """

    def __init__(self, status: int, status_name: str, message: str, function: str = "") -> None:
        self.status = status
        self.status_name = status_name
        self.message = message
        self.function = function
        where = f"{function}: " if function else ""
        super().__init__(f"{where}{status_name}: {message}" if message else f"{where}{status_name}")


class InvalidArgumentError(MoestreamError, ValueError):
    """MST_ERR_INVALID_ARGUMENT: a bad handle, option or value."""


class MoestreamIOError(MoestreamError, OSError):
    """MST_ERR_IO: a file could not be opened or read."""

    def __init__(self, status: int, status_name: str, message: str, function: str = "") -> None:
        MoestreamError.__init__(self, status, status_name, message, function)


class BadFormatError(MoestreamError, ValueError):
    """MST_ERR_BAD_FORMAT: a file is malformed."""


class UnsupportedError(MoestreamError, NotImplementedError):
    """MST_ERR_UNSUPPORTED: valid but not supported (a dtype, an architecture)."""


class MoestreamMemoryError(MoestreamError, MemoryError):
    """MST_ERR_OUT_OF_MEMORY."""


class ChecksumError(MoestreamError):
    """MST_ERR_CHECKSUM: stored data does not match its checksum."""


class BackendError(MoestreamError):
    """MST_ERR_BACKEND: the compute backend failed or is unavailable."""


class ContextFullError(MoestreamError):
    """MST_ERR_CONTEXT_FULL: evaluating would exceed the session's context."""


class CancelledError(MoestreamError):
    """MST_ERR_CANCELLED: a callback asked to stop."""


class BusyError(MoestreamError, RuntimeError):
    """The session is in use by another call (a live generation or another thread)."""


class ClosedError(MoestreamError, ValueError):
    """The object was closed; its handle is gone."""


# Statuses are looked up by name, so a header without one of them (or with new ones)
# still loads: unknown statuses raise the base class.
_BY_NAME: dict[str, type[MoestreamError]] = {
    "MST_ERR_INVALID_ARGUMENT": InvalidArgumentError,
    "MST_ERR_IO": MoestreamIOError,
    "MST_ERR_BAD_FORMAT": BadFormatError,
    "MST_ERR_UNSUPPORTED": UnsupportedError,
    "MST_ERR_OUT_OF_MEMORY": MoestreamMemoryError,
    "MST_ERR_CHECKSUM": ChecksumError,
    "MST_ERR_BACKEND": BackendError,
    "MST_ERR_CONTEXT_FULL": ContextFullError,
    "MST_ERR_CANCELLED": CancelledError,
    "MST_ERR_BUSY": BusyError,
}
_BY_STATUS: dict[int, type[MoestreamError]] = {
    getattr(lib, name): cls for name, cls in _BY_NAME.items() if hasattr(lib, name)
}


def status_name(status: int) -> str:
    """``mst_status_string(status)`` as a Python string."""
    return ffi.string(lib.mst_status_string(status)).decode("utf-8", "replace")


def last_error() -> str:
    """``mst_last_error()`` of the calling thread."""
    return ffi.string(lib.mst_last_error()).decode("utf-8", "replace")


def error_for(status: int, function: str = "", message: str | None = None) -> MoestreamError:
    """Build the exception for ``status``; reads ``mst_last_error()`` unless given."""
    cls = _BY_STATUS.get(int(status), MoestreamError)
    return cls(int(status), status_name(status), last_error() if message is None else message, function)


def check(status: int, function: str) -> None:
    """Raise the matching :class:`MoestreamError` unless ``status`` is ``MST_OK``."""
    if status != lib.MST_OK:
        raise error_for(status, function)


def busy_status() -> int:
    """The status a busy session reports: MST_ERR_BUSY where the header has it."""
    return int(getattr(lib, "MST_ERR_BUSY", -1))
