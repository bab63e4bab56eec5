"""``Session``: one context (KV cache, sampler state, statistics) over a model."""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from . import _text
from ._handle import Handle
from ._library import ffi, lib
from ._owner import HandleOwner
from ._structs import fill, new_sized, to_dict
from .errors import check
from .generation import Generation, generate_params

if TYPE_CHECKING:
    from .model import Model

__all__ = ["Session", "eval_batch"]


class Session(HandleOwner):
    """A session over ``model`` (``mst_session_create``).

    Args:
        model: the :class:`Model`; the session keeps its C object alive, so it keeps
            working after ``model.close()``.
        **params: fields of ``mst_session_params``: ``n_ctx``, ``seed``, ``all_logits``,
            ``n_batch``.

    One session serves one thread at a time: a call made while another call (or a running
    :class:`Generation`) uses it raises :class:`BusyError`. Sessions of one model may run
    on different threads at once. Evaluation releases the GIL.
    """

    _kind = "session"

    def __init__(self, model: "Model", **params: Any) -> None:
        self.model = model
        keep: list[Any] = []
        c_params = ffi.new("mst_session_params *")
        lib.mst_session_default_params(c_params)
        fill(c_params, "mst_session_params", params, keep, "Session")
        self._all_logits = bool(c_params.all_logits)
        model_handle = model._handle_for_session()
        out = ffi.new("mst_session **")
        try:
            check(lib.mst_session_create(model_handle.pointer, c_params, out), "mst_session_create")
        except BaseException:
            model_handle.release()
            raise
        super().__init__(Handle(out[0], lib.mst_session_free, parent=model_handle), exclusive=True)
        self._generation_lock = threading.Lock()
        # A weak reference: a generation the caller drops must be collectable, so that its
        # finalizer stops it and frees the session.
        self._generation: weakref.ref[Generation] | None = None

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"n_past={self.n_past}"
        return f"<moestream.Session ({state})>"

    def close(self) -> None:
        """Stop a running generation, then release the session; idempotent."""
        with self._generation_lock:
            generation = self._generation() if self._generation is not None else None
        if generation is not None and threading.current_thread() is not generation._thread:
            generation.close()
        super().close()

    # ---- evaluation ------------------------------------------------------------------

    def eval(self, tokens: Sequence[int] | np.ndarray) -> None:
        """Append ``tokens`` to the context and run the model over them.

        A C-contiguous ``numpy.int32`` array is passed without a copy.

        Raises:
            ContextFullError: past ``n_ctx``; InvalidArgumentError: an id outside the
                vocabulary (the context is left as it was in both cases).
        """
        ids, n = _text.token_array(tokens)
        with self._call() as session:
            check(lib.mst_session_eval(session, ids, n), "mst_session_eval")

    def logits(self) -> np.ndarray:
        """The logits after the last evaluated token, as a float32 array of ``n_vocab``.

        A copy: the library replaces its logits buffer at every evaluation, so a view into
        it would dangle after the next call. One row is a few hundred KiB even for a
        150k vocabulary, microseconds next to an evaluation.
        """
        pointer = ffi.new("const float **")
        n_vocab = ffi.new("size_t *")
        with self._call() as session:
            check(lib.mst_session_logits(session, pointer, n_vocab), "mst_session_logits")
            return np.frombuffer(ffi.buffer(pointer[0], n_vocab[0] * 4), dtype=np.float32).copy()

    def all_logits(self) -> np.ndarray:
        """The logits of every position of the last :meth:`eval`, shape ``[n, n_vocab]``.

        Needs a session made with ``all_logits=True``. A copy, for the reason in
        :meth:`logits`.
        """
        pointer = ffi.new("const float **")
        n_rows = ffi.new("size_t *")
        n_vocab = ffi.new("size_t *")
        with self._call() as session:
            check(lib.mst_session_all_logits(session, pointer, n_rows, n_vocab), "mst_session_all_logits")
            rows, vocab = n_rows[0], n_vocab[0]
            flat = np.frombuffer(ffi.buffer(pointer[0], rows * vocab * 4), dtype=np.float32)
            return flat.reshape(rows, vocab).copy()

    @property
    def n_past(self) -> int:
        """Tokens in the context."""
        with self._call() as session:
            return int(lib.mst_session_n_past(session))

    def reset(self) -> None:
        """Forget the context (the statistics are kept)."""
        with self._call() as session:
            lib.mst_session_reset(session)

    def trim(self, n_keep: int) -> None:
        """Keep the first ``n_keep`` tokens of the context and forget the rest.

        Raises:
            InvalidArgumentError: past :attr:`n_past`; UnsupportedError: a model with a
                recurrent state, which cannot be rewound (0 < n_keep < n_past).
        """
        with self._call() as session:
            check(lib.mst_session_trim(session, n_keep), "mst_session_trim")

    def set_seed(self, seed: int) -> None:
        """Reseed the session's random generator."""
        with self._call() as session:
            check(lib.mst_session_set_seed(session, seed), "mst_session_set_seed")

    # ---- state -------------------------------------------------------------------------

    def save_state(self) -> bytes:
        """The context, last logits and random generator as bytes (``mst_session_state_save``)."""
        n = ffi.new("size_t *")
        with self._call() as session:
            status = lib.mst_session_state_save(session, ffi.NULL, 0, n)
            if status != lib.MST_ERR_BUFFER_TOO_SMALL:
                check(status, "mst_session_state_save")
            out = ffi.new("char[]", n[0])
            check(lib.mst_session_state_save(session, out, n[0], n), "mst_session_state_save")
            return ffi.buffer(out, n[0])[:]

    def load_state(self, state: bytes) -> None:
        """Replace the context with a saved state of the same model.

        Raises:
            BadFormatError (truncated, not a state), ChecksumError (altered),
            InvalidArgumentError (another model), ContextFullError (too long); the session
            is left as it was.
        """
        with self._call() as session:
            check(lib.mst_session_state_load(session, ffi.from_buffer(state), len(state)), "mst_session_state_load")

    def save_state_file(self, path: str) -> None:
        """:meth:`save_state` into a file (written whole or not at all)."""
        with self._call() as session:
            check(lib.mst_session_state_save_file(session, str(path).encode()), "mst_session_state_save_file")

    def load_state_file(self, path: str) -> None:
        """:meth:`load_state` from a file."""
        with self._call() as session:
            check(lib.mst_session_state_load_file(session, str(path).encode()), "mst_session_state_load_file")

    # ---- sampling, generation ----------------------------------------------------------

    def sample(self, **sampler: Any) -> int:
        """Sample the next token from the current logits (does not evaluate it).

        Keywords are fields of ``mst_sampler_params``: ``temperature`` (0 = greedy),
        ``top_k``, ``top_p``, ``min_p``, ``repetition_penalty``, ``repetition_last_n``.
        """
        keep: list[Any] = []
        params = ffi.new("mst_sampler_params *")
        lib.mst_sampler_default_params(params)
        fill(params, "mst_sampler_params", sampler, keep, "sample")
        token = ffi.new("int32_t *")
        with self._call() as session:
            check(lib.mst_session_sample(session, params, token), "mst_session_sample")
        return int(token[0])

    def generate(self, prompt: str | Sequence[int] | np.ndarray = (), **options: Any) -> Generation:
        """Evaluate ``prompt`` and generate; iterate the result for text pieces.

        Args:
            prompt: text (tokenized with the model's tokenizer) or token ids; empty to
                continue from the current context.
            **options: ``max_tokens`` (default 256), ``stop`` (a string or a list of them),
                ``ignore_eos``, and the sampler's fields (see :meth:`sample`).

        The session is busy until the generation ends or is closed.
        """
        return self._start_generation(prompt, options, close_session=False)

    def _start_generation(self, prompt: str | Sequence[int] | np.ndarray, options: dict[str, Any],
                          close_session: bool) -> Generation:
        """Start a :class:`Generation`; with ``close_session`` it closes this session when done."""
        if isinstance(prompt, (str, bytes)):
            prompt = self.tokenize(prompt)
        ids, n = _text.token_array(prompt)
        keep: list[Any] = [ids]
        params = generate_params(options, keep)
        handle = self._acquire_locked()
        with self._generation_lock:
            try:
                generation = Generation(self, handle, ids, n, params, keep, close_session)
            except BaseException:  # no worker started: give back what it would have released
                handle.release()
                self._unlock_busy()
                raise
            self._generation = weakref.ref(generation)
        return generation

    def _end_generation(self) -> None:
        """Called by the generation's worker when it is done with the session."""
        with self._generation_lock:
            self._generation = None
        self._unlock_busy()

    # ---- text ---------------------------------------------------------------------------

    def tokenize(self, text: str | bytes) -> list[int]:
        """Encode text with the model's tokenizer (works after the model was closed)."""
        with self._hold() as handle:
            assert handle.parent is not None
            return _text.tokenize(handle.parent.pointer, text)

    def detokenize(self, tokens: Sequence[int] | np.ndarray) -> str:
        """Decode ids with the model's tokenizer (works after the model was closed)."""
        with self._hold() as handle:
            assert handle.parent is not None
            return _text.detokenize_bytes(handle.parent.pointer, tokens).decode("utf-8", "replace")

    # ---- the expert budget, statistics ---------------------------------------------------

    def set_expert_budget(self, **budget: Any) -> None:
        """Set ``mst_expert_budget`` fields (``experts_per_token``, ``min_weight``, ``mass``,
        ``cache_skip_below``, ``cache_substitute``) from the defaults; applies from the next evaluation."""
        keep: list[Any] = []
        params = ffi.new("mst_expert_budget *")
        lib.mst_expert_budget_default(params)
        fill(params, "mst_expert_budget", budget, keep, "set_expert_budget")
        with self._call() as session:
            check(lib.mst_session_set_expert_budget(session, params), "mst_session_set_expert_budget")

    def expert_budget(self) -> dict[str, Any]:
        """The session's ``mst_expert_budget`` as a dict."""
        budget = new_sized("mst_expert_budget")
        with self._call() as session:
            check(lib.mst_session_get_expert_budget(session, budget), "mst_session_get_expert_budget")
        return to_dict(budget, "mst_expert_budget")

    def stats(self) -> dict[str, Any]:
        """``mst_session_stats`` as a dict: token counts, speeds, expert reads and hits."""
        stats = new_sized("mst_session_stats")
        with self._call() as session:
            check(lib.mst_session_get_stats(session, stats), "mst_session_get_stats")
        return to_dict(stats, "mst_session_stats")


