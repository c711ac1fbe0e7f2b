"""``suggest_pattern`` and the read-only resources: the project's own idioms, mined by the index.

Patterns come from the index with their counts and real ``path:line`` examples; the model only
writes a short example that follows them. The patterns need no model and are always returned; the
example has its own deadline, well inside the tool's time limit (:func:`example_deadline_s`), and
when the model does not finish it in time (a busy CPU) or cannot be loaded, the result says the
example was skipped and why (``example_skipped``) instead of losing the patterns with it. The same data backs the ``mochi://project/conventions``
and ``mochi://index/stats`` resources, which clients read without a tool call.
"""

from __future__ import annotations

import json
from typing import Any

from mochi_mcp.errors import BadToolInput, GenerationTimeout
from mochi_mcp.generation import CONSERVATIVE_TEMPERATURE, Limits, generate
from mochi_mcp.prompts import extract_code, pattern_example_prompt
from mochi_mcp.workspace import LANGUAGES, Workspace, language_for
from mochi_model.types import Engine

MAX_PATTERNS = 8
EXAMPLE_TOKENS = 200
CONVENTIONS_LIMIT = 25
EXAMPLE_DEADLINE_S = 30.0  # at most this long for the example...
EXAMPLE_DEADLINE_SHARE = 0.5  # ...and at most this share of the tool's time limit


def example_deadline_s(timeout_s: float) -> float:
    """How long the example may take: 30 s, or half the tool's time limit when that is shorter."""
    return min(EXAMPLE_DEADLINE_S, timeout_s * EXAMPLE_DEADLINE_SHARE)


def pattern_record(p: Any) -> dict[str, Any]:
    return {"kind": p.kind, "language": p.language, "key": p.key, "description": p.description,
            "count": p.count, "examples": list(p.examples)[:5], "snippet": p.snippet}


def suggest_pattern(ws: Workspace, engine: Engine | None, *, goal: str | None = None, code: str | None = None,
                    file_path: str | None = None, language: str | None = None, example: bool = True,
                    limits: Limits | None = None, engine_problem: str = "") -> dict[str, Any]:
    """The project's patterns relevant to ``goal`` (or to a piece of ``code``), plus a short example.

    Args:
        engine: generates the example; ``None`` (or ``example=False``) skips it.
        engine_problem: why there is no engine (e.g. the model failed to load), for ``example_skipped``.

    Returns:
        ``patterns`` (kind, key, description, count, ``path:line`` examples), ``example`` (code or ""),
        ``example_skipped`` ("" when the example is there or was not asked for, else why it is missing),
        ``language`` and ``matched`` (False when nothing matched and the top patterns were returned).

    Raises:
        BadToolInput, PathOutsideProject, IndexNotReady, GenerationCancelled. Never a timeout: an
        example that does not arrive in time is skipped.
    """
    query = (goal or "").strip() or (code or "").strip()
    if not query:
        raise BadToolInput("pass goal (what you want to do, e.g. 'log an error') or code (an excerpt to match)")
    rel = ws.relative(ws.resolve(file_path)) if file_path else ""
    lang = (language or "").strip().lower() or language_for(rel)
    if lang and lang not in set(LANGUAGES.values()):
        raise BadToolInput(f"unknown language {language!r}; use one of {', '.join(sorted(set(LANGUAGES.values())))}")
    index = ws.index(required=True)
    found = index.patterns(query=query, language=lang or None, limit=MAX_PATTERNS)
    matched = bool(found)
    if not found:  # nothing matched the goal: show the project's strongest conventions instead
        found = index.patterns(query=None, language=lang or None, limit=MAX_PATTERNS)
    records = [pattern_record(p) for p in found]
    lang = lang or (records[0]["language"] if records else "")
    text = skipped = ""
    if example and not records:
        skipped = "no patterns to follow"
    elif example and engine is None:
        skipped = engine_problem or "no model available"
    elif example and engine is not None:
        listing = "\n".join(f"- {r['description'] or r['key']} (count {r['count']}), e.g. `{r['key']}`"
                            + (f"\n  {r['snippet'].strip()}" if r["snippet"] else "") for r in records)
        prompt = pattern_example_prompt(project=ws.project_name, goal=query, language=lang,
                                        patterns_text=listing)
        limits = limits or Limits()
        deadline = example_deadline_s(limits.timeout_s)
        try:
            out = generate(engine, prompt, max_tokens=EXAMPLE_TOKENS, temperature=CONSERVATIVE_TEMPERATURE,
                           limits=Limits(timeout_s=deadline, cancel=limits.cancel), what="suggest_pattern example")
            text = extract_code(out.text)
        except GenerationTimeout:
            skipped = (f"the model did not finish the example within its {deadline:g}s deadline (a busy CPU?); "
                       "the patterns above come from the index and are complete")
    return {"patterns": records, "matched": matched, "example": text, "example_skipped": skipped,
            "language": lang, "query": query if goal else "(code excerpt)"}


def render_text(result: dict[str, Any]) -> str:
    lines = [] if result["matched"] else ["No pattern matched; the project's strongest conventions:"]
    for r in result["patterns"]:
        where = ", ".join(r["examples"][:3])
        lines.append(f"- [{r['kind']}] {r['description'] or r['key']} — {r['count']}× (e.g. {where})\n    {r['key']}")
    if not result["patterns"]:
        lines.append("The index has no patterns for this language yet.")
    if result["example"]:
        lines.append(f"\nExample following them:\n```{result['language']}\n{result['example'].rstrip()}\n```")
    elif result.get("example_skipped"):
        lines.append(f"\n(No example: {result['example_skipped']}.)")
    return "\n".join(lines)


def stats_json(ws: Workspace) -> str:
    """Index statistics as JSON (``mochi://index/stats``)."""
    index = ws.index(required=True)
    return json.dumps({"project": ws.project_name, "root": str(ws.root), **index.stats()}, indent=2, default=str)


def conventions_markdown(ws: Workspace) -> str:
    """The project's top patterns as Markdown (``mochi://project/conventions``)."""
    index = ws.index(required=True)
    found = index.patterns(query=None, limit=CONVENTIONS_LIMIT)
    lines = [f"# Conventions of {ws.project_name}", "",
             "Mined from the code by Mochi's index; count = occurrences, examples = `path:line`.", ""]
    by_kind: dict[str, list[Any]] = {}
    for p in found:
        by_kind.setdefault(p.kind, []).append(p)
    for kind, items in by_kind.items():
        lines.append(f"## {kind}")
        for p in items:
            lines.append(f"- `{p.key}` ({p.language}, {p.count}×): {p.description} — e.g. {', '.join(p.examples[:3])}")
        lines.append("")
    if not found:
        lines.append("No patterns found yet (the index has too little code, or none of a supported language).")
    return "\n".join(lines)
