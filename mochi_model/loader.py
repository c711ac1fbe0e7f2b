"""Build the engine the servers and the CLI use from a project's configuration.

``load_engine(config, root)`` resolves the backend (``[model] backend`` or the override), the model
(``model=`` > ``[model] path`` > ``[model] preset``, with the offline fallback for the default
preset) and the adapter stack (explicit ``adapters`` > the stack ``mochi_model.dist.autodetect``
chooses from config pins and installed adapters), and returns an :class:`InferenceEngine`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mochi_core.config import MochiConfig
from mochi_model.adapters.stack import Adapter, AdapterStack, load_adapter
from mochi_model.engine import InferenceEngine
from mochi_model.fim import DEFAULT_CONTEXT_FORMAT

logger = logging.getLogger(__name__)


def _configured_adapters(config: MochiConfig, root: Path) -> list[tuple[Path, float]]:
    """The stack from config/installed adapters (dist's autodetect when present, else config paths)."""
    try:
        from mochi_model.dist.autodetect import choose_adapters
    except ImportError:
        return [(Path(a.path).expanduser(), a.weight) for a in config.adapters if a.path]
    return [(c.path, c.weight) for c in choose_adapters(config, root)]


def build_stack(adapters: list[tuple[Path, float]], *, fused: bool = False) -> AdapterStack | None:
    """Load ``(folder, weight)`` pairs into a stack (None when empty)."""
    if not adapters:
        return None
    loaded: list[tuple[Adapter, float]] = []
    for path, weight in adapters:
        adapter = load_adapter(Path(path))
        if any(a.name == adapter.name for a, _ in loaded):
            adapter.name = f"{adapter.name}#{len(loaded)}"
        loaded.append((adapter, float(weight)))
    return AdapterStack(loaded, fused=fused)


def load_engine(config: MochiConfig, root: Path, adapters: list[tuple[Path, float]] | None = None, *,
                backend: str | None = None, model: str | None = None, fused: bool = False,
                context_format: str = DEFAULT_CONTEXT_FORMAT) -> InferenceEngine:
    """The engine for project ``root``.

    Args:
        config: the project's configuration.
        root: project root (names the repo in repo-level prompts; finds installed adapters).
        adapters: ``(folder, weight)`` pairs; None = what config/installed adapters say; [] = none.
        backend: ``auto`` | ``torch`` | ``mlx`` | ``llama`` | ``remote`` (default: ``[model] backend``).
        model: folder, ``.gguf`` or hub id (default: ``[model] path``, else the preset).
        fused: fold the stack into the weights (fastest when weights will not change).

    Raises:
        ModelError: backend missing, model not found, adapter mismatched.
    """
    from mochi_model.backends import load_backend, resolve_backend_and_model, resolve_backend_name
    from mochi_model.sources import ResolvedModel, resolve_model

    wanted_backend = backend or config.model.backend
    name = resolve_backend_name(wanted_backend)
    options: dict[str, object] = {"remote_url": config.model.remote_url}
    if name == "remote":
        wanted = model or config.model.path or config.model.preset
        local = Path(wanted).expanduser()
        # A local model folder gives the remote backend exact token counts (its tokenizer).
        source = ResolvedModel(path=local if local.is_dir() else Path(), model_id=wanted, source="remote")
        options["server"] = config.model.remote_server
        if config.model.remote_model:
            options["model"] = config.model.remote_model
        if config.model.remote_adapter:
            options["adapter"] = config.model.remote_adapter
    else:
        # auto: llama.cpp for a GGUF model on a CPU machine with llama-cpp-python, else torch/MLX.
        name, source = resolve_backend_and_model(wanted_backend, lambda b: resolve_model(
            model or config.model.path or None, preset=config.model.preset, backend=b))
    logger.warning("model: %s", source.describe())
    be = load_backend(name, source, device=config.model.device, dtype=config.model.dtype, options=options)
    chosen = _configured_adapters(config, root) if adapters is None else adapters
    stack = build_stack(chosen, fused=fused)
    return InferenceEngine(stack, backend=be, context_format=context_format, repo_name=Path(root).resolve().name)
