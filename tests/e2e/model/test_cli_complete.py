"""`mochi complete FILE --line --column --json` and `mochi adapters merge` as subprocesses (tiny model)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

MOCHI = [sys.executable, "-m", "mochi_cli.app"]


def test_mochi_complete_prints_json_for_a_one_based_position(tiny_model_dir, tmp_path):
    src = tmp_path / "proj" / "calc.py"
    src.parent.mkdir()
    src.write_text("def add(a, b):\n    return \n")
    res = subprocess.run([*MOCHI, "complete", str(src), "--line", "2", "--column", "12", "--json",
                          "--model", str(tiny_model_dir), "--max-tokens", "5", "--project", str(src.parent)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["line"] == 2 and out["column"] == 12 and out["model"] == "tiny-qwen2"
    assert out["finish_reason"] in ("eos", "stop", "length") and out["prompt_tokens"] > 0
    assert "\n" not in out["text"]  # the cursor is mid-line: single-line completion


def test_mochi_complete_rejects_a_position_outside_the_file(tiny_model_dir, tmp_path):
    src = tmp_path / "a.py"
    src.write_text("x = 1\n")
    res = subprocess.run([*MOCHI, "complete", str(src), "--line", "1", "--column", "40",
                          "--model", str(tiny_model_dir)], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "column 40 is outside line 1" in res.stderr


def test_mochi_adapters_merge_writes_one_lora_of_summed_rank(tiny_model_dir, tmp_path):
    from mochi_model.adapters.format import read_adapter
    from tests.unit.model.helpers import random_adapter, tiny_backend

    be = tiny_backend(tiny_model_dir)
    a1 = random_adapter(be, tmp_path / "a1", seed=1, rank=4)
    a2 = random_adapter(be, tmp_path / "a2", seed=2, rank=3)
    res = subprocess.run([*MOCHI, "adapters", "merge", f"{a1.path}:0.3", f"{a2.path}:0.7", "--out",
                          str(tmp_path / "merged")], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    merged = read_adapter(Path(res.stdout.strip()))
    assert merged.config.rank == 7 and merged.config.scale == 1.0
    m = "model.layers.0.self_attn.q_proj"
    a, b = merged.modules[m].torch_ab()
    want = sum(w * ad.scale * (ad.data.modules[m].torch_ab()[1] @ ad.data.modules[m].torch_ab()[0])
               for ad, w in ((a1, 0.3), (a2, 0.7)))
    np.testing.assert_allclose(b @ a, want, atol=1e-5)
