"""The LanceDB store under ``.mochi/index/``: tables, crash-safe writes, repair and compaction.

Write order for a batch of files (one writer at a time, behind a file lock):

1. delete the old content rows (symbols, chunks, pattern_sites) of those paths;
2. add the new content rows, each tagged with the file's content hash;
3. upsert the ``files`` rows (hash + row counts) — the commit point.

A crash between steps leaves ``files`` rows whose counts or hashes disagree with the content
tables, or content rows with no ``files`` row; :meth:`Store.repair` (run before every update)
drops both, and the next update re-parses those files. Readers use
``read_consistency_interval=0`` so each query sees the newest committed version.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from mochi_index.errors import IndexBusy, IndexError_
from mochi_index.parse import Parsed
from mochi_index.schema import ALL_TABLES, CONTENT_TABLES, SCHEMA_VERSION, content_rows, files_rows, in_filter

logger = logging.getLogger(__name__)
COUNT_COLUMN = {"symbols": "n_symbols", "chunks": "n_chunks", "pattern_sites": "n_sites"}
DELETE_BATCH = 400


def held(lock: Any, timeout: float, folder: Path) -> Any:
    """Context manager holding ``lock`` (a FileLock); raises :class:`IndexBusy` on timeout."""
    from filelock import Timeout

    class _Held:
        def __enter__(self) -> None:
            try:
                lock.acquire(timeout=timeout)
            except Timeout as exc:
                raise IndexBusy(f"another process is writing {folder} (lock held > {timeout:.0f} s); "
                                "wait for it or stop it") from exc

        def __exit__(self, *exc: object) -> None:
            lock.release()

    return _Held()


class Store:
    """Open (or create) the tables in ``folder``."""

    def __init__(self, folder: Path, *, create: bool, lock: Any = None) -> None:
        # Lance logs a WARN line for every table it creates; keep stderr for messages users act on.
        os.environ.setdefault("LANCE_LOG", "error")
        import lancedb
        from filelock import FileLock

        self.folder = Path(folder)
        if create:
            self.folder.mkdir(parents=True, exist_ok=True)
        self.db = lancedb.connect(str(self.folder), read_consistency_interval=timedelta(0))
        existing = set(self.db.list_tables().tables)
        if existing and self._stored_schema_version() != SCHEMA_VERSION:
            if not create:
                raise IndexError_(f"the index at {self.folder} was built by another Mochi version; "
                                  "rebuild it with `mochi index --full`")
            logger.warning("index: schema changed since %s was built; rebuilding it", self.folder)
            for name in existing:
                self.db.drop_table(name)
            existing = set()
        if create:
            (self.folder / "schema.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION}))
        self.tables: dict[str, Any] = {}
        for name, schema in ALL_TABLES.items():
            if name in existing:
                self.tables[name] = self.db.open_table(name)
            elif create:
                self.tables[name] = self.db.create_table(name, schema=schema, exist_ok=True)
            else:
                raise IndexError_(f"index at {self.folder} lacks table {name!r}; rebuild it with `mochi index --full`")
        self.lock = lock if lock is not None else FileLock(str(self.folder / "write.lock"))
        self.marker = self.folder / "write.in-progress"
        self.writes_since_compact = 0

    def _stored_schema_version(self) -> int:
        try:
            return int(json.loads((self.folder / "schema.json").read_text())["schema_version"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def __getitem__(self, name: str) -> Any:
        return self.tables[name]

    def locked(self, timeout: float = 30.0) -> Any:
        """Context manager holding the single-writer lock (raises :class:`IndexBusy` on timeout)."""
        return held(self.lock, timeout, self.folder)

    def files(self) -> dict[str, dict[str, Any]]:
        """The ``files`` table as ``{path: row}``."""
        tbl = self.tables["files"].to_arrow()
        return {r["path"]: r for r in tbl.to_pylist()}

    def write(self, batch: list[Parsed], removed: list[str], *, known: set[str] | dict[str, Any] | None = None,
              rows: dict[str, pa.Table] | None = None) -> None:
        """Replace the rows of ``batch``'s paths and drop ``removed`` paths (caller holds the lock).

        ``known``: paths that may have rows (the ``files`` table as read under the lock); a new
        path skips the deletes. Rows of a path missing from ``files`` are removed by :meth:`repair`.
        """
        paths = [p.path for p in batch if known is None or p.path in known] + list(removed)
        if not batch and not removed:
            return
        self.marker.touch()  # removed after the commit; left behind by a crash, it triggers repair()
        for name in CONTENT_TABLES:
            if paths:
                self._delete_paths(name, paths)
        for name, table in (rows if rows is not None else content_rows(batch)).items():
            if table.num_rows:
                self.tables[name].add(table)
        if removed:
            self._delete_paths("files", list(removed))
        if batch:
            (self.tables["files"].merge_insert("path").when_matched_update_all()
             .when_not_matched_insert_all().execute(files_rows(batch)))
        self.writes_since_compact += 1
        self.marker.unlink(missing_ok=True)

    def touch(self, batch: list[Parsed], known: dict[str, dict[str, Any]]) -> None:
        """Refresh size/mtime of files whose content hash did not change (rows kept as they are)."""
        rows = files_rows(batch).to_pylist()
        for r in rows:
            old = known[r["path"]]
            r.update(n_symbols=old["n_symbols"], n_chunks=old["n_chunks"], n_sites=old["n_sites"],
                     skip=old["skip"])
        table = pa.Table.from_pylist(rows, schema=self.tables["files"].schema)
        self.tables["files"].merge_insert("path").when_matched_update_all().when_not_matched_insert_all().execute(table)

    def _delete_paths(self, name: str, paths: list[str]) -> None:
        for i in range(0, len(paths), DELETE_BATCH):
            self.tables[name].delete(in_filter("path", paths[i: i + DELETE_BATCH]))

    def repair(self, *, force: bool = False) -> int:
        """Drop rows a crashed write left inconsistent; returns how many paths were repaired.

        Skipped (0) unless the last write left its in-progress marker behind, or ``force``.
        """
        if not force and not self.marker.exists():
            return 0
        files = self.tables["files"].to_arrow().select(["path", "content_hash", *COUNT_COLUMN.values()]).to_pylist()
        expect = {r["path"]: r for r in files}
        bad: set[str] = set()
        for name, count_col in COUNT_COLUMN.items():
            tbl = self.tables[name].to_arrow().select(["path", "file_hash"])
            seen: Counter[tuple[str, str]] = Counter(zip(tbl.column("path").to_pylist(),
                                                         tbl.column("file_hash").to_pylist(), strict=True))
            per_path: Counter[str] = Counter()
            for (path, h), n in seen.items():
                row = expect.get(path)
                if row is None or row["content_hash"] != h:
                    bad.add(path)
                per_path[path] += n
            for path, row in expect.items():
                if per_path.get(path, 0) != (row[count_col] or 0):
                    bad.add(path)
        if bad:
            logger.warning("index: repairing %d file(s) left inconsistent by an interrupted write", len(bad))
            for name in CONTENT_TABLES:
                self._delete_paths(name, sorted(bad))
            self._delete_paths("files", sorted(bad))
        self.marker.unlink(missing_ok=True)
        return len(bad)

    def verify(self) -> None:
        """Read one column of every table (every data file) and probe the FTS index.

        Raises:
            RuntimeError, OSError: a data or index file is missing, truncated or unreadable.
        """
        for name, tbl in self.tables.items():
            column = "path" if name != "patterns" else "key"
            tbl.search().select([column]).limit(None).to_arrow()
        chunks = self.tables["chunks"]
        if any(i.index_type == "FTS" for i in chunks.list_indices()):
            chunks.search("probe", query_type="fts", fts_columns="terms").select(["id", "_score"]).limit(1).to_list()

    # ---- derived structures: the patterns snapshot is stamped with the versions it was built from
    def _derived_key(self) -> list[int]:
        return [self.tables[n].version for n in ("pattern_sites", "symbols", "patterns")]

    def patterns_fresh(self) -> bool:
        """True when the patterns snapshot was completed from the current sites and symbols."""
        try:
            stamp = json.loads((self.folder / "derived.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(stamp, dict) and stamp.get("patterns") == self._derived_key()

    def stamp_derived(self) -> None:
        """Record that the patterns snapshot matches the tables as they are now."""
        tmp = self.folder / "derived.json.tmp"
        tmp.write_text(json.dumps({"patterns": self._derived_key()}), encoding="utf-8")
        os.replace(tmp, self.folder / "derived.json")

    def replace_patterns(self, rows: pa.Table) -> None:
        (self.folder / "derived.json").unlink(missing_ok=True)  # stale until stamp_derived()
        self.tables["patterns"].delete("true")
        if rows.num_rows:
            self.tables["patterns"].add(rows)

    def ensure_search_indexes(self) -> bool:
        """Build the FTS index on chunk terms once (True when built now); :meth:`compact` covers later rows."""
        from lancedb.index import FTS

        chunks = self.tables["chunks"]
        if chunks.count_rows() and not any(i.index_type == "FTS" for i in chunks.list_indices()):
            chunks.create_index("terms", config=FTS(stem=False, remove_stop_words=False, lower_case=True))
            self.writes_since_compact = 0
            return True
        return False

    def compact(self, retention: timedelta = timedelta(seconds=30)) -> None:
        """Merge small fragments, fold new rows into indexes, drop versions older than ``retention``."""
        # LanceDB warns on 0 (it would break readers mid-query); 1 ms keeps only what is in use right now.
        retention = max(retention, timedelta(milliseconds=1))
        for tbl in self.tables.values():
            try:
                tbl.optimize(cleanup_older_than=retention)
            except (OSError, RuntimeError, ValueError) as exc:  # a concurrent writer won the race
                logger.info("index: compaction of %s skipped: %s", tbl.name, exc)
        self.writes_since_compact = 0

    def version_count(self) -> int:
        return sum(len(t.list_versions()) for t in self.tables.values())
