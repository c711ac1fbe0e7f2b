"""The whole `mochi eval` run: held-out files → holes → four configurations → table, JSON, PNG.

Test files come from ``dataset.json`` of a `mochi prepare` run when given (so eval never scores
files the adapter was trained on), else from the same seeded by-file split. Retrieval uses the
project's LanceDB index when one exists (``index="project"``), or an in-memory index over the
repository (``index="local"``); either way the hole's own file is never retrieved.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mochi_core.config import CompletionSection
from mochi_core.errors import MochiError
from mochi_model.data.filters import content_reason, path_reason
from mochi_model.data.local_index import LocalIndex
from mochi_model.data.prepare import collect_files
from mochi_model.data.split import split_files
from mochi_model.eval.harness import run_eval
from mochi_model.eval.holes import sample_holes
from mochi_model.eval.report import render_table, write_outputs

logger = logging.getLogger(__name__)


class EvalError(MochiError):
    """Evaluation cannot run (no held-out files, no holes)."""


@dataclass(kw_only=True)
class EvalOptions:
    holes: int = 300  # per hole kind
    kinds: tuple[str, ...] = ("next_line", "span")
    seed: int = 0
    style: str = "auto"
    index: str = "local"  # local | project
    subdir: str = ""
    configs: tuple[str, ...] = ("base", "retrieval", "adapter", "both")
    budgets: CompletionSection = field(default_factory=lambda: CompletionSection(
        prefix_tokens=512, suffix_tokens=128, context_tokens=512))
    repo_label: str = ""  # "name version" shown in the output


def held_out(root: Path, data_dir: Path | None, subdir: str, seed: int) -> tuple[dict[str, str], list[str], dict[str, Any]]:
    files = collect_files(root, subdir)
    meta: dict[str, Any] = {}
    if data_dir is not None and (Path(data_dir) / "dataset.json").exists():
        ds = json.loads((Path(data_dir) / "dataset.json").read_text(encoding="utf-8"))
        test = [p for p in ds["split_files"]["test"] if p in files]
        meta = {"dataset": str(data_dir), "budgets": ds.get("budgets")}
    else:
        usable = {p: t for p, t in files.items() if not (path_reason(p) or content_reason(t))}
        test = split_files(usable, seed=seed)["test"]
    if not test:
        raise EvalError(f"no held-out test files under {root}; prepare data first or add files")
    return files, test, meta


def evaluate_repo(engine: Any, root: Path, out_dir: Path, *, data_dir: Path | None = None,
                  options: EvalOptions | None = None, previous: Path | None = None,
                  progress: Any = None) -> dict[str, Any]:
    """Run the eval and write ``eval.json``, ``holes.jsonl``, ``eval.png`` to ``out_dir``."""
    opts = options or EvalOptions()
    root = Path(root)
    files, test, meta = held_out(root, data_dir, opts.subdir, opts.seed)
    budgets = opts.budgets
    if meta.get("budgets"):
        budgets = CompletionSection(**{**budgets.__dict__, **meta["budgets"]})
    test_files = {p: files[p] for p in test}
    holes = [h for kind in opts.kinds for h in sample_holes(test_files, opts.holes, kind=kind, seed=opts.seed)]
    if not holes:
        raise EvalError("the held-out files have no completable lines")
    if opts.index == "project":
        from mochi_index import ProjectIndex

        index: Any = ProjectIndex.open(root, create=False)
    else:
        index = LocalIndex(files)
    prev_rows = None
    if previous is not None and Path(previous).exists():
        prev_rows = [json.loads(ln) for ln in Path(previous).read_text(encoding="utf-8").splitlines() if ln.strip()]
    t0 = time.perf_counter()
    summary = run_eval(engine, files, holes, index=index, budgets=budgets, style=opts.style, seed=opts.seed,
                       progress=progress, configs=opts.configs, previous=prev_rows)
    summary["meta"] = {
        "repo": opts.repo_label or root.resolve().name, "model": getattr(engine, "model_id", ""),
        "test_files": len(test), "holes": {k: sum(h.kind == k for h in holes) for k in opts.kinds},
        "seed": opts.seed, "index": opts.index, "seconds": round(time.perf_counter() - t0, 1),
        "budgets": budgets.__dict__, **meta,
    }
    summary["table"] = render_table(summary)
    write_outputs(summary, out_dir)
    return summary
