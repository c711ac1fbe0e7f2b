"""Shared by the bench scripts (run as ``python bench/NAME.py``, so this folder is on ``sys.path``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: The real model every bench uses by default (``python -m mochi_model.offline fetch`` puts it here).
DEFAULT_MODEL = Path.home() / ".cache/mochi/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


def pct(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values``, linearly interpolated; NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def package_dir(package: str) -> Path:
    """The folder of an installed package (the benches' stand-in for a repository we did not write)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise SystemExit(f"package {package!r} is not installed (pip install {package})")
    return Path(spec.origin).parent
