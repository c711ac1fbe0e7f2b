"""Typed, fully-defaulted training settings (defaults work for 0.5B–3B models on CPU or one GPU).

The defaults were chosen by measurement (``bench/train_bench.py --sweep``, ``results/train_sweep.json``;
docs/notes.md "Training a new user can wait for"): on a 2-core CPU and Qwen2.5-Coder-0.5B, adapting
the last 8 layers costs about as much per token as the last 4 and ~1.45x less than all 24, and keeps
peak memory near 4.5 GB instead of ~7 GB; float32, because bf16 backward on CPUs without AVX512-BF16
falls into a slow generic GEMM; a 25-minute wall-clock budget, so `mochi train project` with no flags
ends (model load, final validation and save included) well inside 30 minutes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass(kw_only=True)
class TrainConfig:
    rank: int = field(default=16, metadata={"help": "LoRA rank r."})
    alpha: float = field(default=32.0, metadata={"help": "LoRA alpha; scale = alpha / rank."})
    dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    targets: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS), metadata={"help": "Linear layers to adapt."})
    num_layers: int = field(default=8, metadata={"help": "Adapt only the last N layers (mlx-lm style; backward stops there); -1 = all."})
    lr: float = field(default=2e-4, metadata={"help": "Peak learning rate (AdamW)."})
    weight_decay: float = 0.0
    schedule: str = field(default="cosine", metadata={"help": "cosine | linear | constant (after warmup)."})
    warmup_frac: float = field(default=0.05, metadata={"help": "Share of steps with linear warmup."})
    batch_size: int = field(default=4, metadata={"help": "Samples per optimizer step (per process; accumulated one by one, no padding)."})
    max_seq_len: int = field(default=1024, metadata={"help": "Longer samples are skipped (counted); bounds memory "
                                                       "(0.5B, last 8 layers: 6.6 GB peak at 2048 tokens)."})
    epochs: float = field(default=1.0, metadata={"help": "Passes over the training set; steps = epochs * samples / batch."})
    min_steps: int = 10
    max_steps: int = field(default=2000, metadata={"help": "Upper bound on optimizer steps."})
    max_minutes: float = field(default=25.0, metadata={"help": "Wall-clock budget of the whole run (load, validation, "
                                                           "save included); the best checkpoint is kept; 0 = no limit."})
    eval_every: int = field(default=25, metadata={"help": "Validation every N steps and at the end (one due under N/2 steps before the end is left to the last)."})
    eval_samples: int = field(default=16, metadata={"help": "Validation samples used each time (fixed subset)."})
    patience: int = field(default=4, metadata={"help": "Early stopping: evaluations without improvement."})
    prefer_later_within: float = field(default=0.0, metadata={
        "help": "A later validation whose loss is within this share of the lowest so far replaces the kept weights "
                "(an update uses 0.01: weights that saw the new code win a tie inside the noise)."})
    seed: int = 0
    dtype: str = field(default="auto", metadata={"help": "auto (bf16 on a GPU that has it, else float32) | float32 | bfloat16."})
    grad_clip: float = 1.0
    grad_checkpointing: bool = field(default=False, metadata={"help": "Recompute activations in backward (less memory, slower)."})
    threads: int = field(default=0, metadata={"help": "torch CPU threads; 0 = torch default."})
    base_adapter: str = field(default="", metadata={"help": "Frozen base adapter merged at base_weight before training."})
    base_weight: float = 1.0
    init_adapter: str = field(default="", metadata={"help": "Adapter folder whose LoRA weights the run starts from "
                                                    "(an update; rank, scale and modules must match), fresh optimizer."})
    role: str = field(default="project", metadata={"help": "base | project (written into the adapter)."})
    name: str = ""

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def total_steps(self, n_train: int, world: int = 1) -> int:
        """Optimizer steps scaled to the dataset: ``epochs * samples / (batch * processes)``."""
        steps = math.ceil(self.epochs * n_train / max(1, self.batch_size * world))
        return max(min(self.min_steps, self.max_steps), min(self.max_steps, steps))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
