"""Base of the objects that own a C handle: closing, context managers, safe calls."""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any, Iterator, TypeVar

from ._handle import Handle
from ._library import lib
from .errors import BusyError, ClosedError, busy_status

__all__ = ["HandleOwner"]

_Owner = TypeVar("_Owner", bound="HandleOwner")


class HandleOwner:
    """Owns one reference to a :class:`Handle`; ``close()`` (or collection) drops it.

    Every C call goes through :meth:`_call`, which holds a further reference for the
    duration of the call: a ``close()`` on another thread then only drops the object's
    own reference and the C object is freed when the call returns, never under it.
    With ``exclusive`` set, one call at a time may run (sessions are not thread-safe);
    a second one raises :class:`BusyError` instead of racing.
    """

    _kind = "object"

    def __init__(self, handle: Handle, exclusive: bool) -> None:
        self._handle = handle
        self._busy = threading.Lock() if exclusive else None
        # finalize, not __del__: it runs once, also at interpreter exit, and holds the
        # handle rather than the object, so collection order does not matter.
        self._finalizer = weakref.finalize(self, handle.release)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran (the C object may live on for its dependants)."""
        return not self._finalizer.alive

    def close(self) -> None:
        """Release this object's handle; idempotent."""
        self._finalizer()

    def __enter__(self: _Owner) -> _Owner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _closed_error(self) -> ClosedError:
        return ClosedError(int(lib.MST_ERR_INVALID_ARGUMENT), "closed", f"the {self._kind} is closed")

    def _acquire_handle(self) -> Handle:
        """One more reference to the handle, or ClosedError."""
        if self.closed:
            raise self._closed_error()
        try:
            return self._handle.acquire()
        except RuntimeError:
            raise self._closed_error() from None

    def _lock_busy(self) -> None:
        """Take the exclusive lock without waiting, or raise BusyError."""
        if self._busy is not None and not self._busy.acquire(blocking=False):
            raise BusyError(busy_status(), "busy",
                            f"the {self._kind} is in use by another call or a running generation")

    def _unlock_busy(self) -> None:
        if self._busy is not None:
            self._busy.release()

    def _acquire_locked(self) -> Handle:
        """The exclusive lock, then one more reference to the handle; on failure, neither."""
        self._lock_busy()
        try:
            return self._acquire_handle()
        except BaseException:
            self._unlock_busy()
            raise

    @contextlib.contextmanager
    def _call(self) -> Iterator[Any]:
        """Yield the C pointer, held (and locked, if exclusive) for the block."""
        handle = self._acquire_locked()
        try:
            yield handle.pointer
        finally:
            handle.release()
            self._unlock_busy()

    @contextlib.contextmanager
    def _hold(self) -> Iterator[Handle]:
        """Yield the handle, referenced for the block but not locked (read-only uses)."""
        handle = self._acquire_handle()
        try:
            yield handle
        finally:
            handle.release()
