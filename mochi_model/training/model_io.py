"""Loading the base model for training and folding a frozen base adapter into it.

Stacking is additive (``y = Wx + Σ w_i s_i B_i A_i x``), so training a project adapter *on top of*
a frozen base adapter at weight ``w`` is exactly training on ``W + w·s·B·A``: the base adapter is
merged into the weights once, then the new LoRA is trained alone and saved alone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mochi_model.adapters.format import BaseModelRef, check_compatible, read_adapter
from mochi_model.errors import ModelNotFound, TrainError

logger = logging.getLogger(__name__)


def resolve_dtype(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    except KeyError:
        raise TrainError(f"dtype must be auto, float32, bfloat16 or float16, got {name!r}") from None


def load_base_model(model_path: str | Path, dtype: str = "auto") -> tuple[Any, Any, BaseModelRef]:
    """Load a causal LM + tokenizer from an HF folder or a GGUF file (dequantized for training).

    Raises:
        ModelNotFound: the path does not exist.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(model_path)
    if not path.exists():
        raise ModelNotFound(f"{path} does not exist; pass --model with an HF folder or a .gguf file")
    td = resolve_dtype(dtype)
    if path.suffix == ".gguf":
        from transformers import GgufConfig

        kw: dict[str, Any] = {"gguf_file": path.name}
        tok = AutoTokenizer.from_pretrained(path.parent, **kw)
        model = AutoModelForCausalLM.from_pretrained(path.parent, dtype=td, quantization_config=GgufConfig(dequantize=True), **kw)
    else:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=td)
    model.config.use_cache = False
    if torch.cuda.is_available():
        model.to("cuda")
    ref = BaseModelRef.from_hf_config(str(getattr(model.config, "_name_or_path", "") or path.name), model.config)
    if not ref.id or ref.id in (".", str(path)):
        ref.id = path.name
    return model, tok, ref


def merge_base_adapter(model: Any, adapter_dir: Path, weight: float) -> None:
    """Add ``weight · scale · (x @ a) @ b`` of a saved adapter into the model's linear weights."""
    import torch

    data = read_adapter(adapter_dir)
    linears = {name: mod for name, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)}
    shapes = {n: (m.in_features, m.out_features) for n, m in linears.items()}
    check_compatible(data, BaseModelRef.from_hf_config("", model.config), shapes)
    with torch.no_grad():
        for module, pair in data.modules.items():
            lin = linears[module]
            delta = torch.from_numpy(pair.a @ pair.b).T * (weight * data.config.scale)
            lin.weight += delta.to(lin.weight.dtype)
    logger.info("merged base adapter %s at weight %.2f (%d modules)", adapter_dir, weight, len(data.modules))
