"""The engine behind the tools: given ready-made (tests) or loaded lazily, once, from a factory.

``mochi serve`` passes :func:`real_engine_factory`; the model loads on the first tool call that
needs it, or at start-up in a background thread with ``--preload`` (so the client's handshake is
never blocked). A load failure is remembered and reported by every later call: the server keeps
serving resources and the tools that do not need the model.

Generation is serialised: real engines hold one KV cache and are not re-entrant.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mochi_core.config import MochiConfig
from mochi_core.errors import MochiError
from mochi_mcp.errors import ModelUnavailable
from mochi_model.types import Engine

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
EngineFactory = Callable[[Progress], Engine]


class EngineProvider:
    """Hands out one engine, loading it at most once.

    Args:
        engine: a ready engine (protocol tests pass ``FakeEngine``).
        factory: builds the engine; called with a progress callback taking one message.
        description: what will be loaded, for status messages (model path, adapters).
    """

    def __init__(self, engine: Engine | None = None, factory: EngineFactory | None = None,
                 description: str = "") -> None:
        if engine is None and factory is None:
            raise ValueError("EngineProvider needs an engine or a factory")
        self._engine = engine
        self._factory = factory
        self._error: ModelUnavailable | None = None
        self._load_lock = threading.Lock()
        self.generation_lock = threading.Lock()
        self.description = description or (getattr(engine, "model_id", "") if engine else "")
        self.load_seconds: float | None = 0.0 if engine is not None else None
        self.messages: list[str] = []

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    @property
    def failed(self) -> bool:
        return self._error is not None

    def status(self) -> dict[str, Any]:
        state = "loaded" if self.loaded else "failed" if self.failed else "not loaded"
        out: dict[str, Any] = {"state": state, "model": self.description}
        if self._engine is not None:
            out["model_id"] = getattr(self._engine, "model_id", "")
            out["adapters"] = getattr(self._engine, "adapter_names", None) or self._adapter_note()
        if self.load_seconds is not None:
            out["load_seconds"] = round(self.load_seconds, 2)
        if self._error is not None:
            out["error"] = str(self._error)
        return out

    def _adapter_note(self) -> list[str]:
        return [m.split(":", 1)[1].strip() for m in self.messages if m.startswith("adapters:")]

    def get(self, progress: Progress | None = None) -> Engine:
        """The engine, loading it now if needed (blocking; call from a worker thread).

        Raises:
            ModelUnavailable: the model failed to load (now or on an earlier attempt).
        """
        if self._engine is not None:
            return self._engine
        with self._load_lock:
            if self._engine is not None:
                return self._engine
            if self._error is not None:
                raise self._error
            assert self._factory is not None

            def report(msg: str) -> None:
                self.messages.append(msg)
                logger.info("%s", msg)
                if progress is not None:
                    progress(msg)

            t0 = time.perf_counter()
            report(f"loading model {self.description}".strip())
            try:
                engine = self._factory(report)
            except MochiError as exc:
                self._error = ModelUnavailable(f"the model failed to load: {exc}")
                raise self._error from exc
            except (ImportError, OSError, ValueError, RuntimeError) as exc:
                self._error = ModelUnavailable(
                    f"the model failed to load ({type(exc).__name__}: {exc}); check --model / "
                    "[model] in .mochi/config.toml and restart the server"
                )
                raise self._error from exc
            self.load_seconds = time.perf_counter() - t0
            self._engine = engine
            report(f"model loaded in {self.load_seconds:.1f}s: {getattr(engine, 'model_id', '?')}")
            return engine

    def preload(self) -> threading.Thread:
        """Start loading in a daemon thread; tool calls wait for it through :meth:`get`."""

        def run() -> None:
            try:
                self.get()
            except ModelUnavailable as exc:
                logger.error("%s", exc)

        thread = threading.Thread(target=run, name="mochi-mcp-preload", daemon=True)
        thread.start()
        return thread


def real_engine_factory(config: MochiConfig, root: Path, *, base: str | None = None,
                        project: str | None = None) -> EngineFactory:
    """A factory for the real engine with the adapter stack Mochi picks for ``root``.

    Explicit ``base``/``project`` adapters win; otherwise the distribution layer's auto-detection
    chooses among installed adapters. Heavy imports happen only when the factory runs.
    """

    def factory(progress: Progress) -> Engine:
        try:
            from mochi_model.loader import load_engine
        except ImportError as exc:
            raise ModelUnavailable(
                f"the model loader is not available ({exc}); install the backend: "
                "pip install 'mochi-code[torch]' (or [mlx] on Apple Silicon)"
            ) from exc
        chosen = _choose_adapters(config, root, base, project, progress)
        # load_engine takes (folder, weight) pairs; [] = base model only, None = let it decide
        adapters = None if chosen is None else [(c.path, c.weight) for c in chosen]
        return load_engine(config, root, adapters=adapters)

    return factory


def _choose_adapters(config: MochiConfig, root: Path, base: str | None, project: str | None,
                     progress: Progress) -> list[Any] | None:
    try:
        from mochi_model.dist.autodetect import choose_adapters
    except ImportError:
        if base or project:
            raise ModelUnavailable("--base/--project need adapter support (mochi_model.dist), which is "
                                   "not installed in this version") from None
        progress("adapters: none (adapter auto-detection unavailable)")
        return None
    chosen = choose_adapters(config, root, base=base, project=project)
    progress(f"adapters: {describe_adapters(chosen)}")
    return list(chosen)


def describe_adapters(adapters: Any) -> str:
    """One line naming each adapter of a stack (``ChosenAdapter`` records), with why it was chosen."""
    if not adapters:
        return "none (base model only)"
    parts = []
    for a in adapters:
        label = getattr(a, "name", "") or str(getattr(a, "path", a))
        version = getattr(a, "version", "")
        parts.append(f"{getattr(a, 'role', 'adapter')} {label}{'@' + version if version else ''} "
                     f"weight {getattr(a, 'weight', 1.0):g} ({getattr(a, 'reason', 'chosen')})")
    return "; ".join(parts)
