"""MLX LoRA layer holding a weighted stack of named adapters, with fuse/unfuse.

One :class:`StackedLoRALinear` wraps one base ``nn.Linear`` (or ``nn.QuantizedLinear``) and
computes ``y = W·x + Σᵢ wᵢ·sᵢ·Bᵢ·Aᵢ·x`` over its named adapters. The per-adapter weights
``wᵢ`` change between requests without touching the model; :meth:`fuse` folds the weighted
deltas into a plain linear for zero-overhead decoding while the stack stays fixed, and
:meth:`unfuse` returns to the exact base weights (the base layer is kept, never modified).

Matrices use the mlx-lm layout: ``A`` is ``(in, r)``, ``B`` is ``(r, out)``, so the delta of
one adapter is ``s · (x @ A) @ B``. Model-level helpers (:func:`attach_adapter`,
:func:`set_stack_weights`, :func:`fuse_model`, ...) walk a model's modules by name.

Only imported on the MLX path (it imports ``mlx``); callers import it lazily.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_unflatten

from mochi_model.errors import AdapterMismatch

if TYPE_CHECKING:
    from mochi_model.adapters.format import AdapterData


@dataclass
class MxPair:
    """One adapter's low-rank pair for one layer, as MLX arrays (mlx-lm layout)."""

    a: mx.array  # (in, r)
    b: mx.array  # (r, out)
    scale: float


def linear_dims(linear: nn.Module) -> tuple[int, int]:
    """(in, out) of a plain or quantized linear."""
    out_dims, in_dims = linear.weight.shape
    if isinstance(linear, nn.QuantizedLinear):
        in_dims = in_dims * 32 // linear.bits
    return in_dims, out_dims


def _dense_weight(linear: nn.Module) -> mx.array:
    if isinstance(linear, nn.QuantizedLinear):
        return mx.dequantize(linear.weight, linear.scales, linear.biases,
                             group_size=linear.group_size, bits=linear.bits, mode=linear.mode)
    return linear.weight


class StackedLoRALinear(nn.Module):
    """A linear layer plus named LoRA adapters mixed by per-adapter weights.

    Args:
        base: the layer being adapted; kept unchanged so unfusing is exact.
    """

    _pairs: dict[str, MxPair]
    _weights: dict[str, float]
    _fused: nn.Module | None

    def __init__(self, base: nn.Module) -> None:
        super().__init__()
        self.base = base
        self.in_dims, self.out_dims = linear_dims(base)
        # mlx Modules store dicts/arrays/modules as children (parameters); the stack is frozen
        # inference state, so it is kept as plain object attributes, out of the module tree.
        object.__setattr__(self, "_pairs", {})
        object.__setattr__(self, "_weights", {})
        object.__setattr__(self, "_fused", None)

    # -- stack management ---------------------------------------------------------------
    def add(self, name: str, pair: MxPair, weight: float = 1.0) -> None:
        """Add (or replace) adapter ``name``; shapes must match this layer."""
        a_in, r = pair.a.shape
        r_b, b_out = pair.b.shape
        if a_in != self.in_dims or b_out != self.out_dims or r != r_b:
            raise AdapterMismatch(
                f"adapter {name!r} does not fit this model: A{tuple(pair.a.shape)} B{tuple(pair.b.shape)} "
                f"for a layer of in={self.in_dims}, out={self.out_dims}; was it trained for another base model?")
        self._pairs[name] = pair
        self._weights[name] = float(weight)
        object.__setattr__(self, "_fused", None)

    def remove(self, name: str) -> None:
        self._pairs.pop(name, None)
        self._weights.pop(name, None)
        object.__setattr__(self, "_fused", None)

    @property
    def names(self) -> list[str]:
        return list(self._pairs)

    @property
    def weights(self) -> dict[str, float]:
        return dict(self._weights)

    def set_weights(self, weights: Mapping[str, float]) -> None:
        """Set ``wᵢ`` by name; names not given keep their weight. Unfuses if anything changed."""
        changed = False
        for name, w in weights.items():
            if name in self._pairs and self._weights.get(name) != float(w):
                self._weights[name] = float(w)
                changed = True
        if changed:
            object.__setattr__(self, "_fused", None)

    # -- fused mode -----------------------------------------------------------------------
    @property
    def fused(self) -> bool:
        return self._fused is not None

    def delta(self) -> mx.array:
        """The weighted delta ``Σ wᵢ sᵢ (Aᵢ Bᵢ)ᵀ`` in the base weight's ``(out, in)`` layout."""
        total = mx.zeros((self.out_dims, self.in_dims), dtype=mx.float32)
        for name, pair in self._pairs.items():
            w = self._weights[name] * pair.scale
            if w != 0.0:
                total = total + w * (pair.a.astype(mx.float32) @ pair.b.astype(mx.float32)).T
        return total

    def fuse(self) -> None:
        """Fold the weighted deltas into a plain linear used until the stack changes."""
        weight = _dense_weight(self.base)
        fused = nn.Linear(self.in_dims, self.out_dims, bias="bias" in self.base)
        fused.weight = (weight.astype(mx.float32) + self.delta()).astype(weight.dtype)
        if "bias" in self.base:
            fused.bias = self.base.bias
        mx.eval(fused.weight)
        object.__setattr__(self, "_fused", fused)

    def unfuse(self) -> None:
        object.__setattr__(self, "_fused", None)

    def __call__(self, x: mx.array) -> mx.array:
        if self._fused is not None:
            return self._fused(x)
        y = self.base(x)
        for name, pair in self._pairs.items():
            w = self._weights[name]
            if w != 0.0:  # weight 0 is exactly the base model, and costs nothing
                z = (x @ pair.a.astype(x.dtype)) @ pair.b.astype(x.dtype)
                y = y + ((w * pair.scale) * z).astype(y.dtype)
        return y


