"""Project context for completions: what the code before the cursor refers to in other files.

Used by prompt assembly (:func:`mochi_model.context.build_fim_request`, hence the LSP, MCP, CLI and
eval alike) and by training-data preparation, so training prompts look like inference prompts.
The ingredients (``[completion] retrieval``), each a list of candidate pieces:

- ``imports`` — the file's imports resolved to project files (``from pkg.mod import X`` → ``X`` in
  ``pkg/mod.py``; ``import pkg.mod as m`` / ``from pkg import mod`` → a skeleton of the module's
  top-level names), so a class comes with its members and a module with its functions: the names
  a next line most often takes from another file (CrossCodeEval's cross-file identifiers);
- ``definitions`` — definitions of the identifiers near the cursor and in the enclosing
  signature (parameter annotations, base classes), wherever the index finds them, and of the
  *receiver types* of the objects the last lines use (``self.provider.x`` with
  ``self.provider: Provider`` or ``self.provider = Provider(...)`` earlier in the file; the same for
  local names), ranked where the object was last used, so the class skeleton lists its methods;
- ``similar`` — BM25 code chunks from other files that share identifiers with the last lines.

The MCP tools' instruction retrieval (:func:`gather`, labelled :class:`Piece` s) lives here too, at
the end: one retrieval module for every prompt Mochi builds.

Candidates are ranked by how recently the file mentions them (the last mention before the cursor
wins; module skeletons of namespace imports first, similar chunks just below what the last three
lines mention), packed into the token budget, merged per file, and returned least relevant first so the best
sits next to the hole.
"""

from __future__ import annotations

import builtins
import keyword
import posixpath
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mochi_model.types import Snippet

INGREDIENTS = ("imports", "definitions", "similar")
FOLLOW_LINES = 6  # lines after a similar chunk shown with it (see :func:`similar_candidates`)
_LEFTOVER = -1e9  # rank of pieces that only take budget nothing else wanted
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^#\n]+)", re.MULTILINE)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w.]+(?:[ \t]+as[ \t]+\w+)?(?:[ \t]*,[ \t]*[\w.]+(?:[ \t]+as[ \t]+\w+)?)*)",
                     re.MULTILINE)
_JS_IMPORT = re.compile(r"""^[ \t]*import[ \t]+(?:type[ \t]+)?(.+?)[ \t]+from[ \t]+['"]([^'"]+)['"]""", re.MULTILINE)
_SCOPE = re.compile(r"^([ \t]*)(?:async[ \t]+)?(?:def|class)[ \t]+\w+")
_COMMON = set(keyword.kwlist) | set(dir(builtins)) | {"self", "cls", "None", "True", "False", "args", "kwargs"}
_JS_EXTENSIONS = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", "/index.ts", "/index.js")


@dataclass(frozen=True)
class Candidate:
    """A piece of context and how relevant it is (a later mention in the file = more relevant)."""

    path: str
    text: str
    kind: str  # definition | module | similar
    rank: float
    key: str  # de-duplication key
    follows: str = ""  # key of the candidate this one continues (shown right after it, only with it)


@dataclass(frozen=True)
class ImportedModule:
    module: str  # as written
    suffixes: tuple[str, ...]  # project-relative path suffixes it may resolve to
    names: tuple[tuple[str, str], ...]  # (imported name, local alias); () for a whole-module import
    alias: str = ""  # local name of a whole-module import


def identifiers_in_use(before: str, *, lines: int = 12) -> list[str]:
    """Names worth looking up, most important first: cursor line, recent lines, enclosing signatures."""
    tail = before.splitlines()[-lines:]
    ordered: list[str] = []
    for line in reversed(tail):
        for name in reversed(_WORD.findall(line)):
            if name not in _COMMON and len(name) > 1 and name not in ordered:
                ordered.append(name)
    for line in enclosing_signatures(before):
        for name in _WORD.findall(line):
            if name not in _COMMON and len(name) > 1 and name not in ordered:
                ordered.append(name)
    for m in _FROM_IMPORT.finditer(before):
        for name, _ in _names(m.group(2)):
            if name not in ordered:
                ordered.append(name)
    return ordered


