"""Builders shared by the distribution tests: small adapter folders and hand-made archives."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save, save_file

BASE = "Qwen/Qwen2.5-Coder-0.5B-Instruct"


# (hidden size, k/v projection width) of the models the tests name; anything else gets (64, 64).
DIMS = {"Qwen/Qwen2.5-Coder-0.5B-Instruct": (896, 128), "Qwen/Qwen2.5-Coder-1.5B-Instruct": (1536, 256)}


def lora_tensors(base_model: str = BASE, *, layers: int = 2, rank: int = 4, seed: int = 0,
                 projections: tuple[str, ...] = ("q_proj", "v_proj")) -> dict[str, np.ndarray]:
    """Random LoRA matrices with the sizes of ``base_model``'s q/v projections."""
    rng = np.random.default_rng(seed)
    hidden, kv = DIMS.get(base_model, (64, 64))
    out = {"q_proj": hidden, "k_proj": kv, "v_proj": kv}
    return {
        f"model.layers.{i}.self_attn.{p}.{ab}": rng.standard_normal(shape).astype(np.float32)
        for i in range(layers)
        for p in projections
        for ab, shape in (("lora_a", (hidden, rank)), ("lora_b", (rank, out[p])))
    }


def make_adapter(folder: Path, *, base_model: str = BASE, role: str = "project", seed: int = 0,
                 extra: dict[str, Any] | None = None) -> Path:
    """An mlx-lm style adapter folder with random LoRA weights (2 layers, rank 4) sized for ``base_model``."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file(lora_tensors(base_model, seed=seed), str(folder / "adapters.safetensors"))
    config = {"fine_tune_type": "lora", "num_layers": 2, "base_model": base_model, "role": role,
              "lora_parameters": {"rank": 4, "scale": 2.0, "dropout": 0.0, "keys": ["self_attn.q_proj", "self_attn.v_proj"]},
              **(extra or {})}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_for(files: dict[str, bytes], **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "schema_version": 1, "name": "evil", "version": "1.0", "type": "project",
        "base_model": {"id": BASE, "revision": ""},
        "files": [{"path": n, "sha256": sha(b), "size": len(b)} for n, b in files.items()],
    }
    data.update(overrides)
    return data


def tar_gz(dest: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    """Write a gzip tarball from raw TarInfo headers (anything tarfile can express, unsanitised)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    dest.write_bytes(gzip.compress(buf.getvalue()))
    return dest


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def good_members(**manifest_overrides: Any) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    config = {"fine_tune_type": "lora", "num_layers": 2, "base_model": {"id": BASE},
              "lora_parameters": {"rank": 4, "scale": 2.0, "keys": ["self_attn.q_proj"]}}
    weights = save(lora_tensors(projections=("q_proj",)))
    files = {"adapter_config.json": json.dumps(config).encode(), "adapters.safetensors": weights}
    manifest = json.dumps(manifest_for(files, **manifest_overrides)).encode()
    return [file_member("manifest.json", manifest), *(file_member(n, b) for n, b in files.items())]
