"""Fixtures for the llama.cpp backend: the tiny Qwen2 as an f32 GGUF, loaded by llama.cpp and by torch."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

if importlib.util.find_spec("llama_cpp") is None:
    pytest.skip("llama-cpp-python is not installed (bash scripts/build_llama_cpp.sh builds it)",
                allow_module_level=True)


@pytest.fixture(scope="session")
def tiny_gguf(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("gguf")
    from tests.unit.model_llama.tiny_gguf import write_tiny_gguf

    return write_tiny_gguf(tiny_model_dir, tmp_path_factory.mktemp("tiny_gguf") / "tiny-qwen2-f32.gguf")


@pytest.fixture(scope="session")
def llama_tiny(tiny_gguf: Path):
    from mochi_model.backends.llama_cpp_backend import load_backend
    from mochi_model.sources import resolve_model

    backend = load_backend(resolve_model(str(tiny_gguf)), options={"threads": 2, "n_ctx": 2048, "kv_type": "f32",
                                                              "flash_attn": "off"})
    yield backend
    backend.close()


@pytest.fixture
def llama(llama_tiny):
    """The shared tiny llama backend, with no adapters installed before and after each test."""
    llama_tiny.set_adapter_stack(None)
    yield llama_tiny
    llama_tiny.set_adapter_stack(None)


@pytest.fixture(scope="session")
def torch_tiny(tiny_model_dir: Path):
    from tests.unit.model.helpers import tiny_backend

    return tiny_backend(tiny_model_dir)
