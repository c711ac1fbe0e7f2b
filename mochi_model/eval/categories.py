"""Hole categories: where a completion's answer can come from.

- ``docstring`` — the target line is a comment or lies inside a string block (docstrings);
- ``cross_file`` — the target line uses an identifier that the project index defines in *another*
  file and that does not occur in the file before the cursor (the CrossCodeEval criterion: the
  model cannot copy it from the prefix, so project context is the only source). As in CrossCodeEval
  only *uses* count: import statements, the names a line defines itself (``def name``, ``x =``),
  dunder names and generic names defined in many files (``run``, ``get``) do not;
- ``in_file`` — everything else.

Retrieval exists for the cross-file holes; the eval reports every category separately.
"""

from __future__ import annotations

import io
import keyword
import re
import tokenize
from collections.abc import Iterable, Mapping

from mochi_model.eval.holes import Hole

CATEGORIES = ("cross_file", "in_file", "docstring")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMMENT_START = ("#", "//", "/*", "* ", "*/")


def definitions_by_name(symbols: Iterable[object]) -> dict[str, set[str]]:
    """``{name: {paths defining it}}`` from index symbols (anything with ``name`` and ``path``)."""
    out: dict[str, set[str]] = {}
    for s in symbols:
        out.setdefault(s.name, set()).add(s.path)  # type: ignore[attr-defined]
    return out


def string_lines(text: str) -> set[int]:
    """1-based lines of a Python file covered by a multi-line string or a statement-level string."""
    lines: set[int] = set()
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return lines
    prev = tokenize.NEWLINE
    for tok in tokens:
        if tok.type == tokenize.STRING and (tok.start[0] != tok.end[0] or prev in (tokenize.NEWLINE, tokenize.INDENT,
                                                                                  tokenize.DEDENT, tokenize.NL)):
            lines.update(range(tok.start[0], tok.end[0] + 1))
        if tok.type not in (tokenize.COMMENT,):
            prev = tok.type
    return lines


_IMPORT_LINE = re.compile(r"^\s*(from\s+\S+\s+import\b|import\s|export\s.*\sfrom\s|use\s)")
_DEFINES = re.compile(r"\b(?:def|class|function|func|fn|struct|interface|type|const|let|var)\s+([A-Za-z_]\w*)"
                      r"|^\s*(?:self\.|this\.)?([A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=)")
GENERIC_DEFINITIONS = 3  # a name defined in more files than this is generic (run, get, name)


def cross_file_names(target: str, before: str, path: str, defined: Mapping[str, set[str]]) -> list[str]:
    """Identifiers ``target`` uses that another file defines and ``before`` lacks (see module docstring)."""
    if _IMPORT_LINE.match(target):
        return []
    seen_before = set(_WORD.findall(before))
    own = {n for m in _DEFINES.finditer(target) for n in m.groups() if n}
    out = []
    for name in dict.fromkeys(_WORD.findall(target)):
        if keyword.iskeyword(name) or name in seen_before or name in own or name.startswith("__"):
            continue
        where = defined.get(name, set()) - {path}
        if where and len(where) <= GENERIC_DEFINITIONS:
            out.append(name)
    return out


def categorize(holes: list[Hole], files: Mapping[str, str], defined: Mapping[str, set[str]]) -> list[str]:
    """The category of each hole (same order)."""
    strings: dict[str, set[int]] = {}
    out = []
    for h in holes:
        text = files[h.path]
        line_no = text.count("\n", 0, h.cursor) + 1
        if h.path.endswith((".py", ".pyi")) and h.path not in strings:
            strings[h.path] = string_lines(text)
        first = h.target.lstrip()
        if first.startswith(_COMMENT_START) or line_no in strings.get(h.path, ()):
            out.append("docstring")
        elif cross_file_names(h.target, text[:h.cursor], h.path, defined):
            out.append("cross_file")
        else:
            out.append("in_file")
    return out
