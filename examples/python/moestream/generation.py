"""``Generation``: ``mst_generate`` as a Python iterator of text pieces.

``mst_generate`` drives the loop itself and reports each token through a callback, so it
runs on a worker thread and hands the pieces over through a small channel; the consumer
iterates at its own pace and the worker waits when it is a piece ahead. Running the C
loop (rather than re-implementing it with sample/eval) keeps the library's own stop
strings, end-of-sequence rule and UTF-8 assembly. The GIL is released while the C code
runs and taken only for the moment a piece is handed over.

Closing the iterator early (``close()``, ``break`` inside ``with``, or dropping it) tells
the callback to return nonzero, which ends the C loop with ``StopReason.CALLBACK``.
"""

from __future__ import annotations

import collections
import threading
import weakref
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from ._library import ffi, lib
from ._structs import field_names, fill
from .enums import StopReason
from .errors import error_for

if TYPE_CHECKING:
    from ._handle import Handle
    from .session import Session

__all__ = ["Generation", "generate_params"]

# Pieces the worker may compute ahead of the consumer before it waits.
_AHEAD = 1


class _Channel:
    """Pieces from the worker to the consumer; stop requests the other way.

    Neither side references the Generation object, so dropping it runs its finalizer,
    which stops the worker instead of leaving it blocked for ever.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: collections.deque[tuple[Any, ...]] = collections.deque()
        self._final: tuple[Any, ...] | None = None
        self._stopped = False
        self.callback_error: BaseException | None = None

    def put(self, item: tuple[Any, ...]) -> bool:
        """Worker: queue a piece, wait while too far ahead; False once stopped."""
        with self._cond:
            if self._stopped:
                return False
            self._items.append(item)
            self._cond.notify_all()
            while len(self._items) > _AHEAD and not self._stopped:
                self._cond.wait()
            return not self._stopped

    def finish(self, item: tuple[Any, ...]) -> None:
        """Worker: how it ended, delivered after the queued pieces (never waits)."""
        with self._cond:
            self._final = item
            self._cond.notify_all()

    def get(self) -> tuple[Any, ...]:
        """Consumer: the next piece, else the final item, waiting for one."""
        with self._cond:
            while not self._items and self._final is None:
                self._cond.wait()
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            assert self._final is not None
            return self._final

    def stop(self) -> None:
        """Consumer or finalizer: drop queued pieces and ask the worker to stop (never waits)."""
        with self._cond:
            self._stopped = True
            self._items.clear()
            self._cond.notify_all()


@ffi.callback("int(int32_t, const char *, size_t, void *)")
def _on_token(token: int, piece: Any, length: int, user_data: Any) -> int:
    """The C token callback: hand the piece to the consumer; nonzero stops generation."""
    channel: _Channel = ffi.from_handle(user_data)
    try:
        text = ffi.unpack(piece, length).decode("utf-8", "replace") if length else ""
        return 0 if channel.put(("piece", token, text)) else 1
    except BaseException as exc:  # never let an exception unwind into C: report it instead
        channel.callback_error = exc
        return 1


def generate_params(options: Mapping[str, Any], keep: list[Any]) -> Any:
    """An ``mst_generate_params *`` from keywords: its own fields, the sampler's, and ``stop``.

    Raises:
        TypeError: an unknown keyword (listing the valid ones).
    """
    params = ffi.new("mst_generate_params *")
    lib.mst_generate_default_params(params)
    sampler_fields = set(field_names("mst_sampler_params"))
    own_fields = set(field_names("mst_generate_params")) - {"sampler", "stop", "n_stop"}
    sampler = {k: v for k, v in options.items() if k in sampler_fields}
    own = {k: v for k, v in options.items() if k in own_fields}
    unknown = set(options) - sampler_fields - own_fields - {"stop"}
    if unknown:
        valid = sorted(sampler_fields | own_fields | {"stop"})
        raise TypeError(f"generate: unknown option(s) {sorted(unknown)}; valid: {', '.join(valid)}")
    fill(params, "mst_generate_params", own, keep, "generate")
    sampler_ptr = ffi.addressof(params[0], "sampler")
    fill(sampler_ptr, "mst_sampler_params", sampler, keep, "generate")
    stop = options.get("stop")
    if stop:
        if isinstance(stop, (str, bytes)):
            stop = [stop]
        strings = [ffi.new("char[]", s.encode("utf-8") if isinstance(s, str) else s) for s in stop]
        array = ffi.new("const char *[]", strings)
        keep.extend(strings)
        keep.append(array)
        params.stop = array
        params.n_stop = len(strings)
    return params


class Generation(Iterator[str]):
    """An iterator over the text pieces of one ``mst_generate`` call.

    Attributes:
        tokens: the ids generated so far.
        stop_reason: a :class:`StopReason` once the generation has ended, else None.

    Iterating yields each decoded piece (text matching a stop string is never yielded).
    An error raises the matching :class:`MoestreamError` from ``next()``. Use it as a
    context manager, or call ``close()``, to stop early; the session is usable again once
    it returns.
    """

    def __init__(self, session: "Session", handle: "Handle", prompt: Any, n_prompt: int, params: Any,
                 keep: list[Any], close_session: bool) -> None:
        """Start generating; ``handle`` is a reference to the session's handle and the
        session's busy lock is held, both for the worker to release."""
        self.tokens: list[int] = []
        self.stop_reason: Any = None  # a StopReason member once ended
        self._session = session
        self._channel = _Channel()
        self._finished = False
        self._thread = threading.Thread(
            target=_run,
            args=(self._channel, session, handle, prompt, n_prompt, params, keep, close_session),
            name="moestream-generate",
            daemon=True,
        )
        self._finalizer = weakref.finalize(self, _stop_and_wait, self._channel, self._thread)
        self._thread.start()

    def __iter__(self) -> "Generation":
        return self

    def __next__(self) -> str:
        while not self._finished:
            item = self._channel.get()
            if item[0] == "piece":
                _, token, text = item
                if token >= 0:
                    self.tokens.append(token)
                if text:
                    return text
                continue
            self._end(item)
        raise StopIteration

    def _end(self, item: tuple[Any, ...]) -> None:
        """Handle the worker's final item: the stop reason, or raise its error."""
        self._finished = True
        self._thread.join()
        if item[0] == "error":
            raise item[1]
        self.stop_reason = StopReason(item[1])

    def text(self) -> str:
        """Consume the rest of the generation and return it joined."""
        return "".join(self)

    def close(self) -> None:
        """Stop generating (if still running) and wait until the session is free again."""
        if self._finished:
            return
        self._finalizer()  # stops the worker and waits for it
        self._finished = True
        # What the worker reported after the stop: its reason, or an error nobody reads
        # any more (the caller asked to stop).
        item = self._channel.get()
        if item[0] == "done":
            self.stop_reason = StopReason(item[1])

    @property
    def running(self) -> bool:
        """True until the generation has ended and its worker is done."""
        return not self._finished

    def __enter__(self) -> "Generation":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stop_and_wait(channel: _Channel, thread: threading.Thread) -> None:
    """Finalizer of a dropped Generation: stop its worker and wait until the session is free.

    Waiting makes the session usable as soon as the generation is gone; it lasts at most
    the one token being evaluated.
    """
    channel.stop()
    if thread is not threading.current_thread() and thread.is_alive():
        thread.join()


def _run(channel: _Channel, session: "Session", handle: "Handle", prompt: Any, n_prompt: int, params: Any,
         keep: list[Any], close_session: bool) -> None:
    """Worker thread: run mst_generate, then report how it ended and free the session."""
    user_data = ffi.new_handle(channel)
    reason = ffi.new("mst_stop_reason *")
    final: tuple[Any, ...]
    try:
        status = lib.mst_generate(handle.pointer, prompt, n_prompt, params, _on_token, user_data, reason)
        # mst_last_error() is per thread: the exception must be built here, on the worker.
        if status != lib.MST_OK:
            final = ("error", error_for(status, "mst_generate"))
        elif channel.callback_error is not None:
            final = ("error", channel.callback_error)
        else:
            final = ("done", int(reason[0]))
    except BaseException as exc:
        final = ("error", exc)
    finally:
        del keep, user_data
        handle.release()
        session._end_generation()
        if close_session:
            session.close()
    channel.finish(final)
