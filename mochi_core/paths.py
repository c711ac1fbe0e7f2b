"""Where Mochi keeps things on disk.

project: ``<root>/.mochi/config.toml``, ``<root>/.mochi/index/`` (LanceDB), ``<root>/.mochi/usage/``
user:    ``$MOCHI_HOME`` or ``~/.mochi`` → ``adapters/NAME/VERSION/``, ``models/`` (converted GGUF)
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR_NAME = ".mochi"
CONFIG_FILE_NAME = "config.toml"


def mochi_home() -> Path:
    """User-level state directory (``$MOCHI_HOME`` overrides ``~/.mochi``)."""
    env = os.environ.get("MOCHI_HOME")
    return Path(env).expanduser() if env else Path.home() / ".mochi"


def adapters_home() -> Path:
    return mochi_home() / "adapters"


def models_cache() -> Path:
    """Cache for downloaded/converted models (``$MOCHI_MODELS`` overrides)."""
    env = os.environ.get("MOCHI_MODELS")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "mochi" / "models"


def project_dir(root: Path) -> Path:
    return Path(root) / PROJECT_DIR_NAME


def config_path(root: Path) -> Path:
    return project_dir(root) / CONFIG_FILE_NAME


def index_dir(root: Path) -> Path:
    return project_dir(root) / "index"


def usage_dir(root: Path) -> Path:
    return project_dir(root) / "usage"


def find_project_root(start: Path | None = None) -> Path:
    """Walk up from ``start`` to the nearest folder holding ``.mochi/`` or ``.git``.

    Falls back to ``start`` itself (resolved) when neither is found.
    """
    here = Path(start or Path.cwd()).resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        if (folder / PROJECT_DIR_NAME).is_dir() or (folder / ".git").exists():
            return folder
    return here
