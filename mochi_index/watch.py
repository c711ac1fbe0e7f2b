"""`mochi index --watch`: keep the index in step with the files as they change (watchfiles).

Folder events count too: a folder renamed or moved away drops every indexed file below it, one
renamed or moved in is walked like a fresh index would walk it. Changes arrive in debounced batches: one edit is applied ~``step_ms`` after the write, a burst
(``git checkout`` of hundreds of files) is grouped for up to ``debounce_ms`` and applied under one
lock. A file that cannot be parsed is logged and kept out; an error in one batch is logged and
the watcher keeps running. Idle periods are used to compact the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mochi_index.languages import language_for_path

if TYPE_CHECKING:
    from mochi_index.project import ProjectIndex

logger = logging.getLogger(__name__)
OnBatch = Callable[[int, float], None]
IGNORED_PARTS = ("/.mochi/", "/.git/", "/node_modules/", "/__pycache__/")


def _relevant(root: str) -> Callable[[object, str], bool]:
    """Events under ``root`` outside the ignored folders; folders included (renames and moves)."""
    prefix = root.rstrip("/") + "/"

    def keep(_change: object, path: str) -> bool:
        if not path.startswith(prefix):
            return False
        inner = "/" + path[len(prefix):] + "/"
        return not any(p in inner for p in IGNORED_PARTS)

    return keep


def _sort(changes: set[tuple[object, str]], root: str) -> tuple[set[str], set[str], set[str]]:
    """(changed files, deleted files or folders, folders that appeared) from one batch of events.

    The disk decides, not the event kind: a path that is gone was deleted (a folder renamed or
    moved away reports only its own path, so its indexed files go by prefix); a folder that is
    there and was added (renamed or moved in) is walked; other non-source paths are dropped.
    """
    from watchfiles import Change

    changed: set[str] = set()
    deleted: set[str] = set()
    added_dirs: set[str] = set()
    for change, path in changes:
        rel = Path(path).relative_to(root).as_posix()
        p = Path(path)
        if p.is_dir():
            if change != Change.modified:  # a folder's own "modified" carries no file change
                added_dirs.add(rel)
                deleted.discard(rel)
        elif p.exists() or p.is_symlink():
            if language_for_path(path) is not None:
                changed.add(rel)
                deleted.discard(rel)
        else:
            deleted.add(rel)
            changed.discard(rel)
            added_dirs.discard(rel)
    return changed, deleted, added_dirs


def watch_project(idx: ProjectIndex, *, stop: threading.Event | None = None, on_batch: OnBatch | None = None,
                  ready: threading.Event | None = None, on_ready: Callable[[], None] | None = None,
                  debounce_ms: int = 1600, step_ms: int = 15,
                  idle_compact_s: float = 30.0) -> None:
    """Apply file changes under ``idx.root`` until ``stop`` is set (or Ctrl-C).

    Args:
        idx: the open index.
        stop: set it to end the loop (checked at least every 200 ms).
        on_batch: called with (files applied, milliseconds the batch took) after each batch.
        ready: set once the OS watch is registered (changes after this are seen).
        on_ready: called once, at the same moment as ``ready`` is set.
        debounce_ms: longest time a burst of changes is grouped before it is applied.
        step_ms: quiet time after the last change before a batch is applied.
        idle_compact_s: compact the store after this long without changes, if it was written.
    """
    from watchfiles import watch

    root = str(idx.root)
    dirty = started = False
    last_change = time.monotonic()
    for changes in watch(root, watch_filter=_relevant(root), debounce=debounce_ms, step=step_ms,
                         stop_event=stop, rust_timeout=200, yield_on_timeout=True, raise_interrupt=True):
        if not started:
            started = True
            if ready is not None:
                ready.set()
            if on_ready is not None:
                on_ready()
        if not changes:
            if dirty and time.monotonic() - last_change > idle_compact_s:
                _compact(idx)
                dirty = False
            continue
        t0 = time.perf_counter()
        changed, deleted, added_dirs = _sort(changes, root)
        if not (changed or deleted or added_dirs):
            continue
        try:
            n = idx.apply_changes(sorted(changed), sorted(deleted), sorted(added_dirs))
        except Exception:  # the watcher outlives any one bad batch
            logger.exception("index: could not apply %d change(s); will retry on the next change", len(changes))
            continue
        if not n:
            continue
        dirty = True
        last_change = time.monotonic()
        if on_batch is not None:
            on_batch(n, (time.perf_counter() - t0) * 1000)


def _compact(idx: ProjectIndex) -> None:
    try:
        idx.compact()
    except Exception:  # compaction is housekeeping: never stop watching for it
        logger.exception("index: compaction failed")
