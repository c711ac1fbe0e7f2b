"""Shared fixtures: a tiny random model (built once per session) and fixture projects."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the developer's ~/.mochi: each test gets its own MOCHI_HOME."""
    monkeypatch.setenv("MOCHI_HOME", str(tmp_path_factory.mktemp("mochi_home")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Qwen2 model with a FIM-capable BPE tokenizer (torch + mlx loadable)."""
    pytest.importorskip("torch")
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model") / "tiny-qwen2")


@pytest.fixture
def fixture_project(tmp_path: Path):
    """Copy ``tests/fixtures/<name>`` into ``tmp_path`` and return the copy."""

    def make(name: str) -> Path:
        dest = tmp_path / name
        shutil.copytree(FIXTURES / name, dest)
        return dest

    return make


@pytest.fixture(scope="session")
def real_model_path() -> Path:
    """The real Qwen2.5-Coder-0.5B GGUF (fetched by .ci/run); skips when absent."""
    env = os.environ.get("MOCHI_REAL_MODEL")
    if not env or not Path(env).exists():
        pytest.skip("set MOCHI_REAL_MODEL to the Qwen2.5-Coder-0.5B GGUF (bash .ci/run does)")
    return Path(env)