_RECEIVER = re.compile(r"\b((?:self\.)?[A-Za-z_]\w*)\.[A-Za-z_]")
_TYPE_NAME = r"([A-Za-z_][\w.]*)"


def _stated_type(before: str, recv: str, hops: int = 1) -> str:
    """The type the file last states for ``recv`` (``x`` or ``self.x``): ``recv: T``, ``recv = T(``,
    or, ``hops`` times, the type of a plain name it is assigned from (``self.x = x`` with ``x: T``)."""
    name = recv.removeprefix("self.")
    head = rf"(?<![\w.]){re.escape(recv)}" if recv != name else rf"(?<![\w.])(?:self\.)?{re.escape(name)}"
    pat = re.compile(head + r"\s*(?::\s*(?:Optional\[)?" + _TYPE_NAME + r")?"
                     + r"\s*(?:=\s*(?:" + _TYPE_NAME + r"\s*\(|([A-Za-z_]\w*)\s*$))?", re.MULTILINE)
    found, source = "", ""
    for m in pat.finditer(before):
        if m.group(1) or m.group(2):
            found, source = m.group(1) or m.group(2), ""
        elif m.group(3) and m.group(3) != recv:
            found, source = "", m.group(3)
    if not found and source and hops > 0:
        return _stated_type(before, source, hops - 1)
    return found


def receiver_types(before: str, *, lines: int = 12) -> dict[str, str]:
    """``{type name: receiver}`` for the objects the last ``lines`` lines call or read attributes of,
    whose type the file states before the cursor — an annotation (``x: T``, ``self.x: T``, also
    ``Optional[T]``), a constructor call (``x = T(...)``), or a plain name it was assigned from
    (``self.x = x`` with the parameter ``x: T``). Cheap and Python-shaped; a type name is kept only
    when it is capitalised, the convention that tells a class from a function's return value."""
    tail = "\n".join(before.splitlines()[-lines:])
    out: dict[str, str] = {}
    for recv in dict.fromkeys(reversed(_RECEIVER.findall(tail))):
        if recv in _COMMON:
            continue
        base = _stated_type(before, recv).rsplit(".", 1)[-1]
        if base[:1].isupper() and base not in out and base not in _COMMON:
            out[base] = recv
    return out


def enclosing_signatures(before: str, *, max_lines: int = 400) -> list[str]:
    """Header lines of the function/class definitions enclosing the cursor, innermost first."""
    lines = before.splitlines()[-max_lines:]
    out: list[str] = []
    indent = None
    for line in reversed(lines):
        if not line.strip():
            continue
        ind = len(line) - len(line.lstrip())
        if indent is None:
            indent = ind + 1
        m = _SCOPE.match(line)
        if m and ind < indent:
            out.append(line)
            indent = ind
            if ind == 0:
                break
    return out


def _names(spec: str) -> list[tuple[str, str]]:
    out = []
    for part in spec.strip("() \t").replace("\n", " ").split(","):
        bits = part.split()
        if bits and bits[0].isidentifier() and bits[0] != "*":
            out.append((bits[0], bits[2] if len(bits) == 3 and bits[1] == "as" else bits[0]))
    return out


def _py_module_suffixes(module: str, path: str) -> tuple[str, ...]:
    """``pkg.mod`` → ``pkg/mod.py``, ``pkg/mod/__init__.py``; relative modules resolved against ``path``."""
    dots = len(module) - len(module.lstrip("."))
    rest = module[dots:].replace(".", "/")
    if dots:
        base = posixpath.dirname(path)
        for _ in range(dots - 1):
            base = posixpath.dirname(base)
        rest = posixpath.join(base, rest) if rest else base
    if not rest:
        return ()
    return (f"{rest}.py", f"{rest}/__init__.py")


