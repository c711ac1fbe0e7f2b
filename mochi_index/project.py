"""`ProjectIndex`: the one object readers and writers use (contract in docs/architecture.md).

It ties the walk/parse/store modules together: ``update`` (whole project, incremental),
``update_file``/``remove_file`` (one file, e.g. LSP didSave or the watcher), and the read side
(definitions, prefix lookup, similar chunks, patterns, mixed search, stats, training iterators).
Writers serialise on a file lock; readers never lock and always see the newest commit.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mochi_core.config import MochiConfig, load_config
from mochi_core.paths import index_dir
from mochi_index import search as _search
from mochi_index.errors import IndexError_, IndexMissing
from mochi_index.indexer import Progress, parse_one, run_update
from mochi_index.languages import language_for_path
from mochi_index.pattern_stats import aggregate_sites_table, naming_patterns_table, pattern_words, rank
from mochi_index.types import Chunk, FileRecord, IndexStats, Pattern, SearchHit, Symbol
from mochi_index.walk import stat_entry

logger = logging.getLogger(__name__)
COMPACT_EVERY_WRITES = 32
MAX_VERSIONS = 400  # across all tables; past this an update compacts even after a small change


class ProjectIndex:
    """The tree-sitter + LanceDB index of one project. Use :meth:`open`."""

    def __init__(self, root: Path, config: MochiConfig, store: Any) -> None:
        self.root = root
        self.config = config
        self.store = store
        self._patterns_cache: tuple[tuple[int, int], list[tuple[Pattern, frozenset[str]]]] | None = None

    @classmethod
    def open(cls, root: Path | str, config: MochiConfig | None = None, create: bool = True) -> ProjectIndex:
        """Open the index of ``root`` (creating an empty one unless ``create=False``).

        Raises:
            IndexMissing: no index exists and ``create`` is False.
        """
        from mochi_index.store import Store

        root = Path(root).resolve()
        if config is None:
            config, problems = load_config(root)
            for p in problems:
                logger.warning("%s", p)
        folder = index_dir(root)
        if not create and not (folder / "files.lance").exists():
            raise IndexMissing(f"no index for {root}; run `mochi index --project {root}` first")
        return cls(root, config, Store(folder, create=create))

    @property
    def exists(self) -> bool:
        """True once at least one update has committed files."""
        return self.store["files"].count_rows() > 0

    # ---- writing -------------------------------------------------------------------------
    def update(self, progress: Progress | None = None, *, full: bool = False,
               workers: int | None = None) -> IndexStats:
        """Incrementally index the whole project; only changed files are re-parsed."""
        t0 = time.perf_counter()
        with self.store.locked(timeout=600):
            stats = run_update(self.store, self.root, self.config.index, full=full, progress=progress,
                               workers=workers)
            if stats.parsed or stats.removed or stats.repaired or full:
                self._write_patterns_snapshot()
                fresh_fts = self.store.ensure_search_indexes()
                # A fresh FTS index already covers every row; otherwise fold new rows in now and then.
                if not fresh_fts and (self.store.writes_since_compact >= COMPACT_EVERY_WRITES
                                      or self.store.version_count() > MAX_VERSIONS):
                    self.store.compact()
        stats.seconds = time.perf_counter() - t0
        self._save_last_run(stats)
        return stats

    def update_file(self, rel_path: str, text: str | None = None) -> bool:
        """Re-index one file (``text``: unsaved editor content). Returns False when not indexable."""
        rel = self._rel(rel_path)
        language = language_for_path(rel)
        if language is None or language not in self.config.index.languages:
            return False
        skipped: Counter[str] = Counter()
        entry = stat_entry(self.root, rel, self.config.index,
                           text_size=None if text is None else len(text.encode("utf-8")), skipped=skipped)
        if skipped["outside_root"]:
            logger.info("index: not indexing %s: its real path is outside the project %s", rel, self.root)
        if entry is None:  # gone, ignored, vendored, too large, outside...: whatever was indexed goes
            self.remove_file(rel)
            return False
        parsed = parse_one(self.root, entry, rel, language, text, self.config.index.chunk_tokens)
        with self.store.locked(timeout=10):
            self.store.write([parsed], [])
            self._after_small_write()
        return not parsed.skip

    def remove_file(self, rel_path: str) -> None:
        """Drop one file from every table (deleted or renamed on disk)."""
        with self.store.locked(timeout=10):
            self.store.write([], [self._rel(rel_path)])
            self._after_small_write()

    def apply_changes(self, changed: list[str], deleted: list[str]) -> int:
        """Apply a batch of file events (the watcher) under one lock; returns files written."""
        from mochi_index.indexer import parse_many

        batch, removed = [], [self._rel(p) for p in deleted]
        skipped: Counter[str] = Counter()
        for p in changed:
            rel = self._rel(p)
            entry = stat_entry(self.root, rel, self.config.index, skipped=skipped)
            if entry is None:
                removed.append(rel)
            else:
                batch.append(parse_many(str(self.root), [(entry.rel, entry.language)], self.config.index.chunk_tokens)[0])
        if skipped["outside_root"]:
            logger.info("index: %d changed path(s) lead outside the project; not indexed", skipped["outside_root"])
        with self.store.locked(timeout=30):
            self.store.write(batch, removed)
            self._after_small_write()
        return len(batch) + len(removed)

    def _after_small_write(self) -> None:
        if not _search.has_fts(self.store):
            self.store.ensure_search_indexes()
        if self.store.writes_since_compact >= COMPACT_EVERY_WRITES:
            self.store.compact()

    def compact(self, retention_s: float = 30.0) -> None:
        """Compact fragments and delete table versions older than ``retention_s`` seconds."""
        from datetime import timedelta

        with self.store.locked(timeout=60):
            self.store.compact(timedelta(seconds=retention_s))

    def _rel(self, path: str) -> str:
        p = Path(str(path).replace("\\", "/"))
        if p.is_absolute():
            try:
                p = p.resolve().relative_to(self.root)
            except ValueError as exc:
                raise IndexError_(f"{path} is outside the project {self.root}") from exc
        return p.as_posix()  # Path() already dropped any leading "./"

    # ---- reading -------------------------------------------------------------------------
    def definitions(self, names: list[str], limit: int = 20, language: str | None = None) -> list[Symbol]:
        return _search.definitions(self.store, list(names), limit, language)

    def symbols_prefix(self, prefix: str, limit: int = 20) -> list[Symbol]:
        return _search.symbols_prefix(self.store, prefix, limit)

    def similar_chunks(self, code: str, limit: int = 5, exclude_path: str | None = None,
                       language: str | None = None) -> list[Chunk]:
        return _search.similar_chunks(self.store, code, limit, exclude_path, language)

    def patterns(self, query: str | None = None, language: str | None = None, kind: str | None = None,
                 limit: int = 10) -> list[Pattern]:
        return rank(self._all_patterns(), query, language, kind, limit)

    def search(self, query: str, kind: str | None = None, limit: int = 10) -> list[SearchHit]:
        return _search.search(self.store, query, kind, limit, self.patterns)

    def _all_patterns(self) -> list[tuple[Pattern, frozenset[str]]]:
        key = (self.store["pattern_sites"].version, self.store["symbols"].version)
        if self._patterns_cache is None or self._patterns_cache[0] != key:
            sites = self.store["pattern_sites"].to_arrow()
            syms = self.store["symbols"].to_arrow().select(["name", "kind", "language", "path", "start_line"])
            found = aggregate_sites_table(sites) + naming_patterns_table(syms)
            self._patterns_cache = (key, [(p, pattern_words(p)) for p in found])
        return self._patterns_cache[1]

    def _write_patterns_snapshot(self) -> None:
        import pyarrow as pa

        from mochi_index.schema import PATTERNS

        rows = [{"kind": p.kind, "language": p.language, "key": p.key, "description": p.description,
                 "count": p.count, "examples": p.examples, "snippet": p.snippet} for p, _ in self._all_patterns()]
        self.store.replace_patterns(pa.Table.from_pylist(rows, schema=PATTERNS))

    def stats(self) -> dict[str, Any]:
        """Counts per language and symbol kind, skipped files by reason, last run's timing."""
        files = self.store["files"].to_arrow().select(["language", "skip"]).to_pylist()
        syms = self.store["symbols"].to_arrow().select(["kind", "language"]).to_pylist()
        last = self._load_last_run()
        skipped = Counter(last.get("walk_skipped", {}))
        skipped.update(f["skip"] for f in files if f["skip"])
        return {
            "root": str(self.root),
            "files": sum(1 for f in files if not f["skip"]),
            "files_by_language": dict(Counter(f["language"] for f in files if not f["skip"])),
            "symbols": len(syms),
            "symbols_by_kind": dict(Counter(s["kind"] for s in syms)),
            "symbols_by_language": dict(Counter(s["language"] for s in syms)),
            "chunks": self.store["chunks"].count_rows(),
            "pattern_sites": self.store["pattern_sites"].count_rows(),
            "skipped": dict(skipped),
            "last_update": last.get("stats", {}),
        }

    def _save_last_run(self, stats: IndexStats) -> None:
        from dataclasses import asdict

        data = {"time": time.time(), "stats": asdict(stats), "walk_skipped": stats.skipped_by_walk}
        (self.store.folder / "last_run.json").write_text(json.dumps(data, indent=1), encoding="utf-8")

    def _load_last_run(self) -> dict[str, Any]:
        try:
            return json.loads((self.store.folder / "last_run.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def iter_files(self, include_skipped: bool = False) -> Iterator[FileRecord]:
        """Indexed files (and, with ``include_skipped``, those kept out, with ``skip`` set)."""
        for r in self.store["files"].to_arrow().to_pylist():
            if r["skip"] and not include_skipped:
                continue
            yield FileRecord(path=r["path"], language=r["language"], content_hash=r["content_hash"], size=r["size"],
                             mtime_ns=r["mtime_ns"], indexed_at=r["indexed_at"], skip=r["skip"])

    def iter_symbols(self) -> Iterator[Symbol]:
        for r in self.store["symbols"].to_arrow().to_pylist():
            yield _search._symbol(r)

    def iter_chunks(self) -> Iterator[Chunk]:
        for r in self.store["chunks"].to_arrow().to_pylist():
            yield _search._chunk(r)

    def close(self) -> None:
        """Release the write lock if held (LanceDB itself needs no close; kept for the contract)."""
        if self.store.lock.is_locked:
            self.store.lock.release(force=True)

    def __enter__(self) -> ProjectIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
