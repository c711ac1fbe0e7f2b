"""The shared adapter format: mlx-lm layout on disk, PEFT names both ways, validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from mochi_model.adapters.format import (
    AdapterConfig,
    AdapterData,
    BaseModelRef,
    LoraPair,
    check_compatible,
    export_peft,
    import_peft,
    normalize_model_id,
    read_adapter,
    write_adapter,
)
from mochi_model.errors import AdapterError, AdapterMismatch


def _data(rng, layers=(2, 3), rank=2):
    modules = {f"model.layers.{i}.self_attn.q_proj": LoraPair(rng.normal(size=(8, rank)).astype(np.float32),
                                                              rng.normal(size=(rank, 6)).astype(np.float32))
               for i in layers}
    base = BaseModelRef(id="Qwen/Qwen2.5-Coder-0.5B-Instruct", revision="abc", arch={"num_hidden_layers": 4})
    return AdapterData(config=AdapterConfig(rank=rank, scale=2.0, keys=[], num_layers=0, base_model=base,
                                            role="base", name="team"), modules=modules)


def test_adapter_is_written_in_the_mlx_lm_layout(tmp_path):
    data = _data(np.random.default_rng(0), layers=(2,))
    write_adapter(tmp_path, data)
    cfg = json.loads((tmp_path / "adapter_config.json").read_text())
    assert cfg["fine_tune_type"] == "lora" and cfg["num_layers"] == 2
    assert cfg["lora_parameters"] == {"rank": 2, "scale": 2.0, "dropout": 0.0, "keys": ["self_attn.q_proj"]}
    assert cfg["base_model"]["id"] == "Qwen/Qwen2.5-Coder-0.5B-Instruct" and cfg["role"] == "base"
    tensors = load_file(str(tmp_path / "adapters.safetensors"))
    assert tensors["model.layers.2.self_attn.q_proj.lora_a"].shape == (8, 2)
    assert tensors["model.layers.2.self_attn.q_proj.lora_b"].shape == (2, 6)
    # mlx-lm adapts the last num_layers layers: the uncovered layer 3 is written as zeros.
    assert not tensors["model.layers.3.self_attn.q_proj.lora_b"].any()


def test_round_trip_keeps_tensors_and_unknown_keys(tmp_path):
    data = _data(np.random.default_rng(1))
    data.config.extra["trained_steps"] = 40
    back = read_adapter(write_adapter(tmp_path, data))
    assert back.config.extra["trained_steps"] == 40 and back.config.base_model.revision == "abc"
    for m, pair in data.modules.items():
        np.testing.assert_array_equal(back.modules[m].a, pair.a)
        np.testing.assert_array_equal(back.modules[m].b, pair.b)


def test_peft_export_and_import_convert_names_and_shapes(tmp_path):
    data = _data(np.random.default_rng(2))
    export_peft(data, tmp_path / "peft")
    tensors = load_file(str(tmp_path / "peft" / "adapter_model.safetensors"))
    a = tensors["base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight"]
    assert a.shape == (2, 8)
    np.testing.assert_array_equal(a, data.modules["model.layers.2.self_attn.q_proj"].a.T)
    back = import_peft(tmp_path / "peft")
    assert back.config.scale == pytest.approx(2.0) and back.config.base_model.id == data.config.base_model.id
    np.testing.assert_array_equal(back.modules["model.layers.3.self_attn.q_proj"].b,
                                  data.modules["model.layers.3.self_attn.q_proj"].b)


def test_model_ids_of_one_model_in_different_packagings_match():
    ids = ["Qwen/Qwen2.5-Coder-0.5B-Instruct", "mlx-community/Qwen2.5-Coder-0.5B-Instruct-4bit",
           "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "Qwen2.5-Coder-0.5B-Instruct-bf16"]
    assert {normalize_model_id(i) for i in ids} == {"qwen2.5-coder-0.5b-instruct"}
    assert normalize_model_id("Qwen/Qwen2.5-Coder-1.5B-Instruct") != "qwen2.5-coder-0.5b-instruct"


def test_mismatched_base_or_shapes_are_refused_with_a_clear_error():
    data = _data(np.random.default_rng(3))
    ok = BaseModelRef(id="mlx-community/Qwen2.5-Coder-0.5B-Instruct-4bit", arch={"num_hidden_layers": 4})
    check_compatible(data, ok, {m: (8, 6) for m in data.modules})
    with pytest.raises(AdapterMismatch, match="retrain"):
        check_compatible(data, BaseModelRef(id="Qwen/Qwen2.5-Coder-7B-Instruct"))
    with pytest.raises(AdapterMismatch, match="is 8->6 in the adapter"):
        check_compatible(data, ok, {m: (8, 7) for m in data.modules})


def test_malformed_folders_raise_adapter_errors(tmp_path):
    with pytest.raises(AdapterError, match="no adapter_config.json"):
        read_adapter(tmp_path)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"fine_tune_type": "lora", "lora_parameters": {"rank": 2}}))
    with pytest.raises(AdapterError, match="rank and scale"):
        read_adapter(tmp_path)
