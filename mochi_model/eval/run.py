"""The whole `mochi eval` run: held-out files → holes → categories → every row → table, JSON, PNG.

Test files come from ``dataset.json`` of a `mochi prepare` run when given (so eval never scores
files the adapter was trained on), else from the same seeded by-file split. Retrieval uses a real
project index (tree-sitter + LanceDB, the one the servers read) built from the repository *without*
the held-out files: they are copied out to ``OUT/project`` and indexed there, so a hole's own file
and the other held-out files are never retrieved. Budgets are the repository's ``[completion]``
settings, the ones its users run with.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mochi_core.config import MochiConfig, load_config
from mochi_core.errors import MochiError
from mochi_model.data.filters import content_reason, path_reason
from mochi_model.data.prepare import collect_files
from mochi_model.data.split import split_files
from mochi_model.eval.categories import categorize, definitions_by_name
from mochi_model.eval.harness import run_eval
from mochi_model.eval.holes import Hole, sample_holes
from mochi_model.eval.report import render_table, write_outputs
from mochi_model.eval.sweep import SweepOptions, sweep_weights, write_weights

logger = logging.getLogger(__name__)


class EvalError(MochiError):
    """Evaluation cannot run (no held-out files, no holes)."""


@dataclass(kw_only=True)
class EvalOptions:
    holes: int = 300  # per hole kind
    kinds: tuple[str, ...] = ("next_line", "span")
    seed: int = 0
    subdir: str = ""
    only: tuple[str, ...] = ()  # rows to run (default: all of them)
    changed_since: Path | None = None  # only held-out files that are new or differ from this older copy
    repo_label: str = ""  # "name version" shown in the output


def held_out(root: Path, data_dir: Path | None, seed: int) -> tuple[dict[str, str], list[str], dict[str, Any]]:
    """All source files, the held-out test paths, and where the split came from."""
    files = collect_files(root)
    splits, meta = _splits(files, data_dir, seed)
    return files, splits["test"], meta


def _splits(files: dict[str, str], data_dir: Path | None, seed: int) -> tuple[dict[str, list[str]], dict[str, Any]]:
    if data_dir is not None and (Path(data_dir) / "dataset.json").exists():
        ds = json.loads((Path(data_dir) / "dataset.json").read_text(encoding="utf-8"))
        return ({k: [p for p in v if p in files] for k, v in ds["split_files"].items()},
                {"dataset": str(data_dir)})
    usable = {p: t for p, t in files.items() if not (path_reason(p) or content_reason(t))}
    return split_files(usable, seed=seed), {}


def changed_files(paths: list[str], files: dict[str, str], older: Path) -> list[str]:
    """The ``paths`` whose text is new or differs from the file at the same relative path under ``older``
    (an earlier release or checkout of the project: what an adapter update is scored on).

    Raises:
        EvalError: ``older`` is not a folder, or none of the held-out files changed.
    """
    if not older.is_dir():
        raise EvalError(f"--changed-since: {older} is not a folder (give an older copy of the project)")
    out = []
    for p in paths:
        old = older / p
        try:
            same = old.is_file() and old.read_text(encoding="utf-8", errors="replace") == files[p]
        except OSError:
            same = False
        if not same:
            out.append(p)
    if not out:
        raise EvalError(f"none of the {len(paths)} held-out files differs from {older}: nothing changed to score")
    return out


def build_eval_index(files: dict[str, str], test: list[str], folder: Path, config: MochiConfig) -> Any:
    """A real ``ProjectIndex`` over ``files`` minus ``test``, rooted at ``folder`` (incremental on reruns)."""
    from mochi_index import ProjectIndex

    folder.mkdir(parents=True, exist_ok=True)
    keep = set(files) - set(test)
    for p in folder.rglob("*"):  # files held out now but copied by an earlier run
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and not rel.startswith(".mochi/") and rel not in keep:
            p.unlink()
    for rel in sorted(keep):
        dest = folder / rel
        if not dest.exists() or dest.read_text(encoding="utf-8", errors="replace") != files[rel]:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(files[rel], encoding="utf-8")
    index = ProjectIndex.open(folder, config=config)
    index.update()
    return index


def sample_all(files: dict[str, str], n: int, kinds: tuple[str, ...], defined: dict[str, set[str]], *,
               seed: int = 0) -> list[Hole]:
    """``n`` holes of each kind; ``cross_file`` = next-line holes whose line needs a name from another file
    (sampled from every completable line, so the CrossCodeEval-style set is large enough to measure)."""
    holes: list[Hole] = []
    for kind in kinds:
        if kind == "cross_file":
            pool = sample_holes(files, 10**9, kind="next_line", seed=seed + 1)
            cats = categorize(pool, files, defined)
            holes += [replace(h, kind="cross_file") for h, c in zip(pool, cats, strict=True) if c == "cross_file"][:n]
        else:
            holes += sample_holes(files, n, kind=kind, seed=seed)
    return holes


def read_checkpoint(path: Path) -> list[dict[str, Any]]:
    """Per-hole records of an earlier run (``holes.jsonl``); a torn last line (killed mid-write) is skipped."""
    if not path.exists():
        return []
    out = []
    for ln in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(ln))
        except json.JSONDecodeError:
            logger.warning("%s: skipping a torn line", path)
    return [r for r in out if isinstance(r, dict) and "config" in r]


def evaluate_repo(engine: Any, root: Path, out_dir: Path, *, data_dir: Path | None = None,
                  options: EvalOptions | None = None, compare_engine: Any = None, previous: Path | None = None,
                  progress: Any = None, config: MochiConfig | None = None,
                  sweep: SweepOptions | None = None) -> dict[str, Any]:
    """Run the eval and write ``eval.json``, ``holes.jsonl``, ``eval.png`` to ``out_dir``.

    With ``sweep``, the stack's weights are first chosen on the validation files
    (:mod:`mochi_model.eval.sweep`), scored as the ``stack@best`` row, and optionally written into
    the project's ``.mochi/config.toml``.

    Raises:
        EvalError: no held-out files, or no completable lines in them.
    """
    opts = options or EvalOptions()
    root = Path(root)
    cfg = config or load_config(root)[0]
    files, test, meta = held_out(root, data_dir, opts.seed)
    scored = [p for p in test if not opts.subdir or p.startswith(opts.subdir.rstrip("/") + "/")]
    if not scored:
        raise EvalError(f"no held-out test files under {root / opts.subdir}; prepare data first or add files")
    if opts.changed_since is not None:
        scored = changed_files(scored, files, Path(opts.changed_since))
    test_files = {p: files[p] for p in scored}
    t0 = time.perf_counter()
    index = build_eval_index(files, test, Path(out_dir) / "project", cfg)
    defined = definitions_by_name(index.iter_symbols())
    holes = sample_all(test_files, opts.holes, opts.kinds, defined, seed=opts.seed)
    if not holes:
        index.close()
        raise EvalError("the held-out files have no completable lines")
    categories = categorize(holes, files, defined)
    swept = None
    if sweep is not None:
        splits, _ = _splits(files, data_dir, opts.seed)
        try:
            swept = sweep_weights(engine, files, splits.get("valid", []), config=cfg.completion, options=sweep,
                                  seed=opts.seed, progress=progress)
        except ValueError as exc:
            index.close()
            raise EvalError(str(exc)) from exc
    prev_rows = read_checkpoint(Path(previous)) if previous is not None else None
    checkpoint = Path(out_dir) / "holes.jsonl"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    if prev_rows is not None and checkpoint.exists() and not checkpoint.read_bytes().endswith(b"\n"):
        with open(checkpoint, "a", encoding="utf-8") as f:  # a torn last line stays on its own line
            f.write("\n")
    # every hole is appended as it finishes, so a stopped run loses at most one hole (`--resume`)
    with open(checkpoint, "a" if prev_rows is not None and checkpoint.exists() else "w", encoding="utf-8") as ck:
        def on_result(r: Any) -> None:
            ck.write(json.dumps(r.__dict__) + "\n")
            ck.flush()

        try:
            summary = run_eval(engine, files, holes, categories, index=index, config=cfg.completion,
                               compare_engine=compare_engine, progress=progress, seed=opts.seed, only=opts.only,
                               previous=prev_rows, on_result=on_result,
                               best_weights=swept["best"] if swept else None)
        finally:
            index.close()
    summary["meta"] = {
        "repo": opts.repo_label or root.resolve().name, "model": engine.model_id,
        "compare_model": compare_engine.model_id if compare_engine is not None else "",
        "test_files": len(scored), "changed_since": str(opts.changed_since or ""), "holes": {k: sum(h.kind == k for h in holes) for k in opts.kinds},
        "categories": {c: categories.count(c) for c in sorted(set(categories))},
        "seed": opts.seed, "seconds": round(time.perf_counter() - t0, 1),
        "budgets": {k: getattr(cfg.completion, k) for k in ("prefix_tokens", "suffix_tokens", "context_tokens",
                                                              "max_tokens", "multiline")},
        "context_format": getattr(engine, "context_format", ""), **meta,
    }
    if swept is not None:
        summary["sweep"] = swept
        if sweep is not None and sweep.write_config:
            summary["sweep"]["config_written"] = str(write_weights(root, cfg, engine, swept["best"]))
    summary["table"] = render_table(summary)
    write_outputs(summary, out_dir)
    return summary
