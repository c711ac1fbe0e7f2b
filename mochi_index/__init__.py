"""Floor 1: the project index (tree-sitter parsing, LanceDB store, search, watch).

``from mochi_index import ProjectIndex`` is the entry point; see docs/architecture.md for the
contract. Heavy imports (lancedb, tree-sitter grammars) happen when an index is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mochi_index.errors import IndexBusy, IndexDamaged, IndexError_, IndexMissing
from mochi_index.types import Chunk, FileRecord, IndexStats, Pattern, SearchHit, Symbol

if TYPE_CHECKING:
    from mochi_index.project import ProjectIndex

__all__ = ["Chunk", "FileRecord", "IndexBusy", "IndexDamaged", "IndexError_", "IndexMissing", "IndexStats", "Pattern", "ProjectIndex",
           "SearchHit", "Symbol"]


def __getattr__(name: str) -> Any:
    if name == "ProjectIndex":
        from mochi_index.project import ProjectIndex

        return ProjectIndex
    raise AttributeError(name)
