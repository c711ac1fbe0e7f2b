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
from mochi_model.training.checkpoint import (
    load_adapter_weights,
    load_checkpoint,
    save_adapter,
    save_checkpoint,
)
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
    step_seconds: float = 0.0  # optimizer steps only (no validation)
    skipped: int = 0
    world_size: int = 1
    memory: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        """Training throughput: tokens through optimizer steps per second of those steps."""
        secs = self.step_seconds or self.seconds  # the MLX trainer only knows the whole loop's time
        return self.tokens / secs if secs else 0.0


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


def attach_lora(model: Any, cfg: TrainConfig) -> Any:
    """Wrap ``model`` in PEFT LoRA on ``cfg.targets`` of the last ``cfg.num_layers`` layers.

    With ``cfg.grad_checkpointing`` the decoder layers recompute their activations in backward
    (non-reentrant checkpointing, so frozen inputs need no gradient) instead of keeping them.
    """
    from peft import LoraConfig, get_peft_model

    n_layers = int(model.config.num_hidden_layers)
    layers = list(range(max(0, n_layers - cfg.num_layers), n_layers)) if cfg.num_layers > 0 else None
    if cfg.grad_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return get_peft_model(model, LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                                            target_modules=list(cfg.targets), bias="none",
                                            layers_to_transform=layers))


