"""`mochi models` shows whole names and what is downloaded; a model load says its source in one line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mochi_cli.app import app
from mochi_model import offline
from mochi_model.presets import DEFAULT_PRESET, PRESETS
from mochi_model.sources import resolve_model


@pytest.fixture
def caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Mochi model cache and Hugging Face cache."""
    import huggingface_hub.constants

    monkeypatch.setenv("MOCHI_MODELS", str(tmp_path / "models"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("COLUMNS", "80")
    return tmp_path


def _cache_hub_repo(hub: Path, repo: str) -> None:
    folder = hub / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("abc123")
    snap = folder / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")


def _place_offline_copy(models: Path) -> None:
    src = offline.OFFLINE_SOURCES[PRESETS[DEFAULT_PRESET].offline]  # type: ignore[index]
    models.mkdir(parents=True, exist_ok=True)
    with open(models / src.filename, "wb") as f:
        f.truncate(src.size)  # sparse: the right size, no 491 MB write


def test_models_table_shows_whole_preset_names_and_repo_ids_at_80_columns(caches: Path) -> None:
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    for preset in PRESETS.values():
        assert preset.name in result.output and preset.repos["torch"] in result.output


def test_models_says_which_presets_are_downloaded(caches: Path) -> None:
    _place_offline_copy(caches / "models")
    _cache_hub_repo(caches / "hub", PRESETS["qwen2.5-coder-3b"].repos["torch"])
    rows = {r["name"]: r for r in json.loads(CliRunner().invoke(app, ["models", "--json"]).output)}
    assert rows[DEFAULT_PRESET]["downloaded"] == ["offline GGUF"]
    assert rows["qwen2.5-coder-3b"]["downloaded"] == ["hub"]
    assert rows["qwen2.5-coder-7b"]["downloaded"] == []
    table = CliRunner().invoke(app, ["models"]).output
    line = {name: next(x for x in table.splitlines() if f" {name} " in x) for name in rows}
    assert "offline GGUF" in line[DEFAULT_PRESET] and "hub" in line["qwen2.5-coder-3b"]
    assert "no (PyPI copy)" in line["qwen2.5-coder-1.5b"] and line["qwen2.5-coder-7b"].rstrip(" │").endswith("no")


def test_the_offline_fallback_is_one_line_with_the_hub_error_only_at_info(
        caches: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    gguf = caches / "models" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    monkeypatch.setattr(offline, "fetch", lambda name, dest=None, progress=True: gguf)
    with caplog.at_level(logging.INFO, logger="mochi_model"):
        resolved = resolve_model(None, preset=DEFAULT_PRESET)  # HF_HUB_OFFLINE=1 (conftest): the hub fails
    assert resolved.source == "offline"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], "the fallback itself is no warning"
    (detail,) = [r.getMessage() for r in caplog.records if "hub unavailable" in r.getMessage()]
    assert "\n" not in detail and "Qwen/Qwen2.5-Coder-0.5B-Instruct" in detail
    line = resolved.describe()
    assert "\n" not in line and "from offline" in line and "hub unreachable" in line and "-v" in line


def test_models_fetch_prints_the_source_in_one_line_and_the_path(caches: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = caches / "models" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    monkeypatch.setattr(offline, "fetch", lambda name, dest=None, progress=True: gguf)
    result = CliRunner().invoke(app, ["models", "fetch"])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip() == "source: offline (hub unreachable; -v for details)"
    assert result.stdout.strip() == str(gguf)
