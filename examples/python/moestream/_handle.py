"""Reference-counted ownership of one C handle.

A model's handle must outlive every session made from it, and a session's handle every
generation running on it, whatever order Python closes or collects the objects in.
Each user of a handle holds a reference; the C ``*_free`` runs when the last one goes.
So closing a model while its sessions live only closes the Python ``Model``; the C model
is freed after its last session. The lock makes that safe when sessions on other
threads close at the same time.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from ._library import ffi

__all__ = ["Handle"]


class Handle:
    """Owns a C pointer and frees it with ``free`` when its last reference is released.

    ``parent`` (another Handle, optional) is a reference the caller has already acquired;
    it is released after this handle's object is freed, so a session's handle keeps its
    model's alive.
    """

    __slots__ = ("_pointer", "_free", "_refs", "_lock", "_parent")

    def __init__(self, pointer: Any, free: Callable[[Any], None], parent: "Handle | None" = None) -> None:
        self._pointer = pointer
        self._free = free
        self._refs = 1
        self._lock = threading.Lock()
        self._parent = parent

    @property
    def pointer(self) -> Any:
        """The C pointer; ``ffi.NULL`` once freed."""
        return self._pointer

    @property
    def parent(self) -> "Handle | None":
        """The handle this one keeps alive (a session's model), if any."""
        return self._parent

    def acquire(self) -> "Handle":
        """Take one more reference (fails if the handle is already freed)."""
        with self._lock:
            if self._refs <= 0:
                raise RuntimeError("moestream: acquiring a freed handle")
            self._refs += 1
        return self

    def release(self) -> None:
        """Drop one reference; the last one frees the C object, then the parent's."""
        with self._lock:
            if self._refs <= 0:
                return
            self._refs -= 1
            if self._refs > 0:
                return
            pointer, self._pointer = self._pointer, ffi.NULL
        self._free(pointer)
        if self._parent is not None:
            self._parent.release()
            self._parent = None
