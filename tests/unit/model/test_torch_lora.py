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


def test_adapter_names_with_dots_stack_and_export(tiny_model_dir, tmp_path):
    from tests.unit.model.helpers import fused_reference_logits, random_adapter

    backend = tiny_backend(tiny_model_dir)
    ids = backend.encode("def add(a, b):")
    base = random_adapter(backend, tmp_path / "a", seed=1, name="acme.base-v1.2")
    proj = random_adapter(backend, tmp_path / "b", seed=2, name="acme.web")
    backend.set_adapter_stack(AdapterStack([(base, 0.3), (proj, 0.7)]))
    want = fused_reference_logits(tiny_model_dir, ids, [(base, 0.3), (proj, 0.7)])
    np.testing.assert_allclose(backend.logits_for(ids), want, atol=2e-4, rtol=1e-4)
    exported = export_adapter(backend.model, "acme.web")
    assert sorted(exported) == sorted(proj.data.modules)
