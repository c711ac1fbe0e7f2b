"""A rich progress bar for training: step, loss, tokens/s and ETA (silent when disabled)."""

from __future__ import annotations

from typing import Any


class TrainProgress:
    def __init__(self, total: int, *, enabled: bool = True) -> None:
        self.total = total
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def start(self, step: int) -> None:
        if not self.enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[tps]:.0f} tok/s"),
                                  TextColumn("ETA"), TimeRemainingColumn())
        self._progress.start()
        self._task = self._progress.add_task("train", total=self.total, completed=step, loss=float("nan"), tps=0.0)

    def update(self, step: int, loss: float, tokens_per_s: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=step, loss=loss, tps=tokens_per_s)

    def note(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(message)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
