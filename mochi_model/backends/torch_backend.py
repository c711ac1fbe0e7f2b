"""The PyTorch backend: a transformers causal LM driven one forward step at a time.

CUDA when present, else CPU; bf16 where the hardware supports it (``dtype="auto"``). The KV cache is
a transformers ``DynamicCache`` (``crop`` trims it for prefix reuse). Prefill asks only for the
last position's logits (``logits_to_keep=1``): the vocabulary projection of every prompt token
would otherwise cost as much as the rest of the prefill on small models.

Adapters are installed by wrapping the targeted linears in
:class:`~mochi_model.adapters.torch_lora.LoraLinear`; changing stack weights only updates floats.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mochi_model.adapters.format import BaseModelRef
from mochi_model.adapters.stack import AdapterStack
from mochi_model.adapters.torch_lora import find_linears, hf_module_path, lora_layers, unwrap_all, wrap_module
from mochi_model.backends.base import Backend
from mochi_model.errors import ModelNotFound
from mochi_model.sources import ResolvedModel, convert_gguf

logger = logging.getLogger(__name__)


def pick_device(device: str = "auto") -> torch.device:
    if device and device != "auto":
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto``: bf16 on CUDA (fp16 without bf16 support); on CPU bf16 when it has native bf16/AVX-512."""
    if dtype and dtype != "auto":
        return getattr(torch, dtype)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    cap = torch.backends.cpu.get_cpu_capability().lower()
    return torch.bfloat16 if ("avx512" in cap or "amx" in cap or "sve" in cap) else torch.float32


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, model: Any, tokenizer: Any, *, model_id: str, source: ResolvedModel | None = None,
                 revision: str | None = None) -> None:
        super().__init__(tokenizer=tokenizer, model_id=model_id, source=source)
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.base_ref = BaseModelRef.from_hf_config(model_id, model.config, revision)
        # transformers renamed `past_key_values` to `cache` (5.x); use whichever forward() takes.
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    @property
    def eos_ids(self) -> set[int]:
        ids = super().eos_ids
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        ids.update([eos] if isinstance(eos, int) else (eos or []))
        return ids

    # --- forward steps ----------------------------------------------------------------------
    def new_cache(self) -> Any:
        from transformers import DynamicCache

        return DynamicCache(config=self.model.config)

    def cache_len(self, cache: Any) -> int:
        return int(cache.get_seq_length())

    def trim_cache(self, cache: Any, n: int) -> None:
        remove = self.cache_len(cache) - n
        if remove > 0:
            # A negative argument means "remove this many" in every transformers version.
            cache.crop(-remove)

    def _forward(self, ids: Sequence[int], cache: Any, keep: int) -> torch.Tensor:
        x = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
        with torch.inference_mode():
            out = self.model(input_ids=x, use_cache=True, logits_to_keep=keep, **{self._cache_kw: cache})
        return out.logits[0]

    def prefill(self, ids: Sequence[int], cache: Any) -> np.ndarray:
        return self._forward(ids, cache, 1)[-1].float().cpu().numpy()

    def step(self, token: int, cache: Any) -> np.ndarray:
        return self._forward([token], cache, 1)[-1].float().cpu().numpy()

    def forward_many(self, ids: Sequence[int], cache: Any) -> np.ndarray:
        return self._forward(ids, cache, 0).float().cpu().numpy()

    def logits_for(self, ids: Sequence[int]) -> np.ndarray:
        return self._forward(ids, self.new_cache(), 0).float().cpu().numpy()

    # --- adapters ---------------------------------------------------------------------------
    def module_shapes(self) -> dict[str, tuple[int, int]]:
        out = {}
        for path, mod in find_linears(self.model).items():
            tail = path.split(".layers.", 1)[1]
            out[f"model.layers.{tail}"] = (int(mod.in_features), int(mod.out_features))
        return out

    def prepare_adapter_stack(self, stack: AdapterStack) -> None:
        stack.check(self.base_ref, self.module_shapes())

    def set_adapter_stack(self, stack: AdapterStack | None) -> None:
        """Install ``stack`` (checked against this base model) or remove adapters (None)."""
        if stack is not None:
            stack.check(self.base_ref, self.module_shapes())
        unwrap_all(self.model)
        self.fused = False
        self.adapter_stack = stack
        if stack is None:
            return
        for adapter, weight in stack:
            for module, pair in adapter.data.modules.items():
                layer = wrap_module(self.model, hf_module_path(self.model, module))
                a, b = pair.torch_ab()
                layer.add_adapter(adapter.name, torch.from_numpy(a), torch.from_numpy(b), scale=adapter.scale,
                                  weight=weight)
        if stack.fused:
            self.fuse()

    def update_adapter_weights(self) -> None:
        stack = self.adapter_stack
        if stack is None:
            return
        self.unfuse()
        weights = stack.weights
        for layer in lora_layers(self.model).values():
            for name in list(layer.weights):
                layer.set_weight(name, weights.get(name, 0.0))
        if stack.fused:
            self.fuse()

    def fuse(self) -> None:
        for layer in lora_layers(self.model).values():
            layer.fuse()
        self.fused = True

    def unfuse(self) -> None:
        for layer in lora_layers(self.model).values():
            layer.unfuse()
        self.fused = False

    def close(self) -> None:
        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def load_backend(source: ResolvedModel, *, device: str = "auto", dtype: str = "auto",
                 options: dict[str, Any] | None = None) -> TorchBackend:
    """Load ``source`` with transformers (GGUF converted once; safetensors only, no remote code)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if source.is_gguf:
        source = convert_gguf(source)
    dev = pick_device(device)
    dt = pick_dtype(dtype, dev)
    try:
        tok = AutoTokenizer.from_pretrained(str(source.path), trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(str(source.path), dtype=dt, trust_remote_code=False,
                                                     use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"cannot load the model at {source.path}: {exc}") from exc
    model.to(dev)
    logger.info("torch backend: %s on %s (%s)", source.describe(), dev, dt)
    return TorchBackend(model, tok, model_id=source.model_id, source=source, revision=source.revision)
