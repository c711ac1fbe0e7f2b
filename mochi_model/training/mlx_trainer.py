"""LoRA training on MLX with mlx-lm's tuner API, in-process (no subprocess).

Same data (``train.jsonl``/``valid.jsonl``), same loss masking (mlx-lm masks targets before each
sample's prompt length), same output format as the torch trainer: the best validation step is
written with :func:`mochi_model.adapters.format.write_adapter`, plus ``training.json`` and
``loss.png``. Early stopping raises out of mlx-lm's loop from the validation callback.
TODO: resume from a checkpoint (the torch trainer has it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mochi_model.adapters.format import AdapterConfig, AdapterData, BaseModelRef, LoraPair, write_adapter
from mochi_model.errors import BackendUnavailable, TrainError
from mochi_model.training.config import TrainConfig
from mochi_model.training.dataset import read_jsonl, tokenize


class _EarlyStop(Exception):
    pass


class _Pairs:
    """mlx-lm dataset protocol: items are ``(token ids, prompt length)``."""

    def __init__(self, examples: list[Any]) -> None:
        self.items = [(e.ids, e.start) for e in examples]

    def __getitem__(self, i: int) -> tuple[list[int], int]:
        return self.items[i]

    def __len__(self) -> int:
        return len(self.items)


def _adapter_data(model: Any, cfg: TrainConfig, base: BaseModelRef) -> AdapterData:
    import mlx.core as mx
    import numpy as np
    from mlx.utils import tree_flatten

    flat = dict(tree_flatten(model.trainable_parameters()))
    modules = {}
    for key, a in flat.items():
        if key.endswith(".lora_a"):
            mod = key[: -len(".lora_a")]
            b = flat[mod + ".lora_b"]
            modules[mod] = LoraPair(np.array(a.astype(mx.float32)), np.array(b.astype(mx.float32)))
    conf = AdapterConfig(rank=cfg.rank, scale=cfg.scale, dropout=cfg.dropout, keys=[], num_layers=-1,
                         base_model=base, role=cfg.role, name=cfg.name)
    return AdapterData(config=conf, modules=modules)


def train_lora_mlx(model_path: str | Path, data_dir: Path, output: Path, cfg: TrainConfig | None = None) -> Any:
    """Train with mlx-lm's tuner; returns a :class:`mochi_model.training.torch_trainer.TrainResult`.

    Raises:
        BackendUnavailable: mlx / mlx-lm are not installed.
        TrainError: no usable samples.
    """
    try:
        import mlx.core as mx
        import mlx.optimizers as optim
        from mlx_lm import load
        from mlx_lm.tuner.callbacks import TrainingCallback
        from mlx_lm.tuner.trainer import TrainingArgs, train
        from mlx_lm.tuner.utils import linear_to_lora_layers
    except ImportError as exc:
        raise BackendUnavailable.missing_extra("mlx", "mlx", exc) from exc
    from mochi_model.training.report import write_report
    from mochi_model.training.torch_trainer import TrainResult

    cfg = cfg or TrainConfig()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    mx.random.seed(cfg.seed)
    model, tok = load(str(model_path))
    tok = getattr(tok, "_tokenizer", tok)  # mlx-lm wraps the HF tokenizer
    train_ex, skipped = tokenize(read_jsonl(Path(data_dir) / "train.jsonl"), tok, cfg.max_seq_len)
    valid_ex, _ = tokenize(read_jsonl(Path(data_dir) / "valid.jsonl"), tok, cfg.max_seq_len)
    if len(train_ex) < cfg.batch_size or not valid_ex:
        raise TrainError(f"{data_dir}: too few samples for batch size {cfg.batch_size}")
    valid_ex = valid_ex[: max(cfg.batch_size, cfg.eval_samples)]
    model.freeze()
    n_layers = len(model.layers)
    linear_to_lora_layers(model, cfg.num_layers if cfg.num_layers > 0 else n_layers,
                          {"rank": cfg.rank, "scale": cfg.scale, "dropout": cfg.dropout,
                           "keys": [k for k in _mlx_keys(model) if k.split(".")[-1] in cfg.targets]})
    base = BaseModelRef.from_hf_config(Path(model_path).name, getattr(model, "args", None).__dict__
                                       if hasattr(model, "args") else {})
    total = cfg.total_steps(len(train_ex))
    history: list[dict[str, float]] = []
    best = {"val": float("inf"), "step": 0, "bad": 0}

    class Callback(TrainingCallback):
        def on_train_loss_report(self, info: dict) -> None:
            history.append({"step": info["iteration"], "loss": float(info["train_loss"])})

        def on_val_loss_report(self, info: dict) -> None:
            step, val = int(info["iteration"]) + 1 if info["iteration"] > 0 else 0, float(info["val_loss"])
            history.append({"step": step, "val_loss": val})
            if val < best["val"]:
                best.update(val=val, step=step, bad=0)
                write_adapter(output, _adapter_data(model, cfg, base))
            else:
                best["bad"] += 1
                if best["bad"] >= cfg.patience:
                    raise _EarlyStop

    args = TrainingArgs(batch_size=cfg.batch_size, iters=total, val_batches=-1, steps_per_report=1,
                        steps_per_eval=cfg.eval_every, steps_per_save=10**9, max_seq_length=cfg.max_seq_len,
                        adapter_file=str(output / "_last_adapters.safetensors"))
    opt = optim.AdamW(learning_rate=cfg.lr, weight_decay=cfg.weight_decay)
    t0 = time.perf_counter()
    stopped = "done"
    try:
        train(model, opt, _Pairs(train_ex), _Pairs(valid_ex), args=args, training_callback=Callback())
    except _EarlyStop:
        stopped = "early_stop"
    (output / "_last_adapters.safetensors").unlink(missing_ok=True)
    vals = [h["val_loss"] for h in history if "val_loss" in h]
    steps = max([int(h["step"]) for h in history], default=0)
    tokens = sum(len(e.ids) for e in train_ex[: steps * cfg.batch_size])
    result = TrainResult(output=output, steps=steps, best_step=best["step"], best_val_loss=best["val"],
                         first_val_loss=vals[0] if vals else float("nan"), history=history, tokens=tokens,
                         seconds=time.perf_counter() - t0, stopped=stopped, skipped=skipped)
    write_report(output, cfg, result, data_dir=Path(data_dir), n_train=len(train_ex), n_valid=len(valid_ex))
    return result


def _mlx_keys(model: Any) -> list[str]:
    import mlx.nn as nn

    keys = set()
    for name, mod in model.layers[0].named_modules():
        if isinstance(mod, nn.Linear) and name:
            keys.add(name)
    return sorted(keys)
