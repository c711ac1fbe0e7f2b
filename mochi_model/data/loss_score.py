"""The base model's loss on a file, for the Refact-style data filter (`mochi prepare --loss-filter`).

Files the base model already predicts almost perfectly teach the adapter nothing (generated tables,
boilerplate); files it finds hopeless are usually noise (minified data, odd encodings). Scoring
the first ``max_tokens`` tokens of each file is enough to tell the two apart and keeps the cost
at about one prefill per file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def mean_token_loss(backend: Any, text: str, max_tokens: int = 512) -> float:
    """Mean next-token negative log-likelihood (nats) of ``text``'s first ``max_tokens`` tokens."""
    ids = backend.encode(text)[:max_tokens]
    if len(ids) < 2:
        return float("nan")
    logits = np.asarray(backend.logits_for(ids), dtype=np.float64)[:-1]
    m = logits.max(axis=1, keepdims=True)
    log_z = (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]
    return float(np.mean(log_z - logits[np.arange(len(ids) - 1), ids[1:]]))


def loss_scorer(backend: Any, max_tokens: int = 512) -> Callable[[str], float]:
    """``text -> mean loss`` on ``backend`` (a token backend: torch or mlx)."""
    return lambda text: mean_token_loss(backend, text, max_tokens)
