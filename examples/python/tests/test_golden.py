"""Reference logits of every test dataset, through Python, within the C++ suite's bounds.

tests/golden/golden_model_suite.h holds the C++ library to a relative Frobenius error of
1e-3 over all logits and 5e-3 on any one position, against transformers' references
(tests/data/*/golden.safetensors). The same numbers are asked of the Python path here:
prefill (all_logits), token-by-token decode, greedy ids through generate(), and the
lowered expert budgets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import moestream
from conftest import DATA, GOLDEN_DATASETS
from safetensors_io import read_safetensors

LOGIT_TOLERANCE = 1e-3
ROW_TOLERANCE = 5e-3


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """||got - want|| / ||want|| in float64, as tests/support/golden.cpp computes it."""
    got64, want64 = got.astype(np.float64), want.astype(np.float64)
    return float(np.linalg.norm(got64 - want64)) / max(float(np.linalg.norm(want64)), 1e-30)


def assert_matches(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, what
    assert relative_error(got, want) < LOGIT_TOLERANCE, what
    worst_row = max(relative_error(got[row], want[row]) for row in range(want.shape[0]))
    assert worst_row < ROW_TOLERANCE, what


@pytest.fixture(scope="module", params=GOLDEN_DATASETS)
def dataset(request: pytest.FixtureRequest) -> tuple[Path, dict[str, np.ndarray]]:
    path = DATA / request.param
    return path, read_safetensors(path / "golden.safetensors")


def test_there_are_datasets() -> None:
    # Guards the parametrisation: an empty glob would silently run nothing.
    assert len(GOLDEN_DATASETS) >= 10


@pytest.mark.parametrize("n_batch", [0, 1, 5])
def test_prefill_logits_match_reference(dataset: tuple[Path, dict[str, np.ndarray]], n_batch: int) -> None:
    path, golden = dataset
    ids = golden["input_ids"]  # an int32 array: passed to the library without a copy
    with moestream.Model(path, backend="cpu") as model, model.session(all_logits=True, n_batch=n_batch) as session:
        session.eval(ids)
        logits = session.all_logits()
        assert_matches(logits, golden["logits"], f"{path.name} n_batch={n_batch}")
        # logits() is the last row of the same evaluation.
        np.testing.assert_array_equal(session.logits(), logits[-1])


def test_greedy_ids_match_reference(dataset: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, golden = dataset
    want = golden["greedy_ids"].tolist()
    with moestream.Model(path, backend="cpu") as model, model.session() as session:
        generation = session.generate(golden["input_ids"].tolist(), max_tokens=len(want), temperature=0,
                                      ignore_eos=True)
        text = generation.text()
        assert generation.tokens == want
        assert generation.stop_reason == moestream.StopReason.MAX_TOKENS
        assert text == model.detokenize(want)


def test_decode_logits_match_reference(dataset: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, golden = dataset
    if "logits_decode" not in golden:
        pytest.skip(f"{path.name} has no logits_decode")
    with moestream.Model(path, backend="cpu") as model, model.session() as session:
        session.eval(golden["input_ids"])
        rows = []
        for token in golden["greedy_ids"].tolist():
            rows.append(session.logits())
            session.eval([token])
        assert_matches(np.stack(rows), golden["logits_decode"], f"{path.name} decode")


def test_lower_expert_budgets_match_reference(dataset: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, golden = dataset
    budgets = {int(name[len("logits_topk"):]): golden[name] for name in golden if name.startswith("logits_topk")}
    if not budgets:
        pytest.skip(f"{path.name} has no logits_topk*")
    for k, want in budgets.items():
        # As a model option ...
        with moestream.Model(path, backend="cpu", experts_per_token=k) as model:
            assert model.info()["experts_per_token"] == k
            with model.session(all_logits=True) as session:
                session.eval(golden["input_ids"])
                assert_matches(session.all_logits(), want, f"{path.name} top-{k}")
        # ... and as a session's budget over a model at its own top-k.
        with moestream.Model(path, backend="cpu") as model, model.session(all_logits=True) as session:
            assert model.info()["experts_per_token"] != k
            session.set_expert_budget(experts_per_token=k)
            assert session.expert_budget()["experts_per_token"] == k
            session.eval(golden["input_ids"])
            assert_matches(session.all_logits(), want, f"{path.name} session top-{k}")
