"""`mochi serve`'s engine factory: the adapter stack auto-detection picks, reported before loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mochi_core.config import MochiConfig
from mochi_model.fake import FakeEngine
from mochi_model.holder import EngineHolder, ModelUnavailable, real_engine_factory


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Replace the heavy loader; record what it was asked to load."""
    import mochi_model.loader

    calls: list[dict] = []

    def load_engine(config, root, adapters=None, **kw):  # noqa: ANN001
        calls.append({"model": config.model.path, "root": root, "adapters": adapters})
        return FakeEngine()

    monkeypatch.setattr(mochi_model.loader, "load_engine", load_engine)
    return calls


def test_an_explicit_project_adapter_folder_is_loaded_and_named_in_the_progress(
        captured: list[dict], tmp_path: Path) -> None:
    folder = tmp_path / "shop-adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"base_model": "Qwen/Qwen2.5-Coder-0.5B"}))
    config = MochiConfig()
    config.model.path = "/models/tiny"
    messages: list[str] = []
    provider = EngineHolder(factory=real_engine_factory(config, tmp_path, project=str(folder)), description="tiny")
    provider.require(messages.append)
    assert captured[0]["model"] == "/models/tiny"
    ((path, weight),) = captured[0]["adapters"]
    assert path == folder.resolve() and 0 < weight <= 1
    note = next(m for m in messages if m.startswith("adapters:"))
    assert "project shop-adapter" in note and "explicit flag" in note
    assert provider.status()["adapters"] == [note.split(":", 1)[1].strip()]


def test_without_adapters_installed_the_base_model_loads_alone(captured: list[dict], tmp_path: Path) -> None:
    messages: list[str] = []
    EngineHolder(factory=real_engine_factory(MochiConfig(), tmp_path)).require(messages.append)
    assert captured[0]["adapters"] == []
    assert "adapters: none (base model only)" in messages


def test_a_missing_adapter_is_a_model_load_error_that_names_it(captured: list[dict], tmp_path: Path) -> None:
    provider = EngineHolder(factory=real_engine_factory(MochiConfig(), tmp_path, base=str(tmp_path / "nope")))
    with pytest.raises(ModelUnavailable, match="nope"):
        provider.require()
    assert captured == [] and provider.status()["state"] == "failed"
