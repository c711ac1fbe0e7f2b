"""Keep a running server's adapter stack equal to what is on disk, without reloading the model.

A project adapter changes under a running server in two ways: a newer version is installed
(``~/.mochi/adapters/NAME/VERSION``; auto-detection and a bare ``NAME`` pick the newest), or the
folder a server was pointed at (``--adapter``, a ``[[adapters]] path`` pin) is rewritten in place
(``mochi train project --from-index`` replaces its ``adapters.safetensors``).

:class:`AdapterChoice` is how a server picks its stack; calling it re-runs the choice (a few
``stat`` calls and manifest reads). :class:`AdapterRefresher` compares the :func:`fingerprint` of
that choice (folders, weights, size/mtime/inode of the adapter files) with the one the engine was
loaded from. When it differs, the new adapters are read and checked in the calling (background)
thread while requests keep running, then swapped in between two generations
(:meth:`mochi_model.engine.InferenceEngine.set_adapter_stack`, which drops the KV cache). A stack
that fails to load leaves the old one serving; the same files are not retried until they change
again. :meth:`AdapterRefresher.poke` is what request paths call: at most one check per
``interval_s``, in a daemon thread, never blocking the caller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mochi_core.config import MochiConfig
from mochi_core.errors import MochiError

if TYPE_CHECKING:
    from mochi_model.dist.autodetect import ChosenAdapter
    from mochi_model.engine import InferenceEngine

logger = logging.getLogger(__name__)

AdapterSource = Callable[[], "list[ChosenAdapter]"]
ChangeListener = Callable[[str, str], None]  # (level: info | error, message)
Fingerprint = tuple[tuple[Any, ...], ...]
_FILES = ("adapters.safetensors", "adapter_config.json", "adapter_model.safetensors")


@dataclass(frozen=True, eq=False)
class AdapterChoice:
    """How a server picks its adapter stack; call it for the current choice.

    Args:
        config: the project's configuration (pins, base model).
        root: project root.
        specs: ``--adapter`` values with weights (a folder, ``NAME`` or ``NAME@VERSION``; a
            :class:`~pathlib.Path` is always a folder); they win. ``()`` = no adapters.
        base / project: explicit base/project adapters for auto-detection (``mochi serve`` flags).
    """

    config: MochiConfig
    root: Path
    specs: tuple[tuple[str | Path, float], ...] | None = None
    base: str | None = None
    project: str | None = None

    def __call__(self, *, quiet: bool = False) -> list[ChosenAdapter]:
        """The stack now (base first). Raises AdapterNotFound / DistError as the choice does.
        ``quiet``: the periodic re-check (what was chosen is logged at debug level only)."""
        from mochi_model.dist.autodetect import choose_adapters, choose_explicit

        if self.specs is not None:
            return choose_explicit(self.specs, self.root)
        return choose_adapters(self.config, self.root, base=self.base, project=self.project, quiet=quiet)


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def fingerprint(chosen: Sequence[ChosenAdapter]) -> Fingerprint:
    """What identifies a stack on disk: each folder, its weight and its files' size/mtime/inode."""
    return tuple((str(c.path), float(c.weight), *(_stat(Path(c.path) / f) for f in _FILES)) for c in chosen)


def describe_adapters(chosen: Sequence[ChosenAdapter]) -> str:
    """One line naming each adapter of a stack (``ChosenAdapter`` records), with why it was chosen."""
    if not chosen:
        return "none (base model only)"
    parts = []
    for a in chosen:
        version = f"@{a.version}" if a.version else ""
        parts.append(f"{a.role} {a.name or a.path}{version} weight {a.weight:g} ({a.reason})")
    return "; ".join(parts)


