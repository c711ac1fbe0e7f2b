"""Project context for the generation tools: definitions and similar code from the index, packed
into a token budget, each piece labelled ``path:start-end`` so answers can be traced to sources.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Words of an instruction that never name project code.
_STOP = frozenset(
    "the and for with that this from into when then than what which while where each every return "
    "returns function method class write code make create add use using should would could given new "
    "file files value values list dict string number test tests call calls".split()
)


@dataclass(frozen=True, kw_only=True)
class Piece:
    """One piece of retrieved project code placed in a prompt."""

    kind: str  # definition | similar
    path: str
    start_line: int
    end_line: int
    text: str
    name: str = ""

    @property
    def location(self) -> str:
        return f"{self.path}:{self.start_line}-{self.end_line}"


def identifiers(text: str) -> list[str]:
    """Identifier-looking words of ``text`` worth looking up in the index, in first-seen order."""
    words = []
    for w in _IDENT.findall(text):
        if len(w) < 3 or w.lower() in _STOP:
            continue
        words.append(w)
    return list(dict.fromkeys(words))


def gather(index: Any, query: str, *, language: str = "", exclude_path: str | None = None,
           budget_tokens: int = 1200, count_tokens: Callable[[str], int] | None = None,
           max_definitions: int = 12, max_chunks: int = 6) -> list[Piece]:
    """Definitions of the identifiers in ``query`` first, then chunks similar to it, within budget."""
    count = count_tokens or (lambda s: (len(s) + 3) // 4)
    pieces: list[Piece] = []
    names = identifiers(query)[:40]
    if names:
        for sym in index.definitions(names, limit=max_definitions):
            text = sym.signature + (f"\n    {sym.docstring.strip()}" if sym.docstring else "")
            pieces.append(Piece(kind="definition", path=sym.path, start_line=sym.start_line,
                                end_line=sym.end_line, text=text, name=sym.qualified_name or sym.name))
    chunks = index.similar_chunks(query, limit=max_chunks, exclude_path=exclude_path,
                                  language=language or None) if max_chunks > 0 else []
    for ch in chunks:
        pieces.append(Piece(kind="similar", path=ch.path, start_line=ch.start_line, end_line=ch.end_line,
                            text=ch.text, name=ch.symbol))
    return pack(pieces, budget_tokens, count)


def pack(pieces: Iterable[Piece], budget_tokens: int, count: Callable[[str], int]) -> list[Piece]:
    """Keep pieces in priority order while they fit; drop duplicates and chunks covered by others."""
    out: list[Piece] = []
    used = 0
    seen: set[tuple[str, int, str]] = set()
    for p in pieces:
        key = (p.path, p.start_line, p.kind)
        if key in seen:
            continue
        if p.kind == "similar" and any(
            q.kind == "similar" and q.path == p.path and q.start_line <= p.start_line and p.end_line <= q.end_line
            for q in out
        ):
            continue
        n = count(p.text)
        if used + n > budget_tokens:
            continue
        seen.add(key)
        out.append(p)
        used += n
    return out


def render(pieces: Iterable[Piece], comment: str = "#") -> str:
    """Pieces as one text block, each headed by a comment with its location."""
    blocks = []
    for p in pieces:
        label = f"{comment} {p.location}" + (f" ({p.name})" if p.name else "")
        blocks.append(f"{label}\n{p.text.rstrip()}")
    return "\n\n".join(blocks)


def comment_prefix(language: str) -> str:
    return "#" if language in ("", "python") else "//"


def file_surroundings(text: str, *, budget_tokens: int, count: Callable[[str], int],
                      focus_line: int | None = None) -> str:
    """The part of a file that fits ``budget_tokens``: around ``focus_line`` when given, else its head."""
    lines = text.splitlines(keepends=True)
    if count(text) <= budget_tokens:
        return text
    start = 0
    if focus_line is not None:
        start = max(0, min(len(lines) - 1, focus_line - 1))
    lo = hi = start
    used = 0
    grew = True
    # Grow a window around the focus line, one line down and one up per round, within budget.
    while grew:
        grew = False
        if hi < len(lines) and used + count(lines[hi]) <= budget_tokens:
            used += count(lines[hi])
            hi += 1
            grew = True
        if lo > 0 and used + count(lines[lo - 1]) <= budget_tokens:
            used += count(lines[lo - 1])
            lo -= 1
            grew = True
    return "".join(lines[lo:hi])
