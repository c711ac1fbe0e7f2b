"""Turn stored pattern sites (and symbol names) into ranked :class:`Pattern` records.

Sites are per file; here they are summed per ``(kind, language, key)``, kept when they recur
(seen at least :data:`MIN_COUNT` times), given a one-sentence description and up to five
``path:line`` examples. Naming conventions come from the symbols table: for each language and
symbol kind, the dominant case style (snake_case, camelCase, PascalCase, UPPER_CASE).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from typing import Any

from mochi_index.types import Pattern

MIN_COUNT = {"call_sequence": 3}
DEFAULT_MIN_COUNT = 2
MAX_EXAMPLES = 5

_DESCRIBE = {
    "error_raise": "Errors are raised as `{key}` ({count}x in {files} files).",
    "error_catch": "Errors are handled with `{key}` ({count}x in {files} files).",
    "logging": "Logging goes through `{key}` ({count}x in {files} files).",
    "decorator": "`{key}` decorates {count} definitions in {files} files.",
    "import_alias": "The project imports `{key}` ({count}x in {files} files).",
    "call_sequence": "`{key}` — these calls follow each other {count}x in {files} files.",
}


def case_style(name: str) -> str:
    core = name.strip("_")
    if not core:
        return "other"
    if re.fullmatch(r"[A-Z][A-Z0-9_]*", core) and len(core) > 1:
        return "UPPER_CASE"
    if re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)+", core):
        return "snake_case"
    if re.fullmatch(r"[a-z][a-z0-9]*", core):
        return "lowercase"
    if re.fullmatch(r"[a-z][a-z0-9]*([A-Z][a-z0-9]*)+", core):
        return "camelCase"
    if re.fullmatch(r"[A-Z][a-z0-9]*([A-Z][a-z0-9]*)*", core):
        return "PascalCase"
    return "other"


def aggregate_sites_table(tbl: Any) -> list[Pattern]:
    """Sum the Arrow ``pattern_sites`` rows per (kind, language, key) into recurring patterns."""
    import pyarrow.compute as pc

    if tbl.num_rows == 0:
        return []
    tbl = tbl.sort_by([("path", "ascending"), ("line", "ascending")])
    g = tbl.group_by(["kind", "language", "key"], use_threads=False).aggregate([
        ("count", "sum"), ("path", "count_distinct"), ("path", "list"), ("line", "list"), ("snippet", "first")])
    g = g.filter(pc.greater_equal(g["count_sum"], DEFAULT_MIN_COUNT))
    paths = pc.list_slice(g["path_list"], 0, MAX_EXAMPLES).to_pylist()
    lines = pc.list_slice(g["line_list"], 0, MAX_EXAMPLES).to_pylist()
    out: list[Pattern] = []
    cols = [g[c].to_pylist() for c in ("kind", "language", "key", "count_sum", "path_count_distinct", "snippet_first")]
    for i, (kind, language, key, count, files, snippet) in enumerate(zip(*cols, strict=True)):
        if count < MIN_COUNT.get(kind, DEFAULT_MIN_COUNT):
            continue
        text = _DESCRIBE.get(kind, "`{key}` ({count}x in {files} files).")
        out.append(Pattern(kind=kind, language=language, key=key, count=count,
                           description=text.format(key=key, count=count, files=files),
                           examples=[f"{p}:{n}" for p, n in zip(paths[i], lines[i], strict=True)],
                           snippet=snippet))
    return out


def naming_patterns_table(tbl: Any) -> list[Pattern]:
    """:func:`naming_patterns` over the columns of the Arrow ``symbols`` table."""
    cols = {c: tbl[c].to_pylist() for c in ("name", "kind", "language", "path", "start_line")}
    rows = [dict(zip(cols, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]
    return naming_patterns(rows)


def naming_patterns(symbols: list[dict[str, Any]]) -> list[Pattern]:
    """One pattern per (language, symbol kind): the dominant case style of its names."""
    styles: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    example: dict[tuple[str, str, str], str] = {}
    for s in symbols:
        style = case_style(s["name"])
        styles[(s["language"], s["kind"])][style] += 1
        example.setdefault((s["language"], s["kind"], style), f"{s['path']}:{s['start_line']}")
    out: list[Pattern] = []
    for (language, kind), counter in styles.items():
        total = sum(counter.values())
        # one-word lowercase names fit snake_case and camelCase alike: count them with the dominant one
        lower = counter.pop("lowercase", 0)
        if not counter:
            counter["lowercase"] = lower
            lower = 0
        style, n = counter.most_common(1)[0]
        n += lower if style in ("snake_case", "camelCase") else 0
        if total < DEFAULT_MIN_COUNT or style == "other":
            continue
        out.append(Pattern(
            kind="naming", language=language, key=f"{kind} names: {style}", count=n,
            description=f"{n} of {total} {language} {kind} names ({100 * n // total}%) use {style}.",
            examples=[example[(language, kind, style)]], snippet=""))
    return out


_WORDS = re.compile(r"[A-Za-z][a-z0-9]*|[0-9]+")
STOP = frozenset("the and for with from into that this how what when use using code want way some".split())
KIND_WORDS = {
    "logging": {"log", "logs", "logging", "logger", "print", "debug", "warn", "warning"},
    "error_raise": {"raise", "raises", "throw", "throws", "error", "errors", "exception", "fail", "panic"},
    "error_catch": {"catch", "except", "handle", "handling", "error", "errors", "exception", "try", "recover"},
    "decorator": {"decorator", "decorators", "decorate", "annotation", "annotations", "attribute", "derive"},
    "import_alias": {"import", "imports", "alias", "aliases", "use"},
    "naming": {"name", "names", "naming", "convention", "conventions", "case", "style"},
    "call_sequence": {"call", "calls", "sequence", "then", "after", "before"},
}


def words_of(text: str) -> set[str]:
    """Lower-cased words of prose or code (identifiers split at ``_`` and camelCase)."""
    return {w.lower() for w in _WORDS.findall(text)}


def pattern_words(p: Pattern) -> frozenset[str]:
    return frozenset(words_of(f"{p.key} {p.snippet}"))


def rank(patterns: list[tuple[Pattern, frozenset[str]]], query: str | None, language: str | None,
         kind: str | None, limit: int) -> list[Pattern]:
    """Filter by language/kind; score by whole-word overlap with ``query`` (a goal in words or a code
    excerpt), by the query naming the pattern's kind ("log", "raise", "decorator"), and by frequency."""
    words = {w for w in words_of(query or "") if len(w) > 2 and w not in STOP}
    scored: list[tuple[float, Pattern]] = []
    for p, pwords in patterns:
        if (language and p.language != language) or (kind and p.kind != kind):
            continue
        freq = math.log1p(p.count)
        if words:
            hits = len(words & pwords)
            kind_hit = bool(words & KIND_WORDS.get(p.kind, set()))
            if not hits and not kind_hit:
                continue
            scored.append((hits * 10 + kind_hit * 6 + freq, p))
        else:
            scored.append((freq, p))
    scored.sort(key=lambda x: (-x[0], x[1].kind, x[1].key))
    return [p for _, p in scored[:limit]]