def _lr_lambda(cfg: TrainConfig, plan: dict[str, int]) -> Callable[[int], float]:
    """Warmup then decay over ``plan["total"]`` steps, read at each step (a time budget may shorten it)."""

    def f(step: int) -> float:
        total = plan["total"]
        warm = max(1, int(cfg.warmup_frac * total))
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
    started_at: float | None = None,
) -> TrainResult:
    """Train a LoRA adapter on ``data_dir/{train,valid}.jsonl`` and write it to ``output``.

    Args:
        model_path: HF folder (or GGUF file) of the base model.
        data_dir: output of `mochi prepare`.
        output: adapter folder (``adapter_config.json`` + ``adapters.safetensors`` of the best step,
            ``training.json``, ``loss.png``, ``checkpoint/`` while unfinished).
        cfg: hyper-parameters; ``cfg.max_minutes`` is the wall-clock budget of the whole run.
        resume: continue from ``output/checkpoint`` when present.
            With ``cfg.init_adapter`` the LoRA starts from that adapter's weights (fresh optimizer).
        progress: show progress on stderr (a rich bar on a terminal, plain lines otherwise; process 0 only).
        on_step: test hook called after each optimizer step with ``(step, loss)``.
        model_id: canonical base-model id recorded in the adapter (default: from the model config).
        started_at: ``time.monotonic()`` when the command started, so the budget covers what came
            before this call (model resolution, a GGUF conversion); default: now.

    Raises:
        TrainError: no usable samples, unreadable data.
    """
    import torch
    from accelerate import Accelerator

    from mochi_model.training.budget import TimeBudget
    from mochi_model.training.memory import MemoryWatch
    from mochi_model.training.progress import TrainProgress

    cfg = cfg or TrainConfig()
    budget = TimeBudget(cfg.max_minutes, started_at=started_at, eval_every=cfg.eval_every)
    output = Path(output)
    acc = Accelerator(cpu=not torch.cuda.is_available())
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    model, tok, base_ref = load_base_model(model_path, cfg.dtype)
    mem = MemoryWatch()
    mem.loaded()
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
    lora = attach_lora(model, cfg)
    if cfg.init_adapter:  # an update: start from the adapter's weights (a resumed checkpoint overrides them below)
        n = load_adapter_weights(lora, Path(cfg.init_adapter), cfg, base_ref)
        logger.info("starting from %s (%d modules)", cfg.init_adapter, n)
    net = _completion_loss_module(lora)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.total_steps(len(train), acc.num_processes)
    plan = {"total": total}  # shrinks to what the time budget allows; the LR schedule follows it
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, plan))
    net, opt = acc.prepare(net, opt)
    state = {"step": 0, "best_val": float("inf"), "best_step": 0, "bad_evals": 0, "history": [], "tokens": 0,
             "seconds": 0.0, "step_seconds": 0.0, "first_val": float("nan")}
    ckpt = output / "checkpoint"
    if resume and (ckpt / "state.json").exists():
        state = {**state, **load_checkpoint(ckpt, lora, opt, sched)}
        logger.info("resuming from step %d", state["step"])
    order = list(range(len(train)))
    random.Random(cfg.seed).shuffle(order)
    mine = order[acc.process_index::acc.num_processes]

    def evaluate() -> float:
        t = time.perf_counter()
        net.eval()
        with torch.no_grad():
            losses = [float(net(torch.tensor([e.ids], device=acc.device), e.start)) for e in valid]
        net.train()
        budget.record_eval(time.perf_counter() - t)
        return sum(losses) / len(losses)

    def save_best(val: float) -> None:
        state["best_val"], state["best_step"], state["bad_evals"] = val, state["step"], 0
        state["min_val"] = min(val, state.get("min_val", val))
        if acc.is_main_process:
            t = time.perf_counter()
            save_adapter(lora, output, cfg, base_ref)
            budget.record_save(time.perf_counter() - t)

    def agree(stop: bool, planned: int) -> tuple[bool, int]:
        """All processes stop together and follow one LR plan (their clocks differ)."""
        if acc.num_processes == 1:
            return stop, planned
        got = acc.gather(torch.tensor([[float(stop), float(planned)]], device=acc.device))
        return bool(got[:, 0].max() > 0), int(got[:, 1].min())

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
        while state["step"] < plan["total"]:
            t_step = time.perf_counter()
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
            mem.sample()
            budget.record_step(time.perf_counter() - t_step)
            state["step"] += 1
            state["tokens"] += step_tokens * acc.num_processes
            state["step_seconds"] += time.perf_counter() - t_step
            state["seconds"] = time.perf_counter() - t0
            state["history"].append({"step": state["step"], "loss": step_loss, "lr": sched.get_last_lr()[0]})
            out_of_time, plan["total"] = agree(budget.must_stop(), budget.reachable_steps(state["step"], total))
            if out_of_time:
                plan["total"] = state["step"]
            train_tps = state["tokens"] / max(1e-9, state["step_seconds"])
            bar.update(state["step"], step_loss, train_tps, budget.eta_s(state["step"], plan["total"]), plan["total"])
            if on_step:
                on_step(state["step"], step_loss)
            if budget.validates_after(state["step"], plan["total"]):
                val = evaluate()
                state["history"].append({"step": state["step"], "val_loss": val})
                bar.note(f"step {state['step']}: val loss {val:.4f} (best {min(val, state['best_val']):.4f})")
                if replaces_best(val, state["best_val"], state.get("min_val", state["best_val"]),
                                 cfg.prefer_later_within):
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
    budget_info = {"max_minutes": cfg.max_minutes, "planned_steps": total, "elapsed_s_before_report": round(budget.elapsed_s(), 1),
                   "last_eval_s": round(budget.eval_s, 1), "save_s": round(budget.save_s, 2),
                   "slowest_recent_step_s": round(budget.step_s, 1)}
    result = TrainResult(output=output, steps=state["step"], best_step=state["best_step"],
                         best_val_loss=state["best_val"], first_val_loss=state["first_val"],
                         history=state["history"], tokens=state["tokens"], seconds=state["seconds"],
                         step_seconds=state["step_seconds"], stopped=stopped, skipped=skipped,
                         world_size=acc.num_processes, memory=mem.report(), budget=budget_info)
    if acc.is_main_process:
        from mochi_model.training.report import write_report

        write_report(output, cfg, result, data_dir=Path(data_dir), n_train=len(train), n_valid=len(valid))
        if stopped != "interrupted" and ckpt.exists():
            import shutil

            shutil.rmtree(ckpt)
    acc.wait_for_everyone()
    return result


def replaces_best(val: float, best: float, lowest: float, prefer_later_within: float = 0.0) -> bool:
    """Whether the weights of a validation with loss ``val`` replace the kept ones (loss ``best``;
    ``lowest`` = the lowest loss seen): lower, or within ``prefer_later_within`` of the lowest."""
    return val < best or (prefer_later_within > 0 and val <= lowest * (1 + prefer_later_within))


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None
