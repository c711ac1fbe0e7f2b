"""The one decoding loop, shared by every token backend (torch, mlx).

:class:`Generator` owns a KV cache across requests. For each request it finds the longest common
token prefix between the new prompt and what the cache already holds (the previous prompt plus the
tokens generated after it), trims the cache to that length and prefills only the new tokens: a user
typing in one file changes the end of the prompt, so most of it is served from the cache. The
cache is dropped when the backend's ``state_key()`` changes (other adapter weights, fusing).

The prompt is prefilled in chunks of at most :attr:`Generator.prefill_chunk` tokens, with cancellation
and the time budget checked between chunks: a superseded request stops within one chunk, and what it
already prefilled stays cached, so the request that replaces it (same file, one keystroke later) starts
from there. Chunks are sized by time, not only by count: the generator keeps running estimates of what a
pass costs (a fixed part, measured on decoding steps — reading the weights — plus a part per prompt
token, measured on prefill passes) and makes a chunk about :attr:`Generator.prefill_chunk_s` long
(never under :attr:`Generator.min_chunk` tokens). On a quiet CPU that is the full 256 tokens; with another job on
every core (10x slower) a fixed 256-token chunk took ~3 s, so a superseded request held the engine
that long; now it yields within about the fixed cost of one pass plus 32 tokens.

Greedy decoding uses *prompt lookup* (speculative decoding with the prompt as the draft model): code
repeats itself, so when the last few generated tokens also occur earlier in the prompt or output, the
tokens that followed them there are proposed as a draft and checked in one forward pass; the longest
prefix that greedy decoding agrees with is kept. On a CPU a pass over 8 tokens costs little more than
over 1 (reading the weights dominates), so each accepted draft token is a decoding step saved. The
result is the greedy output (up to float rounding between batched and single-token passes).

Between tokens it checks cancellation and the token budget; the time budget is checked before each
forward pass, so a run that hits it keeps every token it already paid for (including the one the
prefill predicted): the engine then cuts that partial text at a safe boundary
(:func:`mochi_model.postprocess.cut_partial`) instead of returning nothing. The budget counts from the
moment :meth:`Generator.generate` is called, i.e. after the request's turn came (the engine calls it
holding its lock), never while it waited behind another request. It stops at stop token ids (EOS,
FIM end tokens) and stop sequences / a stop predicate over the decoded text, and streams text deltas
that can no longer turn into a stop sequence.

:meth:`Generator.warm` prefills a prompt without decoding (cache warm-up when the cursor moves), in
small chunks with a ``stop`` predicate checked between them, so a real request pre-empts it within
one small chunk and starts from what it prefilled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mochi_model.backends.base import Backend, GenerationRequest, GenerationResult


def common_prefix_len(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _log_softmax_at(logits: np.ndarray, token: int) -> float:
    m = float(logits.max())
    return float(logits[token] - m - np.log(np.exp(logits - m).sum()))


def sample(logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """Greedy when ``temperature <= 0``; otherwise temperature + nucleus sampling."""
    if temperature <= 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temperature
    z -= z.max()
    p = np.exp(z)
    p /= p.sum()
    if top_p < 1.0:
        order = np.argsort(-p)
        cum = np.cumsum(p[order])
        keep = order[: int(np.searchsorted(cum, top_p) + 1)]
        q = np.zeros_like(p)
        q[keep] = p[keep]
        p = q / q.sum()
    return int(rng.choice(len(p), p=p))


def lookup_draft(history: Sequence[int], k: int, max_n: int = 3, min_n: int = 2) -> list[int]:
    """Up to ``k`` tokens that followed the latest earlier occurrence of the last n-gram of ``history``
    (longest n first, from ``max_n`` down to ``min_n``); [] when the tail never occurred before."""
    arr = np.asarray(history, dtype=np.int64)
    size = len(arr)
    for n in range(max_n, min_n - 1, -1):
        if size <= n:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(arr[: size - 1], n)  # starts before the tail's
        hits = np.flatnonzero((windows == arr[size - n:]).all(axis=1))
        if len(hits):
            start = int(hits[-1]) + n
            return [int(t) for t in arr[start: start + k]]
    return []


def _held_back(text: str, stops: Sequence[str]) -> int:
    """Length of the longest tail of ``text`` that could still grow into a stop sequence."""
    best = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), best, -1):
            if s.startswith(text[-k:]):
                best = k
                break
    return best


@dataclass(kw_only=True)
class WarmResult:
    """What a prefill-only warm-up did.

    ``state``: ``done`` (the whole prompt is cached), ``preempted`` (a real request or the caller's
    stop predicate came first; what was prefilled stays cached), ``busy`` (the engine was running a
    request: nothing done), ``unsupported`` (a text backend: no local KV cache).
    """

    state: str
    prompt_tokens: int = 0
    cached_tokens: int = 0  # already in the cache before the warm-up
    prefilled_tokens: int = 0  # added by the warm-up
    ms: float = 0.0
    prompt_fit: int = 0  # the prompt level warmed (see mochi_model.prompt_fit; 0 = the full prompt)


class Generator:
    """Decodes on a token backend, reusing the KV cache across consecutive requests.

    Not thread-safe on its own: :class:`mochi_model.engine.InferenceEngine` serialises calls.

    Args:
        backend: a token backend.
        clock: seconds as a float (default ``time.perf_counter``); tests inject a fake one to make
            time budgets deterministic.
    """

    #: Most prompt tokens per prefill forward pass; bounds how late a cancellation or time budget is seen.
    prefill_chunk: int = 256
    #: Target seconds per prefill pass (chunks shrink when the CPU is slow, e.g. under load). On a quiet
    #: CPU a 256-token pass of the 0.5B model takes ~0.32 s, so chunks stay full there.
    prefill_chunk_s: float = 0.4
    #: Fewest tokens per pass when chunks shrink (smaller passes waste the CPU on overhead).
    min_chunk: int = 32
    #: Most prompt tokens per pass of a warm-up, and its target seconds: smaller, because a real
    #: request waits at most one of them.
    #: A decoding pass is only started when this many times its estimated length still ends before
    #: the deadline (the estimate is a running mean; measured under a CPU hog, passes took 0.1-0.25 s).
    pass_slack: float = 1.5
    warm_chunk: int = 128
    warm_chunk_s: float = 0.2
    #: Fewest tokens per pass of a prompt growth (:meth:`grow`): it runs between a person's pauses,
    #: so the keystroke that pre-empts it waits for at most one small pass.
    grow_min_chunk: int = 8
    #: Most draft tokens checked per pass by prompt lookup (greedy only; 0 = off).
    lookahead: int = 8

    def __init__(self, backend: Backend, *, clock: Callable[[], float] | None = None) -> None:
        self.backend = backend
        self.clock = clock
        self._cache: Any = None
        self._cached_ids: list[int] = []
        self._key: tuple[object, ...] | None = None
        self._pass_s: float | None = None  # a one-token pass (decoding step), running estimate
        self._token_s: float | None = None  # extra seconds per prompt token of a prefill pass

    def _now(self) -> float:
        return self.clock() if self.clock is not None else time.perf_counter()

    def _chunk_size(self, most: int, target_s: float, floor: int | None = None) -> int:
        """Tokens for the next prefill pass: ``most``, or fewer when a pass that size would be slow
        (never under ``floor``, default :attr:`min_chunk`)."""
        most = max(1, most)
        floor = self.min_chunk if floor is None else floor
        if not self._token_s:
            # Nothing measured yet (first request): a small first pass, so that a loaded CPU cannot
            # hold the engine for a full chunk before the estimate exists (measured: 256 tokens took
            # 20 s at load 10 here; the request that superseded it waited all that time).
            return min(most, 2 * floor)
        n = int((target_s - (self._pass_s or 0.0)) / self._token_s)
        return max(min(floor, most), min(most, n))

    @staticmethod
    def _ema(old: float | None, new: float) -> float:
        return new if old is None else 0.5 * old + 0.5 * new

    def _timed_prefill(self, ids: list[int], cache: Any) -> np.ndarray:
        t = self._now()
        logits = self.backend.prefill(ids, cache)
        dt = self._now() - t
        if dt > 0 and len(ids) >= 16:  # shorter passes are mostly the fixed part
            per = max(dt - (self._pass_s or 0.0), 0.1 * dt) / len(ids)
            self._token_s = self._ema(self._token_s, per)
        return logits

    def _timed_pass(self, t: float) -> None:
        """After a decoding pass that started at ``t``: update the fixed-cost estimate."""
        dt = self._now() - t
        if dt > 0:
            self._pass_s = self._ema(self._pass_s, dt)

    def calibrate(self, ids: Sequence[int]) -> None:
        """Measure the step and per-token prefill cost on a throwaway cache (``ids``: 32+ tokens), so
        the first real request can already be fitted to its time budget. The request cache is untouched."""
        ids = list(ids)
        if len(ids) < 17:
            raise ValueError("calibrate needs at least 17 tokens")
        cache = self.backend.new_cache()
        try:
            logits = self.backend.prefill(ids[:1], cache)
            for _ in range(2):
                t = self._now()
                logits = self.backend.step(int(np.argmax(logits)), cache)
                self._timed_pass(t)
            self._timed_prefill(ids[1:], cache)
        finally:
            _release(cache)

    def cached_len(self, ids: Sequence[int]) -> int:
        """Tokens at the front of ``ids`` that the KV cache holds (0 after an adapter change)."""
        if self._cache is None or self.backend.state_key() != self._key:
            return 0
        return min(common_prefix_len(self._cached_ids, ids), max(0, len(ids) - 1))

    def prefill_seconds(self, n: int) -> float | None:
        """Estimated seconds to prefill ``n`` new prompt tokens (None before a prefill was measured)."""
        if not self._token_s:
            return None
        passes = -(-max(0, n) // self.prefill_chunk)
        return max(0, n) * self._token_s + passes * (self._pass_s or 0.0)

    def pass_seconds(self, n: int = 1) -> float:
        """Estimated seconds of a decoding pass over ``n`` tokens (0 before anything was measured)."""
        return (self._pass_s or 0.0) + max(0, n - 1) * (self._token_s or 0.0)

    @property
    def step_seconds(self) -> float | None:
        """Measured seconds of one decoding step (None before one ran)."""
        return self._pass_s

    def reset(self) -> None:
        """Forget the KV cache (next request prefills everything)."""
        self._cache = None
        self._cached_ids = []
        self._key = None

    def _prepare(self, ids: list[int], reuse: bool) -> tuple[Any, int]:
        key = self.backend.state_key()
        if not reuse or self._cache is None or key != self._key:
            self._cache, self._cached_ids, self._key = self.backend.new_cache(), [], key
        # Keep at least one prompt token to prefill: its logits start decoding.
        keep = min(common_prefix_len(self._cached_ids, ids), len(ids) - 1)
        if keep < self.backend.cache_len(self._cache):
            self.backend.trim_cache(self._cache, keep)
        self._cached_ids = ids[:keep]
        return self._cache, keep

    def generate(self, prompt_ids: Sequence[int], request: GenerationRequest) -> GenerationResult:
        """Run one request. Errors inside the backend drop the cache and propagate."""
        ids = list(prompt_ids)
        if not ids:
            raise ValueError("empty prompt")
        t0 = self._now()  # the time budget starts here, once the request's turn has come
        try:
            return self._run(ids, request, t0)
        except BaseException:
            self.reset()
            raise

    def warm(self, prompt_ids: Sequence[int], *, stop: Callable[[], bool] | None = None,
             reuse: bool = True) -> WarmResult:
        """Prefill ``prompt_ids`` into the cache without decoding (KV prefix reuse as for a request).

        ``stop`` is checked before every chunk of :attr:`warm_chunk` tokens; when it returns True the
        warm-up ends (``preempted``) and keeps what it prefilled, so the request that pre-empted it
        starts from there.
        """
        ids = list(prompt_ids)
        t0 = self._now()
        if len(ids) < 2:
            return WarmResult(state="done", prompt_tokens=len(ids))
        if stop is not None and stop():  # before the cache is trimmed to this prompt: a stale warm-up
            return WarmResult(state="preempted", prompt_tokens=len(ids))  # must not cost the next request
        try:
            cache, cached = self._prepare(ids, reuse)
            pos = cached
            state = "done"
            while pos < len(ids):
                if stop is not None and stop():
                    state = "preempted"
                    break
                end = min(len(ids), pos + self._chunk_size(self.warm_chunk, self.warm_chunk_s))
                self._timed_prefill(ids[pos:end], cache)
                pos = end
                self._cached_ids = ids[:pos]
        except BaseException:
            self.reset()
            raise
        return WarmResult(state=state, prompt_tokens=len(ids), cached_tokens=cached, prefilled_tokens=pos - cached,
                          ms=(self._now() - t0) * 1000)

    def grow(self, prompt_ids: Sequence[int], *, stop: Callable[[], bool] | None = None) -> WarmResult:
        """Prefill ``prompt_ids`` into a second cache, and make it the request cache only once complete.

        For a bigger prompt level than the cached one (its front differs, so nothing is shared): if
        ``stop`` (checked before every pass) cuts it short, the second cache is dropped and the
        request cache is untouched — a growth that did not finish costs CPU, never the cache the next
        request needs. ``done`` = swapped in (or already cached), ``preempted`` = dropped.
        """
        ids = list(prompt_ids)
        t0 = self._now()
        if len(ids) < 2 or self.cached_len(ids) >= len(ids) - 1:
            return WarmResult(state="done", prompt_tokens=len(ids), cached_tokens=len(ids))
        if stop is not None and stop():
            return WarmResult(state="preempted", prompt_tokens=len(ids))
        key = self.backend.state_key()
        cache = self.backend.new_cache()
        pos = 0
        try:
            while pos < len(ids):
                if stop is not None and stop():
                    _release(cache)
                    return WarmResult(state="preempted", prompt_tokens=len(ids), ms=(self._now() - t0) * 1000)
                end = min(len(ids), pos + self._chunk_size(self.warm_chunk, self.warm_chunk_s, self.grow_min_chunk))
                self._timed_prefill(ids[pos:end], cache)
                pos = end
        except BaseException:
            _release(cache)
            raise
        old, self._cache, self._cached_ids, self._key = self._cache, cache, ids, key
        if old is not None:
            _release(old)
        return WarmResult(state="done", prompt_tokens=len(ids), prefilled_tokens=len(ids),
                          ms=(self._now() - t0) * 1000)

    def _run(self, ids: list[int], req: GenerationRequest, t0: float) -> GenerationResult:
        be = self.backend
        stop_ids = set(req.stop_ids) | be.eos_ids
        stops = [s for s in req.stop if s]
        rng = np.random.default_rng(req.seed)
        deadline = t0 + req.time_budget_s if req.time_budget_s is not None else None

        def over_budget() -> bool:
            return deadline is not None and self._now() > deadline

        def overruns(n: int) -> bool:
            """Would a decoding pass over ``n`` tokens, started now, end past the deadline? (with
            :attr:`pass_slack` for the jitter of a busy CPU: under a CPU hog passes vary 2x)"""
            return deadline is not None and self._now() + self.pass_slack * self.pass_seconds(n) > deadline

        def interrupted() -> str | None:
            if req.cancel is not None and req.cancel.cancelled:
                return "cancelled"
            return "time" if over_budget() else None

        if (why := interrupted()) is not None:
            return GenerationResult(text="", finish_reason=why, prompt_tokens=len(ids))
        cache, cached = self._prepare(ids, req.reuse_cache)
        pos = cached
        while True:
            end = min(len(ids), pos + self._chunk_size(self.prefill_chunk, self.prefill_chunk_s))
            logits = self._timed_prefill(ids[pos:end], cache)
            pos = end
            self._cached_ids = ids[:pos]
            if pos == len(ids):
                break
            if (why := interrupted()) is not None:
                # The cache keeps the prefilled part: the next request re-uses it.
                return GenerationResult(text="", finish_reason=why, prompt_tokens=len(ids), cached_tokens=cached,
                                        prefill_ms=(self._now() - t0) * 1000)
        t1 = self._now()
        out: list[int] = []
        logps: list[float] = []
        text, emitted, reason = "", 0, "length"
        # Logits of verified draft positions: their input tokens are already in the cache.
        verified: list[np.ndarray] = []
        draft_k = self.lookahead if req.temperature <= 0 else 0
        drafted = accepted = 0
        while True:
            # The time budget is checked before each forward pass (below), not here: the logits in
            # hand are paid for, so the token they give is always kept.
            if req.cancel is not None and req.cancel.cancelled:
                reason = "cancelled"
                break
            if len(out) >= req.max_tokens:
                reason = "length"
                break
            if len(out) < req.min_tokens and stop_ids:
                logits = _masked(logits, stop_ids)
            tok = sample(logits, req.temperature, req.top_p, rng)
            logps.append(_log_softmax_at(logits, tok))
            if tok in stop_ids:
                reason = "eos"
                break
            out.append(tok)
            text = be.decode(out)
            cut = _stop_cut(text, stops, req)
            if cut is not None:
                text, reason = text[:cut], "stop"
                break
            if req.on_token is not None:
                safe = len(text) - _held_back(text, stops)
                # A trailing U+FFFD is half a multi-byte character: wait for the rest.
                while safe > emitted and text[safe - 1] == "\ufffd":
                    safe -= 1
                if safe > emitted:
                    req.on_token(text[emitted:safe])
                    emitted = safe
            if len(out) >= req.max_tokens:
                reason = "length"
                break
            if verified:
                logits = verified.pop(0)
                continue
            # Predictive: a pass expected to end past the deadline is not started (under a CPU hog a
            # pass takes ~0.1-0.3 s, and the one in flight at the deadline was the whole overshoot).
            if overruns(1):
                reason = "time"
                break
            room = req.max_tokens - len(out) - 1  # the pass also yields the token after the draft
            draft = lookup_draft(ids + out, min(draft_k, room)) if draft_k and room > 0 else []
            if draft and overruns(1 + len(draft)):
                draft = []  # a wider pass would end past the deadline; one more token still fits
            t_pass = self._now()
            if not draft:
                logits = be.step(tok, cache)
                self._timed_pass(t_pass)
                self._cached_ids.append(tok)
                continue
            rows = be.forward_many([tok, *draft], cache)  # rows[j]: logits after ([tok] + draft)[j]
            self._timed_pass(t_pass)
            ok = 0
            while ok < len(draft) and int(np.argmax(rows[ok])) == draft[ok]:
                ok += 1
            self._cached_ids += [tok, *draft[:ok]]
            be.trim_cache(cache, len(self._cached_ids))
            logits, verified = rows[0], list(rows[1: ok + 1])
            drafted, accepted = drafted + len(draft), accepted + ok
            # Shrink the draft after a miss (a wider pass wasted), grow it after a full hit.
            if ok == 0:
                draft_k = max(2, draft_k // 2)
            elif ok == len(draft):
                draft_k = min(4 * self.lookahead, 2 * draft_k)
        if req.on_token is not None and len(text) > emitted and reason != "cancelled":
            req.on_token(text[emitted:])
        t2 = self._now()
        return GenerationResult(
            text=text, token_ids=out, finish_reason=reason, prompt_tokens=len(ids), cached_tokens=cached,
            mean_logprob=float(np.mean(logps)) if logps else None,
            prefill_ms=(t1 - t0) * 1000, decode_ms=(t2 - t1) * 1000, drafted_tokens=drafted, accepted_tokens=accepted)


def _masked(logits: np.ndarray, ids: set[int]) -> np.ndarray:
    """A copy of ``logits`` in which ``ids`` can never be chosen."""
    out = np.array(logits, dtype=np.float32, copy=True)
    out[[i for i in ids if 0 <= i < out.shape[-1]]] = -np.inf
    return out


def _release(cache: Any) -> None:
    """Give a cache's memory back now (llama.cpp: its KV sequence id), where the backend can."""
    release = getattr(cache, "release", None)
    if release is not None:
        release()


def _stop_cut(text: str, stops: Sequence[str], req: GenerationRequest) -> int | None:
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    cut = min(hits) if hits else None
    if req.stop_fn is not None:
        fn_cut = req.stop_fn(text)
        if fn_cut is not None:
            cut = fn_cut if cut is None else min(cut, fn_cut)
    return cut
