"""Mochi adapters written as GGUF LoRA files the way llama.cpp's convert_lora_to_gguf.py writes them."""

from __future__ import annotations

import numpy as np
import pytest

from mochi_model.adapters.format import (
    AdapterConfig,
    AdapterData,
    BaseModelRef,
    LoraPair,
    read_adapter,
    write_adapter,
)

gguf = pytest.importorskip("gguf")


def _adapter(tmp_path, *, rank=4, scale=2.0):
    rng = np.random.default_rng(0)
    modules = {
        "model.layers.0.self_attn.q_proj": LoraPair(rng.normal(size=(64, rank)).astype(np.float32),
                                                    rng.normal(size=(rank, 64)).astype(np.float32)),
        "model.layers.1.mlp.down_proj": LoraPair(rng.normal(size=(128, rank)).astype(np.float32),
                                                 rng.normal(size=(rank, 64)).astype(np.float32)),
    }
    cfg = AdapterConfig(rank=rank, scale=scale, keys=[], num_layers=-1, name="team",
                        base_model=BaseModelRef(id="tiny", arch={"num_hidden_layers": 2}))
    write_adapter(tmp_path / "team", AdapterData(config=cfg, modules=modules))
    return read_adapter(tmp_path / "team")


def test_tensors_are_named_after_the_base_weight_with_peft_orientation_and_alpha_is_scale_times_rank(tmp_path):
    from mochi_model.adapters.gguf_lora import write_gguf_lora

    data = _adapter(tmp_path)
    path = write_gguf_lora(data, tmp_path / "team.gguf", arch="qwen2", n_layers=2)
    reader = gguf.GGUFReader(str(path))
    fields = {f.name: f for f in reader.fields.values()}
    assert bytes(fields["general.type"].parts[-1]).decode() == "adapter"
    assert bytes(fields["adapter.type"].parts[-1]).decode() == "lora"
    assert float(fields["adapter.lora.alpha"].parts[-1][0]) == pytest.approx(2.0 * 4)
    tensors = {t.name: t for t in reader.tensors}
    # write_adapter padded the uncovered (layer, key) pairs with zeros: those are left out
    assert set(tensors) == {"blk.0.attn_q.weight.lora_a", "blk.0.attn_q.weight.lora_b",
                            "blk.1.ffn_down.weight.lora_a", "blk.1.ffn_down.weight.lora_b"}
    a, b = data.modules["model.layers.1.mlp.down_proj"].torch_ab()
    np.testing.assert_array_equal(np.asarray(tensors["blk.1.ffn_down.weight.lora_a"].data).reshape(a.shape), a)
    np.testing.assert_array_equal(np.asarray(tensors["blk.1.ffn_down.weight.lora_b"].data).reshape(b.shape), b)
    # ggml order (innermost first): lora_a is (in, r), lora_b is (r, out) — what llama.cpp checks
    assert [int(x) for x in tensors["blk.1.ffn_down.weight.lora_a"].shape] == [128, 4]
    assert [int(x) for x in tensors["blk.1.ffn_down.weight.lora_b"].shape] == [4, 64]


def test_the_gguf_file_is_written_once_and_rewritten_when_the_adapter_changes(tmp_path, monkeypatch):
    from mochi_model.adapters import gguf_lora

    monkeypatch.setenv("MOCHI_MODELS", str(tmp_path / "models"))
    data = _adapter(tmp_path)
    first = gguf_lora.gguf_lora_for(data, arch="qwen2", n_layers=2)
    assert first.is_file() and first.parent.name == "gguf-lora"
    assert not any(p.suffix == ".gguf" for p in (tmp_path / "team").iterdir())  # the adapter folder stays as packed
    mtime = first.stat().st_mtime_ns
    assert gguf_lora.gguf_lora_for(read_adapter(tmp_path / "team"), arch="qwen2", n_layers=2) == first
    assert first.stat().st_mtime_ns == mtime
    data.config.scale = 0.5
    write_adapter(tmp_path / "team", data)
    second = gguf_lora.gguf_lora_for(read_adapter(tmp_path / "team"), arch="qwen2", n_layers=2)
    assert second != first and second.is_file()
