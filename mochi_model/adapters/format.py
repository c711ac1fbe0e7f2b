"""The one on-disk LoRA adapter format, shared by the torch and MLX backends (pure numpy/safetensors).

Layout (mlx-lm's, so ``mlx_lm.generate --adapter-path`` reads it too)::

    ADAPTER/adapter_config.json   {"fine_tune_type": "lora", "num_layers": N,
                                   "lora_parameters": {"rank": r, "scale": s, "dropout": p,
                                                       "keys": ["self_attn.q_proj", ...]},
                                   "base_model": {"id": ..., "revision": ..., "arch": {...}},
                                   "role": "base" | "project", "name": ..., "mochi_format_version": 1}
    ADAPTER/adapters.safetensors  model.layers.N.self_attn.q_proj.lora_a  (in, r)
                                  model.layers.N.self_attn.q_proj.lora_b  (r, out)

The layer computes ``y = W x + s · (x @ lora_a) @ lora_b``. In torch/PEFT terms ``A = lora_a.T`` (r, in),
``B = lora_b.T`` (out, r) under ``base_model.model.<module>.lora_A.weight``, and ``s = lora_alpha / r``.
mlx-lm adapts the *last* ``num_layers`` layers; modules a file does not cover are written as zeros.

This module imports neither torch nor mlx: both backends (and training, merge, dist) share it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mochi_model.errors import AdapterError, AdapterMismatch

MOCHI_FORMAT_VERSION = 1
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapters.safetensors"
PEFT_WEIGHTS_FILE = "adapter_model.safetensors"
_LAYER_RE = re.compile(r"^model\.layers\.(\d+)\.(.+)$")
_ARCH_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")


@dataclass(kw_only=True)
class BaseModelRef:
    """Which base model an adapter belongs to: canonical id, pinned revision, architecture sizes."""

    id: str = ""
    revision: str | None = None
    arch: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> BaseModelRef:
        if isinstance(data, str):
            return cls(id=data)
        if not isinstance(data, dict):
            return cls()
        return cls(id=str(data.get("id", "")), revision=data.get("revision"), arch=dict(data.get("arch") or {}))

    @classmethod
    def from_hf_config(cls, model_id: str, config: Any, revision: str | None = None) -> BaseModelRef:
        """Build from a transformers/mlx config object or dict."""
        get = config.get if isinstance(config, dict) else (lambda k, d=None: getattr(config, k, d))
        arch = {k: get(k) for k in _ARCH_KEYS if get(k) is not None}
        return cls(id=model_id, revision=revision, arch=arch)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "revision": self.revision, "arch": self.arch}


@dataclass
class LoraPair:
    """One adapted linear layer in mlx-lm orientation: ``a`` (in, r), ``b`` (r, out)."""

    a: np.ndarray
    b: np.ndarray

    @property
    def rank(self) -> int:
        return int(self.a.shape[1])

    def torch_ab(self) -> tuple[np.ndarray, np.ndarray]:
        """PEFT/torch orientation: ``A`` (r, in), ``B`` (out, r)."""
        return np.ascontiguousarray(self.a.T), np.ascontiguousarray(self.b.T)

    @classmethod
    def from_torch_ab(cls, a: np.ndarray, b: np.ndarray) -> LoraPair:
        return cls(np.ascontiguousarray(np.asarray(a).T), np.ascontiguousarray(np.asarray(b).T))


@dataclass(kw_only=True)
class AdapterConfig:
    rank: int
    scale: float
    keys: list[str]
    num_layers: int
    dropout: float = 0.0
    base_model: BaseModelRef = field(default_factory=BaseModelRef)
    role: str = "project"
    name: str = ""
    version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys, kept on rewrite

    def to_json(self) -> dict[str, Any]:
        out = dict(self.extra)
        out.update({
            "fine_tune_type": "lora",
            "num_layers": self.num_layers,
            "lora_parameters": {"rank": self.rank, "scale": self.scale, "dropout": self.dropout,
                                "keys": list(self.keys)},
            "base_model": self.base_model.to_json(),
            "role": self.role,
            "name": self.name,
            "version": self.version,
            "mochi_format_version": MOCHI_FORMAT_VERSION,
        })
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "adapter_config.json") -> AdapterConfig:
        if data.get("fine_tune_type", "lora") != "lora":
            raise AdapterError(f"{where}: fine_tune_type {data.get('fine_tune_type')!r} is not supported (only lora)")
        lp = data.get("lora_parameters")
        if not isinstance(lp, dict) or "rank" not in lp or "scale" not in lp:
            raise AdapterError(f"{where}: needs lora_parameters with rank and scale (mlx-lm layout)")
        known = {"fine_tune_type", "num_layers", "lora_parameters", "base_model", "role", "name", "version",
                 "mochi_format_version"}
        version = int(data.get("mochi_format_version", MOCHI_FORMAT_VERSION))
        if version > MOCHI_FORMAT_VERSION:
            raise AdapterError(f"{where}: written by a newer Mochi (format {version}); upgrade mochi-code")
        return cls(rank=int(lp["rank"]), scale=float(lp["scale"]), dropout=float(lp.get("dropout", 0.0)),
                   keys=list(lp.get("keys") or []), num_layers=int(data.get("num_layers", -1)),
                   base_model=BaseModelRef.from_json(data.get("base_model") or data.get("model")),
                   role=str(data.get("role", "project")), name=str(data.get("name", "")),
                   version=str(data.get("version", "")),
                   extra={k: v for k, v in data.items() if k not in known})


@dataclass(kw_only=True)
class AdapterData:
    """An adapter in memory: config + one :class:`LoraPair` per module path (``model.layers.3.mlp.up_proj``)."""

    config: AdapterConfig
    modules: dict[str, LoraPair]
    path: Path | None = None
    # (file name, size, mtime_ns) of the files as they were when read; () for an adapter built in memory
    # or rewritten since. Caches keyed by the files (GGUF LoRA conversion) use it, not a later stat.
    stamp: tuple[tuple[str, int, int], ...] = ()

    def module_shapes(self) -> dict[str, tuple[int, int]]:
        """``{module: (in_features, out_features)}``."""
        return {m: (int(p.a.shape[0]), int(p.b.shape[1])) for m, p in self.modules.items()}


def split_module(module: str) -> tuple[int, str]:
    """``model.layers.3.self_attn.q_proj`` → ``(3, "self_attn.q_proj")``."""
    m = _LAYER_RE.match(module)
    if not m:
        raise AdapterError(f"adapter module {module!r} is not inside model.layers.N (only layer linears are supported)")
    return int(m.group(1)), m.group(2)


def normalize_model_id(model_id: str) -> str:
    """Canonical family name: org, quantization and format suffixes dropped, lower case.

    ``Qwen/Qwen2.5-Coder-0.5B-Instruct``, ``mlx-community/Qwen2.5-Coder-0.5B-Instruct-4bit`` and
    ``qwen2.5-coder-0.5b-instruct-q4_k_m.gguf`` all give ``qwen2.5-coder-0.5b-instruct``.
    """
    name = model_id.strip().rstrip("/").split("/")[-1].lower()
    name = re.sub(r"\.(gguf|safetensors)$", "", name)
    suffix = r"[-_.](gguf|mlx|awq|gptq|\d+-?bits?|bf16|fp16|f16|f32|q\d(_k)?(_[msl0-9])?|mxfp4(-q\d)?)$"
    while True:
        new = re.sub(suffix, "", name)
        if new == name:
            return name
        name = new


def check_compatible(data: AdapterData, base: BaseModelRef,
                     module_shapes: dict[str, tuple[int, int]] | None = None) -> None:
    """Refuse an adapter trained for another base model.

    Args:
        data: the adapter.
        base: the loaded base model.
        module_shapes: ``{module: (in, out)}`` of the loaded model's linears, to check shapes too.

    Raises:
        AdapterMismatch: ids or architecture differ, or a module is missing/has other shapes.
    """
    where = str(data.path or data.config.name or "adapter")
    want = data.config.base_model
    if want.id and base.id and normalize_model_id(want.id) != normalize_model_id(base.id):
        raise AdapterMismatch(
            f"{where} was trained for base model {want.id!r}, but {base.id!r} is loaded; "
            f"use a model matching the adapter (--model) or retrain the adapter on this model")
    for key in _ARCH_KEYS:
        if key in want.arch and key in base.arch and want.arch[key] != base.arch[key]:
            raise AdapterMismatch(f"{where}: base model {key} is {want.arch[key]} in the adapter but "
                                  f"{base.arch[key]} in the loaded model {base.id!r}; it belongs to another model")
    if module_shapes is not None:
        for module, (n_in, n_out) in data.module_shapes().items():
            have = module_shapes.get(module)
            if have is None:
                raise AdapterMismatch(f"{where}: the loaded model has no linear layer {module!r}")
            if have != (n_in, n_out):
                raise AdapterMismatch(f"{where}: {module} is {n_in}->{n_out} in the adapter but "
                                      f"{have[0]}->{have[1]} in the loaded model {base.id!r}")


def is_adapter_dir(path: Path) -> bool:
    path = Path(path)
    return (path / CONFIG_FILE).is_file() and ((path / WEIGHTS_FILE).is_file() or (path / PEFT_WEIGHTS_FILE).is_file())


def read_adapter(path: Path) -> AdapterData:
    """Read a Mochi/mlx-lm adapter folder (or import a PEFT folder)."""
    from safetensors.numpy import load_file

    path = Path(path)
    cfg_file = path / CONFIG_FILE
    if not cfg_file.is_file():
        raise AdapterError(f"{path}: no {CONFIG_FILE}; is this an adapter folder?")
    stamp = file_stamp(path)  # before reading: a file replaced meanwhile gets a new stamp next time
    if not (path / WEIGHTS_FILE).is_file() and (path / PEFT_WEIGHTS_FILE).is_file():
        data = import_peft(path)
        data.stamp = stamp
        return data
    try:
        raw = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AdapterError(f"{cfg_file}: cannot read ({exc})") from exc
    config = AdapterConfig.from_json(raw, str(cfg_file))
    try:
        tensors = load_file(str(path / WEIGHTS_FILE))
    except FileNotFoundError as exc:
        raise AdapterError(f"{path}: missing {WEIGHTS_FILE}") from exc
    except (OSError, ValueError) as exc:
        raise AdapterError(f"{path}: cannot read adapter weights ({exc})") from exc
    modules: dict[str, LoraPair] = {}
    for key in sorted(k for k in tensors if k.endswith(".lora_a")):
        module = key[: -len(".lora_a")]
        b = tensors.get(module + ".lora_b")
        if b is None:
            raise AdapterError(f"{path}: {module}.lora_a has no matching lora_b")
        pair = LoraPair(tensors[key].astype(np.float32), b.astype(np.float32))
        if pair.a.shape[1] != pair.b.shape[0]:
            raise AdapterError(f"{path}: {module} has lora_a {pair.a.shape} and lora_b {pair.b.shape} (ranks differ)")
        modules[module] = pair
    if not modules:
        raise AdapterError(f"{path}: {WEIGHTS_FILE} holds no lora_a/lora_b tensors")
    return AdapterData(config=config, modules=modules, path=path, stamp=stamp)


def file_stamp(path: Path) -> tuple[tuple[str, int, int], ...]:
    """``(name, size, mtime_ns)`` of the adapter files present in folder ``path``."""
    out = []
    for name in (CONFIG_FILE, WEIGHTS_FILE, PEFT_WEIGHTS_FILE):
        try:
            st = (Path(path) / name).stat()
        except OSError:
            continue
        out.append((name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def write_adapter(path: Path, data: AdapterData) -> Path:
    """Write ``data`` in the mlx-lm layout; pads uncovered (layer, key) modules with zeros.

    ``config.rank``, ``keys`` and ``num_layers`` are recomputed from the modules so the file is
    always loadable by mlx-lm (one rank for every module: smaller ranks are zero-padded).
    """
    from safetensors.numpy import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    layers: dict[int, dict[str, LoraPair]] = {}
    for module, pair in data.modules.items():
        idx, key = split_module(module)
        layers.setdefault(idx, {})[key] = pair
    keys = sorted({k for per in layers.values() for k in per})
    rank = max(p.rank for p in data.modules.values())
    dims = {key: (p.a.shape[0], p.b.shape[1]) for per in layers.values() for key, p in per.items()}
    total = int(data.config.base_model.arch.get("num_hidden_layers") or (max(layers) + 1))
    first = min(layers)
    tensors: dict[str, np.ndarray] = {}
    for idx in range(first, total):
        for key in keys:
            n_in, n_out = dims[key]
            pair = layers.get(idx, {}).get(key) or LoraPair(np.zeros((n_in, 0), np.float32), np.zeros((0, n_out), np.float32))
            a = np.zeros((n_in, rank), np.float32)
            b = np.zeros((rank, n_out), np.float32)
            a[:, : pair.rank] = pair.a
            b[: pair.rank, :] = pair.b
            tensors[f"model.layers.{idx}.{key}.lora_a"] = a
            tensors[f"model.layers.{idx}.{key}.lora_b"] = b
    cfg = data.config
    cfg.rank, cfg.keys, cfg.num_layers = rank, keys, total - first
    save_file(tensors, str(path / WEIGHTS_FILE), metadata={"format": "mlx", "mochi_format_version": str(MOCHI_FORMAT_VERSION)})
    (path / CONFIG_FILE).write_text(json.dumps(cfg.to_json(), indent=2) + "\n", encoding="utf-8")
    data.path, data.stamp = path, ()
    return path


def import_peft(path: Path, base: BaseModelRef | None = None) -> AdapterData:
    """Read a PEFT LoRA folder (``adapter_config.json`` + ``adapter_model.safetensors``)."""
    from safetensors.numpy import load_file

    path = Path(path)
    try:
        raw = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        tensors = load_file(str(path / PEFT_WEIGHTS_FILE))
    except (OSError, ValueError) as exc:
        raise AdapterError(f"{path}: cannot read PEFT adapter ({exc})") from exc
    if str(raw.get("peft_type", "LORA")).upper() != "LORA":
        raise AdapterError(f"{path}: PEFT type {raw.get('peft_type')!r} is not LoRA")
    r = int(raw.get("r", 8))
    alpha = float(raw.get("lora_alpha", r))
    scale = alpha / math.sqrt(r) if raw.get("use_rslora") else alpha / r
    modules: dict[str, LoraPair] = {}
    pat = re.compile(r"^(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.[\w-]+)?\.weight$")
    found: dict[str, dict[str, np.ndarray]] = {}
    for key, t in tensors.items():
        m = pat.match(key)
        if m:
            found.setdefault(m.group(1), {})[m.group(2)] = t.astype(np.float32)
    for module, ab in sorted(found.items()):
        if "A" not in ab or "B" not in ab:
            raise AdapterError(f"{path}: {module} lacks lora_A or lora_B")
        split_module(module)
        modules[module] = LoraPair.from_torch_ab(ab["A"], ab["B"])
    if not modules:
        raise AdapterError(f"{path}: {PEFT_WEIGHTS_FILE} holds no lora_A/lora_B tensors")
    ref = base or BaseModelRef(id=str(raw.get("base_model_name_or_path") or ""), revision=raw.get("revision"))
    keys = sorted({split_module(m)[1] for m in modules})
    config = AdapterConfig(rank=r, scale=scale, dropout=float(raw.get("lora_dropout", 0.0)), keys=keys,
                           num_layers=-1, base_model=ref, role="project", name=path.name)
    return AdapterData(config=config, modules=modules, path=path)


def export_peft(data: AdapterData, path: Path) -> Path:
    """Write ``data`` as a PEFT LoRA folder (what vLLM's ``--lora-modules`` loads). Scale kept via alpha."""
    from safetensors.numpy import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    ranks = {p.rank for p in data.modules.values()}
    if len(ranks) != 1:
        raise AdapterError("PEFT needs one rank for every module; write_adapter/read_adapter first to pad")
    (r,) = ranks
    tensors: dict[str, np.ndarray] = {}
    for module, pair in data.modules.items():
        a, b = pair.torch_ab()
        tensors[f"base_model.model.{module}.lora_A.weight"] = a
        tensors[f"base_model.model.{module}.lora_B.weight"] = b
    save_file(tensors, str(path / PEFT_WEIGHTS_FILE), metadata={"format": "pt"})
    cfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": data.config.scale * r,
           "lora_dropout": data.config.dropout, "bias": "none", "use_rslora": False,
           "target_modules": sorted({split_module(m)[1].split(".")[-1] for m in data.modules}),
           "base_model_name_or_path": data.config.base_model.id, "revision": data.config.base_model.revision}
    (path / CONFIG_FILE).write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    return path
