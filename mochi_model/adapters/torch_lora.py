"""Torch LoRA layers holding several named adapters with live weights (inference and training).

:class:`LoraLinear` wraps an ``nn.Linear`` and computes ``y = W x + Σᵢ wᵢ · sᵢ · Bᵢ Aᵢ x`` over its
named adapters (PEFT orientation: ``A`` (r, in), ``B`` (out, r)). Weights change with
:meth:`LoraLinear.set_weight` between requests, no reload; an adapter at weight 0 is skipped, so
the output is exactly the base layer's. :meth:`LoraLinear.fuse` folds the weighted deltas into
``W`` (computed in float32) for zero-overhead decoding; :meth:`LoraLinear.unfuse` restores the
original weight bit for bit.

Training (``mochi_model.training``) uses :func:`apply_lora` to add one trainable adapter and
:func:`export_adapter` to get its tensors for :func:`mochi_model.adapters.format.write_adapter`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from mochi_model.adapters.format import LoraPair, split_module


def _slot(name: str) -> str:
    """Adapter name as a ParameterDict key: torch refuses "." (and "") in parameter names, adapter names
    like ``acme.base`` or ``v1.2`` are common, so escape them reversibly."""
    if not name:
        raise ValueError("adapter name must not be empty")
    return name.replace("%", "%25").replace(".", "%2E")


class LoraLinear(nn.Module):
    """An ``nn.Linear`` plus named LoRA adapters with per-adapter weights."""

    def __init__(self, base: nn.Linear) -> None:
        super().__init__()
        self.base = base
        self.lora_A = nn.ParameterDict()
        self.lora_B = nn.ParameterDict()
        self.scales: dict[str, float] = {}
        self.weights: dict[str, float] = {}
        self.dropouts = nn.ModuleDict()
        self._orig_weight: torch.Tensor | None = None

    @property
    def in_features(self) -> int:
        return int(self.base.in_features)

    @property
    def out_features(self) -> int:
        return int(self.base.out_features)

    @property
    def fused(self) -> bool:
        return self._orig_weight is not None

    def add_adapter(self, name: str, a: torch.Tensor, b: torch.Tensor, *, scale: float, weight: float = 1.0,
                    trainable: bool = False, dropout: float = 0.0) -> None:
        """Add adapter ``name`` with ``A`` (r, in) and ``B`` (out, r)."""
        if self.fused:
            raise RuntimeError("unfuse() before changing adapters")
        if a.shape[1] != self.in_features or b.shape[0] != self.out_features or a.shape[0] != b.shape[1]:
            raise ValueError(f"LoRA shapes A{tuple(a.shape)} B{tuple(b.shape)} do not fit "
                             f"{self.in_features}->{self.out_features}")
        dev, dt = self.base.weight.device, self.base.weight.dtype
        key = _slot(name)
        self.lora_A[key] = nn.Parameter(a.to(dev, dt), requires_grad=trainable)
        self.lora_B[key] = nn.Parameter(b.to(dev, dt), requires_grad=trainable)
        self.scales[name] = float(scale)
        self.weights[name] = float(weight)
        self.dropouts[key] = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def has_adapter(self, name: str) -> bool:
        return name in self.weights

    def lora_ab(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The (A, B) parameters of adapter ``name``."""
        return self.lora_A[_slot(name)], self.lora_B[_slot(name)]

    def init_adapter(self, name: str, rank: int, *, scale: float, dropout: float = 0.0) -> None:
        """A fresh trainable adapter: A uniform like mlx-lm (±1/sqrt(in)), B zero (so it starts at 0)."""
        bound = 1.0 / math.sqrt(self.in_features)
        a = torch.empty(rank, self.in_features).uniform_(-bound, bound)
        b = torch.zeros(self.out_features, rank)
        self.add_adapter(name, a, b, scale=scale, trainable=True, dropout=dropout)

    def remove_adapter(self, name: str) -> None:
        if self.fused:
            raise RuntimeError("unfuse() before changing adapters")
        key = _slot(name)
        for store in (self.lora_A, self.lora_B, self.dropouts):
            if key in store:
                del store[key]
        self.scales.pop(name, None)
        self.weights.pop(name, None)

    def set_weight(self, name: str, weight: float) -> None:
        if self.fused:
            raise RuntimeError("unfuse() before changing adapter weights")
        self.weights[name] = float(weight)

    def delta_weight(self) -> torch.Tensor:
        """Σ wᵢ sᵢ Bᵢ Aᵢ in float32, shape (out, in)."""
        delta = torch.zeros(self.out_features, self.in_features, dtype=torch.float32, device=self.base.weight.device)
        for name, w in self.weights.items():
            if w != 0.0:
                a, b = self.lora_ab(name)
                delta += (w * self.scales[name]) * (b.float() @ a.float())
        return delta

    def fuse(self) -> None:
        if self.fused:
            return
        weight = self.base.weight
        self._orig_weight = weight.detach().clone()
        with torch.no_grad():
            weight.copy_((weight.float() + self.delta_weight()).to(weight.dtype))

    def unfuse(self) -> None:
        if self._orig_weight is None:
            return
        with torch.no_grad():
            self.base.weight.copy_(self._orig_weight)
        self._orig_weight = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if self.fused:
            return y
        for name, w in self.weights.items():
            if w != 0.0:
                a, b = self.lora_ab(name)
                h = nn.functional.linear(self.dropouts[_slot(name)](x), a)
                y = y + (w * self.scales[name]) * nn.functional.linear(h, b)
        return y


