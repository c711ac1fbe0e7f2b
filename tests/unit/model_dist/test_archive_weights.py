"""An archive must agree with itself: manifest and adapter_config.json name one base model, and the
weights' shapes fit it (checked from the safetensors header, without loading the weights or the model)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from safetensors.numpy import save

from mochi_core.paths import adapters_home
from mochi_model.dist.errors import DistError, WeightsMismatch
from mochi_model.dist.install import install_local
from mochi_model.dist.pack import pack
from tests.unit.model_dist.helpers import BASE, file_member, lora_tensors, make_adapter, manifest_for, tar_gz

OTHER = "Qwen/Qwen2.5-Coder-1.5B-Instruct"


def _config(base: Any = BASE, rank: int = 4, keys: tuple[str, ...] = ("self_attn.q_proj",), **extra: Any) -> dict:
    return {"fine_tune_type": "lora", "num_layers": 2, "base_model": base,
            "lora_parameters": {"rank": rank, "scale": 2.0, "keys": list(keys)}, **extra}


def _archive(tmp_path: Path, config: dict, weights: bytes, manifest_base: str = BASE) -> Path:
    files = {"adapter_config.json": json.dumps(config).encode(), "adapters.safetensors": weights}
    manifest = manifest_for(files, base_model={"id": manifest_base, "revision": ""})
    members = [file_member("manifest.json", json.dumps(manifest).encode()),
               *(file_member(n, b) for n, b in files.items())]
    return tar_gz(tmp_path / "a.mochi.tar.gz", members)


def _refused(archive: Path, match: str, expected: str = BASE) -> None:
    with pytest.raises(WeightsMismatch, match=match):
        install_local(archive, expected_base_model=expected)
    home = adapters_home()
    assert not home.exists() or list(home.iterdir()) == [], f"left behind: {list(home.rglob('*'))}"


def _q_only(base: str = BASE, **kwargs: Any) -> bytes:
    return save(lora_tensors(base, projections=("q_proj",), **kwargs))


def test_a_manifest_and_adapter_config_naming_different_base_models_are_refused(tmp_path: Path) -> None:
    archive = _archive(tmp_path, _config(base={"id": OTHER}), _q_only())
    _refused(archive, r"manifest.json says base model .*0.5B.* but adapter_config.json says .*1.5B")


def test_weights_of_another_model_declared_as_the_configured_one_are_refused(tmp_path: Path) -> None:
    archive = _archive(tmp_path, _config(), _q_only(OTHER))  # 1.5B-sized matrices, 0.5B on every label
    _refused(archive, r"q_proj maps 1536->1536, but that layer of the model maps 896->896")


def test_a_rank_that_differs_from_the_config_is_refused(tmp_path: Path) -> None:
    _refused(_archive(tmp_path, _config(rank=8), _q_only()), r"has rank 4/4 .* adapter_config.json says rank 8")


def test_a_layer_the_declared_model_does_not_have_is_refused(tmp_path: Path) -> None:
    tensors = {k.replace("layers.1.", "layers.30."): v for k, v in lora_tensors(projections=("q_proj",)).items()}
    _refused(_archive(tmp_path, _config(), save(tensors)), r"layer 30, but the model has 24 layers")


def test_a_key_the_config_does_not_list_is_refused(tmp_path: Path) -> None:
    weights = save(lora_tensors(projections=("q_proj", "v_proj")))
    _refused(_archive(tmp_path, _config(), weights), r"adapts 'self_attn.v_proj', which adapter_config.json")


def test_an_unknown_model_is_checked_against_the_hidden_size_its_config_records(tmp_path: Path) -> None:
    config = _config(base={"id": "tiny-qwen2", "arch": {"hidden_size": 32, "num_hidden_layers": 2}})
    archive = _archive(tmp_path, config, _q_only("tiny-qwen2"), manifest_base="tiny-qwen2")  # 64 wide
    _refused(archive, r"maps 64->64, but the model's hidden size is 32", expected="tiny-qwen2")


def test_a_config_whose_recorded_architecture_contradicts_the_declared_model_is_refused(tmp_path: Path) -> None:
    config = _config(base={"id": BASE, "arch": {"hidden_size": 1536}})
    _refused(_archive(tmp_path, config, _q_only()), r"records hidden_size 1536, but .*0.5B.* has 896")


def test_a_tensor_whose_bytes_do_not_fit_its_shape_is_refused(tmp_path: Path) -> None:
    good = _q_only()
    (length,) = struct.unpack("<Q", good[:8])
    header = json.loads(good[8 : 8 + length])
    name = next(k for k in header if k.endswith("lora_a"))
    header[name]["shape"] = [896, 400]  # claims far more data than the file holds
    raw = json.dumps(header).encode()
    forged = struct.pack("<Q", len(raw)) + raw + good[8 + length :]
    _refused(_archive(tmp_path, _config(), forged), r"does not fit its byte range in the file")


def test_a_weights_file_that_is_not_safetensors_is_refused(tmp_path: Path) -> None:
    _refused(_archive(tmp_path, _config(), b"\xff" * 64), r"declares a \d+-byte header in a 64-byte file")


def test_matching_labels_and_shapes_install(tmp_path: Path) -> None:
    installed = install_local(_archive(tmp_path, _config(base={"id": BASE}), _q_only()), expected_base_model=BASE)
    assert installed.manifest.base_model_id == BASE


def test_pack_refuses_a_base_model_option_that_contradicts_the_config(tmp_path: Path) -> None:
    folder = make_adapter(tmp_path / "adapter")
    with pytest.raises(DistError, match=r"trained on .*0.5B.*not --base-model .*1.5B"):
        pack(folder, name="acme", version="1.0", out_dir=tmp_path / "out", base_model=OTHER)
    assert not (tmp_path / "out" / "acme-1.0.mochi.tar.gz").exists()


def test_pack_refuses_weights_that_do_not_fit_the_declared_model(tmp_path: Path) -> None:
    folder = make_adapter(tmp_path / "adapter", base_model=OTHER)
    config = json.loads((folder / "adapter_config.json").read_text())
    config["base_model"] = BASE  # relabelled after training on the 1.5B
    (folder / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsMismatch, match="belong to another model"):
        pack(folder, name="acme", version="1.0", out_dir=tmp_path / "out")


def test_pack_writes_the_base_model_option_into_a_config_that_lacks_one(tmp_path: Path) -> None:
    folder = make_adapter(tmp_path / "adapter")
    config = json.loads((folder / "adapter_config.json").read_text())
    del config["base_model"]
    (folder / "adapter_config.json").write_text(json.dumps(config))
    archive = pack(folder, name="acme", version="1.0", out_dir=tmp_path / "out", base_model=BASE)
    installed = install_local(archive, expected_base_model=BASE)
    packed = json.loads((installed.path / "adapter_config.json").read_text())
    assert packed["base_model"]["id"] == BASE
