"""Session state save/restore and trimming from Python: a restored session continues as the
original, a trimmed one as a fresh evaluation, and bad states raise the named errors."""

from __future__ import annotations

import numpy as np
import pytest

import moestream

PROMPT = [11, 42, 7, 99, 3, 64]
MORE = [21, 8, 77]


def test_restore_continues_bit_for_bit(tiny_model, tmp_path):
    original = moestream.Session(tiny_model, n_ctx=64)
    original.eval(PROMPT)
    state = original.save_state()
    restored = moestream.Session(tiny_model, n_ctx=32)
    restored.load_state(state)
    assert restored.n_past == len(PROMPT)
    original.eval(MORE)
    restored.eval(MORE)
    np.testing.assert_array_equal(restored.logits(), original.logits())

    path = tmp_path / "s.state"
    original.save_state_file(path)
    from_file = moestream.Session(tiny_model, n_ctx=64)
    from_file.load_state_file(path)
    np.testing.assert_array_equal(from_file.logits(), original.logits())


def test_trim_then_evaluate_equals_fresh(tiny_model):
    # The kept prefix in the same batch as the fresh session's (a token's keys may differ
    # in the last bits with the batch it was computed in).
    trimmed = moestream.Session(tiny_model, n_ctx=64)
    trimmed.eval(PROMPT[:3])
    trimmed.eval(PROMPT[3:])
    trimmed.trim(3)
    assert trimmed.n_past == 3
    trimmed.eval(MORE)
    fresh = moestream.Session(tiny_model, n_ctx=64)
    fresh.eval(PROMPT[:3])
    fresh.eval(MORE)
    np.testing.assert_array_equal(trimmed.logits(), fresh.logits())
    with pytest.raises(moestream.InvalidArgumentError):
        trimmed.trim(100)


def test_bad_states_are_refused(tiny_model):
    session = moestream.Session(tiny_model, n_ctx=64)
    session.eval(PROMPT)
    state = session.save_state()
    with pytest.raises(moestream.BadFormatError, match="truncated"):
        session.load_state(state[:-3])
    altered = bytearray(state)
    altered[len(altered) // 2] ^= 1
    with pytest.raises(moestream.ChecksumError):
        session.load_state(bytes(altered))
    assert session.n_past == len(PROMPT)
