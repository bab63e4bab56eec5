"""Packed files written from Python load and generate; progress and cancelling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import moestream
from conftest import DATA


def test_convert_then_load(tmp_path: Path, tiny_path: Path) -> None:
    target = tmp_path / "tiny.mst"
    calls: list[tuple[int, int]] = []
    report = moestream.convert(tiny_path, target, progress=lambda done, total: calls.append((done, total)),
                               experts="q8", n_threads=1)
    assert target.stat().st_size == report["file_bytes"] > 0
    assert report["expert_blobs"] > 0 and report["seconds"] >= 0
    assert calls and calls[-1][0] == calls[-1][1]
    with moestream.Model(target, backend="cpu") as packed, moestream.Model(tiny_path, backend="cpu") as source:
        assert packed.info()["n_experts"] == source.info()["n_experts"]
        prompt = source.tokenize("Hello world")
        with packed.session() as a, source.session() as b:
            a.eval(prompt)
            b.eval(prompt)
            # q8 experts: close to the source's logits, not equal.
            got, want = a.logits(), b.logits()
            assert np.linalg.norm(got - want) / np.linalg.norm(want) < 0.05
    with pytest.raises(moestream.MoestreamIOError):  # exists, and force is not set
        moestream.convert(tiny_path, target)


def test_cancel_and_progress_errors(tmp_path: Path, tiny_path: Path) -> None:
    with pytest.raises(moestream.CancelledError):
        moestream.convert(tiny_path, tmp_path / "a.mst", progress=lambda done, total: True)
    assert not (tmp_path / "a.mst").exists()

    def broken(done: int, total: int) -> None:
        raise KeyError("from the progress function")

    with pytest.raises(KeyError):
        moestream.convert(tiny_path, tmp_path / "b.mst", progress=broken)
    with pytest.raises(TypeError):
        moestream.convert(tiny_path, tmp_path / "c.mst", progress_user_data=1)


def test_synthesize(tmp_path: Path) -> None:
    target = tmp_path / "synth.mst"
    report = moestream.synthesize(DATA / "mixtral_tiny" / "config.json", target, layers=1, seed=3, n_threads=1)
    assert report["layers"] == 1 and report["file_bytes"] == target.stat().st_size
    with moestream.Model(target, backend="cpu") as model:
        assert model.info()["n_layers"] == 1
        generation = model.generate("ab", max_tokens=3, ignore_eos=True)
        assert isinstance(generation.text(), str) and len(generation.tokens) == 3
