"""One file in, its index rows out: read, check the bytes, parse, extract symbols/chunks/sites.

:func:`parse_file` is a plain function of picklable arguments so the indexer can run it in a
process pool; it never raises for a bad file, it returns a :class:`Parsed` with ``skip`` set.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from mochi_index.chunks import make_chunks
from mochi_index.languages import parser_for
from mochi_index.patterns import Site, mine_sites
from mochi_index.symbols import extract_symbols
from mochi_index.terms import chunk_terms
from mochi_index.types import Chunk, Symbol
from mochi_index.walk import classify_content

logger = logging.getLogger(__name__)


@dataclass
class Parsed:
    path: str
    language: str
    content_hash: str = ""
    size: int = 0
    mtime_ns: int = 0
    skip: str = ""  # reason when the file is kept out of the index
    symbols: list[Symbol] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    sites: list[Site] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)  # FTS terms per chunk (computed in the worker)
    counts: tuple[int, int, int] | None = None  # (symbols, chunks, sites) once the lists were turned into rows

    def row_counts(self) -> tuple[int, int, int]:
        return self.counts if self.counts is not None else (len(self.symbols), len(self.chunks), len(self.sites))


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def parse_bytes(path: str, language: str, data: bytes, chunk_tokens: int, *, check: bool = True) -> Parsed:
    """Parse ``data`` (the file's bytes) as ``language``."""
    out = Parsed(path=path, language=language, content_hash=content_hash(data), size=len(data))
    reason = classify_content(data) if check else ""
    if reason:
        out.skip = reason
        return out
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        out.skip = "not_utf8"
        return out
    text = text.replace("\r\n", "\n")
    tree = parser_for(language).parse(text.encode("utf-8"))
    root = tree.root_node
    if root.has_error and _mostly_errors(root):
        logger.warning("%s: too many syntax errors to index; it is left out until it parses", path)
        out.skip = "parse_error"
        return out
    out.symbols = extract_symbols(root, path, language)
    out.chunks = make_chunks(root, text, path, language, chunk_tokens)
    out.sites = mine_sites(root, language)
    out.terms = [chunk_terms(c) for c in out.chunks]
    return out


def _mostly_errors(root) -> bool:  # type: ignore[no-untyped-def]
    total = max(1, root.end_byte - root.start_byte)
    bad = sum(c.end_byte - c.start_byte for c in root.children if c.type == "ERROR" or c.is_missing)
    return root.type == "ERROR" or bad * 2 > total


def parse_file(root: str, path: str, language: str, chunk_tokens: int) -> Parsed:
    """Read ``root/path`` and parse it; unreadable files come back with ``skip='unreadable'``."""
    full = Path(root) / path
    try:
        st = full.stat()
        data = full.read_bytes()
    except OSError:
        return Parsed(path=path, language=language, skip="unreadable")
    try:
        out = parse_bytes(path, language, data, chunk_tokens)
    except Exception:  # a grammar crash must not stop a whole-project run
        logger.exception("%s: parser failed", path)
        out = Parsed(path=path, language=language, content_hash=content_hash(data), skip="parse_error")
    out.mtime_ns = st.st_mtime_ns
    out.size = st.st_size
    return out


def parse_many(root: str, jobs: list[tuple[str, str]], chunk_tokens: int) -> list[Parsed]:
    """Parse a batch of ``(path, language)`` (one pool task, to amortise pickling)."""
    return [parse_file(root, p, lang, chunk_tokens) for p, lang in jobs]
