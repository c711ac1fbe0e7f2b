"""An in-memory stand-in for ``ProjectIndex`` over a chosen set of files.

Training data must only see context from training files (no test-file leakage), and eval must
run where no LanceDB index was built; both use this. It answers the two lookups prompt assembly
needs — ``definitions(names)`` and ``similar_chunks(code)`` — with Python's ``ast`` for Python and
a regex for other languages, and BM25 over syntax-sized chunks.
"""

from __future__ import annotations

import ast
import math
import re
from collections import Counter, defaultdict

from mochi_index.types import Chunk, Symbol

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DEF_RE = re.compile(r"^\s*(?:export\s+)?(?:async\s+)?(?:def|class|function|func|fn|interface|type|struct)\s+([A-Za-z_]\w*)")


def _py_symbols(path: str, text: str) -> list[Symbol]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    lines = text.splitlines()
    out: list[Symbol] = []

    def visit(node: ast.AST, parent: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                body_start = child.body[0].lineno if child.body else child.lineno
                head = "\n".join(lines[child.lineno - 1:max(child.lineno, body_start - 1)])
                if isinstance(child.body[0], ast.Expr) and isinstance(getattr(child.body[0], "value", None), ast.Constant):
                    head = "\n".join(lines[child.lineno - 1:body_start - 1]) or lines[child.lineno - 1]
                qual = f"{parent}.{child.name}" if parent else child.name
                kind = "class" if isinstance(child, ast.ClassDef) else ("method" if parent else "function")
                deco = child.decorator_list[0].lineno if child.decorator_list else child.lineno
                out.append(Symbol(name=child.name, qualified_name=qual, kind=kind, signature=head.rstrip(),
                                  docstring=ast.get_docstring(child) or "", path=path, language="python",
                                  start_line=deco, end_line=child.end_lineno or child.lineno, parent=parent))
                if isinstance(child, ast.ClassDef):
                    visit(child, qual)
            elif isinstance(child, ast.Assign) and not parent and isinstance(node, ast.Module):
                for tgt in child.targets:
                    if isinstance(tgt, ast.Name):
                        seg = lines[child.lineno - 1]
                        out.append(Symbol(name=tgt.id, qualified_name=tgt.id, kind="constant", signature=seg,
                                          docstring="", path=path, language="python", start_line=child.lineno,
                                          end_line=child.end_lineno or child.lineno))

    visit(tree, "")
    return out


def _regex_symbols(path: str, text: str, language: str) -> list[Symbol]:
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        m = _DEF_RE.match(line)
        if m:
            out.append(Symbol(name=m.group(1), qualified_name=m.group(1), kind="function", signature=line.rstrip(),
                              docstring="", path=path, language=language, start_line=i, end_line=i))
    return out


class LocalIndex:
    """Definitions and BM25 chunks over ``{path: text}`` (see module docstring)."""

    def __init__(self, files: dict[str, str], *, language: str = "python", chunk_lines: int = 30) -> None:
        self.files = dict(files)
        self.symbols: list[Symbol] = []
        self.chunks: list[Chunk] = []
        self._by_name: dict[str, list[Symbol]] = defaultdict(list)
        # "c.py", "b/c.py", "a/b/c.py" -> the paths ending so (symbols_in answers in one lookup per suffix;
        # a scan of every symbol per suffix made it 80 % of `mochi prepare` on a 28k-line project)
        self._by_suffix: dict[str, list[str]] = defaultdict(list)
        self._path_symbols: dict[str, list[Symbol]] = {}
        for path, text in sorted(self.files.items()):
            lang = language if not path.endswith(".py") else "python"
            syms = _py_symbols(path, text) if lang == "python" else _regex_symbols(path, text, lang)
            self.symbols += syms
            self._path_symbols[path] = syms
            parts = path.split("/")
            for i in range(len(parts)):
                self._by_suffix["/".join(parts[i:])].append(path)
            for s in syms:
                self._by_name[s.name].append(s)
                self._by_name[s.qualified_name].append(s)
            self.chunks += self._chunk(path, text, lang, syms, chunk_lines)
        self._tf = [Counter(_WORD.findall(c.text)) for c in self.chunks]
        self._len = [sum(tf.values()) for tf in self._tf]
        self._avg = sum(self._len) / max(1, len(self._len))
        df: Counter[str] = Counter()
        for tf in self._tf:
            df.update(tf.keys())
        n = len(self.chunks)
        self._idf = {w: math.log(1 + (n - d + 0.5) / (d + 0.5)) for w, d in df.items()}

    @staticmethod
    def _chunk(path: str, text: str, lang: str, syms: list[Symbol], size: int) -> list[Chunk]:
        lines = text.splitlines()
        out = []
        tops = sorted((s for s in syms if not s.parent and s.kind != "constant"), key=lambda s: s.start_line)
        bounds = [(s.start_line, s.end_line, s.qualified_name) for s in tops]
        if not bounds:
            bounds = [(i + 1, min(len(lines), i + size), "") for i in range(0, len(lines), size)]
        for start, end, name in bounds:
            for a in range(start, end + 1, size):
                b = min(end, a + size - 1)
                body = "\n".join(lines[a - 1:b])
                if body.strip():
                    out.append(Chunk(id=f"{path}:{a}", path=path, language=lang, start_line=a, end_line=b,
                                     text=body, symbol=name))
        return out

    def definitions(self, names: list[str], limit: int = 20, language: str | None = None) -> list[Symbol]:
        """Symbols whose name or qualified name is in ``names`` (in the order of ``names``)."""
        out: list[Symbol] = []
        seen: set[tuple[str, str]] = set()
        for name in names:
            for s in self._by_name.get(name, ()):
                key = (s.path, s.qualified_name)
                if key not in seen:
                    seen.add(key)
                    out.append(s)
        return out[:limit]

    def symbols_in(self, path_suffixes: list[str], limit: int = 200) -> list[Symbol]:
        """Symbols of the files whose path ends with one of ``path_suffixes`` (as ``ProjectIndex.symbols_in``)."""
        paths = {p for x in path_suffixes if x for p in self._by_suffix.get(x, ())}
        out = [s for p in paths for s in self._path_symbols[p]]
        return sorted(out, key=lambda s: (s.path, s.start_line))[:limit]

    def members(self, qualified_name: str) -> list[Symbol]:
        """Direct members of a class (methods, nested classes)."""
        return [s for s in self.symbols if s.parent == qualified_name]

    def similar_chunks(self, code: str, limit: int = 5, exclude_path: str | None = None,
                       language: str | None = None) -> list[Chunk]:
        """BM25 over chunks, query = identifiers in ``code``."""
        q = Counter(_WORD.findall(code))
        scored = []
        for i, (c, tf) in enumerate(zip(self.chunks, self._tf, strict=True)):
            if c.path == exclude_path:
                continue
            s = 0.0
            for w in q:
                f = tf.get(w)
                if f:
                    s += self._idf[w] * f * 2.2 / (f + 1.2 * (0.25 + 0.75 * self._len[i] / self._avg))
            if s > 0:
                scored.append((s, i))
        scored.sort(key=lambda x: (-x[0], x[1]))
        return [Chunk(**{**self.chunks[i].__dict__, "score": s}) for s, i in scored[:limit]]

    def source(self, path: str, start_line: int, end_line: int) -> str | None:
        """Lines ``start_line..end_line`` (1-based, inclusive) of a known file."""
        text = self.files.get(path)
        if text is None:
            return None
        return "\n".join(text.splitlines()[start_line - 1:end_line])
