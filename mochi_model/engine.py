"""The inference engine the servers, the CLI and eval use (implements :class:`mochi_model.types.Engine`).

``InferenceEngine`` ties a backend, the shared decoding loop (KV prefix reuse), the FIM prompt format,
the adapter stack and post-processing together. It is safe to call from worker threads: one
generation runs at a time (a lock); a request cancelled while it waits for the lock returns at once
with ``finish_reason="cancelled"``, and a running one stops within one token.

Time budget: ``time_budget_s`` counts from when the request's turn comes (the lock is held), not
while it waits behind another one. When it runs out during decoding the text so far is returned,
cut at a safe boundary (:func:`mochi_model.postprocess.cut_partial`), with ``finish_reason="time"``
and ``extra["budget_cut"] = True``; when it runs out during prefill nothing can be shown, but the
prefilled part stays in the KV cache, so the next request (usually the same place) starts from
there. :attr:`InferenceEngine.budget_stats` counts both cases for status reports.

Prompt fit: with a time budget, once the turn has come, a FIM prompt whose uncached part would not
prefill within half the budget at the measured speed is shrunk (:mod:`mochi_model.prompt_fit`:
shorter suffix, no snippets, shorter prefix) — a smaller prompt's suggestion rather than none on a
slow or busy CPU. ``extra["prompt_fit"]`` says which level ran (0 = the full prompt) and
``budget_stats.trimmed`` counts such requests.

Warm-up: :meth:`InferenceEngine.warm` prefills the prompt of a place at low priority (cursor moved,
no request running) so the next real request there reuses the KV cache; any real request
pre-empts it within one small prefill chunk.

Original API::

    engine = InferenceEngine(adapter_stack=AdapterStack([(base, 0.3), (proj, 0.7)]))
    engine.complete(instruction="Write a docstring", input_code=code).response
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace

from mochi_model.adapters.stack import AdapterStack
from mochi_model.backends.base import Backend, GenerationRequest, GenerationResult
from mochi_model.fim import DEFAULT_CONTEXT_FORMAT, FimFormat, build_prompt, detect_fim_format, get_fim_format
from mochi_model.generation import Generator, WarmResult
from mochi_model.postprocess import block_end, clean_completion, cut_partial, decide_multiline, on_blank_line
from mochi_model.prompt_fit import ALWAYS_FITS, allowed_prefill_s, levels
from mochi_model.types import CancelToken, Completion, OnToken, Snippet

logger = logging.getLogger(__name__)
_CALIBRATION_TEXT = (
    "def merge(left: list[int], right: list[int]) -> list[int]:\n"
    "    out, i, j = [], 0, 0\n"
    "    while i < len(left) and j < len(right):\n"
    "        if left[i] <= right[j]:\n"
    "            out.append(left[i]); i += 1\n"
    "        else:\n"
    "            out.append(right[j]); j += 1\n"
    "    return out + left[i:] + right[j:]\n"
)
#: Least share of its time budget a request keeps after waiting for a warm-up's chunk to finish.
WARM_WAIT_FLOOR = 0.5
_CHAT_STOPS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "</s>")


@dataclass
class BudgetStats:
    """How often the time budget ended a request (thread-safe enough: one generation at a time)."""

    cut: int = 0  # ended by the budget with text to show (a partial suggestion)
    expired: int = 0  # ended by the budget before anything could be shown (usually during prefill)
    last_at: float = 0.0  # wall-clock time (time.time()) of the latest of either
    last_ms: float = 0.0  # how long that request ran (from its turn, i.e. the budget's start)
    last_tokens: int = 0  # tokens it had generated
    trimmed: int = 0  # requests whose prompt was shrunk to fit the budget (see mochi_model.prompt_fit)
    last_fit: int = 0  # the level of the latest request (0 = full prompt)

    def record(self, shown: bool, ran_ms: float, tokens: int) -> None:
        if shown:
            self.cut += 1
        else:
            self.expired += 1
        self.last_at, self.last_ms, self.last_tokens = time.time(), ran_ms, tokens

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


class InferenceEngine:
    """A loaded model with an optional adapter stack.

    Args:
        adapter_stack: adapters to serve (checked against the base model).
        backend: an already loaded backend; otherwise one is loaded from ``model``/``preset``.
        model: folder, ``.gguf`` or hub id (default: the default preset).
        backend_name: ``auto`` | ``torch`` | ``mlx`` | ``remote``.
        fim_format: ``auto`` (from the tokenizer), a format name, or ``none`` (prefix-only).
        context_format: how snippets are laid out: ``comment`` (a commented block before the prefix) or
            ``repo`` (the model's repo-level tokens, where it has them). `mochi eval` on 300 held-out holes
            measured comments at least as good (16.0 % vs 13.7 % next-line EM with retrieval; equal with a
            project adapter), so comments are the default.
        reuse_kv: reuse the KV cache of the previous request's common prefix.
    """

    def __init__(self, adapter_stack: AdapterStack | None = None, *, backend: Backend | None = None,
                 model: str | None = None, preset: str | None = None, backend_name: str = "auto",
                 device: str = "auto", dtype: str = "auto", fim_format: str = "auto",
                 context_format: str = DEFAULT_CONTEXT_FORMAT, reuse_kv: bool = True, repo_name: str = "") -> None:
        if backend is None:
            from mochi_model.backends import load_backend, resolve_backend_name
            from mochi_model.sources import resolve_model

            name = resolve_backend_name(backend_name)
            source = resolve_model(model, preset=preset, backend=name)
            logger.warning("model: %s", source.describe())
            backend = load_backend(name, source, device=device, dtype=dtype)
        self.backend = backend
        self.model_id = backend.model_id
        self.context_format = context_format
        self.reuse_kv = reuse_kv
        self.repo_name = repo_name
        self.fim = self._pick_fim(fim_format)
        self._gen = Generator(backend) if backend.supports_tokens else None
        self._lock = threading.Lock()
        self._waiting = 0  # real requests waiting for the lock: a warm-up yields to them
        self._warming = False  # a warm-up holds the lock (a request waiting for it pays the wait)
        self._waiting_lock = threading.Lock()
        self.budget_stats = BudgetStats()
        self.adapter_stack: AdapterStack | None = None
        if adapter_stack is not None:
            self.set_adapter_stack(adapter_stack)

    def _pick_fim(self, name: str) -> FimFormat | None:
        if name != "auto":
            return get_fim_format(name)
        fmt = None
        if self.backend.tokenizer is not None:
            fmt = detect_fim_format(self.backend.tokenizer.get_vocab())
        if fmt is None and self.backend.source is not None and self.backend.source.preset is not None:
            fmt = get_fim_format(self.backend.source.preset.fim)
        if fmt is None:
            logger.warning("%s has no known FIM tokens; completing from the prefix only", self.model_id)
        return fmt

    # --- adapters ---------------------------------------------------------------------------
    def prepare_adapter_stack(self, stack: AdapterStack) -> None:
        """Check ``stack`` and do the backend's slow install work (GGUF conversion) without the lock,
        while requests keep running; :meth:`set_adapter_stack` then only swaps.

        Raises:
            AdapterMismatch / AdapterError / ModelError: the stack cannot run on this model.
        """
        self.backend.prepare_adapter_stack(stack)

    def set_adapter_stack(self, stack: AdapterStack | None) -> None:
        """Install ``stack`` (None = the base model) between two generations; the KV cache is dropped.

        If the backend refuses it, the previous stack is put back before the error propagates, so the
        engine keeps serving what it served.
        """
        with self._lock:
            old = self.adapter_stack
            try:
                self.backend.set_adapter_stack(stack)
            except Exception:
                if old is not stack:
                    try:
                        self.backend.set_adapter_stack(old)
                    except Exception:  # both failed: say so; the first error is the one to raise
                        logger.exception("could not restore the previous adapter stack")
                raise
            self.adapter_stack = stack
            if self._gen is not None:
                self._gen.reset()  # the state key changes too; this also frees the old cache now

    def set_adapter_weights(self, weights: Mapping[str, float] | Sequence[float]) -> None:
        """Change stack weights for the following requests (no reload)."""
        with self._lock:
            self._apply_weights(weights)

    def _apply_weights(self, weights: Mapping[str, float] | Sequence[float]) -> None:
        if self.adapter_stack is None:
            raise ValueError("no adapter stack is loaded")
        current = self.adapter_stack.weights
        if isinstance(weights, Mapping):
            wanted = {**current, **{k: float(v) for k, v in weights.items()}}
        else:
            wanted = {a.name: float(w) for a, w in zip(self.adapter_stack.adapters, weights, strict=False)}
        if wanted != current:  # unchanged weights keep the KV cache valid
            self.adapter_stack.set_weights(weights)
            self.backend.update_adapter_weights()

    def set_fused(self, fused: bool) -> None:
        """Fold the stack's weighted deltas into the weights (fast decoding) or undo it."""
        with self._lock:
            if self.adapter_stack is not None:
                self.adapter_stack.fused = fused
            (self.backend.fuse if fused else self.backend.unfuse)()

    # --- Engine protocol --------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        if self.backend.tokenizer is None:
            return (len(text) + 3) // 4
        return len(self.backend.encode(text))

    def _stop_ids(self, tokens: Sequence[str]) -> list[int]:
        if self.backend.tokenizer is None:
            return []
        ids = [self.backend.token_id(t) for t in tokens]
        return [i for i in ids if i is not None]

    @property
    def queued(self) -> int:
        """Requests waiting for their turn (a warm-up in progress stops when this is non-zero)."""
        return self._waiting

    def _acquire(self, cancel: CancelToken | None) -> bool:
        """Wait for this request's turn; False when it was cancelled while waiting."""
        with self._waiting_lock:
            self._waiting += 1
        try:
            while not self._lock.acquire(timeout=0.02):
                if cancel is not None and cancel.cancelled:
                    return False
            return True
        finally:
            with self._waiting_lock:
                self._waiting -= 1

    def _run(self, prompt: str, req: GenerationRequest,
             weights: Mapping[str, float] | Sequence[float] | None,
             fit: Callable[[list[int]], list[int]] | None = None) -> tuple[GenerationResult | None, float]:
        """The result (None when cancelled while waiting) and the milliseconds waited for the turn.

        The time budget starts once this request's turn has come (encoding and prompt fit count): a
        wait behind another request does not count. A wait for a warm-up's last chunk does (down to
        :data:`WARM_WAIT_FLOOR` of the budget): the warm-up was the server's choice, and it prefilled
        this request's own prompt, so the time is the request's prefill anyway.
        """
        now = self._gen._now if self._gen is not None else time.perf_counter  # the generator's clock
        t = now()
        behind_warm_up = self._warming
        if not self._acquire(req.cancel):
            return None, (now() - t) * 1000
        t_turn = now()
        wait_ms = (t_turn - t) * 1000
        budget = req.time_budget_s
        try:
            if weights is not None:
                self._apply_weights(weights)
            if self._gen is None:
                return self.backend.generate_text(prompt, req), wait_ms
            ids = self.backend.encode(prompt)
            if fit is not None:
                ids = fit(ids)
            if budget is not None:  # what the turn spent before decoding (encoding, fit) counts too
                counted = (now() - t_turn) + (wait_ms / 1000 if behind_warm_up else 0.0)
                req = replace(req, time_budget_s=max(budget - counted, budget * WARM_WAIT_FLOOR))
            return self._gen.generate(ids, req), wait_ms
        finally:
            self._lock.release()

    def _fit_ids(self, ids: list[int], budget_s: float | None, pieces: tuple[str, str, Sequence[Snippet]], *,
                 path: str, language: str, chosen: list[int]) -> list[int]:
        """The full prompt's ``ids``, or a smaller level's when its uncached part would not prefill in
        time (called with the lock held, so the KV cache is the one this request will use)."""
        gen = self._gen
        chosen.append(0)
        if budget_s is None or gen is None:
            return ids
        allowed = allowed_prefill_s(budget_s, gen.step_seconds)

        def fits(cand: list[int]) -> bool:
            new = len(cand) - gen.cached_len(cand)
            need = gen.prefill_seconds(new)
            return need is None or new <= ALWAYS_FITS or need <= allowed

        if fits(ids):
            return ids
        best = ids
        for level, p, s, sn in levels(*pieces):
            best = self.backend.encode(self._fim_prompt(p, s, sn, path=path, language=language))
            chosen[-1] = level
            if fits(best):
                break
        return best

    def complete_fim(self, prefix: str, suffix: str = "", context_snippets: Sequence[Snippet] = (), *,
                     max_tokens: int = 64, stop: Sequence[str] = (), temperature: float = 0.0,
                     multiline: bool | None = None, cancel: CancelToken | None = None,
                     time_budget_s: float | None = None, path: str = "", language: str = "",
                     on_token: OnToken | None = None,
                     adapter_weights: Mapping[str, float] | Sequence[float] | None = None) -> Completion:
        """Fill the hole between ``prefix`` and ``suffix`` (post-processed, ready to insert).

        ``on_token`` receives the raw stream; the returned text is post-processed and may be shorter.
        ``adapter_weights`` changes the stack's weights from this request on (no reload).
        """
        t0 = time.perf_counter()
        ml = decide_multiline(prefix, suffix) if multiline is None else multiline
        prompt = self._fim_prompt(prefix, suffix, context_snippets, path=path, language=language)

        def stop_fn(text: str) -> int | None:
            if not ml:
                i = text.find("\n")
                return i if i >= 0 else None
            return block_end(text, prefix)

        req = GenerationRequest(max_tokens=max_tokens, stop=tuple(stop), temperature=temperature, cancel=cancel,
                                time_budget_s=time_budget_s, on_token=on_token, stop_fn=stop_fn,
                                stop_ids=self._stop_ids(self.fim.stop_tokens if self.fim else _CHAT_STOPS),
                                reuse_cache=self.reuse_kv, min_tokens=1 if on_blank_line(prefix, suffix) else 0)
        chosen: list[int] = []
        fit_ms = [0.0]

        def fit(ids: list[int]) -> list[int]:
            t = time.perf_counter()
            try:
                return self._fit_ids(ids, time_budget_s, (prefix, suffix, context_snippets), path=path,
                                     language=language, chosen=chosen)
            finally:
                fit_ms[0] = (time.perf_counter() - t) * 1000

        res, wait_ms = self._run(prompt, req, adapter_weights, fit)
        if res is None:
            return Completion(text="", finish_reason="cancelled", total_ms=(time.perf_counter() - t0) * 1000,
                              extra={"wait_ms": wait_ms})
        level = chosen[-1] if chosen else 0
        self.budget_stats.last_fit = level
        if level:
            self.budget_stats.trimmed += 1
        budget_cut = res.finish_reason == "time"
        raw = cut_partial(res.text, ml) if budget_cut else res.text
        # post-processing sees the document's own prefix/suffix, whatever the prompt kept of them
        text = clean_completion(raw, prefix, suffix, multiline=ml)
        if budget_cut:
            self.budget_stats.record(bool(text.strip()), res.prefill_ms + res.decode_ms, len(res.token_ids))
        return self._completion(res, text, t0, raw=res.text, multiline=ml, budget_cut=budget_cut,
                                fim_format=self.fim.name if self.fim else "prefix-only", prompt_fit=level,
                                wait_ms=wait_ms, fit_ms=fit_ms[0])

    def _fim_prompt(self, prefix: str, suffix: str, context_snippets: Sequence[Snippet], *, path: str,
                    language: str) -> str:
        return build_prompt(self.fim, prefix, suffix, context_snippets, path=path, language=language,
                            context_format=self.context_format, repo_name=self.repo_name)

    def prefill_capacity(self, time_budget_s: float) -> int | None:
        """Uncached prompt tokens a request with ``time_budget_s`` may prefill at this machine's measured
        speed (:mod:`mochi_model.prompt_fit`'s rule); None before a prefill was measured."""
        gen = self._gen
        per = gen.prefill_seconds(gen.prefill_chunk) if gen is not None else None
        if gen is None or not per:
            return None
        tokens = allowed_prefill_s(time_budget_s, gen.step_seconds) / (per / gen.prefill_chunk)
        return max(ALWAYS_FITS, int(tokens))

    def calibrate(self) -> bool:
        """Measure this machine's prefill and decoding speed once (about a 64-token prefill), so the
        first request with a time budget is already fitted (:mod:`mochi_model.prompt_fit`). The
        servers call it right after loading; False for backends without a token loop."""
        if self._gen is None:
            return False
        ids = self.backend.encode(_CALIBRATION_TEXT)
        with self._lock:
            self._gen.calibrate(ids)
        return True

    def warm(self, prefix: str, suffix: str = "", context_snippets: Sequence[Snippet] = (), *, path: str = "",
             language: str = "", cancel: CancelToken | None = None,
             time_budget_s: float | None = None) -> WarmResult:
        """Prefill the prompt ``complete_fim`` would build for these pieces, at low priority.

        Call it (off the event loop) when the cursor moved to a new place and no request runs: it
        returns ``busy`` at once when a request is running or waiting, and stops (``preempted``)
        within one :attr:`Generator.warm_chunk` as soon as a real request arrives or ``cancel`` is
        set. What it prefilled stays in the KV cache for the next request. With ``time_budget_s``
        (the requests' budget) it warms the prompt level a request with that budget would run
        (:mod:`mochi_model.prompt_fit`), so on a slow CPU the request finds its own, smaller prompt
        cached rather than the front of one too big to finish. A model error drops the cache and
        propagates, as it does for a request.
        """
        t0 = time.perf_counter()
        if self._gen is None:
            return WarmResult(state="unsupported")
        if cancel is not None and cancel.cancelled:
            return WarmResult(state="preempted")
        prompt = self._fim_prompt(prefix, suffix, context_snippets, path=path, language=language)
        chosen: list[int] = []

        def work(stop: Callable[[], bool]) -> WarmResult:
            assert self._gen is not None
            ids = self.backend.encode(prompt)
            if time_budget_s is not None:
                ids = self._fit_ids(ids, time_budget_s, (prefix, suffix, context_snippets), path=path,
                                    language=language, chosen=chosen)
            return self._gen.warm(ids, stop=stop, reuse=self.reuse_kv)

        res = self._low_priority(cancel, work)
        res.ms = (time.perf_counter() - t0) * 1000
        res.prompt_fit = chosen[-1] if chosen else 0
        return res

    def grow(self, prefix: str, suffix: str = "", context_snippets: Sequence[Snippet] = (), *, path: str = "",
             language: str = "", cancel: CancelToken | None = None, from_level: int = 0) -> WarmResult:
        """Prefill the next bigger prompt level than ``from_level`` (the one the last request ran, see
        :mod:`mochi_model.prompt_fit`) for these pieces, at low priority, while the person reads.

        The next request at this place then finds that bigger prompt cached and its fit picks it: on
        a CPU too slow for the full prompt within the budget, context grows one level (about double
        the code before the cursor) per pause instead of staying at the smallest. The level is
        prefilled into a second cache (:meth:`Generator.grow`): cut short by a request or ``cancel``,
        it is dropped and the cache the request needs stays. ``busy`` when a request runs or waits.
        """
        t0 = time.perf_counter()
        if self._gen is None:
            return WarmResult(state="unsupported")
        bigger = [lv for lv in [(0, prefix, suffix, context_snippets), *levels(prefix, suffix, context_snippets)]
                  if lv[0] < from_level]
        if not bigger or (cancel is not None and cancel.cancelled):
            return WarmResult(state="done" if not bigger else "preempted")
        level, p, s, sn = bigger[-1]
        prompt = self._fim_prompt(p, s, sn, path=path, language=language)

        def work(stop: Callable[[], bool]) -> WarmResult:
            assert self._gen is not None
            return self._gen.grow(self.backend.encode(prompt), stop=stop)

        res = self._low_priority(cancel, work)
        res.ms = (time.perf_counter() - t0) * 1000
        res.prompt_fit = level
        return res

    def _low_priority(self, cancel: CancelToken | None, work: Callable[[Callable[[], bool]], WarmResult]) -> WarmResult:
        """``work(stop)`` with the engine lock, if it is free and no request waits (else ``busy``);
        ``stop()`` turns true when a request starts waiting or ``cancel`` is set (warm-up, growth)."""
        if self._waiting or not self._lock.acquire(blocking=False):
            return WarmResult(state="busy")
        self._warming = True
        try:
            if self._waiting:
                return WarmResult(state="busy")

            def stop() -> bool:
                return self._waiting > 0 or (cancel is not None and cancel.cancelled)

            return work(stop)
        finally:
            self._warming = False
            self._lock.release()

    def generate(self, prompt: str, *, max_tokens: int = 256, stop: Sequence[str] = (), temperature: float = 0.0,
                 cancel: CancelToken | None = None, time_budget_s: float | None = None, chat: bool = True,
                 on_token: OnToken | None = None) -> Completion:
        """Instruction-style generation; ``chat=True`` applies the model's chat template."""
        t0 = time.perf_counter()
        tok = self.backend.tokenizer
        text_in = prompt
        if chat and tok is not None and getattr(tok, "chat_template", None):
            text_in = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                              add_generation_prompt=True)
        req = GenerationRequest(max_tokens=max_tokens, stop=tuple(stop), temperature=temperature, cancel=cancel,
                                time_budget_s=time_budget_s, on_token=on_token,
                                stop_ids=self._stop_ids(_CHAT_STOPS), reuse_cache=self.reuse_kv)
        res, wait_ms = self._run(text_in, req, None)
        if res is None:
            return Completion(text="", finish_reason="cancelled", total_ms=(time.perf_counter() - t0) * 1000,
                              extra={"wait_ms": wait_ms})
        return self._completion(res, res.text, t0, raw=res.text, wait_ms=wait_ms)

    def complete(self, instruction: str, input_code: str = "", *, max_tokens: int = 256,
                 temperature: float = 0.0, **kw: object) -> Completion:
        """The original API: an instruction about ``input_code``; the answer is ``.response``."""
        prompt = instruction if not input_code else f"{instruction}\n\n```\n{input_code}\n```"
        out = self.generate(prompt, max_tokens=max_tokens, temperature=temperature, **kw)  # type: ignore[arg-type]
        return out

    def _completion(self, res: GenerationResult, text: str, t0: float, **extra: object) -> Completion:
        return Completion(text=text, finish_reason=res.finish_reason, prompt_tokens=res.prompt_tokens,
                          cached_tokens=res.cached_tokens, completion_tokens=len(res.token_ids),
                          mean_logprob=res.mean_logprob, prefill_ms=res.prefill_ms, decode_ms=res.decode_ms,
                          total_ms=(time.perf_counter() - t0) * 1000,
                          extra={**extra, "drafted_tokens": res.drafted_tokens, "accepted_tokens": res.accepted_tokens})

    def reset_cache(self) -> None:
        with self._lock:
            if self._gen is not None:
                self._gen.reset()

    def close(self) -> None:
        with self._lock:
            self.backend.close()

