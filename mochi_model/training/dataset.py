"""Training samples on disk (JSONL from `mochi prepare`) → token ids with the completion start.

Loss goes on the completion only: each example keeps ``start``, the index of the first completion
token, so the trainer computes logits (and loss) from ``start - 1`` onwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mochi_model.errors import TrainError


@dataclass(frozen=True)
class Example:
    ids: list[int]
    start: int  # first completion token; labels are ids[start:]

    @property
    def n_completion(self) -> int:
        return len(self.ids) - self.start


def read_jsonl(path: Path) -> list[dict[str, str]]:
    path = Path(path)
    if not path.exists():
        raise TrainError(f"{path} not found; run `mochi prepare` first or pass --data to a prepared folder")
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    row = json.loads(line)
                    out.append({"prompt": row["prompt"], "completion": row["completion"], "kind": row.get("kind", "")})
                except (json.JSONDecodeError, KeyError) as exc:
                    raise TrainError(f"{path}:{n}: not a sample ({exc}); expected prompt/completion JSON") from exc
    return out


def tokenize(samples: list[dict[str, str]], tokenizer: Any, max_len: int) -> tuple[list[Example], int]:
    """Tokenise prompt and completion separately (so the boundary is exact).

    Returns:
        ``(examples, skipped)``: samples longer than ``max_len`` or with an empty completion are skipped.
    """
    out: list[Example] = []
    skipped = 0
    for s in samples:
        p = tokenizer(s["prompt"], add_special_tokens=False)["input_ids"]
        c = tokenizer(s["completion"], add_special_tokens=False)["input_ids"]
        if not c or not p or len(p) + len(c) > max_len:
            skipped += 1
            continue
        out.append(Example(ids=list(p) + list(c), start=len(p)))
    return out, skipped