def eval_batch(sessions: Sequence[Session], tokens: Sequence[Sequence[int] | np.ndarray]) -> None:
    """Append ``tokens[i]`` to ``sessions[i]`` for every i, evaluated together
    (``mst_sessions_eval_batch``): the sessions' rows share each layer's products, and each
    routed expert runs once over every row routed to it, so one read of an expert serves
    all of them. Each session ends as ``sessions[i].eval(tokens[i])`` would leave it
    (within float reassociation).

    Raises:
        InvalidArgumentError: sessions of different models, a session twice, an empty or
            bad token list; ContextFullError: a session whose tokens overflow its n_ctx.
            The message names the session by index; every session is left as it was.
    """
    if len(sessions) != len(tokens):
        raise ValueError(f"{len(sessions)} sessions but {len(tokens)} token lists")
    arrays = [_text.token_array(t) for t in tokens]
    with contextlib.ExitStack() as held:
        # A session listed twice is entered once, so that the library names the mistake.
        entered: dict[int, Any] = {}
        pointers = []
        for s in sessions:
            if id(s) not in entered:
                entered[id(s)] = held.enter_context(s._call())
            pointers.append(entered[id(s)])
        c_sessions = ffi.new("mst_session *[]", pointers)
        c_tokens = ffi.new("const int32_t *[]", [a for a, _ in arrays])
        c_counts = ffi.new("size_t[]", [n for _, n in arrays])
        check(lib.mst_sessions_eval_batch(c_sessions, c_tokens, c_counts, len(sessions)), "mst_sessions_eval_batch")
