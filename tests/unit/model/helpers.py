"""Shared helpers for engine tests: a tiny torch backend and random adapters that fit it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mochi_model.adapters.format import AdapterConfig, AdapterData, BaseModelRef, LoraPair, write_adapter
from mochi_model.adapters.stack import Adapter, load_adapter


def tiny_backend(model_dir: Path):
    from mochi_model.backends.torch_backend import load_backend
    from mochi_model.sources import resolve_model

    return load_backend(resolve_model(str(model_dir)), dtype="float32")


def random_adapter(backend, dest: Path, *, seed: int, rank: int = 4, scale: float = 2.0,
                   keys: tuple[str, ...] = ("self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj"),
                   name: str = "", role: str = "project", base: BaseModelRef | None = None) -> Adapter:
    """Write a random (non-zero B) adapter for ``backend``'s model to ``dest`` and load it."""
    rng = np.random.default_rng(seed)
    modules = {}
    for module, (n_in, n_out) in backend.module_shapes().items():
        if module.split(".", 3)[3] in keys:
            modules[module] = LoraPair(rng.normal(0, 0.3, (n_in, rank)).astype(np.float32),
                                       rng.normal(0, 0.3, (rank, n_out)).astype(np.float32))
    cfg = AdapterConfig(rank=rank, scale=scale, keys=list(keys), num_layers=-1,
                        base_model=base or backend.base_ref, role=role, name=name or dest.name)
    write_adapter(dest, AdapterData(config=cfg, modules=modules))
    return load_adapter(dest)


def fused_reference_logits(model_dir: Path, ids: list[int], stack: list[tuple[Adapter, float]]) -> np.ndarray:
    """Logits of a fresh model whose weights were edited by hand: W + Σ w·s·B·A (float32)."""
    import torch

    from mochi_model.adapters.torch_lora import hf_module_path

    ref = tiny_backend(model_dir)
    with torch.no_grad():
        for adapter, weight in stack:
            for module, pair in adapter.data.modules.items():
                lin = ref.model.get_submodule(hf_module_path(ref.model, module))
                a, b = pair.torch_ab()
                lin.weight += weight * adapter.scale * torch.from_numpy(b @ a)
    return ref.logits_for(ids)
