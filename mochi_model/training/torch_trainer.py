"""LoRA training on torch (CPU/CUDA), data-parallel under `torchrun` / `accelerate launch`.

The loop is small on purpose and fast where it matters on a CPU:
* one sample per micro-step, accumulated to ``batch_size`` — no padding tokens are ever computed;
* logits only for completion positions (the 150k-vocabulary head is skipped for the prompt), which
  is also the loss mask: loss on the completion part only;
* PEFT LoRA modules, saved in the one adapter format (``mochi_model.adapters.format``);
* validation every N steps, early stopping, best checkpoint kept, resume from ``checkpoint/``
  (Ctrl-C saves one), a step budget scaled to the data and an optional time budget.

Distributed: ``accelerate.Accelerator`` picks up torchrun's environment (gloo on CPU, NCCL on GPU),
wraps the model in DDP, and each process takes every world-th sample.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mochi_model.errors import TrainError
from mochi_model.training.checkpoint import load_checkpoint, save_adapter, save_checkpoint
from mochi_model.training.config import TrainConfig
from mochi_model.training.dataset import Example, read_jsonl, tokenize
from mochi_model.training.model_io import load_base_model, merge_base_adapter

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class TrainResult:
    output: Path
    steps: int
    best_step: int
    best_val_loss: float
    first_val_loss: float
    history: list[dict[str, float]] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0
    stopped: str = "done"  # done | early_stop | time | interrupted
    skipped: int = 0
    world_size: int = 1

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def _completion_loss_module(model: Any) -> Any:
    import torch

    class CompletionLoss(torch.nn.Module):
        """Wraps the causal LM so DDP sees one forward: ids → mean loss over completion tokens."""

        def __init__(self, lm: Any) -> None:
            super().__init__()
            self.lm = lm

        def forward(self, ids: torch.Tensor, start: int) -> torch.Tensor:
            inner = self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm
            hidden = inner.model(input_ids=ids).last_hidden_state
            logits = inner.lm_head(hidden[:, start - 1:-1]).float()
            return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, start:].reshape(-1))

    return CompletionLoss(model)


def _lr_lambda(cfg: TrainConfig, total: int) -> Callable[[int], float]:
    warm = max(1, int(cfg.warmup_frac * total))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if cfg.schedule == "constant":
            return 1.0
        frac = (step - warm) / max(1, total - warm)
        return max(0.0, 1 - frac) if cfg.schedule == "linear" else 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))

    return f


def train_lora(
    model_path: str | Path,
    data_dir: Path,
    output: Path,
    cfg: TrainConfig | None = None,
    *,
    resume: bool = True,
    progress: bool = True,
    on_step: Callable[[int, float], None] | None = None,
    model_id: str = "",
) -> TrainResult:
    """Train a LoRA adapter on ``data_dir/{train,valid}.jsonl`` and write it to ``output``.

    Args:
        model_path: HF folder (or GGUF file) of the base model.
        data_dir: output of `mochi prepare`.
        output: adapter folder (``adapter_config.json`` + ``adapters.safetensors`` of the best step,
            ``training.json``, ``loss.png``, ``checkpoint/`` while unfinished).
        cfg: hyper-parameters.
        resume: continue from ``output/checkpoint`` when present.
        progress: show a rich progress bar (process 0 only).
        on_step: test hook called after each optimizer step with ``(step, loss)``.
        model_id: canonical base-model id recorded in the adapter (default: from the model config).

    Raises:
        TrainError: no usable samples, unreadable data.
    """
    import torch
    from accelerate import Accelerator

    cfg = cfg or TrainConfig()
    output = Path(output)
    acc = Accelerator(cpu=not torch.cuda.is_available())
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    model, tok, base_ref = load_base_model(model_path, cfg.dtype)
    if model_id:
        base_ref.id = model_id
    if cfg.base_adapter:
        merge_base_adapter(model, Path(cfg.base_adapter), cfg.base_weight)
    train_raw, valid_raw = read_jsonl(Path(data_dir) / "train.jsonl"), read_jsonl(Path(data_dir) / "valid.jsonl")
    train, skipped = tokenize(train_raw, tok, cfg.max_seq_len)
    valid_all, _ = tokenize(valid_raw, tok, cfg.max_seq_len)
    if not train:
        raise TrainError(f"{data_dir}: no training sample fits max_seq_len={cfg.max_seq_len} "
                         f"({skipped} skipped); raise --max-seq-len or prepare with smaller budgets")
    valid = random.Random(cfg.seed).sample(valid_all, min(cfg.eval_samples, len(valid_all))) if valid_all else train[:4]
    from peft import LoraConfig, get_peft_model

    n_layers = int(model.config.num_hidden_layers)
    layers = list(range(max(0, n_layers - cfg.num_layers), n_layers)) if cfg.num_layers > 0 else None
    lora = get_peft_model(model, LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                                            target_modules=list(cfg.targets), bias="none",
                                            layers_to_transform=layers))
    net = _completion_loss_module(lora)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.total_steps(len(train), acc.num_processes)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, total))
    net, opt = acc.prepare(net, opt)
    state = {"step": 0, "best_val": float("inf"), "best_step": 0, "bad_evals": 0, "history": [], "tokens": 0,
             "seconds": 0.0, "first_val": float("nan")}
    ckpt = output / "checkpoint"
    if resume and (ckpt / "state.json").exists():
        state = load_checkpoint(ckpt, lora, opt, sched)
        logger.info("resuming from step %d", state["step"])
    order = list(range(len(train)))
    random.Random(cfg.seed).shuffle(order)
    mine = order[acc.process_index::acc.num_processes]

    def evaluate() -> float:
        net.eval()
        with torch.no_grad():
            losses = [float(net(torch.tensor([e.ids], device=acc.device), e.start)) for e in valid]
        net.train()
        return sum(losses) / len(losses)

    def save_best(val: float) -> None:
        state["best_val"], state["best_step"], state["bad_evals"] = val, state["step"], 0
        if acc.is_main_process:
            save_adapter(lora, output, cfg, base_ref)

    from mochi_model.training.progress import TrainProgress

    bar = TrainProgress(total, enabled=progress and acc.is_main_process)
    t0 = time.perf_counter() - state["seconds"]
    stopped = "done"
    try:
        if state["step"] == 0:
            state["first_val"] = evaluate()
            state["history"].append({"step": 0, "val_loss": state["first_val"]})
            save_best(state["first_val"])
        bar.start(state["step"])
        net.train()
        while state["step"] < total:
            step_loss, step_tokens = 0.0, 0
            for i in range(cfg.batch_size):
                ex: Example = train[mine[(state["step"] * cfg.batch_size + i) % len(mine)]]
                ids = torch.tensor([ex.ids], device=acc.device)
                last = i == cfg.batch_size - 1
                ctx = acc.no_sync(net) if not last and acc.num_processes > 1 else _null()
                with ctx:
                    loss = net(ids, ex.start) / cfg.batch_size
                    acc.backward(loss)
                step_loss += float(loss.detach())
                step_tokens += len(ex.ids)
            acc.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            state["step"] += 1
            state["tokens"] += step_tokens * acc.num_processes
            state["seconds"] = time.perf_counter() - t0
            state["history"].append({"step": state["step"], "loss": step_loss, "lr": sched.get_last_lr()[0]})
            bar.update(state["step"], step_loss, state["tokens"] / max(1e-9, state["seconds"]))
            if on_step:
                on_step(state["step"], step_loss)
            out_of_time = cfg.max_minutes > 0 and state["seconds"] > cfg.max_minutes * 60
            if state["step"] % cfg.eval_every == 0 or state["step"] == total or out_of_time:
                val = evaluate()
                state["history"].append({"step": state["step"], "val_loss": val})
                bar.note(f"step {state['step']}: val loss {val:.4f} (best {min(val, state['best_val']):.4f})")
                if val < state["best_val"]:
                    save_best(val)
                else:
                    state["bad_evals"] += 1
                if acc.is_main_process:
                    save_checkpoint(ckpt, lora, opt, sched, state)
                if state["bad_evals"] >= cfg.patience:
                    stopped = "early_stop"
                    break
                if out_of_time:
                    stopped = "time"
                    break
    except KeyboardInterrupt:
        stopped = "interrupted"
        if acc.is_main_process:
            save_checkpoint(ckpt, lora, opt, sched, state)
        logger.warning("interrupted at step %d; checkpoint saved, run the same command to resume", state["step"])
    finally:
        bar.stop()
    result = TrainResult(output=output, steps=state["step"], best_step=state["best_step"],
                         best_val_loss=state["best_val"], first_val_loss=state["first_val"],
                         history=state["history"], tokens=state["tokens"], seconds=state["seconds"],
                         stopped=stopped, skipped=skipped, world_size=acc.num_processes)
    if acc.is_main_process:
        from mochi_model.training.report import write_report

        write_report(output, cfg, result, data_dir=Path(data_dir), n_train=len(train), n_valid=len(valid))
        if stopped != "interrupted" and ckpt.exists():
            import shutil

            shutil.rmtree(ckpt)
    acc.wait_for_everyone()
    return result


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None
