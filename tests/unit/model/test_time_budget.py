"""Time budget and warm-up: a budget that runs out returns the partial suggestion cut at a safe
boundary, counts from the request's turn (not its wait), and a warm-up prefill yields to real requests.

A scripted token backend makes every forward pass cost one second of an injected clock, so budgets
are exact and nothing depends on the machine's speed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from mochi_model.backends.base import Backend, GenerationRequest
from mochi_model.engine import InferenceEngine
from mochi_model.generation import Generator
from mochi_model.postprocess import cut_partial
from mochi_model.types import CancelToken

EOS = 0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ScriptedBackend(Backend):
    """Prompt characters are tokens 1000+ord(c); the model answers ``script`` (one token per
    piece), then EOS. Every forward pass (prefill chunk, step) advances ``clock`` by one second."""

    def __init__(self, script: Sequence[str], clock: Clock, *, on_pass=None, s_per_prompt_token: float = 0.0) -> None:
        super().__init__(tokenizer=None, model_id="scripted")
        self.script = list(script)
        self.clock = clock
        self.passes = 0
        self.prefilled = 0
        self.chunks: list[int] = []
        self.on_pass = on_pass
        self.s_per_prompt_token = s_per_prompt_token  # > 0: a prefill pass costs this per token instead of 1 s
        self._vocab = ["<eos>", *self.script]

    # text <-> tokens
    def encode(self, text: str) -> list[int]:
        return [1000 + ord(c) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self._vocab[i] if i < 1000 else chr(i - 1000) for i in ids)

    @property
    def eos_ids(self) -> set[int]:
        return {EOS}

    def state_key(self) -> tuple[object, ...]:
        return ("scripted",)

    # the "model": the next token is the next piece of the script after what the cache holds
    def new_cache(self) -> list[int]:
        return []

    def cache_len(self, cache: list[int]) -> int:
        return len(cache)

    def trim_cache(self, cache: list[int], n: int) -> None:
        del cache[n:]

    def _logits(self, cache: list[int]) -> np.ndarray:
        generated = sum(1 for t in cache if t < 1000)
        nxt = generated + 1 if generated < len(self.script) else EOS
        row = np.zeros(len(self._vocab) + 2000, dtype=np.float32)
        row[nxt] = 10.0
        return row

    def _pass(self) -> None:
        self.passes += 1
        self.clock.now += 1.0
        if self.on_pass is not None:
            self.on_pass(self)

    def prefill(self, ids: Sequence[int], cache: list[int]) -> np.ndarray:
        cache.extend(ids)
        self.prefilled += len(ids)
        self.chunks.append(len(ids))
        if self.s_per_prompt_token:
            self.passes += 1
            self.clock.now += len(ids) * self.s_per_prompt_token
        else:
            self._pass()
        return self._logits(cache)

    def step(self, token: int, cache: list[int]) -> np.ndarray:
        cache.append(token)
        self._pass()
        return self._logits(cache)

    def forward_many(self, ids: Sequence[int], cache: list[int]) -> np.ndarray:
        rows = []
        for t in ids:
            cache.append(t)
            rows.append(self._logits(cache))
        self._pass()
        return np.stack(rows)


def engine_for(script: Sequence[str]) -> tuple[InferenceEngine, ScriptedBackend, Clock]:
    clock = Clock()
    backend = ScriptedBackend(script, clock)
    engine = InferenceEngine(backend=backend, fim_format="none")
    assert engine._gen is not None
    engine._gen.clock = clock
    engine._gen.lookahead = 0  # one token per pass: the budget arithmetic below stays exact
    return engine, backend, clock


# --- the safe boundary -------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "multiline", "cut"), [
    ("    a = 1\n    b = compu", True, "    a = 1"),          # multi-line: complete lines only
    ("    a = 1\n", True, "    a = 1"),
    ("    if x:\n        y = f(", True, "    if x:"),
    ("\n    ret", True, "\n    ret"),                       # not one full line yet: the fragment is all there is
    ("self.values[ke", False, "self.values["),              # single line: no half word at the end
    ("urn x", False, "urn "),
    ("urn", False, "urn"),                                  # continues the word at the cursor
    ("total + ", False, "total + "),
    ("x = \ufffd", False, "x = "),                           # half a multi-byte character
])
def test_a_partial_generation_is_cut_at_a_safe_boundary(raw, multiline, cut):
    assert cut_partial(raw, multiline) == cut


# --- partial results at the budget ---------------------------------------------------------------

def test_a_multi_line_completion_stopped_by_the_budget_keeps_its_complete_lines():
    engine, _be, _clock = engine_for(["    a", " = 1", "\n", "    b", " = comp", "ute(", "x)", "\n"])
    # prefill = pass 1 (t=1); "    a" comes free with the prefill's logits; passes 2..4 give
    # " = 1", "\n", "    b"; at t=4 the next pass would end at t=5 > 4.5: it is not started.
    out = engine.complete_fim("def f(x):\n", "", multiline=True, max_tokens=20, time_budget_s=4.5)
    assert out.finish_reason == "time"
    assert out.extra["raw"] == "    a = 1\n    b"
    assert out.text == "    a = 1"
    assert out.extra["budget_cut"] is True
    assert engine.budget_stats.cut == 1 and engine.budget_stats.expired == 0
    assert engine.budget_stats.last_tokens == 4


def test_a_single_line_completion_stopped_by_the_budget_shows_the_text_so_far_without_a_half_word():
    engine, _be, _clock = engine_for(["self", ".values", "[ke", "y]", "\n"])
    out = engine.complete_fim("    return ", "\n", multiline=False, max_tokens=20, time_budget_s=3.5)
    assert out.finish_reason == "time"
    assert out.extra["raw"] == "self.values[ke"
    # "[" is left open: bracket balance cuts back to the last balanced point.
    assert out.text == "self.values"


def test_a_prefill_that_ends_after_the_budget_still_shows_the_token_it_predicted():
    engine, be, _clock = engine_for(["self", ".values", "\n"])
    # The whole prompt is prefilled in one pass that ends at t=1, past a 0.5 s budget: the token
    # those logits give costs nothing more, so it is shown rather than nothing.
    out = engine.complete_fim("    return ", "\n", multiline=False, max_tokens=20, time_budget_s=0.5)
    assert out.finish_reason == "time" and out.text == "self"
    assert be.passes == 1


def test_a_budget_that_runs_out_during_prefill_returns_nothing_but_keeps_the_prefilled_part():
    engine, be, _clock = engine_for(["x", "\n"])
    assert engine._gen is not None
    engine._gen.prefill_chunk = 10
    prefix = "a" * 95
    out = engine.complete_fim(prefix, "", multiline=False, max_tokens=5, time_budget_s=2.5)
    assert out.finish_reason == "time" and out.text == ""
    assert engine.budget_stats.expired == 1 and engine.budget_stats.cut == 0
    kept = be.cache_len(engine._gen._cache)
    assert kept == 30  # three chunks (t=1,2,3) before the budget was seen
    again = engine.complete_fim(prefix, "", multiline=False, max_tokens=5)
    assert again.cached_tokens == kept and again.text == "x"


class SlowQueue:
    """An engine lock where the request waits 100 s (of the injected clock) for its turn."""

    def __init__(self, clock: Clock) -> None:
        self.inner = threading.Lock()
        self.clock = clock

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        self.clock.now += 100.0
        return self.inner.acquire()

    def release(self) -> None:
        self.inner.release()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def test_a_wait_for_a_warm_up_counts_against_the_budget_down_to_half_of_it():
    engine, _be, clock = engine_for(["    a", " = 1", "\n", "    b", " = 2", "\n"])
    engine._lock = SlowQueue(clock)  # type: ignore[assignment]
    engine._warming = True  # the lock's holder is a warm-up: the server's own choice
    out = engine.complete_fim("def f(x):\n", "", multiline=True, max_tokens=20, time_budget_s=10.0)
    # 5 s left of 10: prefill t=101 ("    a"), passes to t=104; the next (1 s, with 50 % slack)
    # would end past the deadline at t=105
    assert out.finish_reason == "time" and out.extra["raw"] == "    a = 1\n    b"
    assert out.extra["wait_ms"] == 100_000


def test_the_budget_starts_when_the_request_gets_its_turn_not_while_it_waits():
    engine, _be, clock = engine_for(["    a", " = 1", "\n", "    b", " = 2", "\n"])
    engine._lock = SlowQueue(clock)  # type: ignore[assignment]  # behind another request
    out = engine.complete_fim("def f(x):\n", "", multiline=True, max_tokens=20, time_budget_s=10.0)
    assert out.finish_reason == "eos", "the 100 s spent waiting were counted against the 10 s budget"
    assert out.text == "    a = 1\n    b = 2"
    assert engine.budget_stats.cut == 0


def test_the_generator_budget_is_measured_on_the_injected_clock():
    clock = Clock()
    be = ScriptedBackend(["a", "b", "c", "d", "e"], clock)
    gen = Generator(be, clock=clock)
    gen.lookahead = 0
    res = gen.generate(be.encode("xy"), GenerationRequest(max_tokens=10, time_budget_s=2.0))
    # prefill t=1 -> "a" (the logits in hand are free), pass t=2 -> "b". A pass is then known to
    # take 1 s, so the next one would end at t=3, past the deadline: it is not started.
    assert res.finish_reason == "time" and res.text == "ab"
    assert clock.now == 2.0


def test_a_pass_that_would_end_past_the_deadline_is_not_started():
    clock = Clock()
    be = ScriptedBackend(["a", "b", "c", "d", "e"], clock)
    gen = Generator(be, clock=clock)
    gen.lookahead = 0
    # before any pass was measured the rule can only react: the first request overshoots by one pass
    first = gen.generate(be.encode("xy"), GenerationRequest(max_tokens=10, time_budget_s=1.5, reuse_cache=False))
    assert first.text == "ab" and clock.now == 2.0
    clock.now = 0.0
    second = gen.generate(be.encode("xy"), GenerationRequest(max_tokens=10, time_budget_s=1.5, reuse_cache=False))
    assert second.finish_reason == "time" and second.text == "a" and clock.now == 1.0  # never past t=1.5


# --- warm-up -----------------------------------------------------------------------------------

def test_a_warm_up_prefills_the_prompt_so_the_next_request_reuses_it():
    engine, be, _clock = engine_for(["x", "\n"])
    prefix = "import os\n" * 20
    warm = engine.warm(prefix, "", path="a.py")
    assert warm.state == "done" and warm.prefilled_tokens == len(prefix) and warm.cached_tokens == 0
    out = engine.complete_fim(prefix, "", multiline=False, max_tokens=5, path="a.py")
    assert out.cached_tokens == len(prefix) - 1  # only the last prompt token is fed again
    assert out.text == "x"


def test_a_real_request_preempts_a_warm_up_within_one_chunk():
    engine, be, _clock = engine_for(["x", "\n"])
    assert engine._gen is not None
    engine._gen.warm_chunk = 10
    prefix = "b" * 200

    def on_pass(backend: ScriptedBackend) -> None:
        if backend.passes == 3:  # a real request starts waiting for the engine (what _acquire counts)
            engine._waiting += 1

    be.on_pass = on_pass
    warm = engine.warm(prefix, "")
    assert warm.state == "preempted"
    assert warm.prefilled_tokens == 30  # three chunks, then it yielded
    engine._waiting -= 1
    be.on_pass = None
    out = engine.complete_fim(prefix, "", multiline=False, max_tokens=5)
    assert out.text == "x" and out.cached_tokens == 30  # the request started from the warmed part


def test_a_request_waiting_for_its_turn_is_counted_as_queued():
    engine, _be, _clock = engine_for(["x"])
    cancel = CancelToken()
    seen: list[int] = []

    class CountingLock:
        """The engine lock held by another request: every try sees the queue, the third gives up."""

        def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
            seen.append(engine.queued)
            if len(seen) == 3:
                cancel.cancel()
            return False

        def release(self) -> None:
            raise AssertionError("never acquired")

    engine._lock = CountingLock()  # type: ignore[assignment]
    out = engine.complete_fim("x", "", cancel=cancel)
    assert out.finish_reason == "cancelled"
    assert seen == [1, 1, 1] and engine.queued == 0


def test_a_warm_up_does_nothing_while_a_request_runs_or_waits():
    engine, be, _clock = engine_for(["x"])
    engine._lock.acquire()
    try:
        assert engine.warm("abc" * 10, "").state == "busy"
    finally:
        engine._lock.release()
    assert be.passes == 0
    cancel = CancelToken()
    cancel.cancel()
    assert engine.warm("abc" * 10, "", cancel=cancel).state == "preempted"
    assert be.passes == 0


# --- prefill chunks sized by time ----------------------------------------------------------------

def test_prefill_chunks_shrink_when_the_cpu_is_slow_so_cancellation_stays_quick():
    clock = Clock()
    fast = ScriptedBackend(["x"], clock, s_per_prompt_token=0.001)  # ~1,000 tok/s: a quiet CPU
    gen = Generator(fast, clock=clock)
    gen.generate([1000 + i for i in range(600)], GenerationRequest(max_tokens=1, reuse_cache=False))
    assert fast.chunks[:3] == [64, 256, 256]  # a small first pass to measure, then full chunks (0.26 s)

    slow = ScriptedBackend(["x"], clock, s_per_prompt_token=0.01)  # the same CPU under a hog: 10x slower
    gen.backend = slow
    gen.generate([2000 + i for i in range(600)], GenerationRequest(max_tokens=1, reuse_cache=False))
    gen.generate([3000 + i for i in range(600)], GenerationRequest(max_tokens=1, reuse_cache=False))
    # After a few slow passes the estimate caught up: the third request's passes take ~0.4 s each
    # (the target), where fixed 256-token chunks took 2.56 s.
    third = slow.chunks[-(600 // 40 + 1):]
    assert max(third) * 0.01 <= 0.41
    assert slow.chunks[0] == 256  # the first slow pass still used the quiet estimate


def test_the_fixed_cost_of_a_pass_counts_when_sizing_chunks():
    clock = Clock()
    be = ScriptedBackend(["a", "b", "c", "d", "\n"], clock, s_per_prompt_token=0.005)  # decode steps cost 1 s
    gen = Generator(be, clock=clock)
    gen.lookahead = 0
    gen.generate([1000 + i for i in range(300)], GenerationRequest(max_tokens=4, reuse_cache=False))
    assert gen._pass_s == 1.0
    # A pass costs more than the target before a single token is added: the floor applies.
    assert gen._chunk_size(256, gen.prefill_chunk_s) == gen.min_chunk


def test_the_pipeline_budget_counts_from_when_the_user_asked():
    """With ``started`` (the LSP's request arrival) debounce and retrieval are paid from the same budget."""
    from mochi_core.config import CompletionSection
    from mochi_model.fake import FakeEngine
    from mochi_model.pipeline import MIN_ENGINE_SHARE, complete_document

    engine = FakeEngine("1")
    cfg = CompletionSection(time_budget_ms=2000)
    complete_document(engine, "a = ", 4, config=cfg, started=time.perf_counter() - 0.5)
    assert 1.4 < engine.calls[-1].time_budget_s <= 1.5
    complete_document(engine, "a = ", 4, config=cfg, started=time.perf_counter() - 30.0)  # e.g. the model loaded
    assert engine.calls[-1].time_budget_s == pytest.approx(2.0 * MIN_ENGINE_SHARE)
    complete_document(engine, "a = ", 4, config=cfg)  # no request clock: the whole budget is the engine's
    assert engine.calls[-1].time_budget_s == 2.0
    complete_document(engine, "a = ", 4, config=cfg, time_budget_s=None, started=time.perf_counter() - 0.5)
    assert engine.calls[-1].time_budget_s is None  # no budget stays no budget (eval)
