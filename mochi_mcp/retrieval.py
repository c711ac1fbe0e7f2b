"""Project context for the generation tools: definitions and similar code from the index, packed
into a token budget, each piece labelled ``path:start-end`` so answers can be traced to sources.

A label names the lines the piece's text was taken from, not the whole symbol it belongs to: a
definition is shown as its signature (and docstring), so its label spans the signature and
docstring lines, found in the file; a similar chunk is shown whole and spans the chunk.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
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
        root = getattr(index, "root", None)
        files: dict[str, list[str] | None] = {}
        for sym in index.definitions(names, limit=max_definitions):
            text = sym.signature + (f"\n    {sym.docstring.strip()}" if sym.docstring else "")
            if sym.path not in files:
                files[sym.path] = _read_lines(root, sym.path)
            start, end = shown_span(files[sym.path], sym)
            pieces.append(Piece(kind="definition", path=sym.path, start_line=start, end_line=end,
                                text=text, name=sym.qualified_name or sym.name))
    chunks = index.similar_chunks(query, limit=max_chunks, exclude_path=exclude_path,
                                  language=language or None) if max_chunks > 0 else []
    for ch in chunks:
        pieces.append(Piece(kind="similar", path=ch.path, start_line=ch.start_line, end_line=ch.end_line,
                            text=ch.text, name=ch.symbol))
    return pack(pieces, budget_tokens, count)


_WS = re.compile(r"\s+")
_COMMENT_LINE = re.compile(r"^\s*(//|/\*|\*|#(?!\[)|--)")
_ATTRIBUTE_LINE = re.compile(r"^\s*(@|#\[)")
_DOC_OPEN = re.compile(r"""^[rRuUbBfF]*('''|\"\"\"|'|")""")


def _read_lines(root: Any, rel: str) -> list[str] | None:
    if root is None:
        return None
    try:
        return (Path(root) / rel).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None


def shown_span(lines: list[str] | None, sym: Any) -> tuple[int, int]:
    """The 1-based lines of ``sym``'s signature (and docstring or leading comment) in ``lines``.

    Falls back to the signature's first line when the file is unreadable or no longer matches the
    index (edited since), never to the whole symbol: the prompt shows only the header.
    """
    start = int(sym.start_line)
    fallback = (start, start)
    if not lines or start < 1 or start > len(lines):
        return fallback
    # The index stores the signature whitespace-collapsed: take file lines until they cover it.
    want = _WS.sub("", sym.signature)
    want = want[: max(1, len(want) - 2)]  # ignore a trailing `{` / `:` the index may have trimmed
    got = ""
    end = 0
    for i in range(start - 1, min(len(lines), start + 59)):
        got += _WS.sub("", lines[i])
        if want in got:
            end = i + 1
            break
    if not end:
        return fallback  # the file changed since it was indexed
    if not (sym.docstring or "").strip():
        return start, end
    if getattr(sym, "language", "") == "python":
        return start, _python_docstring_end(lines, end)
    # Other languages: the doc is the comment block right above the definition (and its attributes).
    top = start
    i = start - 2
    while i >= 0 and (_COMMENT_LINE.match(lines[i]) or _ATTRIBUTE_LINE.match(lines[i])):
        if _COMMENT_LINE.match(lines[i]):
            top = i + 1
        i -= 1
    return top, end


def _python_docstring_end(lines: list[str], header_end: int) -> int:
    """The last line of the docstring right after a header that ends on line ``header_end``."""
    i = header_end  # 0-based index of the line after the header
    while i < len(lines) and not lines[i].strip():
        i += 1
    m = _DOC_OPEN.match(lines[i].strip()) if i < len(lines) else None
    if m is None:
        return header_end
    quote, rest = m.group(1), lines[i].strip()[m.end():]
    if len(quote) == 1 or quote in rest:
        return i + 1
    for j in range(i + 1, min(len(lines), i + 400)):
        if quote in lines[j]:
            return j + 1
    return header_end


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
