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
from safetensors.numpy import save_file

BASE = "Qwen/Qwen2.5-Coder-0.5B-Instruct"


def make_adapter(folder: Path, *, base_model: str = BASE, role: str = "project", seed: int = 0,
                 extra: dict[str, Any] | None = None) -> Path:
    """An mlx-lm style adapter folder with random LoRA weights (2 layers, rank 4)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tensors = {
        f"model.layers.{i}.self_attn.{p}.{ab}": rng.standard_normal(shape).astype(np.float32)
        for i in range(2)
        for p in ("q_proj", "v_proj")
        for ab, shape in (("lora_a", (64, 4)), ("lora_b", (4, 64)))
    }
    save_file(tensors, str(folder / "adapters.safetensors"))
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
    files = {"adapter_config.json": json.dumps(config).encode(), "adapters.safetensors": b"\x00" * 64}
    manifest = json.dumps(manifest_for(files, **manifest_overrides)).encode()
    return [file_member("manifest.json", manifest), *(file_member(n, b) for n, b in files.items())]
