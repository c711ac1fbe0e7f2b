"""Fixtures for MLX parity tests: the tiny model on MLX and on torch, and random adapters for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mochi_model.adapters.format import AdapterConfig, AdapterData, BaseModelRef, LoraPair, write_adapter

# (module key, in, out) of the tiny Qwen2 (hidden 64, 4 heads, 2 kv heads, intermediate 128)
TINY_TARGETS = (("self_attn.q_proj", 64, 64), ("self_attn.v_proj", 64, 32), ("mlp.down_proj", 128, 64))


def random_adapter(dest: Path, *, seed: int, rank: int, scale: float, name: str,
                   base_id: str = "tiny-qwen2", layers: int = 2, hidden: int = 64) -> Path:
    """Write a random (non-zero B) adapter for the tiny model in the shared on-disk format."""
    rng = np.random.default_rng(seed)
    modules = {}
    for layer in range(layers):
        for key, n_in, n_out in TINY_TARGETS:
            modules[f"model.layers.{layer}.{key}"] = LoraPair(
                rng.normal(0, 0.15, (n_in, rank)).astype(np.float32),
                rng.normal(0, 0.15, (rank, n_out)).astype(np.float32))
    cfg = AdapterConfig(rank=rank, scale=scale, keys=[k for k, _, _ in TINY_TARGETS], num_layers=layers, name=name,
                        base_model=BaseModelRef(id=base_id, arch={"model_type": "qwen2", "hidden_size": hidden,
                                                                  "num_hidden_layers": layers}))
    return write_adapter(dest, AdapterData(config=cfg, modules=modules))


@pytest.fixture(scope="session")
def tiny_adapters(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("mlx_adapters")
    return {
        "team": random_adapter(root / "team", seed=1, rank=4, scale=2.0, name="team"),
        "project": random_adapter(root / "project", seed=2, rank=2, scale=1.5, name="project"),
        "other": random_adapter(root / "other", seed=3, rank=2, scale=1.0, name="other",
                                base_id="Qwen/Qwen2.5-Coder-7B"),
    }


@pytest.fixture(scope="session")
def mlx_tiny(tiny_model_dir: Path):
    """The tiny model on the MLX backend, float32 (parity needs the same precision as torch)."""
    pytest.importorskip("mlx_lm")
    from mochi_model.backends import load_backend

    backend = load_backend("mlx", tiny_model_dir, dtype="float32")
    yield backend
    backend.set_adapter_stack(None)


def torch_model(folder: Path, peft_dir: Path | None = None):
    """A float32 transformers model (with a PEFT adapter when given): the torch-side reference."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    if peft_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, peft_dir)
    return model.eval()


def torch_logits(model, ids: list[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()