def parse_imports(text: str, path: str, language: str) -> list[ImportedModule]:
    """The imports of ``text`` with the project paths they may resolve to (Python, JS/TS)."""
    out: list[ImportedModule] = []
    if language in ("javascript", "typescript", "tsx"):
        for m in _JS_IMPORT.finditer(text):
            spec, source = m.group(1), m.group(2)
            if not source.startswith("."):
                continue
            rest = posixpath.normpath(posixpath.join(posixpath.dirname(path), source))
            suffixes = tuple(rest + ext for ext in _JS_EXTENSIONS) if not Path(rest).suffix else (rest,)
            names = _names(spec[spec.find("{") + 1:spec.find("}")]) if "{" in spec else ()
            alias = spec.split(" as ")[-1].strip() if "* as" in spec else spec.split(",")[0].strip()
            out.append(ImportedModule(module=source, suffixes=suffixes, names=tuple(names),
                                      alias="" if "{" in alias else alias))
        return out
    for m in _FROM_IMPORT.finditer(text):
        module = m.group(1)
        suffixes = _py_module_suffixes(module, path)
        names = tuple(_names(m.group(2)))
        out.append(ImportedModule(module=module, suffixes=suffixes, names=names))
        for name, alias in names:  # `from pkg import mod`: mod may be a module itself
            sub = _py_module_suffixes(f"{module}.{name}" if module.strip(".") else module + name, path)
            out.append(ImportedModule(module=f"{module}.{name}", suffixes=sub, names=(), alias=alias))
    for m in _IMPORT.finditer(text):
        for part in m.group(1).split(","):
            bits = part.split()
            if not bits:
                continue
            module = bits[0]
            alias = bits[2] if len(bits) == 3 else module
            out.append(ImportedModule(module=module, suffixes=_py_module_suffixes(module, path), names=(),
                                      alias=alias))
    return out


def last_mentions(before: str) -> dict[str, int]:
    return {m.group(0): m.start() for m in _WORD.finditer(before)}


def import_candidates(index: Any, before: str, *, path: str, language: str,
                      view: Callable[[Any], str], mentions: dict[str, int]) -> list[Candidate]:
    """Classes/functions the file imports from project files, and skeletons of imported modules."""
    modules = [m for m in parse_imports(before, path, language) if m.suffixes]
    if not modules:
        return []
    suffixes = [s for m in modules for s in m.suffixes]
    symbols = [s for s in index.symbols_in(suffixes, limit=2000) if s.path != path]
    by_file: dict[str, list[Any]] = {}
    for s in symbols:
        by_file.setdefault(s.path, []).append(s)
    out: list[Candidate] = []
    for mod in modules:
        files = [p for p in by_file if any(p == x or p.endswith("/" + x) for x in mod.suffixes)]
        if not files:
            continue
        file = min(files, key=len)  # the shortest match is the most specific resolution
        syms = by_file[file]
        if mod.names:
            for name, alias in mod.names:
                for s in syms:
                    if s.name == name and not s.parent:
                        out.append(Candidate(path=s.path, text=view(s), kind="definition",
                                             rank=mentions.get(alias, -1), key=f"{s.path}:{s.qualified_name}"))
                        break
        else:
            tops = [s for s in syms if not s.parent]
            if tops:
                text = "\n".join(s.signature.splitlines()[0] for s in tops[:40])
                # a namespace import is used as `mod.name`: every such name is cross-file, and the
                # skeleton is one line per name, so it goes first (measured: bench/retrieval_bench.py)
                out.append(Candidate(path=file, text=text, kind="module", rank=len(before) + 1,
                                     key=f"{file}:<module>"))
    return out


def definition_candidates(index: Any, before: str, *, path: str, view: Callable[[Any], str],
                          has_body: Callable[[Any], bool], mentions: dict[str, int]) -> list[Candidate]:
    """Definitions (other files) of the identifiers near the cursor, in the enclosing signatures and
    of the receivers' types (:func:`receiver_types`, ranked where the receiver was last used)."""
    names = identifiers_in_use(before)
    types = receiver_types(before)
    if types:
        mentions = {**mentions, **{t: max(mentions.get(t, -1), mentions.get(r.split(".")[-1], -1))
                                   for t, r in types.items()}}
        names = [*names[:12], *(t for t in types if t not in names[:12]), *names[12:]]
    defs = index.definitions(names[:40], limit=24)
    per_name: dict[str, int] = {}
    for sym in defs:
        per_name[sym.name] = per_name.get(sym.name, 0) + 1
    seen_classes: set[str] = set()
    out: list[Candidate] = []
    for sym in defs:
        # a method name shared by many classes ("run") says little; keep unambiguous ones
        if sym.path == path or sym.parent in seen_classes or (sym.kind == "method" and per_name[sym.name] > 1):
            continue
        if sym.kind == "class" and has_body(sym):
            seen_classes.add(sym.qualified_name)  # its skeleton lists the members already
        out.append(Candidate(path=sym.path, text=view(sym), kind="definition", rank=mentions.get(sym.name, -1),
                             key=f"{sym.path}:{sym.qualified_name}"))
    return out


