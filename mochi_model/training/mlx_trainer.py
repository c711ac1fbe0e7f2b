"""LoRA training on MLX with mlx-lm's tuner API, in-process (no subprocess).

Same data (``train.jsonl``/``valid.jsonl``), same loss masking (mlx-lm masks targets before each
sample's prompt length), same output format as the torch trainer: the best validation step is
written with :func:`mochi_model.adapters.format.write_adapter`, plus ``training.json`` and
``loss.png``. Early stopping, the time budget and Ctrl-C leave mlx-lm's loop by raising from its
callbacks. Like the torch trainer, every validation and an interruption save ``OUTPUT/checkpoint/``
(LoRA weights, AdamW state, step, history); a later run with ``resume`` continues from that step.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mochi_model.adapters.format import AdapterConfig, AdapterData, BaseModelRef, LoraPair, write_adapter
from mochi_model.errors import BackendUnavailable, TrainError
from mochi_model.training.config import TrainConfig
from mochi_model.training.dataset import read_jsonl, tokenize

logger = logging.getLogger(__name__)


class _EarlyStop(Exception):
    pass


class _TimeUp(Exception):
    pass


def _save_checkpoint(folder: Path, model: Any, opt: Any, state: dict[str, Any]) -> None:
    import mlx.core as mx
    from mlx.utils import tree_flatten

    folder.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(folder / "adapters.safetensors"), dict(tree_flatten(model.trainable_parameters())))
    mx.save_safetensors(str(folder / "optimizer.safetensors"), dict(tree_flatten(opt.state)))
    tmp = folder / "state.json.tmp"
    tmp.write_text(json.dumps(state), encoding="utf-8")
    tmp.replace(folder / "state.json")  # the state file is written last: a torn save is never resumed


def _load_checkpoint(folder: Path, model: Any, opt: Any) -> dict[str, Any] | None:
    import mlx.core as mx
    from mlx.utils import tree_unflatten

    if not (folder / "state.json").is_file():
        return None
    model.load_weights(list(mx.load(str(folder / "adapters.safetensors")).items()), strict=False)
    opt.state = tree_unflatten(list(mx.load(str(folder / "optimizer.safetensors")).items()))
    return json.loads((folder / "state.json").read_text(encoding="utf-8"))


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


def train_lora_mlx(model_path: str | Path, data_dir: Path, output: Path, cfg: TrainConfig | None = None, *,
                   resume: bool = True, on_step: Callable[[int, float], None] | None = None) -> Any:
    """Train with mlx-lm's tuner; returns a :class:`mochi_model.training.torch_trainer.TrainResult`.

    Args:
        resume: continue from ``output/checkpoint`` when one exists.
        on_step: called after every optimizer step with ``(step, train loss)``.

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
    from mochi_model.training.memory import peak_rss_mb
    from mochi_model.training.report import write_report
    from mochi_model.training.torch_trainer import TrainResult

    cfg = cfg or TrainConfig()
    if cfg.init_adapter:
        raise TrainError("updating an adapter (starting from its weights) needs the torch trainer: "
                         "drop --backend mlx, or pass --fresh to retrain with mlx")
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
    opt = optim.AdamW(learning_rate=cfg.lr, weight_decay=cfg.weight_decay)
    ckpt = output / "checkpoint"
    saved = _load_checkpoint(ckpt, model, opt) if resume else None
    start = int(saved["step"]) if saved else 0
    if saved:
        logger.info("resuming MLX training from step %d", start)
    history: list[dict[str, float]] = list(saved["history"]) if saved else []
    best: dict[str, Any] = dict(saved["best"]) if saved else {"val": float("inf"), "step": 0, "bad": 0}
    t0 = time.perf_counter()
    done = {"step": start}

    def checkpoint() -> None:
        _save_checkpoint(ckpt, model, opt, {"step": done["step"], "history": history, "best": best})

    class Callback(TrainingCallback):
        def on_train_loss_report(self, info: dict) -> None:
            step = start + int(info["iteration"])
            done["step"] = step
            loss = float(info["train_loss"])
            history.append({"step": step, "loss": loss})
            if on_step is not None:
                on_step(step, loss)
            if cfg.max_minutes and time.perf_counter() - t0 > cfg.max_minutes * 60:
                raise _TimeUp

        def on_val_loss_report(self, info: dict) -> None:
            it = int(info["iteration"])
            step, val = start + (it + 1 if it > 0 else 0), float(info["val_loss"])
            if step == start and saved:
                return  # mlx-lm validates before its first step: that is the resumed step, already recorded
            history.append({"step": step, "val_loss": val})
            if val < best["val"]:
                best.update(val=val, step=step, bad=0)
                write_adapter(output, _adapter_data(model, cfg, base))
            else:
                best["bad"] += 1
            checkpoint()
            if best["bad"] >= cfg.patience:
                raise _EarlyStop

    args = TrainingArgs(batch_size=cfg.batch_size, iters=max(0, total - start), val_batches=-1, steps_per_report=1,
                        steps_per_eval=cfg.eval_every, steps_per_save=10**9, max_seq_length=cfg.max_seq_len,
                        adapter_file=str(output / "_last_adapters.safetensors"))
    stopped = "done"
    try:
        if total > start:
            train(model, opt, _Pairs(train_ex), _Pairs(valid_ex), args=args, training_callback=Callback())
    except _EarlyStop:
        stopped = "early_stop"
    except _TimeUp:
        stopped = "time"
        checkpoint()
    except KeyboardInterrupt:
        stopped = "interrupted"
        checkpoint()
        logger.warning("interrupted at step %d; checkpoint saved, run again to resume", done["step"])
    (output / "_last_adapters.safetensors").unlink(missing_ok=True)
    vals = [h["val_loss"] for h in history if "val_loss" in h]
    steps = done["step"]
    tokens = sum(len(e.ids) for e in train_ex[: (steps - start) * cfg.batch_size])
    result = TrainResult(output=output, steps=steps, best_step=best["step"], best_val_loss=best["val"],
                         first_val_loss=vals[0] if vals else float("nan"), history=history, tokens=tokens,
                         seconds=time.perf_counter() - t0, stopped=stopped, skipped=skipped,
                         memory={"peak_rss_mb": round(peak_rss_mb(), 1),
                                 "mlx_peak_mb": round(mx.get_peak_memory() / 2**20, 1) if hasattr(mx, "get_peak_memory") else None})
    write_report(output, cfg, result, data_dir=Path(data_dir), n_train=len(train_ex), n_valid=len(valid_ex))
    return result


def _mlx_keys(model: Any) -> list[str]:
    import mlx.nn as nn

    keys = set()
    for name, mod in model.layers[0].named_modules():
        if isinstance(mod, nn.Linear) and name:
            keys.add(name)
    return sorted(keys)