class AdapterRefresher:
    """Notices a changed adapter choice and swaps the new stack into a loaded engine.

    Args:
        source: re-runs the server's adapter choice (an :class:`AdapterChoice`).
        interval_s: :meth:`poke` checks at most this often; 0 or less turns it off (:meth:`check`
            still works).
        on_change: told ``(level, message)`` after each swap (``info``) or failed load (``error``),
            from the checking thread.
    """

    def __init__(self, source: AdapterSource, *, interval_s: float = 15.0,
                 on_change: ChangeListener | None = None) -> None:
        self.source = source
        self.interval_s = interval_s
        self.on_change = on_change
        self._busy = threading.Lock()  # one check at a time
        self._last = float("-inf")  # time.monotonic() of the latest check's start
        self._loaded: Fingerprint | None = None  # what the engine serves
        self._failed: Fingerprint | None = None  # the newest choice that failed to load
        self.serving = ""  # describe_adapters() of what the engine serves
        self.checks = 0
        self.updates = 0
        self.updated_at = 0.0  # time.time() of the latest swap
        self.error = ""  # why the newest choice is not served ("" when it is)

    # -- state ------------------------------------------------------------------------------
    def mark(self) -> None:
        """Record the choice an engine is about to be loaded from (call before loading it: a change
        during the load then shows up as a change at the next check)."""
        try:
            chosen = self.source()
        except MochiError:
            self._loaded, self.serving = None, ""  # the load itself will fail and say why
            return
        self._loaded, self.serving = fingerprint(chosen), describe_adapters(chosen)
        self._failed, self.error = None, ""
        self._last = time.monotonic()

    def as_dict(self) -> dict[str, Any]:
        """For status commands: how often it looks, what it serves, how many swaps, the last error."""
        return {"every_s": self.interval_s, "checks": self.checks, "updates": self.updates,
                "serving": self.serving, "error": self.error,
                "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.updated_at))
                if self.updated_at else ""}

    # -- checking ---------------------------------------------------------------------------
    def due(self) -> bool:
        return self.interval_s > 0 and time.monotonic() - self._last >= self.interval_s

    def poke(self, engine: InferenceEngine, lock: threading.Lock | None = None) -> threading.Thread | None:
        """Start a check in a daemon thread when one is due and none is running; never blocks.

        Returns:
            the thread started, or None (not due, or a check is running).
        """
        if not self.due() or not self._busy.acquire(blocking=False):
            return None
        self._last = time.monotonic()

        def run() -> None:
            try:
                self._check(engine, lock)
            except Exception:  # top of the checking thread: a failed check must never reach a request
                logger.exception("checking the adapters failed")
            finally:
                self._busy.release()

        thread = threading.Thread(target=run, name="mochi-adapter-check", daemon=True)
        thread.start()
        return thread

    def check(self, engine: InferenceEngine, lock: threading.Lock | None = None) -> str:
        """Check now, in this thread (waits for a running check). ``lock``: also held for the swap.

        Returns:
            ``unchanged`` | ``updated`` | ``failed`` (old stack kept) | ``failed-before`` (the same
            files failed already) | ``changing`` (a file changed while it was read: next check) |
            ``unresolved`` (the choice itself failed, e.g. a pinned folder is gone).
        """
        with self._busy:
            self._last = time.monotonic()
            return self._check(engine, lock)

    def _check(self, engine: InferenceEngine, lock: threading.Lock | None) -> str:
        from mochi_model.loader import build_stack

        self.checks += 1
        try:
            chosen = self.source(quiet=True) if isinstance(self.source, AdapterChoice) else self.source()
        except MochiError as exc:
            return self._fail(None, f"adapters not updated: {exc}; still serving {self.serving or 'the loaded stack'}",
                              "unresolved")
        fp = fingerprint(chosen)
        if fp == self._loaded:
            self.error = ""  # e.g. a pinned folder that was missing for a moment is back, unchanged
            return "unchanged"
        if fp == self._failed:
            return "failed-before"
        what = describe_adapters(chosen)
        try:
            stack = build_stack([(c.path, c.weight) for c in chosen])
            if fingerprint(chosen) != fp:  # replaced while we read it: read it again next time
                logger.info("adapter files changed while being read; trying again at the next check")
                return "changing"
            if stack is not None:
                engine.prepare_adapter_stack(stack)  # checks and conversions, requests still running
            if lock is not None:
                with lock:  # MCP: a tool call's generations all run on one stack
                    engine.set_adapter_stack(stack)
            else:
                engine.set_adapter_stack(stack)
        except Exception as exc:  # top of the check: a bad file is a message, the old stack keeps serving
            if not isinstance(exc, MochiError):
                logger.debug("loading the new adapters failed", exc_info=True)
            reason = str(exc) if isinstance(exc, MochiError) else f"{type(exc).__name__}: {exc}"
            return self._fail(fp, f"adapters not updated to {what}: {reason}; still serving "
                              f"{self.serving or 'the loaded stack'} (retried when the files change again)", "failed")
        self._loaded, self._failed, self.serving, self.error = fp, None, what, ""
        self.updates += 1
        self.updated_at = time.time()
        self._tell("info", f"adapters updated: {what}")
        return "updated"

    def _fail(self, fp: Fingerprint | None, message: str, outcome: str) -> str:
        if message != self.error:  # say it once, not at every check
            self.error = message
            self._tell("error", message)
        if fp is not None:
            self._failed = fp
        return outcome

    def _tell(self, level: str, message: str) -> None:
        (logger.error if level == "error" else logger.info)("%s", message)
        if self.on_change is not None:
            try:
                self.on_change(level, message)
            except Exception:  # a listener must never break the swap
                logger.exception("adapter change listener failed")
