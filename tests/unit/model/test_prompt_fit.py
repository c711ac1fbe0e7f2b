"""Prompt fit: with a time budget, a prompt whose uncached part cannot be prefilled in time is shrunk
(shorter suffix, no snippets, shorter prefix) so a slow CPU shows a suggestion instead of nothing;
without a budget (eval) the prompt is never touched.

The scripted backend of the time-budget tests makes prefill cost 0.05 s of an injected clock per
prompt token and each decoding step 1 s, so the arithmetic is exact and machine-independent.
"""

from __future__ import annotations

from mochi_model.engine import InferenceEngine
from mochi_model.prompt_fit import LEVELS, allowed_prefill_s, keep_first_lines, keep_last_lines, levels
from mochi_model.types import Snippet
from tests.unit.model.test_time_budget import Clock, ScriptedBackend

LINE = "value = compute(a, b, c)  # x"  # 29 characters: 30 tokens with its newline


def lines(n: int) -> str:
    """``n`` distinct 29-character lines (identical ones would share KV-cache prefixes by accident)."""
    return "\n".join(f"{LINE[:-3]}{i:03d}" for i in range(n))


def engine_for(script: list[str]) -> tuple[InferenceEngine, ScriptedBackend]:
    clock = Clock()
    backend = ScriptedBackend(script, clock, s_per_prompt_token=0.05)
    engine = InferenceEngine(backend=backend, fim_format="none")
    assert engine._gen is not None
    engine._gen.clock = clock
    engine._gen.lookahead = 0
    engine._gen.prefill_chunk_s = 1000.0  # full 256-token chunks: the speed estimate stays exact here
    engine._gen.warm_chunk, engine._gen.warm_chunk_s = 256, 1000.0  # the same for warm-ups
    return engine, backend


def measured(engine: InferenceEngine) -> None:
    """One request without a budget: the engine now knows its prefill and step speed."""
    engine.complete_fim("z" * 600 + "\n", "", multiline=False, max_tokens=4)
    assert engine._gen is not None and engine._gen.prefill_seconds(100) is not None


def test_lines_are_cut_from_the_far_end_and_the_cursor_line_always_stays():
    text = "\n".join(f"l{i}" for i in range(16))
    assert keep_last_lines(text, 0.25).split("\n") == ["l12", "l13", "l14", "l15"]
    assert keep_last_lines("only the cursor line", 0.01) == "only the cursor line"
    assert keep_first_lines(text, 0.125).split("\n") == ["l0", "l1"]
    assert keep_first_lines("rest of line\nnext", 0.0) == "rest of line"
    assert keep_last_lines(text, 1.0) == text


def test_levels_get_smaller_and_drop_snippets_before_the_near_prefix():
    prefix = lines(64)
    suffix = lines(16)
    snip = [Snippet(path="b.py", text="def helper(): ...")]
    out = list(levels(prefix, suffix, snip))
    assert [lv for lv, *_ in out] == list(range(1, len(LEVELS) + 1))
    sizes = [len(p) + len(s) + sum(len(x.text) for x in sn) for _, p, s, sn in out]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < len(prefix) / 16
    assert out[0][3] and not out[2][3]  # snippets go at level 3, before the prefix shrinks
    assert all(p.endswith(prefix[-29:]) for _, p, _, _ in out)  # the cursor line is in every level


