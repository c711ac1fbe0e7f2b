"""Versioned store folders under ``.mochi/index/`` and the pointer that names the current one.

Layout::

    .mochi/index/CURRENT          name of the store readers use (replaced atomically)
    .mochi/index/write.lock       the single-writer lock, shared by every store
    .mochi/index/store-<id>/      one LanceDB store (tables, schema.json, last_run.json)

A full rebuild (``mochi index --full``, or a damaged store) fills a fresh ``store-<id>`` beside
the current one and then replaces ``CURRENT`` (write to a temporary file, ``os.replace``): a
reader either sees the old store, complete, or the new one, complete. Readers check the
pointer on every access and reopen when it changed; the old folder gets a ``retired`` stamp and
is deleted by a later writer once :data:`GRACE_S` has passed, so a query still running on it
finishes. A folder that is neither current nor retired is a rebuild a crash interrupted: the
next writer (who holds the lock, so no rebuild is running) deletes it.

An index made before this layout keeps its tables directly in ``.mochi/index/`` and has no
``CURRENT``; it is used in place (:data:`LEGACY`) until the next full rebuild.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

logger = logging.getLogger(__name__)
POINTER = "CURRENT"
LOCK = "write.lock"
PREFIX = "store-"
RETIRED = "retired"
LEGACY = "."
GRACE_S = 120.0
_LEGACY_ITEMS = ("schema.json", "last_run.json", "write.in-progress")


class PointerDamaged(Exception):
    """``CURRENT`` names no store folder (it was edited or its folder removed)."""


def current(index: Path) -> Path | None:
    """The folder of the current store, or None when no index exists yet.

    Raises:
        PointerDamaged: the pointer exists but names nothing usable.
    """
    try:
        name = (index / POINTER).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return index if (index / "files.lance").exists() else None  # the pre-pointer layout
    except OSError as exc:
        raise PointerDamaged(f"cannot read {index / POINTER}: {exc}") from exc
    if name == LEGACY:
        return index
    if not name.startswith(PREFIX) or "/" in name or not (index / name).is_dir():
        raise PointerDamaged(f"{index / POINTER} names {name[:80]!r}, which is not a store folder here")
    return index / name


def current_or_none(index: Path) -> Path | None:
    """:func:`current`, None when the pointer is damaged."""
    try:
        return current(index)
    except PointerDamaged:
        return None


def pointer_key(index: Path) -> tuple[int, int, int] | None:
    """Changes whenever ``CURRENT`` is replaced (cheap: one ``stat``)."""
    try:
        st = os.stat(index / POINTER)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def new_folder(index: Path) -> Path:
    """A fresh, empty store folder name (not created)."""
    return index / f"{PREFIX}{time.time_ns():x}-{os.getpid()}"


def switch(index: Path, new: Path, old: Path | None) -> None:
    """Make ``new`` the current store atomically; stamp ``old`` as retired (caller holds the lock)."""
    tmp = index / f".{POINTER}.{os.getpid()}.tmp"
    tmp.write_text(new.name + "\n", encoding="utf-8")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, index / POINTER)
    if old is not None and old != new:
        try:
            (old / RETIRED).write_text(str(time.time()), encoding="utf-8")
        except OSError:  # a damaged old store may not even take a stamp; the sweep removes it anyway
            logger.info("index: could not stamp %s as retired", old)


def sweep(index: Path, keep: Path, grace_s: float = GRACE_S) -> int:
    """Delete retired stores older than ``grace_s`` and interrupted rebuilds (caller holds the lock)."""
    removed = 0
    now = time.time()
    for folder in sorted(index.glob(PREFIX + "*")):
        if folder == keep or not folder.is_dir():
            continue
        stamp = folder / RETIRED
        try:
            retired_at = float(stamp.read_text(encoding="utf-8")) if stamp.exists() else None
        except (OSError, ValueError):
            retired_at = 0.0
        if retired_at is None or now - retired_at >= grace_s:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    if keep != index and (index / "files.lance").exists():
        legacy_at = _legacy_retired_at(index)
        if legacy_at is not None and now - legacy_at >= grace_s:
            for item in index.glob("*.lance"):
                shutil.rmtree(item, ignore_errors=True)
            for name in (*_LEGACY_ITEMS, RETIRED):
                (index / name).unlink(missing_ok=True)
            removed += 1
    return removed


def _legacy_retired_at(index: Path) -> float | None:
    try:
        return float((index / RETIRED).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return 0.0
