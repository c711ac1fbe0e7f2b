"""`mochi train project --from-index` on a folder that holds an adapter: an update on what changed, as subprocesses.

One story on the tiny random model: index a fixture project, train an adapter, install it, change one
train file and add another, update (only the changed files' samples plus replay, starting from the old
weights, old adapter kept in history/, installed as the next version), a run with no change trains
nothing, and --fresh retrains from scratch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

MOCHI = [sys.executable, "-m", "mochi_cli.app"]
NEW_FILE = '''"""Shipping costs by zone and weight."""

from shop.models import Item

ZONES = {"local": 2.5, "national": 5.0, "international": 14.0}


def shipping_cost(items: list[Item], zone: str) -> float:
    """Base fee of the zone plus 0.4 per kilogram above the first two."""
    if zone not in ZONES:
        raise ValueError(f"unknown shipping zone {zone!r}")
    weight = sum(getattr(item, "weight", 1.0) for item in items)
    extra = max(0.0, weight - 2.0) * 0.4
    return round(ZONES[zone] + extra, 2)


def free_shipping(total: float, zone: str) -> bool:
    """Orders above 50 ship free inside the country."""
    return zone != "international" and total >= 50.0
'''


def _run(cmd: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[3])}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _train_paths(data: Path) -> list[str]:
    return [json.loads(ln)["path"] for ln in (data / "train.jsonl").read_text().splitlines() if ln.strip()]


def test_an_update_trains_from_the_old_adapter_on_the_changed_files_and_installs_the_next_version(
        fixture_project, tiny_model_dir, tmp_path):
    from mochi_model.data.split import split_files
    from mochi_model.dist.registry import list_installed

    repo = fixture_project("train/minirepo")
    out = tmp_path / "shop"
    steps = ["--model", str(tiny_model_dir), "--max-steps", "4", "--eval-every", "2", "--batch-size", "2",
             "--lr", "0.002"]
    train = [*MOCHI, "train", "project", "--from-index", "--project", str(repo), "--output", str(out)]
    _run([*MOCHI, "index", str(repo)], cwd=tmp_path)
    _run([*train, *steps, "--rank", "4", "--alpha", "8", "--name", "shop"], cwd=tmp_path)
    first = _json(out / "update.json")
    assert first["generation"] == 1 and first["mode"] == "fresh"
    dataset = _json(out / "data" / "dataset.json")
    assert set(first["train_hashes"]) == set(dataset["split_files"]["train"])
    _run([*MOCHI, "pack", str(out), "--name", "shop", "--version", "0.1.0", "--output", str(tmp_path / "dist"),
          "--project", str(repo)], cwd=tmp_path)
    _run([*MOCHI, "install", str(tmp_path / "dist" / "shop-0.1.0.mochi.tar.gz"), "--force", "--project", str(repo)],
         cwd=tmp_path)
    old_weights = (out / "adapters.safetensors").read_bytes()
    old_report = _json(out / "training.json")

    # change the train file with the fewest samples (so replay is a true subset of the rest), add one
    # that lands in the train split, and re-index
    counts = {p: _train_paths(out / "data").count(p) for p in dataset["split_files"]["train"]}
    edited = min((p for p in counts if counts[p]), key=lambda p: (counts[p], p))
    (repo / edited).write_text((repo / edited).read_text() + "\n\ndef added_later(x: int) -> int:\n"
                               "    \"\"\"Twice x, plus one.\"\"\"\n    return x * 2 + 1\n")
    kept = [p for files in dataset["split_files"].values() for p in files]
    added = next(p for p in ("shop/shipping.py", "shop/zones.py", "shop/delivery.py", "shop/parcel.py")
                 if p in split_files([*kept, p])["train"])
    (repo / added).write_text(NEW_FILE)
    _run([*MOCHI, "index", str(repo)], cwd=tmp_path)
    proc = _run([*train, *steps], cwd=tmp_path)

    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("update: "))
    assert line.startswith("update: 2 changed files (") and edited in line and added in line
    assert "replay samples, starting from" in line and "(generation 1, trained " in line
    rec = _json(out / "update.json")
    last = rec["last"]
    assert rec["generation"] == 2 and rec["mode"] == "update"
    assert last["changed_files"] == [edited] and last["new_files"] == [added]
    full = _train_paths(out / "data")
    in_changed_files = sum(p in (edited, added) for p in full)
    # samples of the edited file that only write lines it had before are replayable, not new
    changed_samples = in_changed_files - last["unchanged_lines_samples"]
    unchanged = len(full) - changed_samples
    assert last["changed_samples"] == changed_samples > 0
    assert last["unchanged_lines_samples"] <= sum(p == edited for p in full)
    assert last["replay_samples"] == min(unchanged, max(changed_samples, 16)) > 0
    assert last["replay_samples"] < unchanged  # a sample of the unchanged files, not all of them
    report = _json(out / "training.json")
    assert report["data"]["update"]["changed_samples"] == changed_samples
    used = report["data"]["train_samples"] + report["data"]["skipped_too_long"]
    # a fifth of the changed samples (at most 8) is validated on instead of trained on
    held = report["data"]["update"]["changed_held_for_validation"]
    assert held == min(8, changed_samples // 5)
    assert used == changed_samples - held + last["replay_samples"] < len(full)  # only changed files + replay
    assert report["config"]["init_adapter"] == str(out)
    assert report["config"]["rank"] == 4 and report["config"]["alpha"] == 8  # read from the adapter
    assert report["budget"]["max_minutes"] == 8  # the update's default budget
    # (that it starts from the old weights — step 0 scores the old adapter's validation loss — is
    # tests/unit/train/test_update.py's; here the update validates on other samples than generation 1)
    assert (out / "history" / "1" / "adapters.safetensors").read_bytes() == old_weights
    assert _json(out / "history" / "1" / "training.json") == old_report
    assert not (out / ".next").exists() and not list(out.glob(".*.tmp"))
    installed = {a.spec: a for a in list_installed()}
    assert set(installed) == {"shop@0.1.0", "shop@0.1.1"} and rec["installed"] == "shop@0.1.1"
    assert (installed["shop@0.1.1"].path / "adapters.safetensors").read_bytes() == \
        (out / "adapters.safetensors").read_bytes()
    assert installed["shop@0.1.1"].manifest.project == installed["shop@0.1.0"].manifest.project

    # nothing changed: nothing is trained
    before = (out / "training.json").read_bytes()
    proc = _run([*train, *steps], cwd=tmp_path)
    assert "nothing changed in the training files" in proc.stdout and "step 1/" not in proc.stderr
    assert (out / "training.json").read_bytes() == before and sorted(p.name for p in (out / "history").iterdir()) == ["1"]

    # --fresh retrains from scratch: step 0 scores the bare model again, and installs the next version
    proc = _run([*train, *steps, "--fresh", "--rank", "4", "--alpha", "8"], cwd=tmp_path)
    report = _json(out / "training.json")
    rec = _json(out / "update.json")
    assert rec["generation"] == 3 and rec["mode"] == "fresh" and report["config"]["init_adapter"] == ""
    assert report["data"]["train_samples"] + report["data"]["skipped_too_long"] == len(_train_paths(out / "data"))
    assert report["history"][0]["val_loss"] == pytest.approx(old_report["first_val_loss"], abs=1e-4)
    assert sorted(p.name for p in (out / "history").iterdir()) == ["1", "2"]
    assert {a.spec for a in list_installed()} == {"shop@0.1.0", "shop@0.1.1", "shop@0.1.2"}
