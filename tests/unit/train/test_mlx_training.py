"""MLX LoRA training (mlx-lm tuner, in-process) on the tiny model; its adapter loads on torch."""

from __future__ import annotations

import json

import pytest

from tests.unit.train.conftest import train_cfg

pytestmark = pytest.mark.mlx


def test_mlx_training_lowers_validation_loss_and_the_adapter_loads_on_torch(tiny_model_dir, tiny_data, tmp_path):
    pytest.importorskip("mlx_lm")
    pytest.importorskip("torch")
    from mochi_core.config import MochiConfig
    from mochi_model.adapters.stack import load_adapter
    from mochi_model.loader import load_engine
    from mochi_model.training.mlx_trainer import train_lora_mlx

    out = tmp_path / "mlx-adapter"
    res = train_lora_mlx(tiny_model_dir, tiny_data, out, train_cfg(max_steps=16, eval_every=8))
    assert res.best_val_loss < res.first_val_loss - 0.1
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["lora_parameters"]["rank"] == 8 and cfg["num_layers"] == 2
    assert json.loads((out / "training.json").read_text())["best_step"] == res.best_step
    assert load_adapter(out).data.modules
    engine = load_engine(MochiConfig(), tmp_path, adapters=[(out, 1.0)], model=str(tiny_model_dir), backend="torch")
    ids = engine.backend.encode("def add(a, b):")
    on = engine.backend.logits_for(ids)
    engine.set_adapter_weights([0.0])
    assert abs(on - engine.backend.logits_for(ids)).max() > 1e-3
    engine.close()


def test_interrupted_mlx_training_resumes_from_the_saved_step(tiny_model_dir, tiny_data, tmp_path):
    pytest.importorskip("mlx_lm")
    from mochi_model.training.mlx_trainer import train_lora_mlx

    out = tmp_path / "mlx-adapter"

    def stop_at_5(step, _loss):
        if step == 5:
            raise KeyboardInterrupt

    first = train_lora_mlx(tiny_model_dir, tiny_data, out, train_cfg(max_steps=8, eval_every=4), on_step=stop_at_5)
    assert first.stopped == "interrupted" and first.steps == 5
    assert json.loads((out / "checkpoint" / "state.json").read_text())["step"] == 5
    assert (out / "checkpoint" / "optimizer.safetensors").is_file()
    resumed: list[int] = []
    second = train_lora_mlx(tiny_model_dir, tiny_data, out, train_cfg(max_steps=8, eval_every=4),
                            on_step=lambda s, _loss: resumed.append(s))
    assert resumed == [6, 7, 8] and second.steps == 8 and second.stopped == "done"
    assert [h["step"] for h in second.history if "loss" in h] == list(range(1, 9))
    fresh = train_lora_mlx(tiny_model_dir, tiny_data, tmp_path / "again", train_cfg(max_steps=8, eval_every=4),
                           resume=False)
    assert fresh.steps == 8
