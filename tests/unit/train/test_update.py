"""Updating an adapter: the update plan (changed files + replay), publishing with history, starting weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mochi_model.data.prepare import line_hashes
from mochi_model.errors import TrainError
from mochi_model.training.update import (
    HISTORY_KEEP,
    MIN_REPLAY,
    TrainedOn,
    plan_update,
    publish,
    read_trained_on,
    record_trained_on,
    sample_key,
)
from tests.unit.train.conftest import train_cfg


def _data(folder: Path, files: dict[str, tuple[str, int]], accepted: int = 0) -> Path:
    """A prepared-looking folder: ``files`` = {path: (hash, samples)}, all in the train split."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"kind": "fim", "path": p, "prompt": f"{p}:{h}:{i}", "completion": "x"}
            for p, (h, n) in files.items() for i in range(n)]
    rows += [{"kind": "accepted", "path": "a.py", "prompt": f"acc{i}", "completion": "y"} for i in range(accepted)]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "valid.jsonl").write_text(json.dumps({"kind": "fim", "path": "v.py", "prompt": "v", "completion": "z"}) + "\n")
    (folder / "dataset.json").write_text(json.dumps({
        "seed": 0, "split_files": {"train": sorted(files), "valid": ["v.py"], "test": []},
        "hashes": {**{p: h for p, (h, _) in files.items()}, "v.py": "vv"}, "splits": {}}))
    return folder


def test_the_plan_takes_every_sample_of_changed_and_new_files_and_a_seeded_replay_of_the_rest(tmp_path):
    old = {f"f{i}.py": (f"h{i}", 10) for i in range(6)}
    data = _data(tmp_path / "d", {**old, "f0.py": ("changed", 12), "new.py": ("n", 5)})
    trained = TrainedOn(hashes={**{p: h for p, (h, _) in old.items()}, "gone.py": "g"})
    plan = plan_update(data, trained)
    assert plan.changed == ["f0.py"] and plan.new == ["new.py"] and plan.removed == ["gone.py"]
    assert len(plan.changed_samples) == 17 and {s["path"] for s in plan.changed_samples} == {"f0.py", "new.py"}
    assert len(plan.replay_samples) == 17  # default: as many replay samples as changed ones
    assert {s["path"] for s in plan.replay_samples} <= {f"f{i}.py" for i in range(1, 6)}
    again = plan_update(data, trained)
    assert [sample_key(s) for s in again.replay_samples] == [sample_key(s) for s in plan.replay_samples]
    assert again.fingerprint() == plan.fingerprint()
    assert len(plan_update(data, trained, replay=0.8).replay_samples) == 50  # capped by the 50 unchanged samples
    assert plan_update(data, trained, replay=0).replay_samples == []
    with pytest.raises(TrainError, match="--replay"):
        plan_update(data, trained, replay=1.0)


def test_a_small_change_still_replays_at_least_sixteen_samples(tmp_path):
    data = _data(tmp_path / "d", {"a.py": ("new", 2), "b.py": ("b", 40)})
    plan = plan_update(data, TrainedOn(hashes={"a.py": "old", "b.py": "b"}))
    assert len(plan.changed_samples) == 2 and len(plan.replay_samples) == MIN_REPLAY


