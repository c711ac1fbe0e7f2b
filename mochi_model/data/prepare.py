"""`mochi prepare`: a project's files → filtered, split, rendered training data on disk.

Output folder::

    train.jsonl  valid.jsonl      samples (schema in mochi_model/data/samples.py)
    dataset.json                  summary: files per split (test files are held out for eval),
                                  samples/tokens per split and kind, dropped files and why,
                                  per-file hashes (a second --from-index run redoes changed files only)
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mochi_core.config import CompletionSection
from mochi_core.errors import MochiError
from mochi_index.languages import language_for_path
from mochi_model.data import filters
from mochi_model.data.formats import eos_of, get_format
from mochi_model.data.local_index import LocalIndex
from mochi_model.data.samples import Sample, SampleOptions, file_samples
from mochi_model.data.split import split_files
from mochi_model.fim import DEFAULT_CONTEXT_FORMAT

logger = logging.getLogger(__name__)

SKIP_DIRS = {".git", ".mochi", "__pycache__", ".tox", ".mypy_cache", ".pytest_cache"}


class DataError(MochiError):
    """Training data could not be prepared (no usable files, unreadable output)."""


@dataclass(kw_only=True)
class PrepareOptions:
    fim_format: str = "qwen"
    style: str = DEFAULT_CONTEXT_FORMAT
    seed: int = 0
    valid_frac: float = 0.1
    test_frac: float = 0.15
    budgets: CompletionSection = field(default_factory=lambda: CompletionSection(
        prefix_tokens=512, suffix_tokens=128, context_tokens=512))
    samples: SampleOptions = field(default_factory=SampleOptions)
    dedup_threshold: float = 0.85
    loss_score: Callable[[str], float] | None = None  # base-model loss for the Refact-style filter
    loss_low: float = 0.15  # mean nats/token below this: too predictable to teach anything
    loss_high: float = 4.0  # above this: noise (data blobs, odd encodings)
    usage_log: Path | None = None


def collect_files(root: Path, subdir: str = "") -> dict[str, str]:
    """Readable source files under ``root/subdir`` keyed by root-relative posix path."""
    root = Path(root)
    base = root / subdir if subdir else root
    out: dict[str, str] = {}
    for p in sorted(base.rglob("*")):
        if not p.is_file() or language_for_path(p.name) is None or any(part in SKIP_DIRS for part in p.parts):
            continue
        try:
            out[p.relative_to(root).as_posix()] = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
    return out


def files_from_index(root: Path) -> dict[str, str]:
    """The files the project's LanceDB index knows (so training follows the live index)."""
    from mochi_index import ProjectIndex

    idx = ProjectIndex.open(Path(root), create=False)
    try:
        paths = [getattr(f, "path", f) for f in idx.iter_files()]
    finally:
        idx.close()
    out = {}
    for rel in paths:
        try:
            out[str(rel)] = (Path(root) / str(rel)).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
    return out


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prepare(
    files: dict[str, str],
    output: Path,
    *,
    options: PrepareOptions | None = None,
    repo_name: str = "project",
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Filter, split and render samples; write JSONL + ``dataset.json``; return the summary.

    Args:
        files: ``{relative path: text}``.
        output: folder to write (created).
        options: formats, budgets, split fractions.
        repo_name: shown in the repo-level prompt header.
        previous: an earlier ``dataset.json`` in ``output``; unchanged files keep their samples.

    Raises:
        DataError: when no file survives the filters.
    """
    opts = options or PrepareOptions()
    fmt = get_format(opts.fim_format)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    dropped: dict[str, str] = {}
    kept: dict[str, str] = {}
    for path, text in files.items():
        reason = filters.path_reason(path) or filters.content_reason(text)
        if reason:
            dropped[path] = reason
        else:
            kept[path] = filters.strip_license_header(text)
    for path in filters.near_duplicates(kept, opts.dedup_threshold):
        dropped[path] = "near_duplicate"
        kept.pop(path)
    if opts.loss_score is not None:
        for path, reason in filters.loss_filter(kept, opts.loss_score, low=opts.loss_low,
                                                high=opts.loss_high).items():
            dropped[path] = reason
            kept.pop(path)
    if not kept:
        raise DataError(f"no usable source files ({len(dropped)} dropped: "
                        f"{filters.count_reasons(dropped.values())}); check the repository path")
    splits = split_files(kept, valid_frac=opts.valid_frac, test_frac=opts.test_frac, seed=opts.seed)
    train_index = LocalIndex({p: kept[p] for p in splits["train"]})
    sopts = SampleOptions(**{**opts.samples.__dict__, "style": opts.style, "repo": repo_name,
                             "budgets": opts.budgets})
    hashes = {p: _sha(t) for p, t in kept.items()}
    old_hashes = (previous or {}).get("hashes", {}) if _same_settings(previous, opts) else {}
    summary_splits: dict[str, Any] = {}
    rejected = _rejected_texts(opts.usage_log)
    for split in ("train", "valid"):
        reused = _reusable(output / f"{split}.jsonl", old_hashes, hashes)
        samples: list[dict[str, str]] = []
        for path in splits[split]:
            if path in reused:
                samples += reused[path]
                continue
            rng = random.Random(f"{opts.seed}:{path}")
            lang = language_for_path(path) or "python"
            for s in file_samples(path, kept[path], fmt, rng=rng, index=train_index, options=sopts, language=lang):
                if s.completion.removesuffix(eos_of(fmt)).strip() not in rejected:
                    samples.append(s.to_json())
        if split == "train":
            samples += [s.to_json() for s in _accepted_samples(opts.usage_log, fmt)]
        with open(output / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for s in samples:
                f.write(json.dumps(s) + "\n")
        kinds: dict[str, int] = {}
        for s in samples:
            kinds[s["kind"]] = kinds.get(s["kind"], 0) + 1
        summary_splits[split] = {
            "files": len(splits[split]), "samples": len(samples), "by_kind": kinds,
            "tokens_approx": sum(len(s["prompt"]) + len(s["completion"]) for s in samples) // 4,
            "reused_files": len(reused),
        }
    summary_splits["test"] = {"files": len(splits["test"])}
    summary = {
        "schema": 1, "repo": repo_name, "fim_format": fmt.name, "style": opts.style, "seed": opts.seed,
        "budgets": {"prefix_tokens": opts.budgets.prefix_tokens, "suffix_tokens": opts.budgets.suffix_tokens,
                    "context_tokens": opts.budgets.context_tokens},
        "split_files": splits, "splits": summary_splits,
        "dropped": dropped, "dropped_counts": filters.count_reasons(dropped.values()),
        "hashes": hashes,
        # per train file, its lines: an update trains on the samples whose target lines are new
        "line_hashes": {p: line_hashes(kept[p]) for p in splits["train"]},
    }
    (output / "dataset.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def line_hash(line: str) -> str:
    """Short hash of one source line, whitespace at both ends ignored (re-indentation is not a change)."""
    return hashlib.sha256(line.strip().encode()).hexdigest()[:8]


def line_hashes(text: str) -> list[str]:
    """The distinct non-blank lines of ``text``, hashed and sorted: what an adapter update compares a
    changed file's samples with (:func:`mochi_model.training.update.plan_update`)."""
    return sorted({line_hash(ln) for ln in text.splitlines() if ln.strip()})


def _same_settings(previous: dict[str, Any] | None, opts: PrepareOptions) -> bool:
    return bool(previous) and previous.get("fim_format") == opts.fim_format and \
        previous.get("style") == opts.style and previous.get("seed") == opts.seed


def _reusable(path: Path, old: dict[str, str], new: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """Samples of files whose hash did not change since the previous run."""
    if not old or not path.exists():
        return {}
    out: dict[str, list[dict[str, str]]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = json.loads(line)
            if s["kind"] != "accepted" and old.get(s["path"]) == new.get(s["path"]) is not None:
                out.setdefault(s["path"], []).append(s)
    return out


def _usage_events(log: Path | None) -> list[dict[str, Any]]:
    if log is None or not Path(log).exists():
        return []
    out = []
    for line in Path(log).read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("skipping a malformed line in %s", log)
    return out


def _rejected_texts(log: Path | None) -> set[str]:
    return {str(e.get("text", "")).strip() for e in _usage_events(log) if e.get("event") == "rejected"} - {""}


def _accepted_samples(log: Path | None, fmt: Any) -> list[Sample]:
    from mochi_model.data.formats import render_prompt

    return [Sample(kind="accepted", path=str(e.get("path", "")), completion=str(e["text"]) + eos_of(fmt),
                   prompt=render_prompt(fmt, str(e.get("prefix", "")), str(e.get("suffix", "")), style="comment"))
            for e in _usage_events(log) if e.get("event") == "accepted" and e.get("text")]


def merge_datasets(parts: list[Path], output: Path) -> Path:
    """Concatenate several prepared folders (``train base --repos``) into one training folder."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    summaries = []
    for split in ("train", "valid"):
        with open(output / f"{split}.jsonl", "w", encoding="utf-8") as out:
            for part in parts:
                src = Path(part) / f"{split}.jsonl"
                if src.exists():
                    out.write(src.read_text(encoding="utf-8"))
    for part in parts:
        ds = Path(part) / "dataset.json"
        if ds.exists():
            summaries.append(json.loads(ds.read_text(encoding="utf-8")))
    (output / "dataset.json").write_text(json.dumps({"schema": 1, "merged": [str(p) for p in parts],
                                                     "repos": [s.get("repo") for s in summaries]}, indent=1),
                                         encoding="utf-8")
    return output
