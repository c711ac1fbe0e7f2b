"""Saving the trained adapter (canonical format) and resumable checkpoints.

``OUTPUT/adapter_config.json`` + ``adapters.safetensors``: the best step, in the mlx-lm layout
both backends load. ``OUTPUT/checkpoint/``: LoRA weights, optimizer and scheduler state and the
loop's counters, so an interrupted run continues from its last saved step.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mochi_model.adapters.format import AdapterConfig, AdapterData, BaseModelRef, LoraPair, write_adapter
from mochi_model.training.config import TrainConfig

_PEFT_KEY = re.compile(r"^(?:base_model\.model\.)?(.+)\.lora_([AB])(?:\.[\w-]+)?\.weight$")


def lora_state(peft_model: Any) -> dict[str, Any]:
    """The trainable LoRA tensors by parameter name (what a checkpoint stores)."""
    return {n: p.detach().cpu().clone() for n, p in peft_model.named_parameters() if "lora_" in n}


def to_adapter_data(peft_model: Any, cfg: TrainConfig, base: BaseModelRef) -> AdapterData:
    """Convert PEFT's ``lora_A``/``lora_B`` to the mlx-lm orientation of the shared format."""
    found: dict[str, dict[str, Any]] = {}
    for name, t in lora_state(peft_model).items():
        m = _PEFT_KEY.match(name)
        if m:
            found.setdefault(m.group(1), {})[m.group(2)] = t.float().numpy()
    modules = {mod: LoraPair.from_torch_ab(ab["A"], ab["B"]) for mod, ab in found.items()}
    conf = AdapterConfig(rank=cfg.rank, scale=cfg.scale, dropout=cfg.dropout, keys=[], num_layers=-1,
                         base_model=base, role=cfg.role, name=cfg.name)
    return AdapterData(config=conf, modules=modules)


def save_adapter(peft_model: Any, output: Path, cfg: TrainConfig, base: BaseModelRef) -> Path:
    return write_adapter(Path(output), to_adapter_data(peft_model, cfg, base))


def save_checkpoint(path: Path, peft_model: Any, opt: Any, sched: Any, state: dict[str, Any]) -> None:
    import torch

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    torch.save({"lora": lora_state(peft_model), "opt": opt.state_dict(), "sched": sched.state_dict()},
               path / "state.pt.tmp")
    (path / "state.pt.tmp").replace(path / "state.pt")
    (path / "state.json").write_text(json.dumps(state), encoding="utf-8")


def load_checkpoint(path: Path, peft_model: Any, opt: Any, sched: Any) -> dict[str, Any]:
    import torch

    blob = torch.load(Path(path) / "state.pt", map_location="cpu", weights_only=True)
    params = dict(peft_model.named_parameters())
    with torch.no_grad():
        for name, t in blob["lora"].items():
            params[name].copy_(t)
    opt.load_state_dict(blob["opt"])
    sched.load_state_dict(blob["sched"])
    return json.loads((Path(path) / "state.json").read_text(encoding="utf-8"))
