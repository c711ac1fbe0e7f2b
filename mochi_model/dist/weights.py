"""Does an adapter's weights file fit the model its archive declares? Answered without loading either.

Checked by ``mochi install`` (and ``mochi pack``) before anything is installed:

* ``manifest.json`` and ``adapter_config.json`` name the same base model (the engine's rule);
* the ``adapters.safetensors`` header (a bounded JSON read; no tensor data is loaded) lists only
  ``model.layers.N.<key>.lora_a`` (in, r) / ``.lora_b`` (r, out) pairs, each with a float dtype and a
  byte range inside the file that matches its shape, whose rank and keys are the config's;
* their sizes fit the declared model: the hidden size and layer count that ``adapter_config.json``
  records in ``base_model.arch``, and for the presets' models the exact in/out sizes of every
  projection (:data:`KNOWN_SHAPES`, from each model's ``config.json``).
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mochi_model.dist.errors import WeightsMismatch

MAX_HEADER_BYTES = 16 * 1024**2  # a LoRA header lists a few hundred tensors: a few dozen KB
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}
_TENSOR = re.compile(r"^model\.layers\.(\d{1,5})\.([A-Za-z0-9_.]+)\.lora_(a|b)$")


@dataclass(frozen=True)
class ModelShape:
    """The linear sizes of a dense decoder (Qwen2 layout) that LoRA keys adapt."""

    hidden: int
    intermediate: int
    layers: int
    q_out: int  # heads * head_dim
    kv_out: int  # kv_heads * head_dim

    def linear(self, key: str) -> tuple[int, int] | None:
        """``(in, out)`` of ``self_attn.q_proj``-style keys; ``None`` for keys it does not know."""
        h, i, q, kv = self.hidden, self.intermediate, self.q_out, self.kv_out
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}.get(key.rsplit(".", 1)[-1])


# Preset name -> sizes, from each Qwen2.5-Coder model's config.json (base and instruct share them).
KNOWN_SHAPES = {
    "qwen2.5-coder-0.5b": ModelShape(hidden=896, intermediate=4864, layers=24, q_out=896, kv_out=128),
    "qwen2.5-coder-1.5b": ModelShape(hidden=1536, intermediate=8960, layers=28, q_out=1536, kv_out=256),
    "qwen2.5-coder-3b": ModelShape(hidden=2048, intermediate=11008, layers=36, q_out=2048, kv_out=256),
    "qwen2.5-coder-7b": ModelShape(hidden=3584, intermediate=18944, layers=28, q_out=3584, kv_out=512),
}
_HIDDEN_IN = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")
_HIDDEN_OUT = ("o_proj", "down_proj")


def known_shape(model_id: str) -> ModelShape | None:
    """The sizes of ``model_id`` (any of its preset's ids) when it is a preset's model."""
    from mochi_model.presets import PRESETS, preset_for_model_id

    preset = PRESETS.get(model_id.strip().lower()) or preset_for_model_id(model_id)
    return KNOWN_SHAPES.get(preset.name) if preset else None


def safetensors_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{tensor: (dtype, shape)}`` from a safetensors file's header, checked against the file's size.

    Raises:
        WeightsMismatch: not a safetensors file, an oversized header, or byte ranges that do not fit.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise WeightsMismatch(f"{path.name} is not a safetensors file (it has {size} bytes)")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise WeightsMismatch(f"{path.name} declares a {length}-byte header in a {size}-byte file; "
                                  "it is not a valid safetensors file")
        raw = fh.read(length)
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WeightsMismatch(f"{path.name} has an unreadable safetensors header ({exc})") from exc
    if not isinstance(header, dict):
        raise WeightsMismatch(f"{path.name} has an unreadable safetensors header (not a JSON object)")
    data_bytes = size - 8 - length
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = meta["dtype"], tuple(int(d) for d in meta["shape"]), meta["data_offsets"]
        except (TypeError, KeyError, ValueError) as exc:
            raise WeightsMismatch(f"{path.name}: tensor {name[:80]!r} has an invalid header entry") from exc
        if dtype not in _DTYPE_BYTES:
            raise WeightsMismatch(f"{path.name}: tensor {name[:80]!r} has dtype {str(dtype)[:16]!r}; "
                                  f"LoRA weights are {', '.join(_DTYPE_BYTES)}")
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end <= data_bytes
                and end - begin == math.prod(shape) * _DTYPE_BYTES[dtype]):
            raise WeightsMismatch(f"{path.name}: tensor {name[:80]!r} {list(shape)} does not fit its byte range "
                                  "in the file; the file is corrupt")
        out[name] = (dtype, shape)
    return out


def check_adapter_weights(folder: Path, config: Any, manifest_base: str) -> None:
    """Refuse weights that contradict ``config`` (an :class:`AdapterConfig`) or the declared model.

    Args:
        folder: holds ``adapter_config.json`` and ``adapters.safetensors``.
        config: the parsed ``adapter_config.json``.
        manifest_base: the base model id ``manifest.json`` declares (``""`` when it has none).

    Raises:
        WeightsMismatch: the two files name different models, or a tensor does not fit.
    """
    from mochi_model.adapters.format import WEIGHTS_FILE
    from mochi_model.dist.identity import same_base_model

    declared = config.base_model.id
    if declared and manifest_base and not same_base_model(declared, manifest_base):
        raise WeightsMismatch(f"manifest.json says base model {manifest_base!r} but adapter_config.json says "
                              f"{declared!r}; the archive is inconsistent, re-pack it with `mochi pack`")
    model = manifest_base or declared
    where = f"{WEIGHTS_FILE} (declared for {model!r})"
    shape = known_shape(model) if model else None
    arch = config.base_model.arch or {}
    hidden, layers = _arch_int(arch, "hidden_size"), _arch_int(arch, "num_hidden_layers")
    if shape is not None:
        for key, have, want in (("hidden_size", hidden, shape.hidden), ("num_hidden_layers", layers, shape.layers)):
            if have is not None and have != want:
                raise WeightsMismatch(f"adapter_config.json records {key} {have}, but {model!r} has {want}: "
                                      "the adapter was trained on another model")
        hidden, layers = shape.hidden, shape.layers
    pairs: dict[str, dict[str, tuple[int, ...]]] = {}
    for name, (_, dims) in safetensors_header(folder / WEIGHTS_FILE).items():
        m = _TENSOR.match(name)
        if not m:
            raise WeightsMismatch(f"{where}: unexpected tensor {name[:80]!r} (only "
                                  "model.layers.N.<module>.lora_a/lora_b belong in an adapter)")
        if len(dims) != 2:
            raise WeightsMismatch(f"{where}: {name} has shape {list(dims)}; LoRA matrices are 2-D")
        if layers is not None and int(m.group(1)) >= layers:
            raise WeightsMismatch(f"{where}: {name} is for layer {m.group(1)}, but the model has {layers} layers")
        pairs.setdefault(f"model.layers.{m.group(1)}.{m.group(2)}", {})[m.group(3)] = dims
    if not pairs:
        raise WeightsMismatch(f"{where} holds no lora_a/lora_b tensors")
    keys = set(config.keys)
    for module, ab in sorted(pairs.items()):
        if set(ab) != {"a", "b"}:
            raise WeightsMismatch(f"{where}: {module} has lora_{next(iter(ab))} without its other half")
        (n_in, rank_a), (rank_b, n_out) = ab["a"], ab["b"]
        key = module.split(".", 3)[3]
        if rank_a != rank_b or rank_a != config.rank:
            raise WeightsMismatch(f"{where}: {module} has rank {rank_a}/{rank_b} (lora_a/lora_b) but "
                                  f"adapter_config.json says rank {config.rank}")
        if keys and key not in keys:
            raise WeightsMismatch(f"{where}: {module} adapts {key!r}, which adapter_config.json's keys do not list")
        _check_sizes(where, module, key, n_in, n_out, shape, hidden)


def _check_sizes(where: str, module: str, key: str, n_in: int, n_out: int, shape: ModelShape | None,
                 hidden: int | None) -> None:
    want = shape.linear(key) if shape is not None else None
    if want is not None and want != (n_in, n_out):
        raise WeightsMismatch(f"{where}: {module} maps {n_in}->{n_out}, but that layer of the model maps "
                              f"{want[0]}->{want[1]}: the weights belong to another model")
    leaf = key.rsplit(".", 1)[-1]
    if hidden is not None and ((leaf in _HIDDEN_IN and n_in != hidden) or (leaf in _HIDDEN_OUT and n_out != hidden)):
        raise WeightsMismatch(f"{where}: {module} maps {n_in}->{n_out}, but the model's hidden size is {hidden}: "
                              "the weights belong to another model")


def _arch_int(arch: dict[str, Any], key: str) -> int | None:
    value = arch.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None
