"""Mochi's model engine: backends (torch, mlx, remote), adapter stacks, decoding, prompt formats.

The original API::

    from mochi_model import BaseAdapter, ProjectAdapter, AdapterStack, InferenceEngine
    base = BaseAdapter.load(path)
    proj = ProjectAdapter.load(path, base_adapter=base)
    engine = InferenceEngine(adapter_stack=AdapterStack([(base, 0.3), (proj, 0.7)]))
    engine.complete(instruction="...", input_code="...").response

Names are imported lazily so ``import mochi_model.types`` stays light for the edges.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mochi_model.adapters.stack import AdapterStack, BaseAdapter, ProjectAdapter
    from mochi_model.engine import InferenceEngine
    from mochi_model.loader import load_engine

_EXPORTS = {
    "BaseAdapter": "mochi_model.adapters.stack",
    "ProjectAdapter": "mochi_model.adapters.stack",
    "AdapterStack": "mochi_model.adapters.stack",
    "InferenceEngine": "mochi_model.engine",
    "load_engine": "mochi_model.loader",
}
__all__ = ["AdapterStack", "BaseAdapter", "InferenceEngine", "ProjectAdapter", "load_engine"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mochi_model' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
