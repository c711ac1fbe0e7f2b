"""Records the index stores and returns: the contract between the index and its readers.

The prompt builder, training data, MCP tools and the LSP read these; field names match the
LanceDB columns documented in README ("Index schema").
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class Symbol:
    """A definition found by tree-sitter."""

    name: str
    qualified_name: str  # "Class.method", "module-level name" for top-level
    kind: str  # function, method, class, interface, struct, enum, constant, type_alias, trait, ...
    signature: str  # the definition's header, e.g. "def load(path: Path) -> Config:"
    docstring: str  # docstring or leading comment, "" when none
    path: str  # project-relative, forward slashes
    language: str
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    parent: str = ""  # qualified name of the enclosing symbol


@dataclass(frozen=True, kw_only=True)
class Chunk:
    """A syntax-aware piece of a file for retrieval (a function/class with its signature)."""

    id: str
    path: str
    language: str
    start_line: int
    end_line: int
    text: str
    symbol: str = ""  # qualified name of the symbol the chunk belongs to, "" for module-level code
    score: float = 0.0  # retrieval score when returned by a search


@dataclass(frozen=True, kw_only=True)
class Pattern:
    """A recurring project idiom mined from the syntax trees."""

    kind: str  # error_raise, error_catch, logging, decorator, call_sequence, import_alias, naming, ...
    language: str
    key: str  # normalised form, e.g. "raise ConfigError(...)", "import numpy as np"
    description: str  # one human sentence
    count: int
    examples: list[str] = field(default_factory=list)  # "path:line" locations
    snippet: str = ""  # one representative source excerpt


@dataclass(frozen=True, kw_only=True)
class SearchHit:
    kind: str  # symbol | chunk | pattern
    score: float
    path: str
    start_line: int
    end_line: int
    title: str  # symbol qualified name, chunk symbol, or pattern key
    text: str


@dataclass(frozen=True, kw_only=True)
class FileRecord:
    """One row of the ``files`` table (``iter_files``); ``skip`` is non-empty for files kept out."""

    path: str
    language: str
    content_hash: str
    size: int
    mtime_ns: int
    indexed_at: float
    skip: str = ""


@dataclass(kw_only=True)
class IndexStats:
    """What one ``ProjectIndex.update()`` did."""

    files_seen: int = 0  # indexable files found by the walk
    parsed: int = 0  # files read and (re)parsed
    unchanged: int = 0  # files skipped by the stat (size + mtime) or content-hash fast path
    removed: int = 0  # files deleted/renamed/newly ignored since the last run
    repaired: int = 0  # files whose rows an interrupted write left inconsistent
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count (walk + content checks)
    skipped_by_walk: dict[str, int] = field(default_factory=dict)  # the part decided from names/stat alone
    seconds: float = 0.0
    workers: int = 1  # parse processes used
    damaged: str = ""  # why the store was unreadable and rebuilt from scratch ("" when it was not)
