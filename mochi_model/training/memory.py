"""Process memory for training reports: peak and current resident set size, and torch's GPU peak.

``ru_maxrss`` is the process's lifetime peak, so it includes the model load; the trainer records
it right after loading as well, so a report shows whether training itself raised the peak.
"""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path
from typing import Any


def peak_rss_mb() -> float:
    """Lifetime peak resident set size of this process in MiB (``getrusage`` ``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


def rss_mb() -> float:
    """Current resident set size in MiB (``/proc/self/statm`` on Linux; the peak where that is missing)."""
    statm = Path("/proc/self/statm")
    if statm.is_file():
        pages = int(statm.read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    return peak_rss_mb()


def torch_peak_mb() -> float | None:
    """Peak memory torch allocated on the GPU in MiB, or ``None`` on CPU."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / (1024 * 1024)
    return None


class MemoryWatch:
    """Peak RSS after load and over the run, plus the largest RSS seen between steps."""

    def __init__(self) -> None:
        self.after_load_mb = 0.0
        self.max_between_steps_mb = 0.0

    def loaded(self) -> None:
        self.after_load_mb = rss_mb()
        self.max_between_steps_mb = self.after_load_mb

    def sample(self) -> None:
        self.max_between_steps_mb = max(self.max_between_steps_mb, rss_mb())

    def report(self) -> dict[str, Any]:
        peak = max(peak_rss_mb(), self.max_between_steps_mb)  # the two counters differ by rounding
        return {"peak_rss_mb": round(peak, 1), "rss_after_load_mb": round(self.after_load_mb, 1),
                "max_rss_between_steps_mb": round(self.max_between_steps_mb, 1),
                "torch_cuda_peak_mb": None if (p := torch_peak_mb()) is None else round(p, 1)}
