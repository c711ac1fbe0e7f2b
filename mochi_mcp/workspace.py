"""The project the MCP server works in: root, config, safe file access and the (lazily opened) index.

Every path a client sends goes through :meth:`Workspace.resolve`: relative paths are taken from
the project root, symlinks are resolved, and anything that ends up outside the root is refused,
so a tool can never read ``../../etc/passwd`` or follow a link out of the project.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mochi_core.config import MochiConfig, load_config
from mochi_index.languages import EXTENSIONS, language_for_path
from mochi_mcp.errors import BadToolInput, FileUnreadable, IndexNotReady, PathOutsideProject

if TYPE_CHECKING:
    from mochi_index import ProjectIndex

logger = logging.getLogger(__name__)

# The one extension -> language map lives in the index (mochi_index.languages).
LANGUAGES: dict[str, str] = EXTENSIONS

MAX_FILE_BYTES = 1024 * 1024  # tools read at most 1 MiB of one file
_PATH_MAX, _NAME_MAX = 4096, 255  # Linux limits; macOS allows 1024 bytes in all, which open() then reports


def language_for(path: str) -> str:
    """The language of ``path`` by extension, ``""`` when unknown."""
    return language_for_path(path) or ""


def _shown(path: str) -> str:
    """A path as messages quote it: at most 80 characters."""
    return repr(path if len(path) <= 80 else path[:60] + "..." + path[-17:])


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _check_path_length(path: str) -> None:
    """Refuse a path the OS could not open (``PATH_MAX`` bytes in all, ``NAME_MAX`` per name) before using it.

    Raises:
        BadToolInput: too long; the message gives the limits and not the whole path.
    """
    encoded = path.encode("utf-8", "surrogateescape")
    longest = max((len(part) for part in encoded.split(b"/")), default=0)
    if len(encoded) > _PATH_MAX or longest > _NAME_MAX:
        raise BadToolInput(
            f"file_path {_shown(path)} is longer than the system allows ({len(encoded)} bytes, longest name "
            f"{longest}; at most {_PATH_MAX} and {_NAME_MAX}); pass a path inside the project"
        )


class Workspace:
    """Project root, configuration and index shared by the tools.

    Args:
        root: the project root (resolved here).
        config: the project's configuration; loaded from ``.mochi/config.toml`` when omitted.
        index: an already opened index (tests); otherwise opened on first use with ``create=False``.
    """

    def __init__(self, root: Path, config: MochiConfig | None = None, index: ProjectIndex | Any = None) -> None:
        self.root = Path(root).expanduser().resolve()
        if config is None:
            config, problems = load_config(self.root)
            for p in problems:
                logger.warning("config: %s", p)
        self.config = config
        self._index = index
        self._lock = threading.Lock()

    @property
    def project_name(self) -> str:
        return self.config.project.name or self.root.name

    # ---- paths and files -------------------------------------------------------------------

    def resolve(self, file_path: str) -> Path:
        """Absolute, symlink-resolved path of ``file_path``, which must stay inside the root.

        Raises:
            PathOutsideProject: the path escapes the project root.
            BadToolInput: the path is longer than the system allows, or cannot be resolved.
        """
        if not file_path or "\x00" in file_path:
            raise PathOutsideProject("file_path is empty or contains a NUL byte; pass a path inside the project")
        _check_path_length(file_path)
        try:
            raw = Path(file_path).expanduser()
            full = (raw if raw.is_absolute() else self.root / raw).resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop, an unknown ~user, an unreadable folder
            raise BadToolInput(f"file_path {_shown(file_path)} cannot be resolved ({_reason(exc)}); "
                               "pass a path inside the project") from exc
        _check_path_length(str(full))
        if full != self.root and not full.is_relative_to(self.root):
            raise PathOutsideProject(
                f"file_path {_shown(file_path)} is outside the project root {self.root} "
                "(paths are resolved, symlinks included); pass a path inside the project"
            )
        return full

    def relative(self, full: Path) -> str:
        """Project-relative path with forward slashes (the form the index stores)."""
        return full.relative_to(self.root).as_posix()

    def read_text(self, file_path: str) -> tuple[str, str]:
        """Read a project file as UTF-8 text.

        Returns:
            ``(relative_path, text)``.

        Raises:
            PathOutsideProject: outside the root.
            FileUnreadable: missing, a folder, too large, binary or not readable.
        """
        full = self.resolve(file_path)
        rel = self.relative(full) if full != self.root else "."
        try:
            if not full.exists():
                raise FileUnreadable(f"file {rel!r} does not exist in the project {self.root}")
            if not full.is_file():
                raise FileUnreadable(f"{rel!r} is not a regular file; pass a file path")
            size = full.stat().st_size
            if size > MAX_FILE_BYTES:
                raise FileUnreadable(
                    f"file {rel!r} is {size // 1024} KiB, over the {MAX_FILE_BYTES // 1024} KiB limit; "
                    "pass the relevant part as code instead"
                )
            data = full.read_bytes()
        except PermissionError as exc:
            raise FileUnreadable(f"cannot read {rel!r}: permission denied") from exc
        except OSError as exc:
            raise FileUnreadable(f"cannot read {rel!r}: {exc.strerror or exc}") from exc
        if b"\x00" in data[:8192]:
            raise FileUnreadable(f"file {rel!r} looks binary; tools work on text source files")
        try:
            return rel, data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileUnreadable(f"file {rel!r} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc

    def project_modules(self) -> frozenset[str]:
        """Top-level module/package names of the project (``src/`` layouts included).

        Names imported from these are project symbols, which the unknown-symbol check verifies.
        """
        names: set[str] = set()
        for folder in (self.root, self.root / "src"):
            try:
                entries = list(folder.iterdir())
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.suffix in LANGUAGES:
                    names.add(entry.stem)
                elif entry.is_dir() and any(entry.glob("*.py")):
                    names.add(entry.name)
        return frozenset(names)

    # ---- index ------------------------------------------------------------------------------

    def index(self, *, required: bool = True) -> Any:
        """The project's index, opened once; ``None`` when absent and not ``required``.

        A missing index is not cached: once the user runs ``mochi index`` the next call finds it.

        Raises:
            IndexNotReady: no index exists and ``required``.
            IndexError_: the index exists but cannot be used (``required`` only).
        """
        with self._lock:
            if self._index is not None:
                return self._index
            try:
                from mochi_index import ProjectIndex
                from mochi_index.errors import IndexError_, IndexMissing
            except ImportError as exc:  # the index package is part of Mochi; a broken install
                if required:
                    raise IndexNotReady(f"the project index is unavailable ({exc}); reinstall mochi-code") from exc
                return None
            try:
                self._index = ProjectIndex.open(self.root, config=self.config, create=False)
            except IndexError_ as exc:
                if not required:  # e.g. built by another Mochi version: work without it, say why
                    logger.warning("index unavailable, answering without project context: %s", exc)
                    return None
                if not isinstance(exc, IndexMissing):
                    raise  # a MochiError whose message says what to do (e.g. rebuild with --full)
                raise IndexNotReady(
                    f"no index for {self.root} yet: run `mochi index --project {self.root}` "
                    "(takes seconds to minutes), then call this tool again"
                ) from exc
            return self._index

    def close(self) -> None:
        with self._lock:
            if self._index is not None and hasattr(self._index, "close"):
                self._index.close()
            self._index = None
