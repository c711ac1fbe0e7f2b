"""Holds the completion engine: given ready-made, or built lazily by a factory in the background.

A model takes seconds to load; the server must answer ``initialize`` at once and keep serving
while it loads. A factory that raises leaves the host in the ``failed`` state with a message
users can act on; completions then return nothing and the server logs why, once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from mochi_model.types import Engine

logger = logging.getLogger(__name__)

EngineFactory = Callable[[], Engine]
StateListener = Callable[[str, str], None]  # (state, detail)


class EngineHost:
    """Engine holder with states ``none`` → ``loading`` → ``ready`` | ``failed``.

    Args:
        engine: an engine to use as is (tests pass a fake).
        factory: builds the engine; called once in a background thread by :meth:`start`.
        on_state: called (from any thread) when the state changes.
    """

    def __init__(self, engine: Engine | None = None, factory: EngineFactory | None = None,
                 on_state: StateListener | None = None) -> None:
        self._engine = engine
        self._factory = factory
        self._on_state = on_state
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.state = "ready" if engine is not None else "none"
        self.error = ""
        self.load_s = 0.0
        if engine is not None:
            self._ready.set()

    def set_listener(self, on_state: StateListener | None) -> None:
        self._on_state = on_state

    def start(self) -> None:
        """Begin loading in the background (no-op when ready, loading, or without a factory)."""
        with self._lock:
            if self._factory is None or self.state in ("ready", "loading"):
                return
            self._set_state("loading", "")
            self._ready.clear()
            self._thread = threading.Thread(target=self._load, args=(self._factory,), name="mochi-engine-load",
                                            daemon=True)
            self._thread.start()

    def replace(self, factory: EngineFactory) -> None:
        """Swap in a new factory (model settings changed) and load it."""
        with self._lock:
            self._factory = factory
            self._engine = None
            self.state = "none"
        self.start()

    def _load(self, factory: EngineFactory) -> None:
        t0 = time.perf_counter()
        try:
            engine = factory()
        except Exception as exc:  # top-level of the loader thread: any failure becomes a state
            logger.exception("model failed to load")
            with self._lock:
                if factory is not self._factory:
                    return
                self.error = f"model failed to load: {exc}"
                self._set_state("failed", self.error)
            self._ready.set()
            return
        with self._lock:
            if factory is not self._factory:  # replaced while loading
                return
            self._engine = engine
            self.load_s = time.perf_counter() - t0
            self._set_state("ready", getattr(engine, "model_id", ""))
        self._ready.set()

    def _set_state(self, state: str, detail: str) -> None:
        self.state = state
        if self._on_state is not None:
            try:
                self._on_state(state, detail)
            except Exception:  # a listener must never break loading
                logger.exception("engine state listener failed")

    def get(self, timeout_s: float = 0.0) -> Engine | None:
        """The engine, waiting up to ``timeout_s`` while it loads; None when not available."""
        if self._engine is None and self.state == "loading" and timeout_s > 0:
            self._ready.wait(timeout_s)
        return self._engine

    def wait(self, timeout_s: float) -> bool:
        """Wait until loading finished (either way); True when it did within the timeout."""
        return self._ready.wait(timeout_s)
