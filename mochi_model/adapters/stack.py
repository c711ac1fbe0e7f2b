"""Adapters in memory and the weighted stack the engine serves: y = W·x + Σᵢ wᵢ·sᵢ·Bᵢ·Aᵢ·x.

The original API keeps working::

    base = BaseAdapter.load("~/.mochi/adapters/team-python/1")
    proj = ProjectAdapter.load("~/.mochi/adapters/myproj/3", base_adapter=base)
    stack = AdapterStack([(base, 0.3), (proj, 0.7)])     # or AdapterStack([base, proj]) (weights 1.0)
    engine = InferenceEngine(adapter_stack=stack)
    stack.set_weights({"team-python": 0.5})               # next request uses it, no reload

A :class:`ProjectAdapter` loaded with ``base_adapter=`` brings that adapter into any stack it joins
(weight 1.0 unless given). Every adapter is checked against the loaded base model
(:func:`~mochi_model.adapters.format.check_compatible`) when a backend installs the stack.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from mochi_model.adapters.format import (
    AdapterData,
    BaseModelRef,
    check_compatible,
    normalize_model_id,
    read_adapter,
)
from mochi_model.errors import AdapterError, AdapterMismatch


class Adapter:
    """One LoRA adapter read from disk (shared format), with a name and a role."""

    role = "project"

    def __init__(self, data: AdapterData, *, name: str | None = None) -> None:
        self.data = data
        self.name = name or data.config.name or (data.path.name if data.path else "adapter")
        if self.name.isdigit() and data.path is not None:  # ~/.mochi/adapters/NAME/VERSION
            self.name = f"{data.path.parent.name}@{self.name}"

    @classmethod
    def load(cls, path: str | Path, *, name: str | None = None) -> Adapter:
        return cls(read_adapter(Path(path).expanduser()), name=name)

    @property
    def path(self) -> Path | None:
        return self.data.path

    @property
    def base_model(self) -> BaseModelRef:
        return self.data.config.base_model

    @property
    def scale(self) -> float:
        return self.data.config.scale

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, rank={self.data.config.rank}, base={self.base_model.id!r})"


class BaseAdapter(Adapter):
    """A shared adapter (team, language) that project adapters build on."""

    role = "base"

    @classmethod
    def load(cls, path: str | Path, *, name: str | None = None) -> BaseAdapter:
        return cls(read_adapter(Path(path).expanduser()), name=name)


class ProjectAdapter(Adapter):
    """A project adapter, optionally trained on top of a base adapter."""

    role = "project"

    def __init__(self, data: AdapterData, *, name: str | None = None, base_adapter: BaseAdapter | None = None) -> None:
        super().__init__(data, name=name)
        self.base_adapter = base_adapter
        if base_adapter is not None:
            a, b = base_adapter.base_model.id, self.base_model.id
            if a and b and normalize_model_id(a) != normalize_model_id(b):
                raise AdapterMismatch(f"project adapter {self.name!r} is for {b!r} but its base adapter "
                                      f"{base_adapter.name!r} is for {a!r}")

    @classmethod
    def load(cls, path: str | Path, *, name: str | None = None,
             base_adapter: BaseAdapter | None = None) -> ProjectAdapter:
        return cls(read_adapter(Path(path).expanduser()), name=name, base_adapter=base_adapter)


def _role_class(role: str) -> type[Adapter]:
    return BaseAdapter if role == "base" else ProjectAdapter


def load_adapter(path: str | Path, *, name: str | None = None) -> Adapter:
    """Load an adapter folder as the class its ``role`` says."""
    data = read_adapter(Path(path).expanduser())
    return _role_class(data.config.role)(data, name=name)


class AdapterStack:
    """An ordered set of adapters with live weights (``fused`` asks the backend to fold them in)."""

    def __init__(self, adapters: Sequence[Adapter | tuple[Adapter, float]] = (), *, fused: bool = False) -> None:
        self.adapters: list[Adapter] = []
        self._weights: dict[str, float] = {}
        self.fused = fused
        self._version = 0
        items = [item if isinstance(item, tuple) else (item, 1.0) for item in adapters]
        listed = [a for a, _ in items]
        for adapter, weight in items:
            extra = getattr(adapter, "base_adapter", None)
            if extra is not None and not any(extra is a for a in listed):
                self._add(extra, 1.0)
            self._add(adapter, float(weight))

    def _add(self, adapter: Adapter, weight: float) -> None:
        if adapter in self.adapters:
            return
        if adapter.name in self._weights:
            raise AdapterError(f"two adapters named {adapter.name!r} in one stack; pass name= when loading")
        self.adapters.append(adapter)
        self._weights[adapter.name] = weight

    def __iter__(self) -> Iterator[tuple[Adapter, float]]:
        return iter([(a, self._weights[a.name]) for a in self.adapters])

    def __len__(self) -> int:
        return len(self.adapters)

    @property
    def weights(self) -> dict[str, float]:
        return dict(self._weights)

    def set_weights(self, weights: Mapping[str, float] | Sequence[float]) -> None:
        """Change weights by name (or positionally); takes effect on the next request."""
        if isinstance(weights, Mapping):
            unknown = set(weights) - set(self._weights)
            if unknown:
                raise AdapterError(f"no adapter named {sorted(unknown)} in the stack (have {sorted(self._weights)})")
            self._weights.update({k: float(v) for k, v in weights.items()})
        else:
            if len(weights) != len(self.adapters):
                raise AdapterError(f"expected {len(self.adapters)} weights, got {len(weights)}")
            self._weights = {a.name: float(w) for a, w in zip(self.adapters, weights, strict=True)}
        self._version += 1

    def state_key(self) -> tuple[object, ...]:
        return (tuple(sorted(self._weights.items())), self.fused)

    @property
    def base_model(self) -> BaseModelRef | None:
        return self.adapters[0].base_model if self.adapters else None

    def check(self, base: BaseModelRef, module_shapes: dict[str, tuple[int, int]] | None = None) -> None:
        """Raise :class:`AdapterMismatch` unless every adapter fits ``base``."""
        for a in self.adapters:
            check_compatible(a.data, base, module_shapes)

    def merged(self, *, name: str = "merged") -> AdapterData:
        """The stack as one exact LoRA of rank Σrᵢ (see :mod:`mochi_model.adapters.merge`)."""
        from mochi_model.adapters.merge import merge_stack

        return merge_stack(self, name=name)