def test_a_prompt_too_big_for_the_budget_is_shrunk_and_still_gives_a_suggestion():
    engine, be = engine_for(["answer", "\n"])
    measured(engine)
    prefix = lines(100) + "\nresult = "
    full = len(prefix)
    # 40 s budget: 20 s of prefill minus 8 steps of 1 s = 12 s, i.e. ~230 new tokens at 0.05 s each.
    assert allowed_prefill_s(40.0, engine._gen.step_seconds) == 12.0  # type: ignore[union-attr]
    out = engine.complete_fim(prefix, "", multiline=False, max_tokens=4, time_budget_s=40.0)
    assert out.text == "answer"
    assert out.extra["prompt_fit"] > 0 and out.finish_reason != "time"
    assert out.prompt_tokens < full / 8
    assert engine.budget_stats.trimmed == 1 and engine.budget_stats.last_fit == out.extra["prompt_fit"]
    # typing on at the same place: the same level is chosen and its prompt comes from the KV cache
    again = engine.complete_fim(prefix + "a", "", multiline=False, max_tokens=4, time_budget_s=40.0)
    assert again.extra["prompt_fit"] == out.extra["prompt_fit"]
    assert again.cached_tokens >= again.prompt_tokens - 2


def test_without_a_budget_or_a_measurement_the_full_prompt_runs():
    engine, _be = engine_for(["answer", "\n"])
    prefix = lines(100) + "\nresult = "
    first = engine.complete_fim(prefix, "", multiline=False, max_tokens=4, time_budget_s=400.0)
    assert first.extra["prompt_fit"] == 0 and first.prompt_tokens == len(prefix)  # nothing measured yet
    engine.reset_cache()
    no_budget = engine.complete_fim(prefix, "", multiline=False, max_tokens=4)  # the eval's way
    assert no_budget.extra["prompt_fit"] == 0 and no_budget.prompt_tokens == len(prefix)
    assert engine.budget_stats.trimmed == 0


def test_a_prompt_that_fits_or_is_cached_is_not_shrunk():
    engine, _be = engine_for(["answer", "\n"])
    measured(engine)
    prefix = lines(100) + "\nresult = "
    engine.complete_fim(prefix, "", multiline=False, max_tokens=4)  # cached now, no budget
    out = engine.complete_fim(prefix + "x", "", multiline=False, max_tokens=4, time_budget_s=40.0)
    assert out.extra["prompt_fit"] == 0 and out.cached_tokens >= len(prefix) - 1
    small = engine.complete_fim("x = ", "", multiline=False, max_tokens=4, time_budget_s=40.0)
    assert small.extra["prompt_fit"] == 0


def test_a_calibrated_engine_fits_even_its_first_request():
    engine, _be = engine_for(["answer", "\n"])
    assert engine.calibrate()  # what the servers do right after loading
    assert engine._gen is not None and engine._gen._cache is None  # the request cache is untouched
    prefix = lines(100) + "\nresult = "
    out = engine.complete_fim(prefix, "", multiline=False, max_tokens=4, time_budget_s=40.0)
    assert out.extra["prompt_fit"] > 0 and out.text == "answer" and out.prompt_tokens < len(prefix) / 8


def test_on_a_very_slow_cpu_a_short_prompt_still_runs_whole():
    engine, _be = engine_for(["answer", "\n"])
    measured(engine)  # 1 s per decoding step: eight of them would fill a 4 s budget twice over
    assert allowed_prefill_s(4.0, 1.0) == 1.0  # the decode reserve takes at most a quarter of the budget
    out = engine.complete_fim("def f(a):\n    return ", "", multiline=False, max_tokens=4, time_budget_s=4.0)
    assert out.extra["prompt_fit"] == 0  # a couple of dozen tokens always fit: nothing smaller is worth it


def test_a_warm_up_with_the_budget_warms_the_level_the_request_then_runs():
    engine, _be = engine_for(["answer", "\n"])
    measured(engine)
    prefix = lines(100) + "\nresult = "
    # the cursor jumped here: the full prompt would not prefill in time, so the warm-up warms the
    # smaller level a request with this budget would run (the front of the full one would be useless)
    warm = engine.warm(prefix, "", time_budget_s=40.0)
    assert warm.state == "done" and warm.prompt_fit > 0 and warm.prompt_tokens < len(prefix) / 8
    # the person types two characters and pauses: the same level runs, and only those are prefilled
    out = engine.complete_fim(prefix + "ab", "", multiline=False, max_tokens=4, time_budget_s=40.0)
    assert out.extra["prompt_fit"] == warm.prompt_fit and out.text == "answer"
    assert out.prompt_tokens - out.cached_tokens <= 3


