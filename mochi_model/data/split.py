"""Deterministic split of files into train / valid / test (never one file in two splits).

Each file's split comes from a seeded hash of its path alone, so adding or removing other files
never moves a file between splits (a second `mochi prepare` keeps the held-out test set).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

SPLITS = ("train", "valid", "test")


def _unit(path: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{path}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_files(
    paths: Iterable[str],
    *,
    valid_frac: float = 0.1,
    test_frac: float = 0.15,
    seed: int = 0,
) -> dict[str, list[str]]:
    """Assign every path to exactly one split.

    Args:
        paths: project-relative file paths.
        valid_frac: share of files for validation (early stopping).
        test_frac: share of files held out for `mochi eval`.
        seed: changes the assignment; the same seed always gives the same split.

    Returns:
        ``{"train": [...], "valid": [...], "test": [...]}``, each sorted. With three or more files
        valid and test get at least one file each (taken from train by lowest hash).
    """
    if valid_frac < 0 or test_frac < 0 or valid_frac + test_frac >= 1:
        raise ValueError("valid_frac and test_frac must be >= 0 and sum to less than 1")
    uniq = sorted(set(paths))
    ranked = sorted(uniq, key=lambda p: _unit(p, seed))
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for p in ranked:
        u = _unit(p, seed)
        if u < test_frac:
            out["test"].append(p)
        elif u < test_frac + valid_frac:
            out["valid"].append(p)
        else:
            out["train"].append(p)
    if len(uniq) >= 3:
        for name in ("test", "valid"):
            if not out[name] and len(out["train"]) > 1:
                out[name].append(out["train"].pop())
    return {k: sorted(v) for k, v in out.items()}


def split_of(path: str, splits: dict[str, list[str]]) -> str | None:
    for name, files in splits.items():
        if path in files:
            return name
    return None
