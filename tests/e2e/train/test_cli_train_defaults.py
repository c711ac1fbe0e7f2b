"""`mochi train project --data D --output A` with no other flags, as a subprocess whose stderr is a pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

MOCHI = [sys.executable, "-m", "mochi_cli.app"]


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[3])}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_default_training_prints_progress_lines_to_a_pipe_and_reports_its_budget_and_peak_memory(
        fixture_project, tiny_model_dir, tmp_path):
    from mochi_model.training.config import TrainConfig

    repo = fixture_project("train/minirepo")
    data, out = tmp_path / "data", tmp_path / "adapter"
    _run([*MOCHI, "prepare", "--repo", str(repo), "--output", str(data)], cwd=tmp_path)
    proc = _run([*MOCHI, "train", "project", "--data", str(data), "--output", str(out), "--model", str(tiny_model_dir)],
                cwd=tmp_path)
    report = json.loads((out / "training.json").read_text())
    steps = report["steps"]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("step ") and " tok/s  ETA " in ln]
    assert lines[0].startswith("step 1/") and lines[-1].startswith(f"step {steps}/{steps}  loss ")
    defaults = TrainConfig()
    for key in ("num_layers", "max_seq_len", "batch_size", "dtype", "max_minutes", "grad_checkpointing", "eval_every"):
        assert report["config"][key] == getattr(defaults, key), key
    assert defaults.max_minutes > 0 and report["budget"]["max_minutes"] == defaults.max_minutes
    assert report["memory"]["peak_rss_mb"] > report["memory"]["rss_after_load_mb"] > 0
    assert "peak memory" in proc.stdout and report["stopped"] == "done"
