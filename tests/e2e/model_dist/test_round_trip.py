"""Round trip on the tiny model: train → pack → install → auto-detect → the same outputs as the original.

Real LoRA training (mochi_model.training), real archive and install, real torch forward passes.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from mochi_core.config import MochiConfig
from mochi_model.dist.autodetect import choose_adapters
from mochi_model.dist.identity import configured_base_model, project_identity
from mochi_model.dist.install import install_local
from mochi_model.dist.pack import pack

torch = pytest.importorskip("torch")


@pytest.fixture
def trained_adapter(tiny_model_dir: Path, tmp_path: Path) -> Path:
    from mochi_model.training.config import TrainConfig
    from mochi_model.training.torch_trainer import train_lora

    data = tmp_path / "data"
    data.mkdir()
    samples = [{"prompt": f"def add{i}(a, b):\n", "completion": f"    return a + b + {i}\n"} for i in range(8)]
    (data / "train.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    (data / "valid.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples[:2]))
    cfg = TrainConfig(rank=4, alpha=8, dropout=0.0, targets=["q_proj", "v_proj"], lr=1e-2, batch_size=2,
                      min_steps=3, max_steps=3, eval_every=3, eval_samples=2, dtype="float32", seed=0)
    result = train_lora(tiny_model_dir, data, tmp_path / "run", cfg, progress=False)
    assert result.steps == 3
    return result.output


def test_trained_packed_installed_adapter_gives_the_same_logits_as_the_original_folder(
    tiny_model_dir: Path, trained_adapter: Path, tmp_path: Path
) -> None:
    from mochi_model.adapters.stack import AdapterStack, load_adapter
    from mochi_model.backends.torch_backend import load_backend
    from mochi_model.sources import ResolvedModel

    root = tmp_path / "acme"
    root.mkdir()
    config = MochiConfig()
    config.model.path = str(tiny_model_dir)
    archive = pack(trained_adapter, name="acme-tiny", version="1.0", out_dir=tmp_path / "out",
                   identity=project_identity(config, root))
    with tarfile.open(archive) as tar:
        assert "checkpoint" not in " ".join(tar.getnames())
        assert {"training.json", "adapters.safetensors"} <= set(tar.getnames())
    installed = install_local(archive, expected_base_model=configured_base_model(config))

    (chosen,) = choose_adapters(config, root)
    assert (chosen.path, chosen.weight, chosen.role) == (installed.path, 1.0, "project")

    backend = load_backend(ResolvedModel(path=tiny_model_dir, model_id=tiny_model_dir.name), device="cpu",
                           dtype="float32")
    ids = backend.tokenizer("def add3(a, b):\n    return", add_special_tokens=False)["input_ids"]
    base = backend.logits_for(ids)
    backend.set_adapter_stack(AdapterStack([(load_adapter(trained_adapter), 1.0)]))
    original = backend.logits_for(ids)
    backend.set_adapter_stack(AdapterStack([(load_adapter(chosen.path), chosen.weight)]))
    reinstalled = backend.logits_for(ids)

    assert not np.allclose(base, original, atol=1e-4), "the trained adapter should change the logits"
    np.testing.assert_array_equal(original, reinstalled)
