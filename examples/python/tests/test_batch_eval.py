"""moestream.eval_batch: sessions evaluated together end as each evaluated alone, and bad
batches raise the named errors, leaving every session as it was."""

from __future__ import annotations

import numpy as np
import pytest

import moestream

PROMPTS = [[11, 42, 7], [99, 3, 64, 5, 18], [21, 8]]


def test_batch_equals_alone(tiny_model):
    alone = [moestream.Session(tiny_model, n_ctx=64) for _ in PROMPTS]
    together = [moestream.Session(tiny_model, n_ctx=64) for _ in PROMPTS]
    moestream.eval_batch(together, PROMPTS)
    for s, p in zip(alone, PROMPTS):
        s.eval(p)
    for step in range(3):
        next_tokens = []
        for a, b in zip(alone, together):
            np.testing.assert_allclose(b.logits(), a.logits(), rtol=0, atol=1e-5 * np.abs(a.logits()).max())
            next_tokens.append([int(np.argmax(a.logits()))])
        moestream.eval_batch(together, next_tokens)
        for s, t in zip(alone, next_tokens):
            s.eval(t)
    assert [s.n_past for s in together] == [s.n_past for s in alone]


def test_bad_batches_name_the_session(tiny_model):
    a = moestream.Session(tiny_model, n_ctx=8)
    b = moestream.Session(tiny_model, n_ctx=8)
    with pytest.raises(moestream.InvalidArgumentError, match=r"sessions\[1\] is sessions\[0\] again"):
        moestream.eval_batch([a, a], [[1], [2]])
    with pytest.raises(moestream.ContextFullError, match="session 1 of the batch"):
        moestream.eval_batch([a, b], [[1], list(range(9))])
    assert a.n_past == 0 and b.n_past == 0
