"""A wall-clock budget for one training run: when to stop so the run *ends* (final validation and save
included) before its deadline, how many steps fit, and the ETA shown in progress lines.

The deadline counts from when the command started (model load included), not from the first step.
Stopping is predictive: after each step the run stops if one more step plus the reserve (the last
validation's duration with a margin, the last save's, and a fixed allowance for the report) would
pass the deadline. Step time is the slowest of the last three steps, so a burst of load on a shared
machine makes it stop earlier rather than late.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

REPORT_ALLOWANCE_S = 20.0  # training.json, loss.png, checkpoint cleanup, interpreter exit
EVAL_MARGIN = 1.25


class TimeBudget:
    def __init__(self, minutes: float, *, started_at: float | None = None, eval_every: int = 25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started_at = clock() if started_at is None else started_at
        self.deadline = self.started_at + minutes * 60 if minutes > 0 else math.inf
        self.eval_every = max(1, eval_every)
        self._steps: deque[float] = deque(maxlen=3)
        self.eval_s = 0.0
        self.save_s = 0.0

    @property
    def limited(self) -> bool:
        return math.isfinite(self.deadline)

    def record_step(self, seconds: float) -> None:
        self._steps.append(seconds)

    def record_eval(self, seconds: float) -> None:
        self.eval_s = seconds

    def record_save(self, seconds: float) -> None:
        self.save_s = max(self.save_s, seconds)

    @property
    def step_s(self) -> float:
        return max(self._steps) if self._steps else 0.0

    def reserve_s(self) -> float:
        """Time kept back for the final validation, the save and the report."""
        return self.eval_s * EVAL_MARGIN + self.save_s + REPORT_ALLOWANCE_S

    def must_stop(self) -> bool:
        """True when one more step and the reserve no longer fit before the deadline."""
        return self.clock() + self.step_s + self.reserve_s() > self.deadline

    def reachable_steps(self, step: int, total: int) -> int:
        """Steps this run can finish: ``total``, or fewer when the budget ends first (periodic validation included)."""
        if not self.limited or not self._steps:
            return total
        per_step = self.step_s + self.eval_s / self.eval_every
        left = self.deadline - self.clock() - self.reserve_s()
        return max(step, min(total, step + int(max(0.0, left) / per_step)))

    def validates_after(self, step: int, total: int) -> bool:
        """Validate after ``step`` of ``total`` planned: at the end, and every ``eval_every`` steps unless
        the end is less than half an interval away (its own validation follows; measured on a 2-core
        CPU: one 16-sample validation costs about two training steps, and a 25-minute run that plans 29
        steps would spend them on a validation at step 25 whose result step 29's replaces)."""
        if step >= total:
            return True
        return step % self.eval_every == 0 and total - step >= self.eval_every / 2

    def eta_s(self, step: int, total: int) -> float:
        """Seconds until the run ends: the remaining steps, or the deadline when that comes first."""
        per_step = self.step_s + self.eval_s / self.eval_every
        by_steps = (total - step) * per_step + self.reserve_s() - REPORT_ALLOWANCE_S
        return max(0.0, min(by_steps, self.deadline - self.clock()))

    def elapsed_s(self) -> float:
        return self.clock() - self.started_at
