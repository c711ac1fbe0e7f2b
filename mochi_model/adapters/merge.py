"""Merge a weighted adapter stack into one exact LoRA of rank Σrᵢ.

For every module, ``A = [A₁; A₂; …]`` and ``B = [w₁s₁B₁, w₂s₂B₂, …]`` (PEFT orientation), with
scale 1, so ``B·A = Σᵢ wᵢsᵢBᵢAᵢ`` exactly. In the mlx layout that is ``lora_a = [a₁ a₂ …]``
(columns) and ``lora_b = [w₁s₁b₁; w₂s₂b₂; …]`` (rows). A module only some adapters touch gets a
smaller rank, zero-padded by :func:`~mochi_model.adapters.format.write_adapter`. Adapters at weight
0 contribute nothing and are left out. Engines that take one adapter per request (vLLM, llama.cpp's
server, ``mlx_lm.server``) can then serve the stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mochi_model.adapters.format import AdapterConfig, AdapterData, LoraPair, check_compatible, write_adapter
from mochi_model.adapters.stack import AdapterStack, load_adapter
from mochi_model.errors import AdapterError


def merge_stack(stack: AdapterStack, *, name: str = "merged", role: str = "project") -> AdapterData:
    """One :class:`AdapterData` equal to the stack at its current weights."""
    active = [(a, w) for a, w in stack if w != 0.0]
    if not active:
        raise AdapterError("nothing to merge: every adapter in the stack has weight 0")
    modules: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    for adapter, weight in active:
        factor = np.float32(weight * adapter.scale)
        for module, pair in adapter.data.modules.items():
            a_parts, b_parts = modules.setdefault(module, ([], []))
            a_parts.append(pair.a)
            b_parts.append(pair.b * factor)
    merged = {m: LoraPair(np.concatenate(a, axis=1), np.concatenate(b, axis=0)) for m, (a, b) in modules.items()}
    first = active[0][0].data.config
    config = AdapterConfig(
        rank=max(p.rank for p in merged.values()), scale=1.0, dropout=0.0,
        keys=sorted({k for a, _ in active for k in a.data.config.keys}), num_layers=-1,
        base_model=first.base_model, role=role, name=name,
        extra={"merged_from": [{"name": a.name, "weight": w, "rank": a.data.config.rank, "scale": a.scale}
                               for a, w in active]})
    return AdapterData(config=config, modules=merged)


def merge_adapters(items: Sequence[tuple[Path, float]], out: Path, *, name: str = "") -> Path:
    """Load adapters, stack them with the given weights and write the merged adapter to ``out``."""
    adapters = [load_adapter(path) for path, _ in items]
    base = adapters[0].base_model
    stack = AdapterStack([(a, float(w)) for a, (_, w) in zip(adapters, items, strict=True)])
    for a in adapters[1:]:
        check_compatible(a.data, base)
    return write_adapter(out, merge_stack(stack, name=name or Path(out).name))
