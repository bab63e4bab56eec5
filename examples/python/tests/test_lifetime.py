"""Handles are freed in the right order whatever order Python closes or collects them in."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

import moestream
from conftest import child_env


def test_session_outlives_a_closed_model(tiny_path: Path) -> None:
    model = moestream.Model(tiny_path, backend="cpu")
    session = model.session()
    model.close()
    assert model.closed and not session.closed
    with pytest.raises(moestream.ClosedError):
        model.info()
    with pytest.raises(moestream.ClosedError):
        model.session()
    # The session holds the C model: it keeps working, tokenizer included.
    ids = session.tokenize("Hello world")
    session.eval(ids)
    assert session.logits().shape == (1024,)
    assert session.detokenize(ids) == "Hello world"
    text = session.generate(max_tokens=4, temperature=0).text()
    assert isinstance(text, str)
    session.close()
    session.close()  # idempotent
    with pytest.raises(moestream.ClosedError):
        session.eval([1])
    with pytest.raises(moestream.ClosedError):
        session.tokenize("x")


def test_model_collected_before_its_session(tiny_path: Path) -> None:
    session = moestream.Model(tiny_path, backend="cpu").session()
    gc.collect()  # the Model object is gone; its C model is not
    session.eval([5, 6, 7])
    assert session.n_past == 3
    del session
    gc.collect()


def test_context_managers_nest(tiny_path: Path) -> None:
    with moestream.Model(tiny_path, backend="cpu") as model:
        with model.session() as first, model.session() as second:
            first.eval([5])
            second.eval([6, 7])
            assert (first.n_past, second.n_past) == (1, 2)
        assert first.closed and second.closed and not model.closed
    assert model.closed


def test_closing_a_session_stops_its_generation(tiny_model: moestream.Model) -> None:
    session = tiny_model.session()
    generation = session.generate("Hello", max_tokens=100, ignore_eos=True)
    next(generation)
    session.close()
    assert not generation.running
    assert list(generation) == []
    assert generation.stop_reason == moestream.StopReason.CALLBACK


def test_model_closed_during_generation(tiny_path: Path) -> None:
    model = moestream.Model(tiny_path, backend="cpu")
    generation = model.generate("Hello", max_tokens=12, temperature=0, ignore_eos=True)
    first = next(generation)
    model.close()
    rest = generation.text()
    assert len(generation.tokens) == 12
    assert first + rest == model_text(tiny_path, generation.tokens)


def model_text(path: Path, tokens: list[int]) -> str:
    with moestream.Model(path, backend="cpu") as model:
        return model.detokenize(tokens)


def test_model_generate_closes_its_session(tiny_model: moestream.Model) -> None:
    generation = tiny_model.generate("Hello", max_tokens=3)
    generation.text()
    assert generation._session.closed
    stopped = tiny_model.generate("Hello", max_tokens=30)
    next(stopped)
    stopped.close()
    assert stopped._session.closed


def test_unclosed_objects_at_exit_do_not_crash(tmp_path: Path, tiny_path: Path) -> None:
    # Objects left open, and a generation left suspended, when the interpreter exits:
    # the finalizers run at exit and must not free anything still in use.
    import subprocess
    import sys

    script = (
        "import moestream, sys\n"
        f"m = moestream.Model({str(tiny_path)!r}, backend='cpu')\n"
        "s = m.session()\n"
        "g = s.generate('Hello', max_tokens=100, ignore_eos=True)\n"
        "next(g)\n"
        "m2 = moestream.Model(" + repr(str(tiny_path)) + ", backend='cpu')\n"
        "s2 = m2.session(); m2.close()\n"
        "print('done')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env=child_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"

