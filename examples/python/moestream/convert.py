"""``convert`` and ``synthesize``: write packed ``.mst`` files (``mst_convert``, ``mst_synthesize``)."""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

from ._library import ffi, lib
from ._structs import fill, new_sized, to_dict
from .errors import check

__all__ = ["convert", "synthesize"]

Progress = Callable[[int, int], Optional[bool]]

# The progress callback finds its Python function through user_data, so one C callback
# serves every call and thread.


@ffi.callback("int(uint64_t, uint64_t, void *)")
def _on_progress(done: int, total: int, user_data: Any) -> int:
    """Call the user's progress function; a true result (or an exception) cancels."""
    state = ffi.from_handle(user_data)
    try:
        return 1 if state["function"](int(done), int(total)) else 0
    except BaseException as exc:  # never unwind into C: cancel and re-raise afterwards
        state["error"] = exc
        return 1


def _run(ctype: str, call: Callable[[Any, Any], int], name: str, progress: Progress | None,
         options: dict[str, Any], report_type: str) -> dict[str, Any]:
    """Fill ``ctype`` from ``options``, wire the progress callback, call, return the report."""
    keep: list[Any] = []
    params = ffi.new(ctype + " *")
    getattr(lib, ctype[:-len("_params")] + "_default_params")(params)
    fill(params, ctype, options, keep, name)
    state: dict[str, Any] = {"function": progress, "error": None}
    if progress is not None:
        handle = ffi.new_handle(state)
        keep.append(handle)
        params.progress = _on_progress
        params.progress_user_data = handle
    report = new_sized(report_type)
    status = call(params, report)
    if state["error"] is not None:
        raise state["error"]
    check(status, name)
    return to_dict(report, report_type)


def convert(src: str | os.PathLike[str], dst: str | os.PathLike[str], progress: Progress | None = None,
            **options: Any) -> dict[str, Any]:
    """Convert a Hugging Face checkpoint directory into one packed file.

    Args:
        src: the checkpoint directory.
        dst: the ``.mst`` file to write (``force=True`` replaces an existing one).
        progress: called with (bytes done, bytes total); returning True cancels
            (CancelledError).
        **options: fields of ``mst_convert_params``: ``experts`` ("q4", "q8", "bf16"),
            ``dense`` ("bf16", "q8"), ``zstd_level``, ``force``, ``n_threads``.

    Returns:
        ``mst_convert_report`` as a dict.
    """
    source, target = os.fsencode(src), os.fsencode(dst)
    return _run("mst_convert_params", lambda p, r: lib.mst_convert(source, target, p, r), "mst_convert",
                progress, options, "mst_convert_report")


def synthesize(config: str | os.PathLike[str], dst: str | os.PathLike[str], progress: Progress | None = None,
               **options: Any) -> dict[str, Any]:
    """Write a packed file with the shapes of a config.json and random weights.

    Args:
        config: a Hugging Face ``config.json`` of a supported architecture.
        dst: the ``.mst`` file to write.
        progress: as for :func:`convert` (bytes of the file written).
        **options: fields of ``mst_synthesize_params``: ``layers``, ``experts``, ``dense``,
            ``seed``, ``force``, ``n_threads``, ``routing_from``, ``routing_text``,
            ``tokenizer_from``, ``routing_reuse``.

    Returns:
        ``mst_synthesize_report`` as a dict.
    """
    source, target = os.fsencode(config), os.fsencode(dst)
    return _run("mst_synthesize_params", lambda p, r: lib.mst_synthesize(source, target, p, r), "mst_synthesize",
                progress, options, "mst_synthesize_report")
