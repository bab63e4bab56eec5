"""``Model``: a loaded moestream model (``mst_model``)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from . import _text
from ._handle import Handle
from ._library import ffi, lib
from ._owner import HandleOwner
from ._structs import fill, new_sized, to_dict
from .errors import check

if TYPE_CHECKING:
    from .generation import Generation
    from .session import Session

__all__ = ["Model"]


class Model(HandleOwner):
    """A model loaded with ``mst_model_load``; experts stream from disk on demand.

    Args:
        path: a Hugging Face checkpoint directory or a packed ``.mst`` file.
        **params: fields of ``mst_model_params`` (``backend``, ``storage``,
            ``expert_cache_bytes``, ``experts_per_token``, ``n_threads``, ``cache_policy``,
            ...); the rest keep the library's defaults. An unknown name is a TypeError.

    Raises:
        MoestreamError: the load failed (the message names the file or tensor).

    Sessions made from a model keep its C object alive: ``close()`` on a model whose
    sessions are still open only closes this Python object, and the weights are freed
    with the last session. Use it as a context manager to close it.
    """

    _kind = "model"

    def __init__(self, path: str | os.PathLike[str], **params: Any) -> None:
        self.path = os.fspath(path)
        keep: list[Any] = []
        c_params = ffi.new("mst_model_params *")
        lib.mst_model_default_params(c_params)
        fill(c_params, "mst_model_params", params, keep, "Model")
        out = ffi.new("mst_model **")
        # cffi releases the GIL for the call, so other threads run while it loads.
        check(lib.mst_model_load(os.fsencode(self.path), c_params, out), "mst_model_load")
        super().__init__(Handle(out[0], lib.mst_model_free), exclusive=False)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<moestream.Model {self.path!r} ({state})>"

    def info(self) -> dict[str, Any]:
        """``mst_model_info`` as a dict: architecture, sizes, expert bytes, top-k, ..."""
        info = new_sized("mst_model_info")
        with self._call() as model:
            check(lib.mst_model_get_info(model, info), "mst_model_get_info")
            # The strings belong to the model: decode them while it is held.
            return to_dict(info, "mst_model_info")

    @property
    def n_vocab(self) -> int:
        """The vocabulary size (rows of logits are this long)."""
        return int(self.info()["n_vocab"])

    @property
    def eos_token_id(self) -> int:
        """The end-of-sequence token id, -1 if the model has none."""
        return int(self.info()["eos_token_id"])

    def memory_stats(self) -> dict[str, int]:
        """``mst_memory_stats`` as a dict: resident weights, expert cache, process RSS."""
        stats = new_sized("mst_memory_stats")
        with self._call() as model:
            check(lib.mst_model_get_memory_stats(model, stats), "mst_model_get_memory_stats")
        return to_dict(stats, "mst_memory_stats")

    def cache_stats(self, layer: int = -1) -> dict[str, int]:
        """``mst_cache_stats`` of one layer, or of the whole model with ``layer=-1``."""
        stats = new_sized("mst_cache_stats")
        with self._call() as model:
            check(lib.mst_model_get_cache_stats(model, layer, stats), "mst_model_get_cache_stats")
        return to_dict(stats, "mst_cache_stats")

    def tokenize(self, text: str | bytes) -> list[int]:
        """Encode UTF-8 text into token ids (special tokens written in it are recognised)."""
        with self._call() as model:
            return _text.tokenize(model, text)

    def detokenize(self, tokens: Sequence[int] | np.ndarray) -> str:
        """Decode token ids to text (an incomplete UTF-8 sequence becomes U+FFFD)."""
        return self.detokenize_bytes(tokens).decode("utf-8", "replace")

    def detokenize_bytes(self, tokens: Sequence[int] | np.ndarray) -> bytes:
        """Decode token ids to their exact UTF-8 bytes."""
        with self._call() as model:
            return _text.detokenize_bytes(model, tokens)

    def token_text(self, token: int) -> str | None:
        """The text of one token id, or None outside the vocabulary."""
        with self._call() as model:
            return _text.token_text(model, token)

    def session(self, **params: Any) -> "Session":
        """A new :class:`Session` over this model (``n_ctx``, ``seed``, ``all_logits``, ``n_batch``)."""
        from .session import Session

        return Session(self, **params)

    def generate(self, prompt: str | Sequence[int], session: dict[str, Any] | None = None,
                 **options: Any) -> "Generation":
        """Generate from ``prompt`` in a fresh session; iterate the result for text pieces.

        Args:
            prompt: text (tokenized with the model's tokenizer) or token ids.
            session: keywords for the session (``n_ctx``, ``seed``, ...).
            **options: ``max_tokens``, ``stop`` (a list of strings), ``ignore_eos`` and the
                sampler's fields (``temperature``, ``top_k``, ``top_p``, ``min_p``, ...).

        The session is closed when the generation ends or is closed.
        """
        from .session import Session

        owned = Session(self, **(session or {}))
        try:
            return owned._start_generation(prompt, options, close_session=True)
        except BaseException:
            owned.close()
            raise

    def _handle_for_session(self) -> Handle:
        """The handle a new session hangs on (ClosedError once the model is closed)."""
        return self._acquire_handle()
