"""`mochi prepare`, `mochi train project` under torchrun (2 CPU processes, gloo) and `mochi eval`, as subprocesses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

MOCHI = [sys.executable, "-m", "mochi_cli.app"]


def _run(cmd: list[str], cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[3])}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def prepared(fixture_project, tmp_path):
    repo = fixture_project("train/minirepo")
    data = tmp_path / "data"
    out = _run([*MOCHI, "prepare", "--repo", str(repo), "--output", str(data), "--prefix-tokens", "96",
                "--suffix-tokens", "24", "--context-tokens", "48", "--file-chunks", "400"], cwd=tmp_path)
    assert "held out for mochi eval" in out.stdout and "vendored" in out.stdout
    return repo, data


def test_two_process_data_parallel_training_with_torchrun(prepared, tiny_model_dir, tmp_path):
    repo, data = prepared
    out = tmp_path / "ddp-adapter"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
                "--master-port", str(_free_port()), "-m", "mochi_cli.app"]
    _run([*torchrun, "train", "project", "--data", str(data), "--output", str(out), "--model", str(tiny_model_dir),
          "--max-steps", "6", "--eval-every", "3", "--batch-size", "2", "--lr", "0.002", "--rank", "4", "--alpha", "8"],
         cwd=tmp_path)
    report = json.loads((out / "training.json").read_text())
    assert report["world_size"] == 2
    assert report["steps"] == 6 and report["best_val_loss"] < report["first_val_loss"]
    assert (out / "adapters.safetensors").exists()


def test_mochi_eval_prints_every_row_with_categories_and_writes_its_files(prepared, tiny_model_dir, tmp_path):
    repo, data = prepared
    adapters = []
    for name in ("team", "minirepo"):
        folder = tmp_path / name
        _run([*MOCHI, "train", "project", "--data", str(data), "--output", str(folder), "--model", str(tiny_model_dir),
              "--max-steps", "2", "--eval-every", "2", "--batch-size", "1", "--rank", "4", "--alpha", "8",
              "--name", name], cwd=tmp_path)
        adapters.append(folder)
    out_dir = tmp_path / "eval"
    proc = _run([*MOCHI, "eval", str(repo), "--data", str(data), "--adapter", f"{adapters[0]}:0.3",
                 "--adapter", f"{adapters[1]}:0.7", "--model", str(tiny_model_dir), "--compare-model",
                 str(tiny_model_dir), "--holes", "4", "--output", str(out_dir), "--label", "minirepo 0",
                 "--sweep-weights", "--sweep-grid", "0,1", "--sweep-holes", "3", "--write-config"], cwd=tmp_path)
    rows = [ln.split()[0] for ln in proc.stdout.splitlines() if ln.strip()]
    expected = ["base", "retrieval", "adapter:team", "adapter:minirepo", "stack", "stack@best", "both",
                "compare:base", "compare:retrieval"]
    for name in expected:
        assert name in rows
    assert "stack vs adapter:team" in proc.stdout and "both vs compare:retrieval" in proc.stdout
    assert "adapter:minirepo vs adapter:team" in proc.stdout  # each adapter vs the ones given before it
    header = proc.stdout.splitlines()[0]
    assert " next_line, " in header and " span holes in " in header and "{" not in header, header
    assert "stack@best vs stack" in proc.stdout and "stack weights swept on 3 next-line holes" in proc.stdout
    summary = json.loads((out_dir / "eval.json").read_text())
    # the weights were chosen on validation files (0/1 grid, all-zero left out) and written to the config
    sweep = summary["sweep"]
    assert sorted(map(tuple, (p["weights"] for p in sweep["points"]))) == [(0.0, 1.0), (1.0, 0.0), (1.0, 1.0)]
    assert sweep["best"] in [p["weights"] for p in sweep["points"]] and sweep["configured"] == [0.3, 0.7]
    from mochi_core.config import load_config

    pinned, _ = load_config(repo)
    assert sorted((Path(a.path).name, a.weight) for a in pinned.adapters) == \
        sorted(zip(("team", "minirepo"), sweep["best"], strict=True))
    assert summary["rows"] == expected
    assert summary["meta"]["holes"] == {"next_line": 4, "span": 4}
    assert sum(summary["meta"]["categories"].values()) == 8
    for name in expected[1:]:
        assert summary["gains"][name]["next_line"]["verdict"] in ("gain", "loss", "inside the noise")
    holes = [json.loads(ln) for ln in (out_dir / "holes.jsonl").read_text().splitlines()]
    test_files = json.loads((data / "dataset.json").read_text())["split_files"]["test"]
    assert {h["path"] for h in holes} <= set(test_files)
    assert {h["category"] for h in holes} <= {"cross_file", "in_file", "docstring"}
    # the eval's index holds the repository without the held-out files
    indexed = {p.relative_to(out_dir / "project").as_posix() for p in (out_dir / "project").rglob("*.py")}
    assert indexed and not indexed & set(test_files)
    assert (out_dir / "eval.png").stat().st_size > 1000


def test_prepare_with_the_loss_filter_reports_what_the_base_model_dropped(fixture_project, tiny_model_dir, tmp_path):
    repo = fixture_project("train/minirepo")
    data = tmp_path / "data"
    # A random tiny model scores every file near log(vocab) (6.2-6.5 nats here): a ceiling inside that band
    # drops the noisiest files and keeps the rest.
    out = _run([*MOCHI, "prepare", "--repo", str(repo), "--output", str(data), "--loss-filter", "--model",
                str(tiny_model_dir), "--loss-high", "6.33"], cwd=tmp_path)
    dataset = json.loads((data / "dataset.json").read_text())
    assert "loss filter: scoring files with" in out.stderr and "too_noisy" in out.stdout
    noisy = [p for p, why in dataset["dropped"].items() if why == "too_noisy"]
    assert noisy and dataset["splits"]["train"]["files"] > 0
    assert not set(noisy) & {p for files in dataset["split_files"].values() for p in files}
