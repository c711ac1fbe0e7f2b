"""`mochi eval` rows: every configuration on the same holes, through the one completion pipeline.

Each hole is completed by :func:`mochi_model.pipeline.complete_document` — the function the LSP,
MCP and CLI call — with the project's index, the ``[completion]`` budgets and the engine as
configured, so a row measures what a user of that configuration gets. Decoding is greedy and holes
are seeded, so a run repeats. Next-line holes stop decoding after the first line (greedy: it is the
first line of the user's suggestion), as do ``cross_file`` holes (next-line holes whose line needs a
name from another file); the time budget is off, so a busy machine cannot change a score.

Rows (:func:`plan_rows`):

- ``base`` (adapters at weight 0, no retrieval), ``retrieval``;
- ``adapter:NAME`` for each adapter alone (weight 1), ``stack`` (all at their weights; only with
  two or more), ``both`` (retrieval + the stack);
- ``compare:base`` / ``compare:retrieval`` — a plain comparison model on the same holes.

Adapters are switched by stack weight on one loaded engine, so no row pays a reload.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mochi_core.config import CompletionSection
from mochi_model.eval.holes import Hole
from mochi_model.eval.metrics import bootstrap_ci, edit_similarity, exact_match, mean, paired_diff_ci
from mochi_model.pipeline import complete_document

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Row:
    """One configuration: which engine, retrieval on/off, the stack's weights (None: no stack)."""

    name: str
    retrieval: bool
    weights: tuple[float, ...] | None = None
    engine: str = "main"  # main | compare


@dataclass(kw_only=True)
class HoleResult:
    config: str
    kind: str
    category: str
    path: str
    target: str
    pred: str
    em: float
    es: float
    ms: float
    hole: int = -1  # index into the run's holes (how a resumed run matches its checkpoint)


def stack_weights(engine: Any) -> tuple[list[str], list[float]]:
    """Names and configured weights of the engine's adapter stack ([] and [] without one)."""
    stack = getattr(engine, "adapter_stack", None)  # fakes and remote engines have none
    if stack is None:
        return [], []
    return list(stack.weights), list(stack.weights.values())


def plan_rows(engine: Any, *, compare: bool = False, only: Sequence[str] = (),
              best_weights: Sequence[float] | None = None) -> list[Row]:
    """The rows for this engine (and a comparison model), optionally only those named in ``only``;
    ``best_weights`` (from a sweep on the validation files) adds ``stack@best`` after ``stack``."""
    names, weights = stack_weights(engine)
    off = tuple(0.0 for _ in weights) if weights else None
    rows = [Row(name="base", retrieval=False, weights=off), Row(name="retrieval", retrieval=True, weights=off)]
    for i, name in enumerate(names):
        rows.append(Row(name=f"adapter:{name}", retrieval=False,
                        weights=tuple(1.0 if j == i else 0.0 for j in range(len(names)))))
    if len(names) > 1:
        rows.append(Row(name="stack", retrieval=False, weights=tuple(weights)))
        if best_weights is not None:
            rows.append(Row(name="stack@best", retrieval=False, weights=tuple(best_weights)))
    if names:
        rows.append(Row(name="both", retrieval=True, weights=tuple(weights)))
    if compare:
        rows += [Row(name="compare:base", retrieval=False, engine="compare"),
                 Row(name="compare:retrieval", retrieval=True, engine="compare")]
    if only:
        wanted = set(only)
        rows = [r for r in rows if r.name in wanted or r.name.split(":")[0].split("@")[0] in wanted]
    return rows


def run_row(engine: Any, row: Row, holes: list[Hole], categories: list[str], files: dict[str, str], *,
            index: Any, config: CompletionSection, on_hole: Callable[[], None] | None = None,
            done: dict[int, HoleResult] | None = None,
            on_result: Callable[[HoleResult], None] | None = None) -> list[HoleResult]:
    """Complete every hole once with ``row``'s settings (holes in file order, for KV prefix reuse).

    ``done`` holds results of this row from an interrupted run (by hole index): they are kept, not
    recomputed. ``on_result`` sees each new result as soon as it exists (the per-hole checkpoint).
    """
    done = done or {}
    if row.weights is not None and len(done) < len(holes):
        engine.set_adapter_weights(list(row.weights))
    order = sorted(range(len(holes)), key=lambda i: (holes[i].path, holes[i].cursor))
    out: list[HoleResult | None] = [done.get(i) for i in range(len(holes))]
    for i in order:
        if out[i] is not None:
            continue
        h = holes[i]
        res = complete_document(engine, h.document(files[h.path]), h.cursor, path=h.path,
                                index=index if row.retrieval else None, config=config, time_budget_s=None,
                                max_lines=None if h.kind == "span" else 1)
        pred = res.text
        out[i] = r = HoleResult(config=row.name, kind=h.kind, category=categories[i], path=h.path, target=h.target,
                                pred=pred, em=exact_match(pred, h.target), es=edit_similarity(pred, h.target),
                                ms=res.completion.total_ms, hole=i)
        if on_result:
            on_result(r)
        if on_hole:
            on_hole()
    return [r for r in out if r is not None]


