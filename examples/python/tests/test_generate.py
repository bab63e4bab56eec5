"""Generation as an iterator of text pieces, sampling, statistics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import moestream
from moestream import StopReason

PROMPT = "<|im_start|>user\nExplain mixture of experts to a five year old.<|im_end|>\n<|im_start|>assistant\n"


def greedy(model: moestream.Model, **options: Any) -> moestream.Generation:
    generation = model.generate(PROMPT, temperature=0, ignore_eos=True, **options)
    generation.pieces = list(generation)  # type: ignore[attr-defined]
    return generation


def test_pieces_join_to_the_detokenized_tokens(tiny_model: moestream.Model) -> None:
    generation = greedy(tiny_model, max_tokens=24)
    pieces = generation.pieces  # type: ignore[attr-defined]
    assert len(generation.tokens) == 24
    assert generation.stop_reason == StopReason.MAX_TOKENS
    assert all(isinstance(p, str) and p for p in pieces)
    assert "".join(pieces) == tiny_model.detokenize(generation.tokens)
    # Greedy decoding is deterministic.
    assert greedy(tiny_model, max_tokens=24).tokens == generation.tokens


def test_stop_string_ends_generation_before_it(tiny_model: moestream.Model) -> None:
    full = "".join(greedy(tiny_model, max_tokens=24).pieces)  # type: ignore[attr-defined]
    stop = full[len(full) // 2:len(full) // 2 + 3]
    assert len(stop) == 3
    generation = greedy(tiny_model, max_tokens=24, stop=[stop, "never appears \x01"])
    text = "".join(generation.pieces)  # type: ignore[attr-defined]
    assert generation.stop_reason == StopReason.STRING
    assert stop not in text
    assert text == full[:full.index(stop)]


def test_closing_early_frees_the_session(tiny_model: moestream.Model) -> None:
    with tiny_model.session() as session:
        with session.generate(PROMPT, max_tokens=50, temperature=0, ignore_eos=True) as generation:
            first = next(generation)
            assert first
            # The session belongs to the generation while it runs.
            with pytest.raises(moestream.BusyError):
                session.eval([5])
            with pytest.raises(moestream.BusyError):
                session.generate(PROMPT)
        assert not generation.running
        assert generation.stop_reason == StopReason.CALLBACK
        assert len(generation.tokens) < 50
        n_past = session.n_past
        session.eval([5])
        assert session.n_past == n_past + 1
        # A dropped generation stops too, and frees the session.
        dropped = session.generate([6, 7], max_tokens=50)
        next(dropped)
        del dropped
        session.eval([8])


def test_generation_continues_the_context(tiny_model: moestream.Model) -> None:
    with tiny_model.session() as session:
        prompt = tiny_model.tokenize(PROMPT)
        first = session.generate(prompt, max_tokens=4, temperature=0, ignore_eos=True)
        first.text()
        assert session.n_past == len(prompt) + 4  # every generated token is evaluated
        more = session.generate(max_tokens=4, temperature=0, ignore_eos=True)
        more.text()
        all_at_once = greedy(tiny_model, max_tokens=8)
        assert first.tokens + more.tokens == all_at_once.tokens


def test_seeded_sampling_is_reproducible(tiny_model: moestream.Model) -> None:
    def sampled(seed: int) -> list[int]:
        generation = tiny_model.generate(PROMPT, session={"seed": seed}, max_tokens=20, temperature=1.0,
                                         top_k=0, top_p=1.0, min_p=0.0, ignore_eos=True)
        generation.text()
        return generation.tokens

    assert sampled(1) == sampled(1)
    assert sampled(1) != sampled(2)


def test_sample_greedy_is_the_argmax(tiny_model: moestream.Model) -> None:
    with tiny_model.session() as session:
        session.eval(np.array(tiny_model.tokenize(PROMPT), dtype=np.int32))
        logits = session.logits()
        assert logits.dtype == np.float32 and logits.shape == (tiny_model.n_vocab,)
        assert session.sample(temperature=0) == int(np.argmax(logits))
        assert session.n_past == len(tiny_model.tokenize(PROMPT))  # sample() does not evaluate


def test_statistics_are_dicts(tiny_model: moestream.Model) -> None:
    with tiny_model.session() as session:
        prompt = tiny_model.tokenize(PROMPT)
        session.generate(prompt, max_tokens=5, temperature=0, ignore_eos=True).text()
        stats = session.stats()
        assert stats["n_prompt_tokens"] == len(prompt)
        assert stats["n_decode_tokens"] == 5
        assert stats["prompt_tokens_per_second"] > 0
        assert stats["expert_cache_hits"] + stats["expert_cache_misses"] > 0
        assert "struct_size" not in stats
    memory = tiny_model.memory_stats()
    assert memory["resident_weight_bytes"] == tiny_model.info()["resident_bytes"] > 0
    cache = tiny_model.cache_stats()
    assert cache["hits"] + cache["misses"] > 0
    assert tiny_model.cache_stats(layer=1)["bytes_held"] == 0  # per layer: 0 by definition


def test_tokenizer_round_trip(tiny_model: moestream.Model) -> None:
    text = "Hello, wörld! <|im_end|> 123"
    ids = tiny_model.tokenize(text)
    assert ids and all(isinstance(i, int) for i in ids)
    assert tiny_model.detokenize(ids) == text
    assert tiny_model.detokenize_bytes(ids) == text.encode()
    assert tiny_model.tokenize(text.encode()) == ids
    assert tiny_model.tokenize("") == []
    long_text = "mixture of experts " * 500  # past the first buffer guess
    assert tiny_model.detokenize(tiny_model.tokenize(long_text)) == long_text
