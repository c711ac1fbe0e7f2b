"""Choosing the adapter stack's weights on the *validation* files, for `mochi eval --sweep-weights`.

A grid of weights (every adapter at each value of ``grid``, the all-zero point left out) is scored
on next-line holes of the validation split — files neither trained on (they steer early stopping
only) nor scored by the eval's test rows — so the chosen weights are not fitted to the numbers the
eval then reports. The best point (exact match, then edit similarity, then the point nearest the
configured weights) becomes the ``stack@best`` row on the test holes, and can be written into the
project's ``.mochi/config.toml``.

Retrieval is off while sweeping (the cheaper prompt; the weights' effect is what is compared).
"""

from __future__ import annotations

import itertools
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mochi_core.config import AdapterEntry, CompletionSection, MochiConfig, write_config
from mochi_core.paths import config_path
from mochi_model.eval.harness import HoleResult, Row, run_row
from mochi_model.eval.holes import sample_holes
from mochi_model.eval.metrics import mean

logger = logging.getLogger(__name__)

DEFAULT_GRID = (0.0, 0.5, 1.0)


@dataclass(kw_only=True)
class SweepOptions:
    grid: tuple[float, ...] = DEFAULT_GRID
    holes: int = 60  # next-line holes over the validation files
    write_config: bool = False  # write the chosen weights into .mochi/config.toml


def grid_points(n: int, grid: Sequence[float]) -> list[tuple[float, ...]]:
    """Every combination of ``grid`` values for ``n`` adapters, without the all-zero point (= base)."""
    values = sorted(set(float(g) for g in grid))
    if any(v < 0 for v in values):
        raise ValueError("stack weights must be >= 0")
    return [p for p in itertools.product(values, repeat=n) if any(p)]


def best_point(scores: dict[tuple[float, ...], list[HoleResult]],
               configured: Sequence[float]) -> tuple[float, ...]:
    """Highest EM, then ES, then nearest to the configured weights."""
    def key(p: tuple[float, ...]) -> tuple[float, float, float]:
        rs = scores[p]
        dist = sum((a - b) ** 2 for a, b in zip(p, configured, strict=True))
        return (mean([r.em for r in rs]), mean([r.es for r in rs]), -dist)

    return max(scores, key=key)


def sweep_weights(engine: Any, files: dict[str, str], valid: list[str], *, config: CompletionSection,
                  options: SweepOptions, seed: int = 0,
                  progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Score every grid point on validation holes; returns ``{"points": [...], "best": (...), ...}``.

    Raises:
        ValueError: fewer than two adapters in the stack, or no validation holes.
    """
    stack = getattr(engine, "adapter_stack", None)
    names = list(stack.weights) if stack is not None else []
    if len(names) < 2:
        raise ValueError("--sweep-weights needs a stack of two or more adapters")
    configured = list(stack.weights.values())
    holes = sample_holes({p: files[p] for p in valid}, options.holes, kind="next_line", seed=seed)
    if not holes:
        raise ValueError("the validation files have no completable lines")
    cats = ["in_file"] * len(holes)  # categories are not used to choose weights
    scores: dict[tuple[float, ...], list[HoleResult]] = {}
    try:
        for point in grid_points(len(names), options.grid):
            label = "sweep " + ",".join(f"{w:g}" for w in point)
            done = 0

            def tick(label: str = label) -> None:
                nonlocal done
                done += 1
                if progress:
                    progress(label, done, len(holes))

            scores[point] = run_row(engine, Row(name=label, retrieval=False, weights=point), holes, cats, files,
                                    index=None, config=config, on_hole=tick)
    finally:
        engine.set_adapter_weights(configured)
    best = best_point(scores, configured)
    return {"adapters": names, "configured": configured, "best": list(best), "holes": len(holes),
            "valid_files": len(valid),
            "points": [{"weights": list(p), "em": mean([r.em for r in rs]), "es": mean([r.es for r in rs])}
                       for p, rs in scores.items()]}


def write_weights(root: Path, cfg: MochiConfig, engine: Any, weights: Sequence[float]) -> Path:
    """Put the chosen weights into ``.mochi/config.toml`` (a backup of the old file is kept as ``.bak``).

    Entries already pinned there get their weight; adapters of the stack that are not pinned yet are
    added by path (with their role), so the servers load exactly this stack.
    """
    stack = engine.adapter_stack
    path = config_path(root)
    if path.exists():
        shutil.copy2(path, path.with_name(path.name + ".bak"))
    entries = list(cfg.adapters)
    for (adapter, _), w in zip(stack, weights, strict=True):
        folder = str(Path(adapter.path).resolve()) if getattr(adapter, "path", None) else ""
        match = next((e for e in entries if (e.path and folder and Path(e.path).resolve() == Path(folder))
                      or (e.name and e.name == adapter.name)), None)
        if match is None:
            role = getattr(adapter.data.config, "role", "") or "project"
            match = AdapterEntry(path=folder, name="" if folder else adapter.name,
                                 role=role if role in ("base", "project") else "project")
            entries.append(match)
        match.weight = round(float(w), 4)
    cfg.adapters = entries
    return write_config(root, cfg)
