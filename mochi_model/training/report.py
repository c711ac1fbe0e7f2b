"""`training.json` (config, data summary, losses, best step, time, tokens/s, peak memory, time budget)
and the loss-curve PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_report(output: Path, cfg: Any, result: Any, *, data_dir: Path, n_train: int, n_valid: int) -> None:
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    data_summary: dict[str, Any] = {}
    ds = Path(data_dir) / "dataset.json"
    if ds.exists():
        full = json.loads(ds.read_text(encoding="utf-8"))
        data_summary = {k: full.get(k) for k in ("repo", "fim_format", "style", "splits", "dropped_counts")}
        if "update" in full:  # an update's data set: changed files, changed and replay sample counts
            data_summary["update"] = full["update"]
    report = {
        "config": cfg.to_json(),
        "data": {"dir": str(data_dir), "train_samples": n_train, "valid_samples_used": n_valid,
                 "skipped_too_long": result.skipped, **data_summary},
        "steps": result.steps, "best_step": result.best_step, "best_val_loss": result.best_val_loss,
        "first_val_loss": result.first_val_loss, "stopped": result.stopped, "world_size": result.world_size,
        "seconds": round(result.seconds, 2), "step_seconds": round(result.step_seconds, 2), "tokens": result.tokens,
        "tokens_per_s": round(result.tokens_per_s, 2), "memory": result.memory, "budget": result.budget,
        "history": result.history,
    }
    (output / "training.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    plot_losses(result.history, output / "loss.png")


def plot_losses(history: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    tr = [(h["step"], h["loss"]) for h in history if "loss" in h]
    va = [(h["step"], h["val_loss"]) for h in history if "val_loss" in h]
    if tr:
        ax.plot(*zip(*tr, strict=True), label="train", alpha=0.6)
    if va:
        ax.plot(*zip(*va, strict=True), "o-", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (completion tokens)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
