"""Torch LoRA layers as training uses them: a fresh adapter starts at zero and exports to the shared format."""

from __future__ import annotations

import numpy as np
import torch

from mochi_model.adapters.format import AdapterConfig, AdapterData, write_adapter
from mochi_model.adapters.stack import AdapterStack, load_adapter
from mochi_model.adapters.torch_lora import apply_lora, export_adapter, unwrap_all
from tests.unit.model.helpers import tiny_backend


def test_trained_adapter_exports_and_reloads_with_the_same_output(tiny_model_dir, tmp_path):
    trainer = tiny_backend(tiny_model_dir)
    ids = trainer.encode("def add(a, b):\n    return a + b")
    base = trainer.logits_for(ids)
    layers = apply_lora(trainer.model, ["self_attn.q_proj", "self_attn.v_proj"], rank=4, scale=2.0, num_layers=1)
    assert sorted(layers) == ["model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"]
    assert np.array_equal(trainer.logits_for(ids), base)  # B starts at zero
    assert all(p.requires_grad for layer in layers.values() for p in layer.lora_A.parameters())
    with torch.no_grad():  # stand-in for a training step
        for layer in layers.values():
            layer.lora_B["default"].normal_(0, 0.5)
    trained = trainer.logits_for(ids)
    assert np.abs(trained - base).max() > 1e-2
    cfg = AdapterConfig(rank=4, scale=2.0, keys=[], num_layers=1, base_model=trainer.base_ref, name="trained")
    write_adapter(tmp_path / "trained", AdapterData(config=cfg, modules=export_adapter(trainer.model)))
    unwrap_all(trainer.model)
    assert np.array_equal(trainer.logits_for(ids), base)

    server = tiny_backend(tiny_model_dir)
    server.set_adapter_stack(AdapterStack([load_adapter(tmp_path / "trained")]))
    np.testing.assert_allclose(server.logits_for(ids), trained, atol=2e-4, rtol=1e-4)
