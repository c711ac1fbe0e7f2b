"""One completion request, without the protocol: cache → prompt → engine → usage log.

The server turns LSP params into a :class:`CompletionInput`, and calls :meth:`Completer.lookup`
on the event loop (instant, type-ahead cache) and :meth:`Completer.generate` in a worker thread
(prompt assembly and decoding, cancellable through the ticket's :class:`CancelToken`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from mochi_core.config import MochiConfig
from mochi_index.usage import UsageLog
from mochi_ls.cache import SuggestionCache
from mochi_ls.index_host import IndexHost
from mochi_ls.recent import RecentEdits
from mochi_model.context import FimRequest
from mochi_model.holder import EngineHolder
from mochi_model.pipeline import complete_document, document_problem, prepare_request
from mochi_model.types import CancelToken, Engine, Snippet

logger = logging.getLogger(__name__)

ENGINE_WAIT_SLICE_S = 0.1  # a request for a loading model waits in slices, stopping when superseded


@dataclass(kw_only=True)
class CompletionInput:
    uri: str
    path: str  # project-relative when inside the project, else the file name
    language: str
    text: str
    offset: int
    t0: float = field(default_factory=time.perf_counter)


@dataclass(kw_only=True)
class Suggestion:
    id: str
    text: str
    latency_ms: float
    cached: bool = False
    finish_reason: str = ""
    typed: str = ""  # for cache hits: characters typed since the suggestion was made
    timings: dict[str, float | int | str] = field(default_factory=dict)  # generated ones: PipelineResult.timings


@dataclass
class CompleterStats:
    generated: int = 0
    cache_hits: int = 0
    empty: int = 0
    cancelled: int = 0
    cancelled_cpu_s: float = 0.0  # thread CPU time spent on generations that were cancelled
    errors: int = 0
    last_latency_ms: float = 0.0
    last_timings: dict[str, float | int | str] = field(default_factory=dict)  # of the latest generation


class Completer:
    """Completion logic shared by inline completion and the completion fallback."""

    def __init__(self, *, engine: EngineHolder, index: IndexHost, usage: UsageLog, cache: SuggestionCache,
                 recent: RecentEdits, config: Callable[[], MochiConfig],
                 text_of: Callable[[str], str | None] = lambda uri: None) -> None:
        self.engine = engine
        self.index = index
        self.usage = usage
        self.cache = cache
        self.recent = recent
        self.config = config
        self.text_of = text_of
        self.stats = CompleterStats()
        self._last_shown: dict[str, str] = {}  # uri -> id of the suggestion on screen
        self._grow_from: tuple[FimRequest, int] | None = None  # the last shrunk prompt's pieces and level

    def lookup(self, inp: CompletionInput) -> Suggestion | None:
        """Serve from the type-ahead cache; records a typed-over suggestion as rejected."""
        prefix, suffix = inp.text[: inp.offset], inp.text[inp.offset :]
        hit = self.cache.lookup(uri=inp.uri, prefix=prefix, suffix=suffix)
        last = self._last_shown.get(inp.uri)
        if hit is None:
            if last is not None:
                self.usage.rejected(last)
                self._last_shown.pop(inp.uri, None)
            return None
        if last is not None and last != hit.entry.id:
            self.usage.rejected(last)
        self._last_shown[inp.uri] = hit.entry.id
        self.stats.cache_hits += 1
        latency = (time.perf_counter() - inp.t0) * 1000
        self.stats.last_latency_ms = latency
        return Suggestion(id=hit.entry.id, text=hit.remaining, latency_ms=latency, cached=True, typed=hit.typed)

    def generate(self, inp: CompletionInput, cancel: CancelToken) -> Suggestion | None:
        """Build the prompt and decode (blocking; run in a worker thread)."""
        engine = self._wait_for_engine(cancel)
        if engine is None:
            return None
        cpu0 = time.thread_time()
        recent: list[Snippet] = self.recent.snippets(inp.uri, self.text_of)
        out = complete_document(engine, inp.text, inp.offset, path=inp.path, language=inp.language,
                                index=self.index.index_for(inp.uri), config=self.config().completion, recent=recent,
                                cancel=cancel, started=inp.t0)
        result = out.completion
        if cancel.cancelled or result.finish_reason == "cancelled":
            return self._cancelled(cpu0)
        latency = (time.perf_counter() - inp.t0) * 1000
        self.stats.last_latency_ms = latency
        self.stats.last_timings = {**out.timings(), "latency_ms": round(latency, 1)}
        level = int(self.stats.last_timings.get("prompt_fit", 0))
        self._grow_from = (out.request, level) if level > 0 else None
        text = out.text
        if not text.strip():
            self.stats.empty += 1
            return None
        self.stats.generated += 1
        sid = uuid.uuid4().hex[:16]
        prefix, suffix = inp.text[: inp.offset], inp.text[inp.offset :]
        self.cache.put(id=sid, uri=inp.uri, prefix=prefix, suffix=suffix, text=text)
        self.usage.shown(id=sid, path=inp.path, language=inp.language, prefix=prefix, suffix=suffix, text=text,
                         latency_ms=latency, model=getattr(engine, "model_id", ""))
        self._last_shown[inp.uri] = sid
        return Suggestion(id=sid, text=text, latency_ms=latency, finish_reason=result.finish_reason,
                          timings=self.stats.last_timings)

    def warm(self, inp: CompletionInput, cancel: CancelToken) -> str:
        """Prefill the prompt a request at ``inp`` would build (the cursor jumped here); returns the state.

        The pieces come from :func:`mochi_model.pipeline.prepare_request` with the inputs
        :meth:`generate` passes the pipeline, so the next request's prompt front is already in the KV cache.
        """
        engine = self.engine.get()
        warm = getattr(engine, "warm", None)  # not part of the Engine protocol: fakes and remote engines lack it
        if engine is None or warm is None or document_problem(inp.text):
            return "unsupported"
        budget_ms = self.config().completion.time_budget_ms
        budget_s = budget_ms / 1000 if budget_ms else None
        req = prepare_request(engine, inp.text, inp.offset, path=inp.path, language=inp.language,
                              index=self.index.index, config=self.config().completion,
                              recent=self.recent.snippets(inp.uri, self.text_of), time_budget_s=budget_s)
        if cancel.cancelled:
            return "preempted"
        return warm(req.prefix, req.suffix, req.snippets, path=req.path, language=req.language, cancel=cancel,
                    time_budget_s=budget_s).state

    @property
    def can_grow(self) -> bool:
        """The last generation ran a shrunk prompt (there is a bigger level to prefill)."""
        return self._grow_from is not None

    def grow(self, cancel: CancelToken) -> str:
        """Prefill the next bigger prompt level of the last request (it was shrunk to fit the budget),
        so the next one at that place sees more context; returns the state (``Engine.grow``)."""
        engine = self.engine.get()
        grow = getattr(engine, "grow", None)  # not part of the Engine protocol, as warm
        last, self._grow_from = self._grow_from, None
        if engine is None or grow is None or last is None:
            return "unsupported"
        req, level = last
        return grow(req.prefix, req.suffix, req.snippets, path=req.path, language=req.language, cancel=cancel,
                    from_level=level).state

    def _wait_for_engine(self, cancel: CancelToken) -> Engine | None:
        """The engine; while it loads, the request waits (answered once it is ready) unless superseded."""
        while True:
            engine = self.engine.get(ENGINE_WAIT_SLICE_S)
            if engine is not None or self.engine.state != "loading" or cancel.cancelled:
                return engine

    def _cancelled(self, cpu0: float) -> None:
        self.stats.cancelled += 1
        self.stats.cancelled_cpu_s += time.thread_time() - cpu0
        return None

    def accept(self, sid: str) -> bool:
        """The editor applied suggestion ``sid``."""
        for uri, shown in list(self._last_shown.items()):
            if shown == sid:
                del self._last_shown[uri]
                self.cache.invalidate(uri)
        return self.usage.accepted(sid)

    def forget(self, uri: str) -> None:
        self._last_shown.pop(uri, None)
        self.cache.invalidate(uri)
        self.recent.forget(uri)
