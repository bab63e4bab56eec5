"""The library's log lines reach Python's logging, and go back to stderr on request."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import moestream


def test_log_lines_reach_the_logger(tiny_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="moestream")
    moestream.log_to_python(moestream.LogLevel.INFO)
    try:
        with moestream.Model(tiny_path, backend="cpu"):
            pass
    finally:
        moestream.log_to_stderr()
    loaded = [r for r in caplog.records if r.name == "moestream" and "loaded" in r.getMessage()]
    assert loaded and loaded[0].levelno == logging.INFO
    assert str(tiny_path) in loaded[0].getMessage()
    caplog.clear()
    with moestream.Model(tiny_path, backend="cpu"):
        pass
    assert not [r for r in caplog.records if r.name == "moestream"]
