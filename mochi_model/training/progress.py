"""Training progress: step, loss, tokens/s and ETA — a rich bar on a terminal, plain lines otherwise.

When stderr is not a terminal (a log file, CI, a pipe, an editor's task runner) a rich bar shows
nothing useful, so one plain line is printed per step, at most every ``every_s`` seconds (the first
and the last step always)::

    step 12/98  loss 1.2345  152 tok/s  ETA 21m30s
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO


def format_eta(seconds: float) -> str:
    s = max(0, round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def progress_line(step: int, total: int, loss: float, tokens_per_s: float, eta_s: float) -> str:
    return f"step {step}/{total}  loss {loss:.4f}  {tokens_per_s:.0f} tok/s  ETA {format_eta(eta_s)}"


class TrainProgress:
    """Args:
        total: planned steps (may shrink when a time budget ends the run early; see ``update``).
        enabled: print nothing at all when False.
        plain: plain lines instead of a rich bar; default: when ``stream`` is not a terminal.
        stream: where to write (default ``sys.stderr``).
        every_s: plain mode prints at most one line per this many seconds (first and last step always).
    """

    def __init__(self, total: int, *, enabled: bool = True, plain: bool | None = None, stream: TextIO | None = None,
                 every_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.plain = plain if plain is not None else not _isatty(self.stream)
        self.every_s = every_s
        self.clock = clock
        self._last_line = -float("inf")
        self._progress: Any = None
        self._task: Any = None

    def start(self, step: int) -> None:
        if not self.enabled or self.plain:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[tps]:.0f} tok/s"),
                                  TextColumn("ETA {task.fields[eta]}"), console=Console(file=self.stream))
        self._progress.start()
        self._task = self._progress.add_task("train", total=self.total, completed=step, loss=float("nan"), tps=0.0,
                                             eta="?")

    def update(self, step: int, loss: float, tokens_per_s: float, eta_s: float, total: int | None = None) -> None:
        """Show one finished step; ``total`` is the current plan (the steps the time budget allows)."""
        if not self.enabled:
            return
        if total is not None:
            self.total = total
        if self._progress is not None:
            self._progress.update(self._task, completed=step, total=self.total, loss=loss, tps=tokens_per_s,
                                  eta=format_eta(eta_s))
        elif self.plain:
            now = self.clock()
            if step <= 1 or step >= self.total or now - self._last_line >= self.every_s:
                self._last_line = now
                print(progress_line(step, self.total, loss, tokens_per_s, eta_s), file=self.stream, flush=True)

    def note(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(message)
        elif self.enabled and self.plain:
            print(message, file=self.stream, flush=True)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a file
        return False
