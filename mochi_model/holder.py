"""The one lazy engine holder both servers use (LSP and MCP), and the factory for the real engine.

A model takes seconds to load; a server must answer its client's handshake at once and keep
serving while it loads. :class:`EngineHolder` holds an engine given ready-made (tests pass a
fake) or builds it once from a factory, in a background thread (:meth:`EngineHolder.start`) or on
first use (:meth:`EngineHolder.require`). A failed load is remembered with a message users can act
on; both servers report it and keep serving what needs no model.

States: ``none`` → ``loading`` → ``ready`` | ``failed``.

Adapters that change on disk while a server runs (a newer installed version, a rewritten adapter
folder) are swapped into the loaded engine when the holder is given the server's adapter choice
(``adapters=``, an :class:`~mochi_model.adapter_refresh.AdapterChoice`): request paths call
:meth:`EngineHolder.refresh_adapters`, which checks at most every ``adapter_check_s`` seconds in a
background thread and never blocks (see :mod:`mochi_model.adapter_refresh`). The model is never
reloaded for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mochi_core.config import MochiConfig
from mochi_core.errors import MochiError
from mochi_model.adapter_refresh import (
    AdapterChoice,
    AdapterRefresher,
    AdapterSource,
    ChangeListener,
    describe_adapters,
)
from mochi_model.errors import ModelError
from mochi_model.types import Engine

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
EngineFactory = Callable[[Progress], Engine]
StateListener = Callable[[str, str], None]  # (state, detail)


class ModelUnavailable(ModelError):
    """The model (or its adapters) failed to load; servers keep serving what needs no model."""


class EngineHolder:
    """Holds one engine, loading it at most once per factory.

    Args:
        engine: a ready engine (protocol tests pass a fake).
        factory: builds the engine; called with a progress callback taking one message.
        description: what will be loaded, for status messages (model path, adapters).
        on_state: called (from any thread) with ``(state, detail)`` when the state changes.
        adapters: the server's adapter choice (re-run to notice changed adapters); None = never look.
        adapter_check_s: :meth:`refresh_adapters` looks at most this often (``[server] adapter_check_s``).
        on_adapters: called (from the checking thread) with ``(level, message)`` after a swap
            (``info``, "adapters updated: ...") or a failed one (``error``).
    """

    def __init__(self, engine: Engine | None = None, factory: EngineFactory | None = None, *,
                 description: str = "", on_state: StateListener | None = None,
                 adapters: AdapterSource | None = None, adapter_check_s: float = 15.0,
                 on_adapters: ChangeListener | None = None) -> None:
        self._engine = engine
        self._factory = factory
        self._on_state = on_state
        self._on_adapters = on_adapters
        self._refresher = self._make_refresher(adapters, adapter_check_s)
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self.generation_lock = threading.Lock()  # tool calls that drive the engine take turns
        self.state = "ready" if engine is not None else "none"
        self.error = ""
        self.load_s: float | None = 0.0 if engine is not None else None
        self.description = description or (engine.model_id if engine is not None else "")
        self.messages: list[str] = []
        if engine is not None:
            self._ready.set()

    # -- state ------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._engine is not None

    @property
    def failed(self) -> bool:
        return self.state == "failed"

    def set_listener(self, on_state: StateListener | None) -> None:
        self._on_state = on_state

    def set_adapter_check(self, interval_s: float) -> None:
        """Look for changed adapters at most every ``interval_s`` seconds from now on (0 = never)."""
        if self._refresher is not None:
            self._refresher.interval_s = interval_s

    def status(self) -> dict[str, Any]:
        """State, model, adapters, load time and error, for status commands and tools."""
        out: dict[str, Any] = {"state": self.state, "model": self.description}
        if self._engine is not None:
            out["model_id"] = self._engine.model_id
            out["adapters"] = adapter_names(self._engine) or self._adapter_note()
        if self._refresher is not None:
            out["adapter_refresh"] = self._refresher.as_dict()
        if self.load_s is not None:
            out["load_seconds"] = round(self.load_s, 2)
        if self.error:
            out["error"] = self.error
        return out

    def _adapter_note(self) -> list[str]:
        return [m.split(":", 1)[1].strip() for m in self.messages if m.startswith("adapters:")]

    def _set_state(self, state: str, detail: str) -> None:
        self.state = state
        if self._on_state is not None:
            try:
                self._on_state(state, detail)
            except Exception:  # a listener must never break loading
                logger.exception("engine state listener failed")

    # -- loading ----------------------------------------------------------------------------
    def start(self) -> threading.Thread | None:
        """Begin loading in a daemon thread (no-op when ready, loading, failed or without a factory)."""
        with self._lock:
            if self._factory is None or self.state != "none":
                return None
            self._set_state("loading", "")
            self._ready.clear()
            factory = self._factory
        thread = threading.Thread(target=self._load_quietly, args=(factory,), name="mochi-engine-load", daemon=True)
        thread.start()
        return thread

    preload = start

    def replace(self, factory: EngineFactory, *, adapters: AdapterSource | None = None,
                adapter_check_s: float = 15.0) -> None:
        """Swap in a new factory (model settings changed) and load it in the background.

        ``adapters``: the adapter choice that goes with it (see the class arguments).
        """
        with self._lock:
            self._factory = factory
            self._refresher = self._make_refresher(adapters, adapter_check_s)
            self._engine = None
            self.error = ""
            self.state = "none"
        self.start()

    def _load_quietly(self, factory: EngineFactory) -> None:
        try:
            self._load(factory)
        except ModelUnavailable as exc:
            logger.error("%s", exc)

    def _load(self, factory: EngineFactory, progress: Progress | None = None) -> Engine:
        def report(msg: str) -> None:
            self.messages.append(msg)
            logger.info("%s", msg)
            if progress is not None:
                progress(msg)

        with self._load_lock:
            if self._engine is not None and factory is self._factory:
                return self._engine
            with self._lock:
                if self.state != "loading":
                    self._set_state("loading", "")
                self._ready.clear()
            t0 = time.perf_counter()
            report(f"loading model {self.description}".strip())
            refresher = self._refresher
            if refresher is not None:
                refresher.mark()  # before loading: a change during the load is seen at the next check
            try:
                engine = factory(report)
            except Exception as exc:  # top of the loading thread: any failure becomes a state
                error = _unavailable(exc)
                logger.debug("model failed to load", exc_info=True)
                with self._lock:
                    if factory is self._factory:
                        self.error = str(error)
                        self._set_state("failed", self.error)
                    self._ready.set()
                raise error from exc
            calibrate = getattr(engine, "calibrate", None)
            if calibrate is not None:
                try:  # speed measured now, so the first request is fitted to its time budget
                    calibrate()
                except Exception:  # a measurement must never fail a load
                    logger.warning("could not measure the engine's speed", exc_info=True)
            with self._lock:
                if factory is not self._factory:  # replaced while loading: the newer load wins
                    return engine
                self._engine = engine
                self.load_s = time.perf_counter() - t0
                self._set_state("ready", engine.model_id)
                self._ready.set()
            report(f"model loaded in {self.load_s:.1f}s: {engine.model_id}")
            return engine

    # -- adapters on disk ---------------------------------------------------------------------
    def _make_refresher(self, adapters: AdapterSource | None, interval_s: float) -> AdapterRefresher | None:
        if adapters is None:
            return None
        return AdapterRefresher(adapters, interval_s=interval_s, on_change=self._adapters_changed)

    def _adapters_changed(self, level: str, message: str) -> None:
        self.messages.append(message)
        if self._on_adapters is not None:
            self._on_adapters(level, message)

    def _swappable(self) -> tuple[AdapterRefresher, Any] | None:
        from mochi_model.engine import InferenceEngine

        refresher, engine = self._refresher, self._engine
        if refresher is None or not isinstance(engine, InferenceEngine):
            return None  # no choice to re-run, not loaded yet, or an engine without a local stack
        return refresher, engine

    def refresh_adapters(self) -> threading.Thread | None:
        """Request paths call this: when a check is due (``adapter_check_s``), look for changed
        adapters in a background thread and swap them in. Never blocks; returns the thread started."""
        found = self._swappable()
        return found[0].poke(found[1], self.generation_lock) if found is not None else None

    def check_adapters(self) -> str:
        """Look for changed adapters now and swap them in (blocking; tests, commands).

        Returns:
            an :meth:`AdapterRefresher.check` outcome, or ``off`` (nothing to check).
        """
        found = self._swappable()
        return found[0].check(found[1], self.generation_lock) if found is not None else "off"

    # -- getting ----------------------------------------------------------------------------
    def get(self, timeout_s: float = 0.0) -> Engine | None:
        """The engine, waiting up to ``timeout_s`` while it loads; None when not available (LSP)."""
        if self._engine is None and self.state == "loading" and timeout_s > 0:
            self._ready.wait(timeout_s)
        return self._engine

    def wait(self, timeout_s: float) -> bool:
        """Wait until loading finished (either way); True when it did within the timeout."""
        return self._ready.wait(timeout_s)

    def require(self, progress: Progress | None = None) -> Engine:
        """The engine, loading it now if needed (blocking; call from a worker thread) (MCP).

        Raises:
            ModelUnavailable: the model failed to load (now or on an earlier attempt).
        """
        if self._engine is not None:
            return self._engine
        if self.state == "failed":
            raise ModelUnavailable(self.error)
        if self._factory is None:
            raise ModelUnavailable("no model is configured for this server")
        return self._load(self._factory, progress)


def _unavailable(exc: BaseException) -> ModelUnavailable:
    if isinstance(exc, ModelUnavailable):
        return exc
    if isinstance(exc, MochiError):
        return ModelUnavailable(f"the model failed to load: {exc}")
    return ModelUnavailable(f"the model failed to load ({type(exc).__name__}: {exc}); check --model / "
                            "[model] in .mochi/config.toml and restart the server")


def adapter_names(engine: Engine) -> list[str]:
    """``name[@version]:weight`` of each adapter in the engine's stack ([] without one)."""
    stack = getattr(engine, "adapter_stack", None)  # fakes and remote engines have none
    if stack is None:
        return []
    out = []
    for adapter, weight in stack:
        version = adapter.data.config.version
        label = f"{adapter.name}@{version}" if version and "@" not in adapter.name else adapter.name
        out.append(f"{label}:{weight:g}")
    return out


def real_engine_factory(config: MochiConfig, root: Path | None, *, base: str | None = None,
                        project: str | None = None, backend: str | None = None, model: str | None = None,
                        adapters: Sequence[tuple[Path, float]] | None = None,
                        choice: AdapterSource | None = None) -> EngineFactory:
    """A factory for the real engine with the adapter stack Mochi picks for ``root``.

    ``choice`` (the same :class:`~mochi_model.adapter_refresh.AdapterChoice` a holder re-runs to
    notice changed adapters) wins; else ``adapters`` (folder, weight pairs); then explicit
    ``base``/``project`` adapters; otherwise the distribution layer's auto-detection chooses among
    installed adapters. Heavy imports happen only when the factory runs.
    """

    def factory(progress: Progress) -> Engine:
        from mochi_model.loader import load_engine

        where = Path(root) if root is not None else Path.cwd()
        pick = choice or AdapterChoice(config, where, specs=None if adapters is None else tuple(
            (Path(p), float(w)) for p, w in adapters), base=base, project=project)
        picked = pick()
        progress(f"adapters: {describe_adapters(picked)}")
        return load_engine(config, where, adapters=[(c.path, c.weight) for c in picked], backend=backend, model=model)

    return factory
