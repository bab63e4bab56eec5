"""Failures become exceptions carrying the status and mst_last_error(); nothing crashes."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

import moestream
from moestream import Status


def test_missing_model_is_an_io_error(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_model"
    with pytest.raises(moestream.MoestreamIOError) as caught:
        moestream.Model(missing)
    error = caught.value
    assert isinstance(error, OSError) and isinstance(error, moestream.MoestreamError)
    assert error.status == Status.ERR_IO
    assert error.status_name == moestream.errors.status_name(Status.ERR_IO) != ""
    assert str(missing) in error.message  # mst_last_error() names the path
    assert error.function == "mst_model_load"
    assert error.message in str(error)


def test_malformed_config_is_a_format_error(tmp_path: Path, tiny_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{ not json")
    with pytest.raises(moestream.MoestreamError) as caught:
        moestream.Model(broken)
    assert caught.value.status in (Status.ERR_BAD_FORMAT, Status.ERR_IO)
    assert caught.value.message


def test_unknown_and_mistyped_options(tiny_path: Path, tiny_model: moestream.Model) -> None:
    with pytest.raises(TypeError, match="expert_cache_bytes"):  # the message lists the valid names
        moestream.Model(tiny_path, expert_cache_mb=1)
    with pytest.raises(TypeError):
        moestream.Model(tiny_path, backend=3)
    with pytest.raises(TypeError, match="struct_size"):
        moestream.Model(tiny_path, struct_size=4)
    with pytest.raises(TypeError):
        tiny_model.session(context=10)
    with pytest.raises(TypeError, match="temperature"):
        tiny_model.generate("hi", temprature=0)


def test_bad_option_values_raise_with_the_library_message(tiny_path: Path) -> None:
    with pytest.raises(moestream.MoestreamError) as caught:
        moestream.Model(tiny_path, storage="floppy")
    assert caught.value.status == Status.ERR_INVALID_ARGUMENT
    assert "floppy" in caught.value.message
    with pytest.raises(moestream.InvalidArgumentError):
        moestream.Model(tiny_path, prefetch=-1)


def test_bad_token_leaves_the_context_unchanged(tiny_model: moestream.Model) -> None:
    with tiny_model.session() as session:
        session.eval([1, 2, 3])
        with pytest.raises(moestream.InvalidArgumentError) as caught:
            session.eval([4, tiny_model.n_vocab + 7])
        assert caught.value.status == Status.ERR_INVALID_ARGUMENT and caught.value.message
        assert session.n_past == 3
        with pytest.raises(OverflowError):  # not even representable as int32_t
            session.eval([2**40])


def test_context_full(tiny_model: moestream.Model) -> None:
    with tiny_model.session(n_ctx=8) as session:
        session.eval(list(range(5, 13)))
        with pytest.raises(moestream.ContextFullError) as caught:
            session.eval([5])
        assert caught.value.status == Status.ERR_CONTEXT_FULL
        assert session.n_past == 8


def test_no_logits_before_an_evaluation(tiny_model: moestream.Model) -> None:
    with tiny_model.session(all_logits=True) as session:
        calls: list[Callable[[], object]] = [session.logits, session.all_logits, session.sample]
        for call in calls:
            with pytest.raises(moestream.InvalidArgumentError, match="evaluate"):
                call()


def test_all_logits_needs_the_option(tiny_model: moestream.Model) -> None:
    with tiny_model.session() as session:
        session.eval([5, 6])
        with pytest.raises(moestream.InvalidArgumentError, match="all_logits"):
            session.all_logits()


def test_generation_errors_come_from_the_worker_thread(tiny_model: moestream.Model) -> None:
    # The failure happens on the generation's worker thread; its mst_last_error() must
    # still reach the exception, which next() raises on the caller's thread.
    with tiny_model.session() as session:
        generation = session.generate("hello", max_tokens=-1)
        with pytest.raises(moestream.InvalidArgumentError) as caught:
            next(generation)
        assert "max_tokens" in caught.value.message
        assert not generation.running
        with pytest.raises(moestream.InvalidArgumentError):
            session.generate("hello", top_p=3.0).text()
        session.eval([5])  # the session is free again after the errors
    with tiny_model.session() as empty, pytest.raises(moestream.InvalidArgumentError, match="prompt"):
        empty.generate([]).text()


def test_out_of_range_token_text_and_detokenize(tiny_model: moestream.Model) -> None:
    assert tiny_model.token_text(-1) is None
    assert tiny_model.token_text(tiny_model.n_vocab) is None
    assert tiny_model.token_text(5) is not None
    with pytest.raises(moestream.InvalidArgumentError):
        tiny_model.detokenize([tiny_model.n_vocab])


def test_statuses_come_from_the_header() -> None:
    assert Status.OK == moestream.lib.MST_OK
    for status in Status:
        assert status.name.startswith(("OK", "ERR_"))
    error = moestream.errors.error_for(int(Status.ERR_CHECKSUM), "f", "why")
    assert isinstance(error, moestream.ChecksumError) and error.message == "why"