def test_a_stale_warm_up_leaves_the_cache_of_the_request_that_ran_since():
    from mochi_model.types import CancelToken

    engine, be = engine_for(["answer", "\n"])
    prefix = lines(20) + "\nresult = "
    engine.complete_fim(prefix + "ab", "x\n" * 30, multiline=False, max_tokens=4)
    cached = be.cache_len(engine._gen._cache)  # type: ignore[union-attr]
    stale = CancelToken()
    stale.cancel()  # what the LSP does once a request ran: the queued warm-up of the jump is stale
    assert engine._gen.warm(be.encode(prefix), stop=lambda: stale.cancelled).state == "preempted"  # type: ignore[union-attr]
    assert be.cache_len(engine._gen._cache) == cached  # type: ignore[union-attr]


def test_prefill_capacity_is_what_the_fit_allows_at_the_measured_speed():
    engine, _be = engine_for(["answer", "\n"])
    assert engine.prefill_capacity(40.0) is None  # nothing measured yet: no basis to skip retrieval
    measured(engine)
    # 12 s allowed (see above) at 0.05 s a token, plus one 1 s pass per 256-token chunk
    assert engine.prefill_capacity(40.0) == int(12.0 / (0.05 + 1.0 / 256))
    assert engine.prefill_capacity(0.001) == 32  # never below what always runs


def test_a_grown_prompt_is_the_next_bigger_level_and_the_next_request_runs_it():
    engine, _be = engine_for(["answer", "\n"])
    measured(engine)
    prefix = lines(100) + "\nresult = "
    first = engine.complete_fim(prefix, "", multiline=False, max_tokens=4, time_budget_s=40.0)
    level = first.extra["prompt_fit"]
    assert level > 0
    grown = engine.grow(prefix, "", from_level=level)  # the person reads the suggestion
    assert grown.state == "done" and grown.prompt_fit < level and grown.prompt_tokens > first.prompt_tokens
    # typing on at the same place: the bigger level is cached now, so the fit picks it
    out = engine.complete_fim(prefix + "ab", "", multiline=False, max_tokens=4, time_budget_s=40.0)
    assert out.extra["prompt_fit"] == grown.prompt_fit and out.text == "answer"
    assert out.prompt_tokens > first.prompt_tokens and out.prompt_tokens - out.cached_tokens <= 3
    assert engine.grow(prefix, "", from_level=0).state == "done"  # the full prompt: nothing bigger


def test_a_growth_cut_short_leaves_the_cache_the_next_request_needs():
    from mochi_model.types import CancelToken

    engine, be = engine_for(["answer", "\n"])
    measured(engine)
    prefix = lines(100) + "\nresult = "
    first = engine.complete_fim(prefix, "", multiline=False, max_tokens=4, time_budget_s=40.0)
    gen = engine._gen
    assert gen is not None
    gen.warm_chunk, gen.grow_min_chunk = 16, 16
    before_ids, before_len = list(gen._cached_ids), be.cache_len(gen._cache)
    token = CancelToken()
    calls = []

    def stop() -> bool:  # the next keystroke arrives after two passes
        calls.append(1)
        if len(calls) > 2:
            token.cancel()
        return token.cancelled

    speed = gen._token_s, gen._pass_s
    res = gen.grow(be.encode(prefix), stop=stop)
    assert res.state == "preempted"
    assert gen._cached_ids == before_ids and be.cache_len(gen._cache) == before_len
    # (the fake's prefill has no fixed cost, so small chunks skew the speed estimate: put it back)
    gen._token_s, gen._pass_s = speed
    again = engine.complete_fim(prefix + "a", "", multiline=False, max_tokens=4, time_budget_s=40.0)
    assert again.extra["prompt_fit"] == first.extra["prompt_fit"] and again.cached_tokens >= first.prompt_tokens - 1
