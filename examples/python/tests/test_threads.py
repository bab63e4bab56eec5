"""Sessions on several Python threads at once; one session entered twice; the GIL."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import moestream

PROMPT = "<|im_start|>user\nExplain mixture of experts to a five year old.<|im_end|>\n<|im_start|>assistant\n"


def run_one(model: moestream.Model, seed: int) -> tuple[np.ndarray, list[int]]:
    """Prefill logits and 12 sampled tokens of one session (its own on this thread)."""
    with model.session(seed=seed) as session:
        session.eval(model.tokenize(PROMPT))
        logits = session.logits()
        generation = session.generate(max_tokens=12, temperature=0.9, ignore_eos=True)
        generation.text()
        return logits, generation.tokens


def test_sessions_on_many_threads_match_one_thread(tiny_path: Path) -> None:
    with moestream.Model(tiny_path, backend="cpu", n_threads=1, expert_cache_bytes=64 << 10) as model:
        seeds = list(range(8))
        alone = [run_one(model, seed) for seed in seeds]
        with ThreadPoolExecutor(max_workers=4) as pool:
            together = list(pool.map(lambda seed: run_one(model, seed), seeds * 3))
    for i, (logits, tokens) in enumerate(together):
        want_logits, want_tokens = alone[i % len(seeds)]
        np.testing.assert_array_equal(logits, want_logits)
        assert tokens == want_tokens


def test_one_session_from_two_threads_is_busy_not_a_race(tiny_model: moestream.Model) -> None:
    # Sessions are not thread-safe; the binding turns a second entry into BusyError.
    session = tiny_model.session()
    counts = {"ok": 0, "busy": 0}
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(150):
            try:
                session.eval([5])
                outcome = "ok"
            except moestream.BusyError as error:
                assert error.message
                outcome = "busy"
            with lock:
                counts[outcome] += 1

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counts["ok"] + counts["busy"] == 450
    assert session.n_past == counts["ok"]
    session.close()


def test_evaluation_releases_the_gil(tiny_path: Path) -> None:
    # While one thread is inside a long mst_session_eval, another keeps running Python.
    # Were the GIL held, the ticker would stall for the whole call.
    with moestream.Model(tiny_path, backend="cpu", n_threads=1) as model:
        ids = (np.arange(2000, dtype=np.int32) % 1000) + 5
        with model.session(n_ctx=2048) as session:
            started = time.perf_counter()
            session.eval(ids)
            duration = time.perf_counter() - started
            session.reset()

            ticks: list[float] = []
            done = threading.Event()

            def evaluate() -> None:
                session.eval(ids)
                done.set()

            worker = threading.Thread(target=evaluate)
            worker.start()
            while not done.is_set():
                ticks.append(time.perf_counter())
                time.sleep(0.001)
            worker.join()
    print(f"eval of 2000 tokens: {duration:.3f} s; longest pause of the ticker: {np.diff(ticks).max():.4f} s")
    assert duration > 0.05, "the evaluation is too short to tell"
    gaps = np.diff(ticks)
    assert len(ticks) > 10
    assert gaps.max() < max(duration / 2, 0.02)
