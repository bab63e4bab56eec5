"""Shared fixtures: where the checkout's test data is, and a loaded tiny model.

The tests import the ``moestream`` found on ``sys.path`` (scripts/test_python.sh puts an
installed copy first); run from the checkout without it, the source package is used, with
the checkout's build/ library unless ``MOESTREAM_LIBRARY`` names another.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
CHECKOUT = PACKAGE_ROOT.parents[1]
DATA = CHECKOUT / "tests" / "data"

if importlib.util.find_spec("moestream") is None:
    sys.path.insert(0, str(PACKAGE_ROOT))
import moestream  # noqa: E402

TINY = DATA / "qwen3_moe_tiny"
# Every test dataset with reference logits from transformers.
GOLDEN_DATASETS = sorted(p.parent.name for p in DATA.glob("*/golden.safetensors"))


@pytest.fixture(scope="session")
def tiny_path() -> Path:
    """The tiny random-weight Qwen3-MoE checkpoint of the C++ tests."""
    assert (TINY / "config.json").is_file(), f"{TINY} is missing: the checkout's test data must be present"
    return TINY


@pytest.fixture(scope="module")
def tiny_model(tiny_path: Path) -> Iterator["moestream.Model"]:
    """The tiny model on the CPU backend, shared by a module's tests."""
    with moestream.Model(tiny_path, backend="cpu", n_threads=1) as model:
        yield model


def child_env(**overrides: str | None) -> dict[str, str]:
    """The environment for a child Python that imports the same moestream as the tests.

    ``overrides`` set variables, or remove them when None.
    """
    env = dict(os.environ)
    package_root = str(Path(moestream.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in [package_root, env.get("PYTHONPATH", "")] if p)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env
