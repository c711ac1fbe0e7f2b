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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from mochi_core.config import MochiConfig, load_config
from mochi_core.paths import index_dir
from mochi_index import search as _search
from mochi_index import stores
from mochi_index.errors import IndexDamaged, IndexError_, IndexMissing
from mochi_index.indexer import Progress, parse_one, run_update
from mochi_index.languages import language_for_path
from mochi_index.pattern_stats import aggregate_sites_table, naming_patterns_table, pattern_words, rank
from mochi_index.types import Chunk, FileRecord, IndexStats, Pattern, SearchHit, Symbol
from mochi_index.walk import FileEntry, stat_entry

logger = logging.getLogger(__name__)
_T = TypeVar("_T")
COMPACT_EVERY_WRITES = 32
ADVICE = "; run `mochi index` to rebuild it"
MAX_VERSIONS = 400  # across all tables; past this an update compacts even after a small change


class ProjectIndex:
    """The tree-sitter + LanceDB index of one project. Use :meth:`open`."""

    def __init__(self, root: Path, config: MochiConfig, store: Any, *, lock: Any = None, damage: str = "") -> None:
        self.root = root
        self.config = config
        self.folder = index_dir(root)
        self._store = store
        self._lock = lock if lock is not None else store.lock
        self._key = stores.pointer_key(self.folder)
        self.damage = damage  # why the store cannot be read ("" when it can); update() rebuilds it
        self._patterns_cache: tuple[tuple[str, int, int], list[tuple[Pattern, frozenset[str]]]] | None = None

    @classmethod
    def open(cls, root: Path | str, config: MochiConfig | None = None, create: bool = True) -> ProjectIndex:
        """Open the index of ``root`` (creating an empty one unless ``create=False``).

        With ``create`` a damaged store still opens (:attr:`damage` says why; :meth:`update` rebuilds it).

        Raises:
            IndexMissing: no index exists and ``create`` is False.
            IndexDamaged: the store cannot be read and ``create`` is False.
        """
        from filelock import FileLock

        from mochi_index.store import Store

        root = Path(root).resolve()
        if config is None:
            config, problems = load_config(root)
            for p in problems:
                logger.warning("%s", p)
        folder = index_dir(root)
        lock = FileLock(str(folder / stores.LOCK))
        try:
            where = stores.current(folder)
            if where is None:
                if not create:
                    raise IndexMissing(f"no index for {root}; run `mochi index --project {root}` first")
                where = _create_first_store(folder, lock)
            return cls(root, config, Store(where, create=create, lock=lock), lock=lock)
        except (stores.PointerDamaged, RuntimeError, OSError) as exc:
            damage = _damage_message(folder, exc)
            if not create:
                raise IndexDamaged(damage + ADVICE) from exc
            return cls(root, config, None, lock=lock, damage=damage)

    @property
    def store(self) -> Any:
        """The current :class:`~mochi_index.store.Store` (reopened when a rebuild switched stores)."""
        key = stores.pointer_key(self.folder)
        if key != self._key:
            self._reopen(key)
        if self._store is None:
            raise IndexDamaged(self.damage + ADVICE)
        return self._store

    def _reopen(self, key: tuple[int, int, int] | None) -> None:
        from mochi_index.store import Store

        self._key = key
        try:
            where = stores.current(self.folder)
            if where is not None and (self._store is None or where != self._store.folder):
                self._store = Store(where, create=False, lock=self._lock)
                self._patterns_cache = None
                self.damage = ""
        except (stores.PointerDamaged, RuntimeError, OSError, IndexError_) as exc:
            logger.warning("index: cannot switch to the rebuilt store: %s", exc)

    @property
    def exists(self) -> bool:
        """True once at least one update has committed files."""
        return self._read(lambda: self.store["files"].count_rows() > 0)

    def _locked(self, timeout: float) -> Any:
        from mochi_index.store import held

        return held(self._lock, timeout, self.folder)

    # ---- writing -------------------------------------------------------------------------
    def update(self, progress: Progress | None = None, *, full: bool = False,
               workers: int | None = None) -> IndexStats:
        """Incrementally index the whole project; only changed files are re-parsed.

        Every run also checks what the last one derived (the patterns snapshot, the full-text
        index) and that the store is readable; a damaged store is rebuilt from the source files.
        ``full`` (and a damaged store) builds a fresh store beside the current one and switches
        to it atomically when complete, so readers keep answering from the old one meanwhile.
        """
        t0 = time.perf_counter()
        with self._locked(600):
            if self._key != stores.pointer_key(self.folder):
                self._reopen(stores.pointer_key(self.folder))
            damage = self.damage or ("" if full else self._check())
            stats = None
            if not (full or damage):
                try:
                    stats = run_update(self.store, self.root, self.config.index, progress=progress, workers=workers)
                    self._finish(self.store, changed=bool(stats.parsed or stats.removed or stats.repaired))
                except (RuntimeError, OSError) as exc:
                    damage = _damage_message(self.store.folder, exc)
            if stats is None or damage:
                if damage:
                    logger.warning("index: %s; rebuilding it from the source files", damage)
                stats = self._rebuild(progress, workers)
                stats.damaged = damage
            stats.seconds = time.perf_counter() - t0
            self._save_last_run(stats)
            stores.sweep(self.folder, keep=self.store.folder)
        return stats

    def _check(self) -> str:
        """Why the current store is unreadable ("" when every table and index reads)."""
        try:
            self.store.verify()
        except (RuntimeError, OSError) as exc:
            return _damage_message(self.store.folder, exc)
        return ""

    def _finish(self, store: Any, *, changed: bool) -> None:
        """Bring the derived structures up to date: patterns snapshot, FTS index, compaction."""
        if changed or not store.patterns_fresh():
            self._write_patterns_snapshot(store)
        fresh_fts = store.ensure_search_indexes()
        # A fresh FTS index already covers every row; otherwise fold new rows in now and then.
        if changed and not fresh_fts and (store.writes_since_compact >= COMPACT_EVERY_WRITES
                                          or store.version_count() > MAX_VERSIONS):
            store.compact()
        store.stamp_derived()

    def _rebuild(self, progress: Progress | None, workers: int | None) -> IndexStats:
        """Index every file into a fresh store, then make it the current one (caller holds the lock)."""
        from mochi_index.store import Store

        old = self._store.folder if self._store is not None else stores.current_or_none(self.folder)
        try:
            new = Store(stores.new_folder(self.folder), create=True, lock=self._lock)
        except OSError as exc:
            raise IndexError_(f"cannot build a new index under {self.folder}: {exc.strerror or exc}") from exc
        stats = run_update(new, self.root, self.config.index, full=True, progress=progress, workers=workers)
        self._finish(new, changed=True)
        stores.switch(self.folder, new.folder, old)
        self._store, self._key, self.damage = new, stores.pointer_key(self.folder), ""
        self._patterns_cache = None
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
        with self._locked(10):
            self.store.write([parsed], [])
            self._after_small_write()
        return not parsed.skip

    def remove_file(self, rel_path: str) -> None:
        """Drop one file from every table (deleted or renamed on disk)."""
        with self._locked(10):
            self.store.write([], [self._rel(rel_path)])
            self._after_small_write()

    def apply_changes(self, changed: list[str], deleted: list[str], added_dirs: list[str] | None = None) -> int:
        """Apply a batch of file events (the watcher) under one lock; returns files written.

        ``deleted`` may name folders (renamed or moved away): every indexed file below goes.
        ``added_dirs``: folders that appeared (renamed or moved in); they are walked.
        """
        from mochi_index.indexer import parse_many
        from mochi_index.walk import discover_under

        skipped: Counter[str] = Counter()
        entries: dict[str, FileEntry | None] = {}
        for p in changed:
            rel = self._rel(p)
            entries[rel] = stat_entry(self.root, rel, self.config.index, skipped=skipped)
        for d in added_dirs or []:
            for e in discover_under(self.root, self._rel(d), self.config.index, skipped):
                entries[e.rel] = e
        removed = {rel for rel, e in entries.items() if e is None}
        if deleted:
            known = self._read(lambda: self.store["files"].search().select(["path"]).limit(None).to_arrow())
            paths = known.column("path").to_pylist()
            for rel in map(self._rel, deleted):
                removed.update(k for k in paths if k == rel or k.startswith(rel + "/"))
        batch = [parse_many(str(self.root), [(e.rel, e.language)], self.config.index.chunk_tokens)[0]
                 for e in entries.values() if e is not None]
        removed -= {p.path for p in batch}
        if skipped["outside_root"]:
            logger.info("index: %d changed path(s) lead outside the project; not indexed", skipped["outside_root"])
        if not batch and not removed:
            return 0
        with self._locked(30):
            self.store.write(batch, sorted(removed))
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

        with self._locked(60):
            store = self.store
            fresh = store.patterns_fresh()
            store.compact(timedelta(seconds=retention_s))
            if fresh:  # compaction changes table versions, not what the snapshot was built from
                store.stamp_derived()

    def _rel(self, path: str) -> str:
        p = Path(str(path).replace("\\", "/"))
        if p.is_absolute():
            try:
                p = p.resolve().relative_to(self.root)
            except ValueError as exc:
                raise IndexError_(f"{path} is outside the project {self.root}") from exc
        return p.as_posix()  # Path() already dropped any leading "./"

    # ---- reading -------------------------------------------------------------------------
    def _read(self, fn: Callable[[], _T]) -> _T:
        """Run a read; an unreadable store file becomes :class:`IndexDamaged` (one clear line)."""
        try:
            return fn()
        except (RuntimeError, OSError) as exc:
            raise IndexDamaged(_damage_message(self.folder, exc) + ADVICE) from exc

    def definitions(self, names: list[str], limit: int = 20, language: str | None = None) -> list[Symbol]:
        return self._read(lambda: _search.definitions(self.store, list(names), limit, language))

    def symbols_prefix(self, prefix: str, limit: int = 20) -> list[Symbol]:
        return self._read(lambda: _search.symbols_prefix(self.store, prefix, limit))

    def symbols_in(self, path_suffixes: list[str], limit: int = 200) -> list[Symbol]:
        """Symbols of the files whose project path ends with one of ``path_suffixes`` (e.g. ``pkg/mod.py``)."""
        return self._read(lambda: _search.symbols_in(self.store, list(path_suffixes), limit))

    def similar_chunks(self, code: str, limit: int = 5, exclude_path: str | None = None,
                       language: str | None = None) -> list[Chunk]:
        return self._read(lambda: _search.similar_chunks(self.store, code, limit, exclude_path, language))

    def patterns(self, query: str | None = None, language: str | None = None, kind: str | None = None,
                 limit: int = 10) -> list[Pattern]:
        return self._read(lambda: rank(self._all_patterns(), query, language, kind, limit))

    def search(self, query: str, kind: str | None = None, limit: int = 10) -> list[SearchHit]:
        return self._read(lambda: _search.search(self.store, query, kind, limit, self.patterns))

    def _all_patterns(self, store: Any = None) -> list[tuple[Pattern, frozenset[str]]]:
        store = store if store is not None else self.store
        key = (str(store.folder), store["pattern_sites"].version, store["symbols"].version)
        if self._patterns_cache is None or self._patterns_cache[0] != key:
            sites = store["pattern_sites"].to_arrow()
            syms = store["symbols"].to_arrow().select(["name", "kind", "language", "path", "start_line"])
            found = aggregate_sites_table(sites) + naming_patterns_table(syms)
            self._patterns_cache = (key, [(p, pattern_words(p)) for p in found])
        return self._patterns_cache[1]

    def _write_patterns_snapshot(self, store: Any) -> None:
        import pyarrow as pa

        from mochi_index.schema import PATTERNS

        rows = [{"kind": p.kind, "language": p.language, "key": p.key, "description": p.description,
                 "count": p.count, "examples": p.examples, "snippet": p.snippet} for p, _ in self._all_patterns(store)]
        store.replace_patterns(pa.Table.from_pylist(rows, schema=PATTERNS))

    def stats(self) -> dict[str, Any]:
        return self._read(self._stats)

    def _stats(self) -> dict[str, Any]:
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

    def _rows(self, table: str) -> list[dict[str, Any]]:
        return self._read(lambda: self.store[table].to_arrow().to_pylist())

    def iter_files(self, include_skipped: bool = False) -> Iterator[FileRecord]:
        """Indexed files (and, with ``include_skipped``, those kept out, with ``skip`` set)."""
        for r in self._rows("files"):
            if r["skip"] and not include_skipped:
                continue
            yield FileRecord(path=r["path"], language=r["language"], content_hash=r["content_hash"], size=r["size"],
                             mtime_ns=r["mtime_ns"], indexed_at=r["indexed_at"], skip=r["skip"])

    def iter_symbols(self) -> Iterator[Symbol]:
        for r in self._rows("symbols"):
            yield _search._symbol(r)

    def iter_chunks(self) -> Iterator[Chunk]:
        for r in self._rows("chunks"):
            yield _search._chunk(r)

    def close(self) -> None:
        """Release the write lock if held (LanceDB itself needs no close; kept for the contract)."""
        if self._lock.is_locked:
            self._lock.release(force=True)

    def __enter__(self) -> ProjectIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _damage_message(folder: Path, exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    first = first.split(", /rustc/")[0]  # Lance appends the Rust source location
    return f"the index at {folder} is damaged ({first[:160]})"


def _create_first_store(folder: Path, lock: Any) -> Path:
    """Make an empty store current (no index yet); a folder that cannot be written is an IndexError_."""
    from mochi_index.store import Store, held

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with held(lock, 600, folder):  # two processes creating the first store at once
            where = stores.current(folder)
            if where is None:
                where = stores.new_folder(folder)
                Store(where, create=True, lock=lock)
                stores.switch(folder, where, None)
        return where
    except OSError as exc:
        raise IndexError_(f"cannot create the index under {folder}: {exc.strerror or exc}") from exc
