"""Backends chosen lazily by name: ``auto`` | ``torch`` | ``mlx`` | ``llama`` | ``remote``.

Each backend lives in its own module exporting ``load_backend(source, *, device, dtype, options)``;
only the chosen one is imported, so the MLX path never imports torch and vice versa. A missing
optional extra raises :class:`~mochi_model.errors.BackendUnavailable` naming what to install.
"""

from __future__ import annotations

import importlib
import importlib.util
import platform
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mochi_model.errors import BackendUnavailable, ModelError, ModelNotFound

if TYPE_CHECKING:
    from mochi_model.backends.base import Backend
    from mochi_model.sources import ResolvedModel

BACKENDS = ("torch", "mlx", "llama", "remote")
_MODULES = {"torch": "mochi_model.backends.torch_backend", "mlx": "mochi_model.backends.mlx_backend",
            "llama": "mochi_model.backends.llama_cpp_backend", "remote": "mochi_model.backends.remote"}
_EXTRAS = {"torch": ("torch", "torch"), "mlx": ("mlx_lm", "mlx"), "llama": ("llama_cpp", "llama"),
           "remote": (None, None)}
#: ``auto`` serves GGUF models with llama.cpp on CPU machines (measured faster than torch bf16 on
#: decode and prefill, docs/notes.md "Quantized CPU engine"); torch stays for training and CUDA.
LLAMA_FIRST_ON_CPU = True


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def is_apple_silicon() -> bool:
    return sys.platform == "darwin" and platform.machine() == "arm64"


def resolve_backend_name(name: str = "auto") -> str:
    """``auto`` → ``mlx`` on Apple Silicon when mlx-lm is installed, else ``torch`` (else ``mlx``)."""
    name = (name or "auto").lower()
    if name != "auto":
        if name not in BACKENDS:
            raise ModelError(f"unknown backend {name!r}; choose one of auto, {', '.join(BACKENDS)}")
        return name
    if is_apple_silicon() and _installed("mlx_lm"):
        return "mlx"
    if _installed("torch") and _installed("transformers"):
        return "torch"
    if _installed("mlx_lm"):
        return "mlx"
    if _installed("llama_cpp"):
        return "llama"
    raise BackendUnavailable("no model backend is installed; install one with `pip install 'mochi-code[torch]'` "
                             "(or 'mochi-code[mlx]' on Apple Silicon)")


def _has_cuda_gpu() -> bool:
    """An NVIDIA driver is present (cheap: no torch import); torch then serves the model on the GPU."""
    import os

    return os.path.exists("/proc/driver/nvidia/version") or os.environ.get("MOCHI_ASSUME_CUDA") == "1"


def llama_preferred() -> bool:
    """Whether ``auto`` tries llama.cpp first: not Apple Silicon (MLX), llama-cpp-python installed, no GPU."""
    return (LLAMA_FIRST_ON_CPU and not is_apple_silicon() and _installed("llama_cpp") and not _has_cuda_gpu())


def resolve_backend_and_model(name: str | None, resolve: Callable[[str], ResolvedModel]) -> tuple[str, ResolvedModel]:
    """Pick the backend and resolve the model for it (``resolve(backend) -> ResolvedModel``).

    ``auto`` on a CPU machine with llama-cpp-python: llama.cpp when the model resolves to a ``.gguf``
    (a GGUF path, or a preset's GGUF repo / offline source), else what :func:`resolve_backend_name` says.
    """
    wanted = (name or "auto").lower()
    if wanted == "auto" and llama_preferred():
        try:
            source = resolve("llama")
        except ModelNotFound:
            source = None
        if source is not None and source.is_gguf:
            return "llama", source
    real = resolve_backend_name(wanted)
    return real, resolve(real)


def load_backend(name: str, source: ResolvedModel, *, device: str = "auto", dtype: str = "auto",
                 options: dict[str, Any] | None = None) -> Backend:
    """Import the named backend's module and load ``source`` with it."""
    name = resolve_backend_name(name)
    dep, extra = _EXTRAS[name]
    if dep is not None and not _installed(dep):
        raise BackendUnavailable.missing_extra(name, extra or name)
    try:
        module = importlib.import_module(_MODULES[name])
    except ImportError as exc:
        raise BackendUnavailable.missing_extra(name, extra or name, exc) from exc
    return module.load_backend(source, device=device, dtype=dtype, options=options or {})