def test_a_changed_files_samples_whose_target_lines_were_there_before_are_not_new(tmp_path):
    old_text = "def f(x):\n    y = x + 1\n    return y\n"
    data = _data(tmp_path / "d", {"a.py": ("new", 0), "b.py": ("b", 40)})
    rows = [{"kind": "next_line", "path": "a.py", "prompt": "p1", "completion": "    y = x + 1<|endoftext|>"},
            {"kind": "span", "path": "a.py", "prompt": "p2", "completion": "  y = x + 1\n    return y\n"},
            {"kind": "next_line", "path": "a.py", "prompt": "p3", "completion": "    log(y)<|endoftext|>"},
            {"kind": "span", "path": "a.py", "prompt": "p4", "completion": "    y = x + 1\n    log(y)\n"}]
    with open(data / "train.jsonl", "a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    ds = json.loads((data / "dataset.json").read_text())
    (data / "dataset.json").write_text(json.dumps({**ds, "fim_format": "qwen"}))
    trained = TrainedOn(hashes={"a.py": "old", "b.py": "b"}, lines={"a.py": set(line_hashes(old_text))})
    plan = plan_update(data, trained, replay=0)
    # the end token and indentation do not make an old line new; a new line anywhere in the target does
    assert sorted(s["prompt"] for s in plan.changed_samples) == ["p3", "p4"] and plan.unchanged_lines == 2
    assert plan.summary()["unchanged_lines_samples"] == 2
    # without the old lines (an adapter recorded before they were kept) every sample of the file is new
    assert len(plan_update(data, TrainedOn(hashes={"a.py": "old", "b.py": "b"}), replay=0).changed_samples) == 4


def test_the_record_keeps_each_train_files_lines(tmp_path):
    data = _data(tmp_path / "d", {"a.py": ("a", 1)})
    ds = json.loads((data / "dataset.json").read_text())
    (data / "dataset.json").write_text(json.dumps({**ds, "line_hashes": {"a.py": line_hashes("x = 1\n\ny = 2\n"),
                                                                          "v.py": ["ffffffff"]}}))
    (tmp_path / "out").mkdir()
    record_trained_on(tmp_path / "out", data, generation=1, mode="fresh")
    trained = read_trained_on(tmp_path / "out")
    assert trained is not None and trained.lines == {"a.py": set(line_hashes("y = 2\nx = 1"))}  # train files only


def test_nothing_to_do_when_no_train_file_changed_but_new_accepted_suggestions_count(tmp_path):
    data = _data(tmp_path / "d", {"a.py": ("a", 3)}, accepted=2)
    (tmp_path / "out").mkdir()
    record_trained_on(tmp_path / "out", data, generation=1, mode="fresh")
    trained = read_trained_on(tmp_path / "out")
    assert trained is not None and trained.hashes == {"a.py": "a"} and len(trained.accepted) == 2
    assert plan_update(data, trained).nothing_to_do
    _data(tmp_path / "d", {"a.py": ("a", 3)}, accepted=3)
    plan = plan_update(data, trained)
    assert plan.new_accepted == 1 and [s["prompt"] for s in plan.changed_samples] == ["acc2"]


def test_without_update_json_the_data_folder_it_was_trained_on_says_what_it_saw(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "training.json").write_text("{}")
    data = _data(out / "data", {"a.py": ("a", 3), "b.py": ("b", 1)})
    trained = read_trained_on(out, data)
    assert trained is not None and trained.hashes == {"a.py": "a", "b.py": "b"} and trained.generation == 1
    assert read_trained_on(out) is None


def test_publish_keeps_the_old_adapter_in_history_and_leaves_no_temporary_files(tmp_path):
    out, staging = tmp_path / "out", tmp_path / "out" / ".next"
    for folder, text in ((out, "old"), (staging, "new")):
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("adapters.safetensors", "adapter_config.json", "training.json", "update.json"):
            (folder / name).write_text(f"{text} {name}")
    kept = publish(staging, out, keep_as="1")
    assert kept == out / "history" / "1"
    assert (kept / "adapters.safetensors").read_text() == "old adapters.safetensors"
    assert (kept / "update.json").read_text() == "old update.json"
    assert (out / "adapters.safetensors").read_text() == "new adapters.safetensors"
    assert (out / "adapter_config.json").read_text() == "new adapter_config.json"
    assert list(staging.iterdir()) == [] and not list((out / "history").glob(".*"))
    for gen in range(2, 2 + HISTORY_KEEP):
        (staging / "adapters.safetensors").write_text(f"gen {gen + 1}")
        publish(staging, out, keep_as=str(gen))
    assert sorted(int(p.name) for p in (out / "history").iterdir()) == list(range(2, 2 + HISTORY_KEEP))
    assert (out / "history" / "6" / "adapters.safetensors").read_text() == "gen 6"


def test_next_version_bumps_the_last_number_and_skips_taken_ones():
    from mochi_model.dist.registry import next_version

    assert next_version("0.1.0") == "0.1.1" and next_version("3") == "4" and next_version("1.0-rc") == "1.0-rc.1"
    assert next_version("0.1.9", {"0.1.10"}) == "0.1.11"


def test_training_from_an_adapter_starts_at_its_weights(tiny_model_dir, tiny_data, tiny_adapter, tmp_path):
    pytest.importorskip("torch")
    from mochi_model.training.torch_trainer import train_lora

    adapter, old = tiny_adapter
    res = train_lora(tiny_model_dir, tiny_data, tmp_path / "next", train_cfg(init_adapter=str(adapter), max_steps=1),
                     resume=False, progress=False)
    assert res.first_val_loss == pytest.approx(old.best_val_loss, abs=1e-5)
    assert res.first_val_loss < old.first_val_loss - 0.1


def test_an_adapter_of_another_rank_or_layers_is_refused_with_what_to_do(tiny_model_dir, tiny_data, tiny_adapter,
                                                                         tmp_path):
    pytest.importorskip("torch")
    from mochi_model.training.torch_trainer import train_lora

    adapter, _ = tiny_adapter
    with pytest.raises(TrainError, match="rank 8.*rank 4.*--fresh"):
        train_lora(tiny_model_dir, tiny_data, tmp_path / "a", train_cfg(init_adapter=str(adapter), rank=4, alpha=8),
                   resume=False, progress=False)
    with pytest.raises(TrainError, match="does not adapt.*--num-layers"):
        train_lora(tiny_model_dir, tiny_data, tmp_path / "b", train_cfg(init_adapter=str(adapter), num_layers=1),
                   resume=False, progress=False)


def test_the_target_of_a_mid_line_sample_is_its_whole_line_in_either_fim_order():
    from dataclasses import replace

    from mochi_model.data.formats import get_format
    from mochi_model.training.update import target_text

    qwen = get_format("qwen")
    s = {"prompt": "# file: b.py\n# y = 2\n<|fim_prefix|>def f():\n    x = foo.<|fim_suffix|>(1)\n    return x<|fim_middle|>",
         "completion": "bar<|endoftext|>"}
    assert target_text(s, qwen) == "    x = foo.bar(1)"
    spm = replace(qwen, order="spm")
    s2 = {"prompt": "<|fim_suffix|>(1)\n    return x<|fim_prefix|>def f():\n    x = foo.<|fim_middle|>", "completion": "bar"}
    assert target_text(s2, spm) == "    x = foo.bar(1)"
    assert target_text({"prompt": "Write a docstring", "completion": "Adds."}, qwen) == "Adds."  # not FIM
