"""`mochi eval`: four configurations side by side on held-out files.

Configurations: ``base`` (no project context, adapters off), ``retrieval`` (index context),
``adapter`` (the adapter stack at its weights), ``both``. Every configuration sees the same holes
and the same prompt assembly as live completion (:func:`mochi_model.context.build_fim_request`);
decoding is greedy, holes are seeded, so a run repeats. Adapters are switched by stack weight
(0 = off) on one loaded engine, so no configuration pays a reload.

Snippet layout: with ``style="auto"`` the retrieval configuration runs with both the
comment-prefixed layout and the model's repo-level layout, and the better one (next-line exact
match, then edit similarity) is used for ``retrieval`` and ``both``; both results are reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mochi_core.config import CompletionSection
from mochi_model.context import build_fim_request
from mochi_model.eval.holes import Hole
from mochi_model.eval.metrics import bootstrap_ci, edit_similarity, exact_match, mean, paired_diff_ci

logger = logging.getLogger(__name__)

CONFIGS: list[tuple[str, bool, bool]] = [("base", False, False), ("retrieval", True, False),
                                         ("adapter", False, True), ("both", True, True)]


@dataclass(kw_only=True)
class HoleResult:
    config: str
    kind: str
    path: str
    target: str
    pred: str
    em: float
    es: float
    ms: float


def _set_adapters(engine: Any, on: bool, weights: list[float]) -> None:
    if getattr(engine, "adapter_stack", None) is None:
        return
    engine.set_adapter_weights(weights if on else [0.0] * len(weights))


def run_holes(engine: Any, holes: list[Hole], files: dict[str, str], *, config: str, retrieval: bool,
              index: Any, budgets: CompletionSection, style: str, language: str = "python",
              on_hole: Callable[[], None] | None = None) -> list[HoleResult]:
    """Complete every hole once with the engine as it is set up now."""
    if hasattr(engine, "context_format"):
        engine.context_format = style
    out = []
    for h in holes:
        req = build_fim_request(h.document(files[h.path]), h.cursor, path=h.path, language=language,
                                index=index if retrieval else None, config=budgets)
        t0 = time.perf_counter()
        comp = engine.complete_fim(req.prefix, req.suffix, req.snippets, max_tokens=48 if h.kind == "next_line" else 128,
                                   multiline=h.kind != "next_line", path=h.path, language=language)
        ms = comp.total_ms or (time.perf_counter() - t0) * 1000
        pred = comp.text.split("\n")[0] if h.kind == "next_line" else comp.text
        out.append(HoleResult(config=config, kind=h.kind, path=h.path, target=h.target, pred=pred,
                              em=exact_match(pred, h.target), es=edit_similarity(pred, h.target), ms=ms))
        if on_hole:
            on_hole()
    return out


def summarize(results: dict[str, list[HoleResult]], seed: int = 0) -> dict[str, Any]:
    """Per configuration and hole kind: EM and ES with 95 % CIs, latency; gains vs base."""
    out: dict[str, Any] = {"configs": {}, "gains": {}}
    for name, rows in results.items():
        per: dict[str, Any] = {}
        for kind in sorted({r.kind for r in rows}):
            rs = [r for r in rows if r.kind == kind]
            em, es = [r.em for r in rs], [r.es for r in rs]
            lat = sorted(r.ms for r in rs)
            per[kind] = {"n": len(rs), "em": mean(em), "em_ci": bootstrap_ci(em, seed=seed),
                         "es": mean(es), "es_ci": bootstrap_ci(es, seed=seed),
                         "latency_ms_mean": mean(lat), "latency_ms_p50": lat[len(lat) // 2]}
        out["configs"][name] = per
    base = results.get("base")
    if base:
        for name, rows in results.items():
            if name == "base" or len(rows) != len(base):
                continue
            g: dict[str, Any] = {}
            for kind in sorted({r.kind for r in rows}):
                a = [r.em for r in rows if r.kind == kind]
                b = [r.em for r in base if r.kind == kind]
                d, lo, hi = paired_diff_ci(a, b, seed=seed)
                g[kind] = {"em_gain": d, "ci": (lo, hi), "significant": lo > 0 or hi < 0,
                           "verdict": "gain" if lo > 0 else ("loss" if hi < 0 else "inside the noise")}
            out["gains"][name] = g
    return out


def run_eval(engine: Any, files: dict[str, str], holes: list[Hole], *, index: Any,
             budgets: CompletionSection | None = None, style: str = "auto",
             progress: Callable[[str, int, int], None] | None = None, seed: int = 0,
             configs: tuple[str, ...] = ("base", "retrieval", "adapter", "both"),
             previous: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run the four configurations (plus the style probe) and summarise.

    Args:
        engine: an ``Engine``; adapters are toggled through ``set_adapter_weights`` when it has a stack.
        files: ``{path: text}`` of the repository (holes point into these).
        holes: from :func:`mochi_model.eval.holes.sample_holes` on held-out files.
        index: ``ProjectIndex``/``LocalIndex`` for the retrieval configurations.
        style: ``repo`` | ``comment`` | ``auto`` (measure both, keep the better).
        progress: ``(config, done, total)`` callback.
        configs: which configurations to run now.
        previous: ``per_hole`` rows of an earlier run on the same holes; their configurations are
            reused (so base/retrieval can run while the adapter is still training).

    Returns:
        The summary dict (``configs``, ``gains``, ``style``, ``per_hole``).
    """
    budgets = budgets or CompletionSection()
    stack = getattr(engine, "adapter_stack", None)
    weights = list(stack.weights.values()) if stack is not None else []
    results: dict[str, list[HoleResult]] = {}
    for row in previous or []:
        results.setdefault(row["config"], []).append(HoleResult(**row))
    style_scores: dict[str, Any] = {}
    for st in ("repo", "comment"):
        nl = [r for r in results.get(f"retrieval[{st}]", []) if r.kind == "next_line"]
        if nl:
            style_scores[st] = {"em": mean([r.em for r in nl]), "es": mean([r.es for r in nl])}

    def go(name: str, retrieval: bool, adapter: bool, st: str) -> list[HoleResult]:
        _set_adapters(engine, adapter, weights)
        done = [0]

        def tick() -> None:
            done[0] += 1
            if progress:
                progress(name, done[0], len(holes))

        return run_holes(engine, holes, files, config=name, retrieval=retrieval, index=index, budgets=budgets,
                         style=st, on_hole=tick)

    plain = "repo" if style == "auto" else style
    if "base" in configs and "base" not in results:
        results["base"] = go("base", False, False, plain)
    chosen = style
    if "retrieval" in configs and style == "auto":
        for st in ("repo", "comment"):
            if f"retrieval[{st}]" not in results:
                results[f"retrieval[{st}]"] = go(f"retrieval[{st}]", True, False, st)
            nl = [r for r in results[f"retrieval[{st}]"] if r.kind == "next_line"] or results[f"retrieval[{st}]"]
            style_scores[st] = {"em": mean([r.em for r in nl]), "es": mean([r.es for r in nl])}
    if style == "auto":
        chosen = max(style_scores, key=lambda s: (style_scores[s]["em"], style_scores[s]["es"])) if style_scores else "repo"
        if f"retrieval[{chosen}]" in results:
            results["retrieval"] = [HoleResult(**{**r.__dict__, "config": "retrieval"}) for r in results[f"retrieval[{chosen}]"]]
    elif "retrieval" in configs:
        results["retrieval"] = go("retrieval", True, False, style)
    if stack is not None:
        if "adapter" in configs:
            results["adapter"] = go("adapter", False, True, plain)
        if "both" in configs:
            results["both"] = go("both", True, True, chosen)
    _set_adapters(engine, True, weights)
    summary = summarize({k: v for k, v in results.items() if not k.startswith("retrieval[")}, seed=seed)
    summary["style"] = {"chosen": chosen, "measured": style_scores}
    summary["per_hole"] = [r.__dict__ for name, rows in results.items() if name != "retrieval" or style != "auto"
                           for r in rows]
    return summary