def similar_candidates(index: Any, before: str, *, path: str, limit: int, exclude: set[str],
                       names: Sequence[str], read_lines: Callable[[str, int, int], str | None] | None = None
                       ) -> list[Candidate]:
    """BM25 chunks from other files sharing identifiers with the last lines, ranked just below the cursor.

    ``read_lines(path, start, end)`` (1-based, inclusive) gives the :data:`FOLLOW_LINES` lines after
    a chunk in its file, a candidate of their own shown right after the chunk (RepoCoder's point — what came *after* code like the cursor's is what the next
    line most likely repeats: the method after a sibling class's ``__init__``). They rank below
    everything else, so they only take budget nothing else wanted: as a part of the chunk they
    pushed other snippets out and lost more exact matches than they won (docs/notes.md).
    """
    lines = before.splitlines()
    query = "\n".join(lines[-8:])
    chunks = index.similar_chunks(query, limit=limit + 2, exclude_path=path or None)
    # below what the last three lines mention, above everything older
    top = len(before) - len("\n".join(lines[-3:])) - 1
    picked = [c for c in chunks if not (c.symbol and (c.symbol.split(".")[0] in exclude or c.symbol in names))][:limit]
    starts = {(c.path, c.start_line) for c in picked}
    n = FOLLOW_LINES if read_lines else 0
    out = []
    for i, c in enumerate(picked):
        key = f"{c.path}:{c.start_line}"
        out.append(Candidate(path=c.path, text=c.text, kind="similar", rank=top - i, key=key))
        # not when the next chunk is shown itself (it would be there twice)
        shown_next = any((c.path, k) in starts for k in range(c.end_line + 1, c.end_line + n + 1))
        after = (read_lines(c.path, c.end_line + 1, c.end_line + n) or "").rstrip() if n and not shown_next else ""
        if after.strip():
            out.append(Candidate(path=c.path, text=after, kind="similar", rank=_LEFTOVER - i, key=key + ":after",
                                 follows=key))
    return out


def pack(candidates: Iterable[Candidate], budget: int, count: Callable[[str], int]) -> list[Snippet]:
    """Most relevant first while they fit; merged per file; returned least relevant first.

    A candidate that ``follows`` another is taken only with it and joined right after its text.
    """
    chosen: list[Candidate] = []
    seen: set[str] = set()
    used = 0
    for c in sorted(candidates, key=lambda c: -c.rank):
        if c.key in seen or not c.text.strip() or (c.follows and c.follows not in seen):
            continue
        n = count(c.text) + 4
        if used + n > budget:
            continue
        seen.add(c.key)
        chosen.append(c)
        used += n
    tails = {c.follows: c for c in chosen if c.follows}
    merged: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    for c in chosen:
        if c.follows:
            continue
        text = c.text if c.key not in tails else f"{c.text.rstrip()}\n{tails[c.key].text}"
        merged.setdefault(c.path, []).append(text)
        kinds.setdefault(c.path, "definition" if c.kind == "module" else c.kind)
    blocks = [Snippet(path=p, text="\n\n".join(texts), kind=kinds[p]) for p, texts in merged.items()]
    return list(reversed(blocks))


# --- Instruction retrieval (MCP domain_query and generate_diff) ------------------------------------
# Project context for an instruction rather than a cursor: definitions of the names it mentions and
# chunks similar to it, each piece labelled ``path:start-end`` so answers can be traced to sources. A
# label names the lines the piece's text was taken from, not the whole symbol it belongs to: a
# definition is shown as its signature (and docstring), so its label spans those lines, found in the
# file; a similar chunk is shown whole and spans the chunk.

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
    return pack_pieces(pieces, budget_tokens, count)


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


def pack_pieces(pieces: Iterable[Piece], budget_tokens: int, count: Callable[[str], int]) -> list[Piece]:
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
