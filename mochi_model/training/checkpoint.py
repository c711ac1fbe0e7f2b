"""Saving the trained adapter (canonical format) and resumable checkpoints.

``OUTPUT/adapter_config.json`` + ``adapters.safetensors``: the best step, in the mlx-lm layout
both backends load. ``OUTPUT/checkpoint/``: LoRA weights, optimizer and scheduler state and the
loop's counters, so an interrupted run continues from its last saved step.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from mochi_model.adapters.format import (
    AdapterConfig,
    AdapterData,
    BaseModelRef,
    LoraPair,
    check_compatible,
    read_adapter,
    write_adapter,
)
from mochi_model.errors import TrainError
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
    """Write the adapter into ``output`` file by file atomically (see :func:`replace_adapter_files`)."""
    import shutil

    output = Path(output)
    stage = output / ".saving"
    shutil.rmtree(stage, ignore_errors=True)
    write_adapter(stage, to_adapter_data(peft_model, cfg, base))
    replace_adapter_files(stage, output)
    stage.rmdir()
    return output


def replace_adapter_files(src: Path, dest: Path, names: tuple[str, ...] = ()) -> None:
    """Move ``src``'s adapter files (then ``names``) over ``dest``'s, each with one rename.

    A server that reloads ``dest`` meanwhile reads the old file or the new one, never half of one
    (``src`` must be on the same filesystem: a folder inside ``dest`` is). The weights go before the
    config; an update keeps rank and modules, so either pairing a reader may catch is consistent.
    """
    from mochi_model.adapters.format import CONFIG_FILE, WEIGHTS_FILE

    Path(dest).mkdir(parents=True, exist_ok=True)
    for name in (*names, WEIGHTS_FILE, CONFIG_FILE):
        if (Path(src) / name).exists():
            (Path(src) / name).replace(Path(dest) / name)


def load_adapter_weights(peft_model: Any, adapter_dir: Path, cfg: TrainConfig, base: BaseModelRef) -> int:
    """Copy a saved adapter's LoRA weights into the freshly attached PEFT LoRA (an update starts there).

    The adapter must have this run's rank and scale and cover exactly the modules this run adapts
    (zero padding outside them is allowed), for the model that is loaded.

    Returns:
        The number of modules loaded.

    Raises:
        TrainError: rank, scale or modules differ (the message says which flag to drop, or ``--fresh``).
        AdapterError, AdapterMismatch: the folder is unreadable or belongs to another base model.
    """
    import torch

    data = read_adapter(Path(adapter_dir))
    where = f"{adapter_dir}"
    if data.config.rank != cfg.rank or not math.isclose(data.config.scale, cfg.scale, rel_tol=1e-6):
        raise TrainError(f"{where} has LoRA rank {data.config.rank}, scale {data.config.scale:g}, but this run uses "
                         f"rank {cfg.rank}, scale {cfg.scale:g} (alpha {cfg.alpha:g}); an update keeps the adapter's "
                         "shape: drop --rank/--alpha, or pass --fresh to retrain from scratch")
    found: dict[str, dict[str, Any]] = {}
    for name, p in peft_model.named_parameters():
        m = _PEFT_KEY.match(name)
        if m:
            found.setdefault(m.group(1), {})[m.group(2)] = p
    shapes = {mod: (int(ab["A"].shape[1]), int(ab["B"].shape[0])) for mod, ab in found.items()}
    extra = sorted(m for m, pair in data.modules.items() if m not in found and (pair.a.any() or pair.b.any()))
    missing = sorted(set(found) - set(data.modules))
    if extra or missing:
        what = f"{len(extra)} trained modules this run does not adapt (e.g. {extra[0]})" if extra else \
            f"no weights for {len(missing)} modules this run adapts (e.g. {missing[0]})"
        raise TrainError(f"{where} has {what}; an update keeps the adapter's layers and targets: drop "
                         "--num-layers, or pass --fresh to retrain from scratch")
    check_compatible(AdapterData(config=data.config, modules={m: data.modules[m] for m in found}, path=data.path),
                     base, shapes)
    with torch.no_grad():
        for mod, ab in found.items():
            a, b = data.modules[mod].torch_ab()
            ab["A"].copy_(torch.from_numpy(a).to(ab["A"].dtype))
            ab["B"].copy_(torch.from_numpy(b).to(ab["B"].dtype))
    return len(found)


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
