"""Mochi adapters as GGUF LoRA files, the format llama.cpp loads (``llama_adapter_lora_init``).

Written with the ``gguf`` package the way llama.cpp's own ``convert_lora_to_gguf.py`` writes a PEFT
adapter: ``general.type = adapter``, ``adapter.type = lora``, ``adapter.lora.alpha``, and per adapted
linear two tensors named after the base tensor, ``blk.N.attn_q.weight.lora_a`` (PEFT ``A``, numpy
shape ``(r, in)``) and ``blk.N.attn_q.weight.lora_b`` (PEFT ``B``, ``(out, r)``).

llama.cpp computes ``y = W x + scale · (alpha / r) · B A x`` with ``r`` the rank of ``B`` and ``scale``
given per context (``llama_set_adapters_lora``). Mochi's layer is ``y = W x + s · B A x``, so we write
``alpha = s · r``; the per-request stack weight ``w`` is then llama.cpp's ``scale`` and the stack is
``y = Q(W) x + Σ wᵢ sᵢ Bᵢ Aᵢ x`` exactly as on torch and MLX.

The file is cached under ``models_cache()/gguf-lora/lora-<arch>-<key>.gguf``; ``key`` hashes the
adapter folder's path, its files' size and mtime as they were when the adapter was read
(``AdapterData.stamp``: a file rewritten in place gets a new key, never the old conversion) and this
writer's version (the numbers themselves for an adapter built in memory). Not beside the adapter: an installed adapter folder must hold
exactly the files its ``mochi pack`` manifest lists. Modules whose ``A`` or ``B`` is all zeros (the
padding ``write_adapter`` adds) are left out: llama.cpp skips missing modules.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from mochi_model.adapters.format import (
    AdapterData,
    file_stamp,
    split_module,
)
from mochi_model.errors import AdapterError, BackendUnavailable

logger = logging.getLogger(__name__)
WRITER_VERSION = 1
# HF module key (inside model.layers.N) -> llama.cpp tensor base name, for archs gguf cannot map.
_FALLBACK_NAMES = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def _gguf():
    try:
        import gguf
    except ImportError as exc:
        raise BackendUnavailable("writing GGUF LoRA adapters needs the `gguf` package "
                                 "(pip install 'mochi-code[llama]')") from exc
    return gguf


def tensor_base_name(module: str, arch: str, n_layers: int) -> str:
    """``model.layers.3.self_attn.q_proj`` → ``blk.3.attn_q.weight`` (llama.cpp's name for the weight)."""
    layer, key = split_module(module)
    gguf = _gguf()
    name = None
    arch_enum = next((a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == arch), None)
    if arch_enum is not None:
        name = gguf.get_tensor_name_map(arch_enum, max(n_layers, layer + 1)).get_name(module)
    if name is None:
        short = _FALLBACK_NAMES.get(key)
        if short is None:
            raise AdapterError(f"adapter module {module!r} has no llama.cpp tensor name for architecture {arch!r}")
        name = f"blk.{layer}.{short}"
    return name + ".weight"


def _nonzero(pair_a: np.ndarray, pair_b: np.ndarray) -> bool:
    return bool(np.any(pair_a) and np.any(pair_b))


def write_gguf_lora(data: AdapterData, dest: Path, *, arch: str, n_layers: int) -> Path:
    """Write ``data`` as a GGUF LoRA file for a base model of architecture ``arch`` (``qwen2``)."""
    gguf = _gguf()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    rank = max(p.rank for p in data.modules.values())
    scale = float(data.config.scale)
    if rank <= 0 or scale == 0.0:
        raise AdapterError(f"{data.path or data.config.name}: rank {rank} / scale {scale} cannot be written as a GGUF LoRA")
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    writer = gguf.GGUFWriter(str(tmp), arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    # llama.cpp scales by alpha / rank(B): one rank per file (smaller ranks zero-padded).
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, scale * rank)
    writer.add_string("mochi.adapter.name", data.config.name or "")
    written = 0
    for module in sorted(data.modules):
        pair = data.modules[module]
        if not _nonzero(pair.a, pair.b):
            continue
        a, b = pair.torch_ab()  # (r, in), (out, r)
        if pair.rank < rank:
            a = np.concatenate([a, np.zeros((rank - pair.rank, a.shape[1]), np.float32)], axis=0)
            b = np.concatenate([b, np.zeros((b.shape[0], rank - pair.rank), np.float32)], axis=1)
        base = tensor_base_name(module, arch, n_layers)
        writer.add_tensor(base + ".lora_a", np.ascontiguousarray(a, dtype=np.float32))
        writer.add_tensor(base + ".lora_b", np.ascontiguousarray(b, dtype=np.float32))
        written += 1
    if written == 0:
        # llama.cpp refuses an adapter without tensors; one zero module keeps the stack's shape.
        module = sorted(data.modules)[0]
        pair = data.modules[module]
        a, b = pair.torch_ab()
        base = tensor_base_name(module, arch, n_layers)
        writer.add_tensor(base + ".lora_a", np.zeros((rank, a.shape[1]), np.float32))
        writer.add_tensor(base + ".lora_b", np.zeros((b.shape[0], rank), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(dest)
    return dest


def _key(data: AdapterData, arch: str) -> str:
    h = hashlib.sha256(f"v{WRITER_VERSION}|{arch}|{data.config.scale}|{data.config.name}".encode())
    folder = data.path
    h.update(str(Path(folder).resolve() if folder is not None else "").encode())
    # The files as they were when ``data`` was read (a later stat could describe a newer file than
    # the numbers in memory: an adapter rewritten in place while a server runs).
    stamp = data.stamp or (file_stamp(folder) if folder is not None else ())
    if stamp:
        for name, size, mtime_ns in stamp:
            h.update(f"{name}:{size}:{mtime_ns}".encode())
    else:  # in-memory adapter: hash the numbers themselves
        for module in sorted(data.modules):
            pair = data.modules[module]
            h.update(module.encode())
            h.update(np.ascontiguousarray(pair.a, np.float32).tobytes())
            h.update(np.ascontiguousarray(pair.b, np.float32).tobytes())
    return h.hexdigest()[:16]


def gguf_lora_for(data: AdapterData, *, arch: str, n_layers: int) -> Path:
    """The cached GGUF LoRA file for ``data`` (written once under ``models_cache()/gguf-lora/``)."""
    from filelock import FileLock

    from mochi_core.paths import models_cache

    path = models_cache() / "gguf-lora" / f"lora-{arch}-{_key(data, arch)}.gguf"
    if path.is_file():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if not path.is_file():
                logger.info("writing %s as a GGUF LoRA for llama.cpp: %s", data.path or data.config.name, path)
                write_gguf_lora(data, path, arch=arch, n_layers=n_layers)
    except OSError as exc:
        raise AdapterError(f"cannot write a GGUF LoRA for {data.path or data.config.name} to {path}: {exc}") from exc
    return path
