"""Server state and request flow, free of protocol types.

A :class:`Session` owns the config, the engine host, the index host, the type-ahead cache, the
usage log and the request gate. ``server.py`` turns LSP params into calls here and results back
into LSP types; everything the session has to tell the editor goes through a :class:`Notifier`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from mochi_core.config import MochiConfig, load_config
from mochi_index.usage import UsageLog
from mochi_ls.cache import SuggestionCache
from mochi_ls.completer import Completer, CompletionInput, Suggestion
from mochi_ls.index_host import IndexHost
from mochi_ls.recent import RecentEdits
from mochi_ls.scheduling import RequestGate
from mochi_ls.settings import model_signature, settings_to_config
from mochi_model.adapter_refresh import AdapterSource
from mochi_model.holder import EngineHolder
from mochi_model.pipeline import document_problem
from mochi_model.types import CancelToken, Engine

logger = logging.getLogger(__name__)

EngineBuilder = Callable[[MochiConfig, Path | None], Engine]
# (config, root) -> the adapter choice the builder loads from; re-run to notice changed adapters
AdapterChooser = Callable[[MochiConfig, Path | None], AdapterSource]


class Notifier(Protocol):
    """What the session tells the editor (implemented by the server; thread-safe)."""

    def log(self, level: str, message: str) -> None: ...  # level: error | warning | info
    def show(self, level: str, message: str) -> None: ...
    def status(self, data: dict[str, Any]) -> None: ...


class _NullNotifier:
    def log(self, level: str, message: str) -> None:
        getattr(logger, level if level != "warning" else "warning")(message)

    def show(self, level: str, message: str) -> None:
        self.log(level, message)

    def status(self, data: dict[str, Any]) -> None:
        pass


class BudgetReport:
    """How often the time budget cut suggestions short, for ``mochi.status`` and ``mochi/status``.

    ``cut``: suggestions shown although the budget stopped them mid-way (partial text);
    ``expired``: requests the budget ended before anything could be shown (the prompt was still
    being prefilled; the engine says so through its ``budget_stats``); ``recent``: how many of the
    last :attr:`WINDOW` generations hit the budget either way — what an editor should show as "slow".
    """

    WINDOW = 20

    def __init__(self) -> None:
        self.cut = 0
        self.expired = 0
        self.last_at = 0.0  # time.time() of the latest budget hit
        self.last_latency_ms = 0.0
        self._window: deque[bool] = deque(maxlen=self.WINDOW)

    def note(self, hit: str, latency_ms: float = 0.0) -> None:
        """``hit``: ``cut`` | ``expired`` | ``""`` (the generation finished within its budget)."""
        self._window.append(bool(hit))
        if not hit:
            return
        if hit == "cut":
            self.cut += 1
        else:
            self.expired += 1
        self.last_at, self.last_latency_ms = time.time(), latency_ms

    def as_dict(self, budget_ms: int) -> dict[str, Any]:
        return {"time_budget_ms": budget_ms, "cut": self.cut, "expired": self.expired,
                "recent": sum(self._window), "window": len(self._window),
                "last_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.last_at)) if self.last_at else "",
                "last_latency_ms": round(self.last_latency_ms, 1)}


def _engine_expired(engine: Any) -> int:
    return _engine_stat(engine, "expired")


def _engine_stat(engine: Any, name: str) -> int:
    stats = getattr(engine, "budget_stats", None)
    return int(getattr(stats, name, 0) or 0)


#: Seconds the person must be idle after a suggestion before its prompt grows (Session.grow).
GROW_IDLE_S = 0.5


class Session:
    """Everything one editor connection needs.

    Args:
        engine: a ready engine (tests: the fake).
        build_engine: ``(config, root) -> Engine``, called in the background after ``initialized``
            and again when model settings change. Ignored when ``engine`` is given.
        choose_adapters: ``(config, root) -> AdapterChoice``, the choice ``build_engine`` loads; with it,
            requests, saves and status look for changed adapters (``[server] adapter_check_s``) and
            swap them in without reloading the model.
    """

    def __init__(self, *, engine: Engine | None = None, build_engine: EngineBuilder | None = None,
                 choose_adapters: AdapterChooser | None = None, notifier: Notifier | None = None) -> None:
        self.notifier: Notifier = notifier or _NullNotifier()
        self.root: Path | None = None
        self.project_config = MochiConfig()
        self.config = MochiConfig()
        self._build_engine = build_engine if engine is None else None
        self._choose_adapters = choose_adapters if engine is None else None
        self.engine = EngineHolder(engine=engine, on_state=self._engine_state, on_adapters=self._adapters_changed)
        self.index = IndexHost(None, self.config)
        self.usage = UsageLog(Path("."), enabled=False)
        self.cache = SuggestionCache()
        self.recent = RecentEdits()
        self.gate = RequestGate()
        self.budget = BudgetReport()
        self.completer = self._make_completer()
        # One generation at a time: a superseded one stops within a token, and models are not
        # safe to drive from two threads. Index work gets its own thread.
        self.gen_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mochi-gen")
        self.io_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mochi-index")
        # Warm-up prefills run on their own thread: a request never queues behind one (it pre-empts it).
        self.warm_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mochi-warm")
        self._warm_token: CancelToken | None = None
        self.warm_states: dict[str, int] = {}
        self._grow_token: CancelToken | None = None  # the prompt growth after a suggestion (Completer.grow)
        self.grow_states: dict[str, int] = {}
        self.text_of: Callable[[str], str | None] = lambda uri: None
        self.index_ready = threading.Event()  # set when the start-up index finished (or was skipped)

    def _make_completer(self) -> Completer:
        return Completer(engine=self.engine, index=self.index, usage=self.usage, cache=self.cache,
                         recent=self.recent, config=lambda: self.config, text_of=lambda uri: self.text_of(uri))

    # -- lifecycle -------------------------------------------------------------------------
    def configure(self, root: Path | None, options: Any) -> list[str]:
        """Read the project's config.toml, layer the editor's options; returns problems."""
        self.root = root
        problems: list[str] = []
        if root is not None:
            self.project_config, problems = load_config(root)
        self.config, more = settings_to_config(options, self.project_config)
        problems += more
        self.index = IndexHost(root, self.config)
        self.usage = UsageLog(root or Path("."), enabled=root is not None and self.config.server.log_usage)
        self.completer = self._make_completer()
        return problems

    def start(self) -> None:
        """After ``initialized``: load the model in the background."""
        if self._build_engine is not None and self.engine.state == "none":
            self._replace_engine()
        if self.engine.state == "ready":
            self.notifier.status({"state": "ready", "model": getattr(self.engine.get(), "model_id", "")})

    def _replace_engine(self) -> None:
        builder, cfg, root = self._build_engine, self.config, self.root
        assert builder is not None
        adapters = self._choose_adapters(cfg, root) if self._choose_adapters is not None else None
        self.engine.replace(lambda progress: builder(cfg, root), adapters=adapters,
                            adapter_check_s=cfg.server.adapter_check_s)

    def _adapters_changed(self, level: str, message: str) -> None:
        """The adapter stack was swapped (or a new one failed to load): tell the editor (any thread)."""
        if level == "info":
            self.cache.clear()  # cached suggestions came from the old stack
        self.notifier.log(level, f"Mochi: {message}")
        self.notifier.status({"state": self.engine.state, "adapters": self.engine.status().get("adapters", []),
                              "adapter_update": message})

    def _engine_state(self, state: str, detail: str) -> None:
        self.notifier.status({"state": state, "detail": detail})
        if state == "failed":
            self.notifier.show("error", f"Mochi: {detail}. Completions are off until the model loads; "
                               "check [model] in .mochi/config.toml or the mochi settings.")
        elif state == "ready":
            self.notifier.log("info", f"Mochi: model ready ({detail}) in {self.engine.load_s:.1f}s")

    def change_settings(self, options: Any) -> list[str]:
        """``workspace/didChangeConfiguration``: apply, reload the model if its settings moved."""
        before = model_signature(self.config)
        self.config, problems = settings_to_config(options, self.project_config)
        self.usage.enabled = self.root is not None and self.config.server.log_usage
        self.cache.clear()
        self.engine.set_adapter_check(self.config.server.adapter_check_s)
        if self._build_engine is not None and model_signature(self.config) != before:
            self.notifier.log("info", "Mochi: model settings changed; reloading the model")
            self._replace_engine()
        return problems

    def shutdown(self) -> None:
        self.gate.cancel_all()
        self.gen_pool.shutdown(wait=False, cancel_futures=True)
        for token in (self._warm_token, self._grow_token):
            if token is not None:
                token.cancel()
        self.warm_pool.shutdown(wait=False, cancel_futures=True)
        self.io_pool.shutdown(wait=False, cancel_futures=True)
        self.index.close()

    # -- completion --------------------------------------------------------------------------
    def language_enabled(self, language: str) -> bool:
        enabled = self.config.server.enabled_languages
        return not enabled or language in enabled

    def warm(self, inp: CompletionInput) -> None:
        """The cursor moved to a new place: prefill its prompt in the background (llama.vim-style warm-up)."""
        if self.engine.state != "ready" or not self.language_enabled(inp.language):
            return
        for old in (self._warm_token, self._grow_token):
            if old is not None:
                old.cancel()  # a growth at the old place is stale too
        token = self._warm_token = CancelToken()
        self._in_background(lambda: self.completer.warm(inp, token), self.warm_states, "warm-up")

    def grow(self) -> None:
        """A suggestion was made from a shrunk prompt: grow it while the person reads (background).

        It starts only after :data:`GROW_IDLE_S` without a keystroke or a jump (either cancels it
        first): measured without that wait, a growth begun while the person typed on held the engine
        when they jumped, and the jump's warm-up came too late (hog: 1 of 30 prompt tokens cached).
        """
        token = self._grow_token = CancelToken()

        def run() -> str:
            if token.wait(GROW_IDLE_S):
                return "preempted"
            return self.completer.grow(token)

        self._in_background(run, self.grow_states, "prompt growth")

    def _in_background(self, run: Callable[[], str], states: dict[str, int], what: str) -> None:
        """``run`` on the warm-up thread; its returned state is counted in ``states``."""

        def job() -> None:
            try:
                state = run()
            except Exception:  # top of the warm-up thread: a failed warm-up only costs its time
                logger.exception("%s failed", what)
                state = "error"
            states[state] = states.get(state, 0) + 1

        self.warm_pool.submit(job)

    async def complete(self, inp: CompletionInput) -> Suggestion | None:
        """Type-ahead cache, else debounce → generate in the worker; newest request per document wins.

        Raises:
            asyncio.CancelledError: the client cancelled the request (the decoder is told to stop).
        """
        self.engine.refresh_adapters()  # at most every adapter_check_s, in the background
        problem = document_problem(inp.text)
        if problem:
            self.notifier.log("info", f"Mochi: no completion for {inp.path or inp.uri}: {problem}")
            return None
        if not self.language_enabled(inp.language):
            return None
        # A warm-up keeps going through this request's debounce and retrieval: the engine pre-empts
        # it within one chunk once the request is ready to run (Engine.warm); it is retired below.
        # A prompt growth stops now: it is only of use complete, and the person typed on.
        if self._grow_token is not None:
            self._grow_token.cancel()
        ticket = self.gate.open(inp.uri)
        try:
            hit = self.completer.lookup(inp)
            if hit is not None:
                return hit
            if self.engine.state == "failed":
                self.notifier.log("warning", f"Mochi: {self.engine.error}")
                return None
            if not await self.gate.debounce(ticket, self.config.completion.debounce_ms / 1000):
                return None
            loop = asyncio.get_running_loop()
            expired_before = _engine_expired(self.engine.get())
            try:
                sug = await loop.run_in_executor(self.gen_pool, self.completer.generate, inp, ticket.token)
            finally:
                if self._warm_token is not None:
                    self._warm_token.cancel()  # a warm-up not yet run is stale now: it must not trim the cache
            if ticket.cancelled:
                return None
            self._note_budget(sug, _engine_expired(self.engine.get()) > expired_before, inp)
            if self.config.completion.grow_when_idle and self.completer.can_grow:
                self.grow()
            return sug
        except asyncio.CancelledError:
            self.gate.cancel(ticket)
            raise
        finally:
            self.gate.close(ticket)

    def _note_budget(self, sug: Suggestion | None, expired: bool, inp: CompletionInput) -> None:
        """Count budget hits and tell the editor (``mochi/status``) about each finished generation."""
        hit = "cut" if sug is not None and sug.finish_reason == "time" else ("expired" if expired else "")
        latency = sug.latency_ms if sug is not None else (time.perf_counter() - inp.t0) * 1000
        self.budget.note(hit, latency)
        if sug is None and not hit:
            return
        data: dict[str, Any] = {"state": "ready", "latency_ms": round(latency, 1), "budget_cut": bool(hit),
                                "timings": sug.timings if sug is not None else dict(self.completer.stats.last_timings)}
        if hit:
            data["budget"] = self.budget.as_dict(self.config.completion.time_budget_ms)
        self.notifier.status(data)

    def accept(self, sid: str) -> bool:
        return self.completer.accept(sid)

    # -- index -------------------------------------------------------------------------------
    def index_on_start(self) -> bool:
        """Open the index (blocking: run in a worker); True when the workspace should be indexed now."""
        return self.index.open_for_session(build=self.config.server.index_on_start)

    async def save(self, rel_path: str, text: str | None) -> bool:
        """didSave: re-index the file off the event loop."""
        if not rel_path or self.root is None:
            return False
        loop = asyncio.get_running_loop()
        self.cache.clear()  # cached suggestions were made with the old project context
        self.engine.refresh_adapters()
        try:
            return await loop.run_in_executor(self.io_pool, self.index.update_file, rel_path, text)
        except Exception as exc:  # indexing a file must never take the server down
            logger.exception("re-indexing %s failed", rel_path)
            self.notifier.log("warning", f"Mochi: could not re-index {rel_path}: {exc}")
            return False

    def status(self) -> dict[str, Any]:
        s, g = self.completer.stats, self.gate.stats
        self.engine.refresh_adapters()
        held = self.engine.status()
        return {
            "engine": self.engine.state, "engine_error": self.engine.error, "warm_ups": dict(self.warm_states),
            "prompt_growths": dict(self.grow_states),
            "model": getattr(self.engine.get(), "model_id", ""),
            "adapters": held.get("adapters", []),
            # how the adapters on disk are followed (see mochi_model.adapter_refresh); {} = they are not
            "adapter_refresh": held.get("adapter_refresh", {}),
            "root": str(self.root) if self.root else "",
            "index": {"available": self.index._index is not None, "error": self.index.error,
                      "indexing": self.index.indexing, "saves": self.index.saves,
                      "ready": self.index_ready.is_set()},
            "requests": g.opened, "superseded": g.superseded, "cancelled": g.cancelled, "debounced": g.debounced,
            "generated": s.generated, "cache_hits": s.cache_hits, "empty": s.empty,
            "cancelled_generations": s.cancelled, "cancelled_cpu_s": round(s.cancelled_cpu_s, 4),
            "last_latency_ms": round(s.last_latency_ms, 2), "last_timings": dict(s.last_timings),
            "budget": {**self.budget.as_dict(self.config.completion.time_budget_ms),
                       # prompts shrunk to fit the budget (a slow or busy CPU), see mochi_model.prompt_fit
                       "trimmed": _engine_stat(self.engine.get(), "trimmed")},
            "config": {"max_tokens": self.config.completion.max_tokens,
                       "debounce_ms": self.config.completion.debounce_ms,
                       "multiline": self.config.completion.multiline,
                       "enabled_languages": list(self.config.server.enabled_languages)},
        }