def find_linears(model: nn.Module) -> dict[str, nn.Module]:
    """``{module path: layer}`` for the linears inside ``model.layers.N`` (plain or already wrapped)."""
    out: dict[str, nn.Module] = {}
    for path, mod in model.named_modules():
        inside = ".layers." in f".{path}"
        if inside and (isinstance(mod, LoraLinear) or (isinstance(mod, nn.Linear) and not path.endswith(".base"))):
            out[path] = mod
    return out


def lora_layers(model: nn.Module) -> dict[str, LoraLinear]:
    return {p: m for p, m in model.named_modules() if isinstance(m, LoraLinear)}


def wrap_module(model: nn.Module, path: str) -> LoraLinear:
    """Replace the ``nn.Linear`` at ``path`` with a :class:`LoraLinear` (idempotent)."""
    mod = model.get_submodule(path)
    if isinstance(mod, LoraLinear):
        return mod
    if not isinstance(mod, nn.Linear):
        raise ValueError(f"{path} is {type(mod).__name__}, not nn.Linear")
    parent_path, _, child = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    wrapped = LoraLinear(mod)
    setattr(parent, child, wrapped)
    return wrapped


def unwrap_all(model: nn.Module) -> None:
    """Put the plain linears back (drops every adapter; unfuses first)."""
    for path, mod in list(lora_layers(model).items()):
        mod.unfuse()
        parent_path, _, child = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        setattr(parent, child, mod.base)


def hf_module_path(model: nn.Module, module: str) -> str:
    """Map an adapter's ``model.layers.N...`` path onto ``model`` (a CausalLM or its inner model)."""
    names = {p for p, _ in model.named_modules()}
    if module in names:
        return module
    idx, key = split_module(module)
    for candidate in (f"model.model.layers.{idx}.{key}", f"layers.{idx}.{key}"):
        if candidate in names:
            return candidate
    raise KeyError(module)


def apply_lora(model: nn.Module, keys: Iterable[str], *, rank: int, scale: float, dropout: float = 0.0,
               name: str = "default", num_layers: int = -1) -> dict[str, LoraLinear]:
    """Add one trainable adapter to the linears ``keys`` (e.g. ``self_attn.q_proj``) of the last layers.

    Args:
        num_layers: adapt the last ``num_layers`` layers (-1 = all), as mlx-lm counts them.

    Returns:
        ``{adapter module path (model.layers.N.key): layer}``.
    """
    keys = set(keys)
    found: dict[int, list[tuple[str, str]]] = {}
    for path in find_linears(model):
        tail = path.split(".layers.", 1)[1]
        idx_s, _, key = tail.partition(".")
        if key in keys:
            found.setdefault(int(idx_s), []).append((path, key))
    if not found:
        raise ValueError(f"no linear layers named {sorted(keys)} inside model.layers")
    layers = sorted(found)
    chosen = layers if num_layers < 0 else layers[-num_layers:] if num_layers else []
    out: dict[str, LoraLinear] = {}
    for idx in chosen:
        for path, key in found[idx]:
            layer = wrap_module(model, path)
            layer.init_adapter(name, rank, scale=scale, dropout=dropout)
            out[f"model.layers.{idx}.{key}"] = layer
    return out


def export_adapter(model: nn.Module, name: str = "default") -> dict[str, LoraPair]:
    """Tensors of adapter ``name`` as ``{model.layers.N.key: LoraPair}`` (mlx orientation, float32)."""
    out: dict[str, LoraPair] = {}
    for path, layer in lora_layers(model).items():
        if layer.has_adapter(name):
            tail = path.split(".layers.", 1)[1]
            a_p, b_p = layer.lora_ab(name)
            a = a_p.detach().float().cpu().numpy()
            b = b_p.detach().float().cpu().numpy()
            out[f"model.layers.{tail}"] = LoraPair.from_torch_ab(np.asarray(a), np.asarray(b))
    return out
