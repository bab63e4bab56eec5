"""Shared fixtures: where the checkout's test data is, and a loaded tiny model.

The tests import the ``moestream`` found on ``sys.path`` (scripts/test_python.sh puts an
installed copy first); run from the checkout without it, the source package is used and
``MOESTREAM_LIBRARY`` (else the checkout's build/) names the library.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
CHECKOUT = PACKAGE_ROOT.parents[1]
DATA = CHECKOUT / "tests" / "data"

try:
    import moestream  # noqa: F401
except ImportError:
    sys.path.insert(0, str(PACKAGE_ROOT))
    built = CHECKOUT / "build" / "lib" / "libmoestream.so.0"
    if "MOESTREAM_LIBRARY" not in os.environ and built.exists():
        os.environ["MOESTREAM_LIBRARY"] = str(built)
    import moestream  # noqa: F401

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
