"""Whole-project incremental indexing: walk, decide what changed, parse (optionally in a pool), write.

Fast path: a file whose size and mtime match its ``files`` row is not read at all; one whose
stat changed but whose content hash did not only gets its ``files`` row refreshed. Everything
else is parsed — in a process pool when there are many files — and written in batches, each
batch committed by its ``files`` rows (see :mod:`mochi_index.store`).
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from mochi_core.config import IndexSection
from mochi_index.parse import Parsed, content_hash, parse_bytes, parse_many
from mochi_index.schema import concat_rows, parse_to_rows
from mochi_index.store import Store
from mochi_index.types import IndexStats
from mochi_index.walk import FileEntry, discover

logger = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
BATCH_FILES = 256
POOL_MIN_FILES = 400
POOL_TASK_FILES = 64


def default_workers() -> int:
    """Parse processes: ``$MOCHI_INDEX_WORKERS``, else the idle cores (at most 4).

    A pool only pays when cores are free: on a saturated machine (load >= cores) its start-up and
    pickling cost more than the parallelism gives back (measured: 0.9x on this 2-core box at load 6).
    """
    env = os.environ.get("MOCHI_INDEX_WORKERS")
    if env and env.isdigit():
        return max(1, int(env))
    cores = os.cpu_count() or 1
    try:
        idle = cores - int(os.getloadavg()[0])
    except OSError:  # no load average on this platform
        idle = cores
    return max(1, min(4, idle))


def run_update(store: Store, root: Path, cfg: IndexSection, *, full: bool = False,
               progress: Progress | None = None, workers: int | None = None) -> IndexStats:
    """Bring the store in line with the files under ``root`` (caller holds the write lock)."""
    t0 = time.perf_counter()
    stats = IndexStats(repaired=store.repair())
    known = {} if full else store.files()
    if full:
        store.write([], list(store.files()))
    skipped: Counter[str] = Counter()
    entries = list(discover(root, cfg, skipped))
    walk_skipped = Counter(skipped)
    stats.files_seen = len(entries)
    seen = {e.rel for e in entries}
    removed = [p for p in known if p not in seen]
    todo: list[FileEntry] = []
    touched: list[Parsed] = []
    for e in entries:
        row = known.get(e.rel)
        if row is not None and row["size"] == e.size and row["mtime_ns"] == e.mtime_ns and row["language"] == e.language:
            stats.unchanged += 1
        else:
            todo.append(e)
    # Stat changed: hash before parsing, so a touched-but-identical file is not re-parsed.
    to_parse: list[FileEntry] = []
    for e in todo:
        row = known.get(e.rel)
        if row is not None and not row["skip"] and _same_hash(root / e.rel, row["content_hash"]):
            touched.append(_touched(row, e))
            stats.unchanged += 1
        else:
            to_parse.append(e)
    stats.removed = len(removed)
    if removed or touched:
        store.write([], removed)
        if touched:
            store.touch(touched, {p.path: known[p.path] for p in touched})
    n_workers = (workers or default_workers()) if len(to_parse) >= POOL_MIN_FILES else 1
    stats.workers = n_workers
    done = 0
    batch: list[Parsed] = []
    parts: list[dict[str, pa.Table]] = []
    for parsed, rows in _parse_all(root, to_parse, cfg.chunk_tokens, n_workers):
        batch += parsed
        parts.append(rows)
        skipped.update(p.skip for p in parsed if p.skip)
        if len(batch) >= BATCH_FILES:
            store.write(batch, [], known=known, rows=concat_rows(parts))
            done += len(batch)
            batch, parts = [], []
            if progress:
                progress(done, len(to_parse))
    if batch:
        store.write(batch, [], known=known, rows=concat_rows(parts))
        done += len(batch)
        if progress:
            progress(done, len(to_parse))
    stats.parsed = len(to_parse)
    stats.skipped_by_walk = dict(walk_skipped)
    stats.skipped = dict(skipped)
    stats.seconds = time.perf_counter() - t0
    return stats


def _same_hash(path: Path, expected: str) -> bool:
    try:
        return content_hash(path.read_bytes()) == expected
    except OSError:
        return False


def _touched(row: dict[str, Any], e: FileEntry) -> Parsed:
    return Parsed(path=e.rel, language=e.language, content_hash=row["content_hash"], size=e.size, mtime_ns=e.mtime_ns)


def _parse_all(root: Path, entries: list[FileEntry], chunk_tokens: int,
               workers: int) -> Iterator[tuple[list[Parsed], dict[str, pa.Table]]]:
    jobs = [(e.rel, e.language) for e in entries]
    tasks = [jobs[i: i + POOL_TASK_FILES] for i in range(0, len(jobs), POOL_TASK_FILES)]
    if workers <= 1 or len(jobs) < POOL_MIN_FILES:
        for task in tasks:
            yield parse_to_rows(str(root), task, chunk_tokens)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # forkserver: never fork a process that already runs LanceDB's threads.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["mochi_index.schema"])
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        yield from pool.map(parse_to_rows, [str(root)] * len(tasks), tasks, [chunk_tokens] * len(tasks))


def parse_one(root: Path, entry: FileEntry | None, rel: str, language: str, text: str | None,
              chunk_tokens: int) -> Parsed:
    """Parse one file from disk or from unsaved ``text`` (mtime 0: the next walk re-checks it)."""
    if text is not None:
        parsed = parse_bytes(rel, language, text.encode("utf-8"), chunk_tokens, check=False)
        parsed.mtime_ns = 0
        return parsed
    return parse_many(str(root), [(rel, language)], chunk_tokens)[0] if entry is None else \
        parse_many(str(root), [(entry.rel, entry.language)], chunk_tokens)[0]
