"""The shared decoding loop: KV prefix reuse, cancellation, stop rules, budgets, streaming."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mochi_model import generation
from mochi_model.backends.base import GenerationRequest
from mochi_model.engine import InferenceEngine
from mochi_model.generation import Generator
from mochi_model.types import CancelToken
from tests.unit.model.helpers import tiny_backend
from tests.unit.model.test_time_budget import EOS, Clock, ScriptedBackend

SOURCE = '''class Config:
    def __init__(self, path):
        self.path = path
        self.values = {}

    def load(self):
        with open(self.path) as f:
            for line in f:
                key, _, value = line.partition("=")
'''


@pytest.fixture
def backend(tiny_model_dir):
    return tiny_backend(tiny_model_dir)


def _typing_prompts(backend):
    """Prompts as a user types the last line one character at a time, then edits earlier code."""
    head, last = SOURCE.rsplit("\n", 2)[0], "        return self.values"
    prompts = [f"<|fim_prefix|>{head}\n{last[:i]}<|fim_suffix|>\n\nlogger = 1\n<|fim_middle|>" for i in range(8, 26, 3)]
    prompts.append(prompts[-1].replace("self.path = path", "self.path = str(path)"))
    return [backend.encode(p) for p in prompts]


def test_kv_reuse_gives_exactly_the_tokens_of_a_fresh_run(backend):
    reusing = Generator(backend)
    cached, lengths = [], []
    for ids in _typing_prompts(backend):
        lengths.append(len(ids))
        got = reusing.generate(ids, GenerationRequest(max_tokens=12))
        fresh = Generator(backend).generate(ids, GenerationRequest(max_tokens=12, reuse_cache=False))
        assert got.token_ids == fresh.token_ids
        assert got.text == fresh.text
        cached.append(got.cached_tokens)
    assert cached[0] == 0
    # Only the typed tail and the suffix were prefilled ...
    assert all(n - c <= 15 for c, n in zip(cached[1:-1], lengths[1:-1], strict=True))
    # ... and an edit near the top invalidates everything after it.
    assert cached[-1] < lengths[-1] // 2


def test_cancellation_stops_within_one_token(backend):
    cancel = CancelToken()
    seen = []

    def on_token(delta: str) -> None:
        seen.append(delta)
        cancel.cancel()

    ids = backend.encode("def add(a, b):")
    res = Generator(backend).generate(ids, GenerationRequest(max_tokens=40, cancel=cancel, on_token=on_token))
    assert res.finish_reason == "cancelled"
    assert len(res.token_ids) <= len(seen) + 1 <= 3


def test_a_request_cancelled_while_waiting_for_the_engine_returns_at_once(backend):
    engine = InferenceEngine(backend=backend)
    cancel = CancelToken()
    engine._lock.acquire()  # another request is running
    try:
        done = threading.Event()
        result = {}

        def worker() -> None:
            result["c"] = engine.complete_fim("x = ", "", cancel=cancel)
            done.set()

        threading.Thread(target=worker, daemon=True).start()
        cancel.cancel()
        assert done.wait(5)
    finally:
        engine._lock.release()
    assert result["c"].finish_reason == "cancelled" and result["c"].text == ""


def test_stop_sequence_cuts_the_text_before_it(backend):
    ids = backend.encode("class Config:\n    def")
    full = Generator(backend).generate(ids, GenerationRequest(max_tokens=24))
    assert len(full.text) > 8
    stop = full.text[4:7]
    streamed = []
    res = Generator(backend).generate(ids, GenerationRequest(max_tokens=24, stop=[stop], on_token=streamed.append))
    assert res.finish_reason == "stop"
    assert res.text == full.text[: full.text.find(stop)]
    assert "".join(streamed) == res.text  # a partial stop sequence is never streamed


def test_stop_token_ids_end_generation(backend):
    ids = backend.encode("def add(a, b):")
    full = Generator(backend).generate(ids, GenerationRequest(max_tokens=10))
    res = Generator(backend).generate(ids, GenerationRequest(max_tokens=10, stop_ids=[full.token_ids[3]]))
    assert res.finish_reason == "eos"
    assert res.token_ids == full.token_ids[: full.token_ids.index(full.token_ids[3])]


def test_time_budget_ends_generation(backend, monkeypatch):
    ticks = iter(range(10_000))
    monkeypatch.setattr(generation.time, "perf_counter", lambda: next(ticks) * 0.1)  # 100 ms per look at the clock
    ids = backend.encode("def add(a, b):")
    res = Generator(backend).generate(ids, GenerationRequest(max_tokens=50, time_budget_s=0.75))
    assert res.finish_reason == "time"
    assert 0 < len(res.token_ids) < 8
    zero = Generator(backend).generate(ids, GenerationRequest(max_tokens=50, time_budget_s=0.0))
    assert zero.finish_reason == "time" and zero.token_ids == []


def test_token_budget_and_streamed_text_agree(backend):
    streamed = []
    res = Generator(backend).generate(backend.encode("import logging\n"),
                                      GenerationRequest(max_tokens=7, on_token=streamed.append))
    assert res.finish_reason == "length" and len(res.token_ids) == 7
    assert "".join(streamed) == res.text


def test_sampling_with_a_seed_repeats_and_differs_from_greedy(backend):
    ids = backend.encode("def add(a, b):")
    greedy = Generator(backend).generate(ids, GenerationRequest(max_tokens=16))
    s1 = Generator(backend).generate(ids, GenerationRequest(max_tokens=16, temperature=1.5, seed=3))
    s2 = Generator(backend).generate(ids, GenerationRequest(max_tokens=16, temperature=1.5, seed=3))
    assert s1.token_ids == s2.token_ids
    assert s1.token_ids != greedy.token_ids


def test_time_budget_is_checked_during_prefill_and_the_prefilled_part_is_kept(backend, monkeypatch):
    ids = backend.encode(SOURCE * 3)
    gen = Generator(backend)
    gen.prefill_chunk = 8
    ticks = iter(range(10_000))
    monkeypatch.setattr(generation.time, "perf_counter", lambda: next(ticks) * 0.1)
    res = gen.generate(ids, GenerationRequest(max_tokens=5, time_budget_s=0.45))
    assert res.finish_reason == "time" and res.token_ids == []
    done = backend.cache_len(gen._cache)
    assert 8 <= done < len(ids) - 8  # stopped a few chunks in, not at the end
    monkeypatch.undo()
    # The next request (same prompt, no budget) re-uses the prefilled chunks and decodes like a fresh run.
    again = gen.generate(ids, GenerationRequest(max_tokens=5))
    fresh = Generator(backend).generate(ids, GenerationRequest(max_tokens=5, reuse_cache=False))
    assert again.cached_tokens == done
    assert again.token_ids == fresh.token_ids


def test_chunked_prefill_gives_the_tokens_of_one_pass(backend):
    ids = backend.encode(SOURCE * 2)
    chunked = Generator(backend)
    chunked.prefill_chunk = 7
    one = Generator(backend)
    one.prefill_chunk = 10_000
    assert chunked.generate(ids, GenerationRequest(max_tokens=10)).token_ids == \
        one.generate(ids, GenerationRequest(max_tokens=10)).token_ids


def test_lookup_draft_proposes_what_followed_the_latest_earlier_occurrence():
    from mochi_model.generation import lookup_draft

    history = [1, 2, 3, 9, 9, 1, 2, 3, 7, 8, 5, 1, 2, 3]
    assert lookup_draft(history, 3) == [7, 8, 5]  # the latest earlier "1 2 3" was followed by 7 8 5
    assert lookup_draft(history, 1) == [7]
    assert lookup_draft([4, 5, 6, 7], 4) == []  # the tail never occurred before
    assert lookup_draft([5, 6, 0, 5, 6], 4) == [0, 5, 6]  # may run into the tail itself
    assert lookup_draft([1, 1], 4) == []  # too short for a 2-gram to repeat


@pytest.mark.parametrize("prompt", ["def add(a, b):\n    return a + b\n\ndef add(a, b):\n",
                                    "import os\nimport os\nimport", SOURCE])
def test_prompt_lookup_gives_the_greedy_tokens_in_fewer_passes(backend, prompt):
    passes = []
    step, many = backend.step, backend.forward_many
    backend.step = lambda *a: passes.append(1) or step(*a)
    backend.forward_many = lambda *a: passes.append(len(a[0])) or many(*a)
    ids = backend.encode(prompt)
    plain = Generator(backend)
    plain.lookahead = 0
    want = plain.generate(ids, GenerationRequest(max_tokens=30))
    plain_passes, passes[:] = len(passes), []
    got = Generator(backend).generate(ids, GenerationRequest(max_tokens=30))
    assert got.token_ids == want.token_ids and got.text == want.text
    assert got.accepted_tokens > 0 and len(passes) < plain_passes
    assert len(passes) + got.accepted_tokens == plain_passes  # every accepted draft token saved one pass
    assert max(passes) - 1 <= 30  # never drafts past the token budget


def test_min_tokens_keeps_the_stop_ids_from_ending_the_run_before_its_first_token(backend):
    ids = backend.encode("def add(a, b):")
    full = Generator(backend).generate(ids, GenerationRequest(max_tokens=10))
    first = full.token_ids[0]
    empty = Generator(backend).generate(ids, GenerationRequest(max_tokens=10, stop_ids=[first]))
    assert empty.finish_reason == "eos" and empty.token_ids == []
    res = Generator(backend).generate(ids, GenerationRequest(max_tokens=10, stop_ids=[first], min_tokens=1))
    assert res.token_ids and res.token_ids[0] != first  # the best token that is not a stop id


class _EosFirst(ScriptedBackend):
    """The end token is the most likely first token; the script's first piece comes second."""

    def _logits(self, cache: list[int]) -> np.ndarray:
        row = super()._logits(cache)
        if not any(t < 1000 for t in cache):
            row[EOS], row[1] = 10.0, 9.0
        return row


@pytest.mark.parametrize(("prefix", "suffix", "expected"), [
    ("def f():\n    ", "\n    return 1\n", "x = 1"),  # a blank line: an empty answer is never the one
    ("def f():\n    y = ", "\n", ""),                 # mid-line: "nothing to add" stays possible
])
def test_on_a_blank_line_the_engine_never_answers_with_nothing(prefix, suffix, expected):
    eng = InferenceEngine(backend=_EosFirst(["x = 1"], Clock()), fim_format="none")
    assert eng.complete_fim(prefix, suffix, max_tokens=8).text == expected
