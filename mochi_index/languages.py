"""Which language a file is, and the tree-sitter parser for it (grammars loaded lazily).

Each grammar wheel is imported the first time a file of its language is parsed, so indexing a
Python-only project never loads the Rust grammar. Parsers are cached per process (the parse
pool's workers each keep their own).
"""

from __future__ import annotations

import importlib
import os.path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tree_sitter import Parser

# language -> (grammar module, function returning the language pointer)
GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
}

EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
}

# Source files of languages we recognise but cannot parse: counted as "unknown_language",
# everything else (images, data, docs) is simply not source and not counted per file.
OTHER_SOURCE_EXTENSIONS = frozenset(
    ".c .h .cc .cpp .hpp .cxx .cs .rb .php .swift .kt .kts .scala .m .mm .lua .pl .r .jl .dart "
    ".ex .exs .erl .hs .ml .clj .sh .bash .zsh .vue .svelte .zig .nim .f90 .groovy".split()
)

_parsers: dict[str, Parser] = {}


def _suffix(path: str) -> str:
    # os.path.splitext, not pathlib: this runs for every file of every walk
    return os.path.splitext(path)[1].lower()


def language_for_path(path: str) -> str | None:
    """The index language of ``path`` (by extension), or None when not supported."""
    return EXTENSIONS.get(_suffix(path))


def is_other_source(path: str) -> bool:
    """True for source code of a language Mochi does not parse (counted as skipped)."""
    return _suffix(path) in OTHER_SOURCE_EXTENSIONS


def parser_for(language: str) -> Parser:
    """A cached tree-sitter parser for ``language`` (one of :data:`GRAMMARS`)."""
    parser = _parsers.get(language)
    if parser is None:
        from tree_sitter import Language, Parser

        module_name, func = GRAMMARS[language]
        module = importlib.import_module(module_name)
        parser = Parser(Language(getattr(module, func)()))
        _parsers[language] = parser
    return parser
