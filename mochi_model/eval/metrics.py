"""Completion metrics and their uncertainty: exact match, edit similarity, bootstrap 95 % CIs.

Exact match compares after whitespace normalisation (runs of whitespace → one space, ends
stripped). Edit similarity is ``1 - levenshtein(a, b) / max(len(a), len(b))`` on normalised text.
Confidence intervals come from a seeded percentile bootstrap over holes; a difference between two
configurations is bootstrapped *paired* (same resampled holes), and is called significant only when
its interval excludes zero.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

_WS = re.compile(r"\s+")


def normalize(text: str) -> str:
    return _WS.sub(" ", text).strip()


def exact_match(pred: str, target: str) -> float:
    return float(normalize(pred) == normalize(target))


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def edit_similarity(pred: str, target: str) -> float:
    a, b = normalize(pred), normalize(target)
    if not a and not b:
        return 1.0
    return 1.0 - levenshtein(a, b) / max(len(a), len(b))


def mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def bootstrap_ci(values: Sequence[float], *, n: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean."""
    if not values:
        return float("nan"), float("nan")
    rng = random.Random(seed)
    k = len(values)
    stats = sorted(mean([values[rng.randrange(k)] for _ in range(k)]) for _ in range(n))
    lo = stats[int((1 - level) / 2 * n)]
    hi = stats[min(n - 1, int((1 + level) / 2 * n))]
    return lo, hi


def paired_diff_ci(a: Sequence[float], b: Sequence[float], *, n: int = 2000, seed: int = 0,
                   level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``a - b`` over the same holes and its bootstrap interval: ``(diff, lo, hi)``."""
    if len(a) != len(b):
        raise ValueError("paired metrics need the same holes")
    d = [x - y for x, y in zip(a, b, strict=True)]
    lo, hi = bootstrap_ci(d, n=n, seed=seed, level=level)
    return mean(d), lo, hi
