"""Tokenizer calls on a raw model pointer, shared by Model and Session.

A session tokenizes through the model handle it holds, so it keeps working after the
Python ``Model`` was closed (the C model lives until its last session is freed).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ._library import ffi, lib
from .errors import check

__all__ = ["tokenize", "detokenize_bytes", "token_text", "token_array"]


def tokenize(model: Any, text: str | bytes) -> list[int]:
    """Token ids of ``text`` (UTF-8) under the model's tokenizer."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    # Byte-level BPE never makes more tokens than bytes (plus a few specials); on a
    # tokenizer that does, the count comes back and the call is repeated.
    capacity = len(data) + 16
    n_out = ffi.new("size_t *")
    while True:
        out = ffi.new("int32_t[]", capacity)
        status = lib.mst_tokenize(model, data, len(data), out, capacity, n_out)
        if status == lib.MST_ERR_BUFFER_TOO_SMALL and n_out[0] > capacity:
            capacity = n_out[0]
            continue
        check(status, "mst_tokenize")
        return list(ffi.unpack(out, n_out[0]))


def token_array(tokens: Sequence[int] | np.ndarray) -> tuple[Any, int]:
    """``(int32_t[] cdata, count)`` for ``tokens``.

    A C-contiguous int32 numpy array is passed without a copy; anything else is copied.
    The returned cdata must stay referenced until the C call returns.
    """
    if isinstance(tokens, np.ndarray) and tokens.dtype == np.int32 and tokens.ndim == 1 and tokens.flags.c_contiguous:
        return ffi.from_buffer("int32_t[]", tokens), int(tokens.shape[0])
    ids = [int(t) for t in tokens]
    return ffi.new("int32_t[]", ids), len(ids)


def detokenize_bytes(model: Any, tokens: Sequence[int] | np.ndarray) -> bytes:
    """The UTF-8 bytes of ``tokens`` (possibly ending inside a character)."""
    ids, n = token_array(tokens)
    capacity = 16 * n + 64
    n_bytes = ffi.new("size_t *")
    while True:
        # Always a real buffer: the size query with a NULL buffer is being reworked in
        # the library, and one retry costs nothing.
        out = ffi.new("char[]", capacity)
        status = lib.mst_detokenize(model, ids, n, out, capacity, n_bytes)
        if status == lib.MST_ERR_BUFFER_TOO_SMALL and n_bytes[0] > capacity:
            capacity = n_bytes[0] + 1
            continue
        check(status, "mst_detokenize")
        return ffi.unpack(out, n_bytes[0])


def token_text(model: Any, token: int) -> str | None:
    """The text of one token id, or None when it is outside the vocabulary."""
    text = lib.mst_token_text(model, token)
    if text == ffi.NULL:
        return None
    return ffi.string(text).decode("utf-8", "replace")
