"""The adapter stack on the torch backend: y = W·x + Σ wᵢ·sᵢ·Bᵢ·Aᵢ·x, weights, fusing, merging, refusal."""

from __future__ import annotations

import numpy as np
import pytest

from mochi_model.adapters.format import BaseModelRef, read_adapter, write_adapter
from mochi_model.adapters.merge import merge_stack
from mochi_model.adapters.stack import AdapterStack, BaseAdapter, ProjectAdapter, load_adapter
from mochi_model.engine import InferenceEngine
from mochi_model.errors import AdapterMismatch
from tests.unit.model.helpers import fused_reference_logits, random_adapter, tiny_backend


@pytest.fixture
def backend(tiny_model_dir):
    return tiny_backend(tiny_model_dir)


@pytest.fixture
def ids(backend):
    return backend.encode("def load(self):\n    with open(self.path) as f:\n        return")


def test_stacked_output_equals_explicitly_fused_weights(backend, ids, tiny_model_dir, tmp_path):
    a1 = random_adapter(backend, tmp_path / "team", seed=1, role="base")
    a2 = random_adapter(backend, tmp_path / "proj", seed=2, rank=8, scale=0.5, keys=("self_attn.k_proj", "mlp.up_proj", "self_attn.q_proj"))
    base = backend.logits_for(ids)
    backend.set_adapter_stack(AdapterStack([(a1, 0.3), (a2, 0.7)]))
    got = backend.logits_for(ids)
    want = fused_reference_logits(tiny_model_dir, ids, [(a1, 0.3), (a2, 0.7)])
    assert np.abs(got - base).max() > 1e-2  # the adapters really change the output
    np.testing.assert_allclose(got, want, atol=2e-4, rtol=1e-4)


def test_weight_zero_gives_exactly_the_base_model(backend, ids, tmp_path):
    a1 = random_adapter(backend, tmp_path / "a1", seed=1)
    a2 = random_adapter(backend, tmp_path / "a2", seed=2)
    base = backend.logits_for(ids)
    backend.set_adapter_stack(AdapterStack([(a1, 0.0), (a2, 0.0)]))
    assert np.array_equal(backend.logits_for(ids), base)


def test_weights_change_between_requests_without_reloading(backend, ids, tiny_model_dir, tmp_path):
    a1 = BaseAdapter.load(random_adapter(backend, tmp_path / "team", seed=3).path)
    a2 = ProjectAdapter.load(random_adapter(backend, tmp_path / "proj", seed=4).path, base_adapter=a1)
    engine = InferenceEngine(AdapterStack([(a2, 1.0)]), backend=backend)
    assert [a.name for a in engine.adapter_stack.adapters] == ["team", "proj"]  # base adapter joined the stack
    model_before = backend.model
    first = engine.complete_fim("def add(a, b):\n    ", "\n", max_tokens=6, multiline=True)
    engine.complete_fim("def add(a, b):\n    ", "\n", max_tokens=6, multiline=True,
                        adapter_weights={"team": 0.2, "proj": 0.9})
    assert backend.model is model_before
    want = fused_reference_logits(tiny_model_dir, ids, [(a1, 0.2), (a2, 0.9)])
    np.testing.assert_allclose(backend.logits_for(ids), want, atol=2e-4, rtol=1e-4)
    # Back to the first weights: the same tokens as the first request (KV cache not stale).
    again = engine.complete_fim("def add(a, b):\n    ", "\n", max_tokens=6, multiline=True,
                                adapter_weights={"team": 1.0, "proj": 1.0})
    assert again.extra["raw"] == first.extra["raw"]


def test_fused_mode_matches_the_live_stack_and_unfusing_restores_the_base(backend, ids, tmp_path):
    a1 = random_adapter(backend, tmp_path / "a1", seed=5)
    base = backend.logits_for(ids)
    backend.set_adapter_stack(AdapterStack([(a1, 0.6)]))
    live = backend.logits_for(ids)
    backend.fuse()
    np.testing.assert_allclose(backend.logits_for(ids), live, atol=2e-4, rtol=1e-4)
    backend.set_adapter_stack(None)
    assert np.array_equal(backend.logits_for(ids), base)


def test_merged_adapter_of_rank_sum_equals_the_weighted_stack(backend, ids, tmp_path):
    a1 = random_adapter(backend, tmp_path / "a1", seed=6, rank=4)
    a2 = random_adapter(backend, tmp_path / "a2", seed=7, rank=2, scale=4.0, keys=("self_attn.q_proj",))
    stack = AdapterStack([(a1, 0.25), (a2, 0.5)])
    backend.set_adapter_stack(stack)
    want = backend.logits_for(ids)
    out = write_adapter(tmp_path / "merged", merge_stack(stack))
    merged = read_adapter(out)
    assert merged.config.rank == 6 and merged.config.scale == 1.0
    backend.set_adapter_stack(AdapterStack([load_adapter(out)]))
    np.testing.assert_allclose(backend.logits_for(ids), want, atol=2e-4, rtol=1e-4)


def test_adapter_for_another_base_model_is_refused(backend, tmp_path):
    other = BaseModelRef(id="Qwen/Qwen2.5-Coder-1.5B-Instruct", arch={"hidden_size": 1536})
    wrong = random_adapter(backend, tmp_path / "wrong", seed=8, base=other)
    with pytest.raises(AdapterMismatch, match="trained for base model"):
        backend.set_adapter_stack(AdapterStack([wrong]))
    resized = BaseModelRef(id=backend.base_ref.id, arch={**backend.base_ref.arch, "num_hidden_layers": 24})
    wrong_arch = random_adapter(backend, tmp_path / "arch", seed=9, base=resized)
    with pytest.raises(AdapterMismatch, match="num_hidden_layers"):
        backend.set_adapter_stack(AdapterStack([wrong_arch]))
    assert backend.adapter_stack is None


def test_peft_folder_loads_with_the_same_output_as_peft(backend, ids, tiny_model_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    ref = tiny_backend(tiny_model_dir)
    peft_model = get_peft_model(ref.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "o_proj"],
                                                      lora_dropout=0.0, init_lora_weights=False))
    peft_model.eval()
    peft_model.save_pretrained(tmp_path / "peft")
    with torch.no_grad():
        want = peft_model(torch.tensor([ids])).logits[0].float().numpy()
    adapter = load_adapter(tmp_path / "peft")
    assert adapter.scale == 2.0
    backend.set_adapter_stack(AdapterStack([adapter]))
    np.testing.assert_allclose(backend.logits_for(ids), want, atol=2e-4, rtol=1e-4)