# -- model-level helpers ------------------------------------------------------------------
def stacked_layers(model: nn.Module) -> dict[str, StackedLoRALinear]:
    """Every :class:`StackedLoRALinear` in ``model`` by module path."""
    return {k: m for k, m in model.named_modules() if isinstance(m, StackedLoRALinear)}


def mx_pairs(data: AdapterData, dtype: mx.Dtype = mx.float32) -> dict[str, MxPair]:
    """The MLX arrays of an adapter read by :func:`mochi_model.adapters.format.read_adapter`."""
    scale = float(data.config.scale)
    return {module: MxPair(mx.array(p.a).astype(dtype), mx.array(p.b).astype(dtype), scale)
            for module, p in data.modules.items()}


def attach_adapter(model: nn.Module, name: str, pairs: Mapping[str, MxPair], weight: float = 1.0) -> int:
    """Add adapter ``name`` to the layers named in ``pairs`` (module paths like
    ``model.layers.0.self_attn.q_proj``; see :func:`mx_pairs`), wrapping plain linears on first use.

    Returns:
        The number of layers the adapter touches.

    Raises:
        AdapterMismatch: a path is not a linear layer of this model, or shapes differ.
    """
    modules = dict(model.named_modules())
    missing = [p for p in pairs if p not in modules]
    if missing:
        raise AdapterMismatch(
            f"adapter {name!r} targets layers this model does not have ({', '.join(sorted(missing)[:3])}"
            f"{', ...' if len(missing) > 3 else ''}); was it trained for another base model?")
    wrapped: list[tuple[str, Any]] = []
    for path, pair in pairs.items():
        mod = modules[path]
        if not isinstance(mod, StackedLoRALinear):
            if not isinstance(mod, (nn.Linear, nn.QuantizedLinear)):
                raise AdapterMismatch(f"adapter {name!r}: {path} is a {type(mod).__name__}, not a linear layer")
            mod = StackedLoRALinear(mod)
            wrapped.append((path, mod))
        mod.add(name, pair, weight)
    if wrapped:
        model.update_modules(tree_unflatten(wrapped))
    return len(pairs)


def detach_adapter(model: nn.Module, name: str) -> None:
    """Remove adapter ``name``; layers left with no adapter become plain again."""
    plain: list[tuple[str, Any]] = []
    for path, layer in stacked_layers(model).items():
        layer.remove(name)
        if not layer.names:
            plain.append((path, layer.base))
    if plain:
        model.update_modules(tree_unflatten(plain))


def set_stack_weights(model: nn.Module, weights: Mapping[str, float]) -> None:
    """Per-request weights ``wᵢ`` by adapter name, applied to every layer."""
    for layer in stacked_layers(model).values():
        layer.set_weights(weights)


def fuse_model(model: nn.Module) -> None:
    """Fold the current weighted stack into every adapted layer (until weights change)."""
    for layer in stacked_layers(model).values():
        layer.fuse()


def unfuse_model(model: nn.Module) -> None:
    for layer in stacked_layers(model).values():
        layer.unfuse()


def is_fused(model: nn.Module) -> bool:
    layers = stacked_layers(model).values()
    return bool(layers) and all(layer.fused for layer in layers)