def match_previous(records: list[dict[str, Any]], holes: list[Hole]) -> dict[str, dict[int, HoleResult]]:
    """Earlier results per row and hole index, kept only where they belong to these holes.

    Records without a hole index (files written before checkpoints) are matched in order; a record
    whose path, kind or target differs from the hole at its index (another seed, changed files) is
    dropped, so a resumed run never mixes two hole sets.
    """
    out: dict[str, dict[int, HoleResult]] = {}
    seen: dict[str, int] = {}
    for rec in records:
        r = HoleResult(**{k: v for k, v in rec.items() if k in HoleResult.__dataclass_fields__})
        if r.hole < 0:
            r.hole = seen.get(r.config, 0)
        seen[r.config] = r.hole + 1
        if 0 <= r.hole < len(holes):
            h = holes[r.hole]
            if (h.path, h.kind, h.target) == (r.path, r.kind, r.target):
                out.setdefault(r.config, {})[r.hole] = r
    return out


def _metrics(rs: list[HoleResult], seed: int) -> dict[str, Any]:
    em, es = [r.em for r in rs], [r.es for r in rs]
    lat = sorted(r.ms for r in rs)
    return {"n": len(rs), "em": mean(em), "em_ci": bootstrap_ci(em, seed=seed), "es": mean(es),
            "es_ci": bootstrap_ci(es, seed=seed), "latency_ms_mean": mean(lat),
            # no suggestion at all: what an under-trained adapter does (docs/notes.md, session 14)
            "empty": mean([float(not r.pred.strip()) for r in rs]),
            "latency_ms_p50": lat[len(lat) // 2] if lat else float("nan")}


def compare_rows(a: list[HoleResult], b: list[HoleResult], seed: int = 0) -> dict[str, Any]:
    """Paired EM difference ``a - b`` per hole kind, overall and per category, with 95 % CIs."""
    out: dict[str, Any] = {}
    for kind in sorted({r.kind for r in a}):
        ak = [r for r in a if r.kind == kind]
        bk = [r for r in b if r.kind == kind]
        entry = _diff(ak, bk, seed)
        entry["categories"] = {c: _diff([r for r in ak if r.category == c], [r for r in bk if r.category == c], seed)
                               for c in sorted({r.category for r in ak})}
        out[kind] = entry
    return out


def _diff(a: list[HoleResult], b: list[HoleResult], seed: int) -> dict[str, Any]:
    d, lo, hi = paired_diff_ci([r.em for r in a], [r.em for r in b], seed=seed)
    verdict = "gain" if lo > 0 else ("loss" if hi < 0 else "inside the noise")
    return {"n": len(a), "em_gain": d, "ci": (lo, hi), "significant": lo > 0 or hi < 0, "verdict": verdict}


def comparison_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """Which rows are compared: every row vs base; each adapter vs each adapter given before it (the
    project adapter vs one that never saw the project, an update vs the previous version); the stack
    vs each adapter; both vs retrieval; both vs the comparison model with retrieval (the headline question)."""
    pairs = [(n, "base") for n in names if n != "base"]
    adapters = [n for n in names if n.startswith("adapter:")]
    pairs += [(b, a) for i, a in enumerate(adapters) for b in adapters[i + 1:]]
    top = "stack" if "stack" in names else None
    if top:
        pairs += [(top, a) for a in adapters]
    if "stack@best" in names:  # weights chosen on the validation files (mochi_model.eval.sweep)
        pairs += [("stack@best", "stack")] + [("stack@best", a) for a in adapters]
    if "both" in names:
        pairs.append(("both", "retrieval"))
        if "compare:retrieval" in names:
            pairs.append(("both", "compare:retrieval"))
    if "compare:retrieval" in names and "compare:base" in names:
        pairs.append(("compare:retrieval", "compare:base"))
    return [(a, b) for a, b in pairs if a in names and b in names]


def summarize(results: dict[str, list[HoleResult]], seed: int = 0) -> dict[str, Any]:
    """Per row and hole kind: EM and ES with 95 % CIs, per category too; paired comparisons."""
    out: dict[str, Any] = {"configs": {}, "gains": {}, "comparisons": {}}
    for name, rows in results.items():
        per: dict[str, Any] = {}
        for kind in sorted({r.kind for r in rows}):
            rs = [r for r in rows if r.kind == kind]
            per[kind] = _metrics(rs, seed)
            per[kind]["categories"] = {c: _metrics([r for r in rs if r.category == c], seed)
                                       for c in sorted({r.category for r in rs})}
        out["configs"][name] = per
    for a, b in comparison_pairs(list(results)):
        if len(results[a]) != len(results[b]):
            continue
        cmp = compare_rows(results[a], results[b], seed)
        out["comparisons"][f"{a} vs {b}"] = cmp
        if b == "base":
            out["gains"][a] = cmp
    return out


def _ticker(name: str, total: int, progress: Callable[[str, int, int], None] | None) -> Callable[[], None]:
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(name, done, total)

    return tick


def run_eval(engine: Any, files: dict[str, str], holes: list[Hole], categories: list[str], *, index: Any,
             config: CompletionSection | None = None, compare_engine: Any = None,
             progress: Callable[[str, int, int], None] | None = None, seed: int = 0,
             only: Sequence[str] = (), previous: list[dict[str, Any]] | None = None,
             on_result: Callable[[HoleResult], None] | None = None,
             best_weights: Sequence[float] | None = None) -> dict[str, Any]:
    """Run every row of :func:`plan_rows` on the same holes and summarise.

    Args:
        engine: the engine with the adapter stack under test (weights restored afterwards).
        files: ``{path: text}`` of the repository (holes point into these).
        holes: from :func:`mochi_model.eval.holes.sample_holes` on held-out files.
        categories: one per hole (:func:`mochi_model.eval.categories.categorize`).
        index: the project's index built without the held-out files (retrieval rows).
        config: the ``[completion]`` section users run with.
        compare_engine: a plain comparison model (``compare:*`` rows), or None.
        progress: ``(row, done, total)`` callback.
        only: run only these rows (``adapter`` matches every ``adapter:*`` row).
        previous: ``per_hole`` records of an earlier (possibly interrupted) run on the same holes: finished
            rows are reused, half-done rows continue where they stopped.
        on_result: called with every newly computed hole result (a checkpoint writer).
        best_weights: the stack's weights chosen on the validation files (adds ``stack@best``).

    Returns:
        The summary dict (``configs``, ``gains``, ``comparisons``, ``rows``, ``per_hole``).
    """
    cfg = config or CompletionSection()
    _, weights = stack_weights(engine)
    earlier = match_previous(previous or [], holes)
    results: dict[str, list[HoleResult]] = {
        name: [done[i] for i in sorted(done)] for name, done in earlier.items() if len(done) == len(holes)}
    rows = plan_rows(engine, compare=compare_engine is not None, only=only, best_weights=best_weights)
    try:
        for row in rows:
            if row.name in results:
                continue
            done = earlier.get(row.name, {})
            if done:
                logger.info("row %s: %d of %d holes from the checkpoint", row.name, len(done), len(holes))
            tick = _ticker(row.name, len(holes) - len(done), progress)
            eng = compare_engine if row.engine == "compare" else engine
            results[row.name] = run_row(eng, row, holes, categories, files, index=index, config=cfg, on_hole=tick,
                                        done=done, on_result=on_result)
    finally:
        if weights:
            engine.set_adapter_weights(weights)
    summary = summarize(results, seed=seed)
    summary["rows"] = [r.name for r in rows if r.name in results]
    summary["per_hole"] = [r.__dict__ for rs in results.values() for r in rs]
    # half-done rows of the checkpoint that this run did not continue stay in it for a later --resume
    summary["per_hole"] += [done[i].__dict__ for name, done in earlier.items() if name not in results for i in sorted(done)]
    return summary
