"""The project index as the server sees it: opened lazily, updated in the background and on save.

Index work runs in worker threads. While a long update holds the index, completions do not wait
for it: :class:`GuardedIndex` gives the prompt builder empty lookups instead (a completion without
project context beats a late one). A missing or broken ``mochi_index`` degrades to "no index".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mochi_core.config import MochiConfig
from mochi_core.errors import MochiError
from mochi_core.paths import index_dir

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int, str], None]  # (done, total, message)


class GuardedIndex:
    """Forwards lookups to the index unless a writer holds it; then returns empty results."""

    def __init__(self, index: Any, lock: threading.RLock, wait_s: float = 0.05) -> None:
        self._index = index
        self._lock = lock
        self._wait_s = wait_s

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._index, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if not self._lock.acquire(timeout=self._wait_s):
                return []
            try:
                return attr(*args, **kwargs)
            finally:
                self._lock.release()

        return call


def _progress_adapter(report: ProgressFn) -> Callable[..., None]:
    """Accept whatever shape the index reports progress in: (done, total[, message]) or an object."""

    def progress(*args: Any, **kwargs: Any) -> None:
        nums = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
        texts = [a for a in args if isinstance(a, str)]
        done = kwargs.get("done", nums[0] if nums else 0)
        total = kwargs.get("total", nums[1] if len(nums) > 1 else 0)
        message = kwargs.get("message", texts[0] if texts else "")
        if args and not nums and not texts:  # an object with attributes
            obj = args[0]
            done = getattr(obj, "done", done)
            total = getattr(obj, "total", total)
            message = str(getattr(obj, "path", getattr(obj, "message", message)) or "")
        report(int(done or 0), int(total or 0), str(message))

    return progress


class IndexHost:
    """Owns the project's :class:`mochi_index.ProjectIndex` for the server.

    Args:
        root: project root (None: no workspace, no index).
        config: the project's config (passed to the index).
    """

    def __init__(self, root: Path | None, config: MochiConfig) -> None:
        self.root = root
        self.config = config
        self._index: Any = None
        self._lock = threading.RLock()
        self.error = ""
        self.indexing = False
        self.saves = 0

    def open(self, *, create: bool = True) -> Any:
        """Open (or create) the index; None when unavailable (reason in :attr:`error`)."""
        if self._index is not None or self.root is None:
            return self._index
        try:
            from mochi_index import ProjectIndex  # type: ignore[attr-defined]
        except ImportError as exc:
            self.error = f"the project index is not available ({exc})"
            return None
        try:
            with self._lock:
                self._index = ProjectIndex.open(self.root, config=self.config, create=create)
        except Exception as exc:  # any index failure degrades to "no context", never a crash
            logger.exception("cannot open the project index")
            self.error = f"cannot open the project index under {self.root}: {exc}"
            self._index = None
        return self._index

    @property
    def index(self) -> GuardedIndex | None:
        return GuardedIndex(self._index, self._lock) if self._index is not None else None

    def index_for(self, uri: str) -> GuardedIndex | None:
        """The index for completing ``uri``: None (no project context) for a file outside the root."""
        from mochi_ls.lsp_convert import lsp_relative_path, lsp_uri_to_path

        outside = lsp_uri_to_path(uri) is not None and not lsp_relative_path(uri, self.root)
        return None if outside else self.index  # an unsaved buffer (untitled:) is not outside

    def open_for_session(self, *, build: bool) -> bool:
        """Open the index at session start; True when it is empty and ``build`` asks to fill it.

        Without ``build`` (``index_on_start = false``) an existing index is used and none is
        created, and nothing heavy is imported when the project has no ``.mochi/index``.
        """
        if self.root is None:
            return False
        if not build:
            if index_dir(self.root).exists():
                self.open(create=False)
            else:
                self.error = "no project index yet (run `mochi index` or enable server.index_on_start)"
            return False
        return self.needs_initial_index()

    def needs_initial_index(self) -> bool:
        idx = self.open()
        if idx is None:
            return False
        try:
            if not getattr(idx, "exists", True):
                return True
            stats = idx.stats()
            files = stats.get("files", stats.get("total_files", None)) if isinstance(stats, dict) else None
            return files == 0
        except Exception:  # an unreadable index is rebuilt
            logger.exception("cannot read index stats")
            return True

    def update_all(self, report: ProgressFn | None = None) -> Any:
        """Index the workspace (incremental); blocks, run it in a worker thread."""
        idx = self.open()
        if idx is None:
            return None
        self.indexing = True
        try:
            with self._lock:
                return idx.update(progress=_progress_adapter(report) if report else None)
        finally:
            self.indexing = False

    def update_file(self, rel_path: str, text: str | None) -> bool:
        """Re-index one file (didSave). True when the index took it (never for a path outside the root)."""
        idx = self.open()
        if idx is None or not rel_path:
            return False
        try:
            with self._lock:
                taken = bool(idx.update_file(rel_path, text))
        except MochiError as exc:  # e.g. IndexBusy: `mochi index` holds the writer lock; the next save retries
            logger.warning("not re-indexing %s now: %s", rel_path, exc)
            return False
        self.saves += taken
        return taken

    def close(self) -> None:
        with self._lock:
            if self._index is not None:
                try:
                    self._index.close()
                except Exception:  # closing must not fail shutdown
                    logger.exception("closing the index failed")
                self._index = None
