"""Installed adapters under ``~/.mochi/adapters/NAME/VERSION/``: list, resolve, uninstall.

Each installed version folder holds ``manifest.json`` plus the files it lists. Folders without a
valid manifest (half-copied by hand, or from a newer Mochi) are skipped with a warning, never
deleted implicitly. Leftover ``.tmp-*``/``.trash-*`` folders from an interrupted install are ignored.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from mochi_core.paths import adapters_home
from mochi_model.dist.errors import AdapterNotFound, DistError
from mochi_model.dist.manifest import Manifest, check_name, read_manifest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InstalledAdapter:
    name: str
    version: str
    path: Path
    manifest: Manifest

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Natural sort key: ``1.10.0`` > ``1.9.2`` > ``1.9``; numbers sort before words."""
    parts = re.split(r"[.\-_+]", version)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def next_version(version: str, taken: set[str] | None = None) -> str:
    """The version after ``version``: its last number + 1 (``0.1.0`` → ``0.1.1``, ``3`` → ``4``,
    ``1.0-rc`` → ``1.0-rc.1``), skipping versions in ``taken``."""
    taken = taken or set()
    out = version or "0"
    while True:
        m = re.search(r"(\d+)$", out)
        out = out[: m.start()] + str(int(m.group(1)) + 1) if m else f"{out}.1"
        if out not in taken:
            return out


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``NAME[@VERSION]`` into ``(name, version)``; version ``""`` means newest."""
    name, _, version = spec.partition("@")
    check_name(name, "adapter name")
    if version:
        check_name(version, "adapter version")
    return name, version


def list_installed(home: Path | None = None) -> list[InstalledAdapter]:
    """Every valid installed adapter, sorted by name then version (oldest first)."""
    home = Path(home) if home else adapters_home()
    found: list[InstalledAdapter] = []
    if not home.is_dir():
        return found
    for name_dir in sorted(home.iterdir()):
        if not name_dir.is_dir() or name_dir.name.startswith("."):
            continue
        for ver_dir in name_dir.iterdir():
            if not ver_dir.is_dir() or ver_dir.name.startswith("."):
                continue
            try:
                manifest = read_manifest(ver_dir)
            except DistError as exc:
                logger.warning("skipping %s: %s", ver_dir, exc)
                continue
            if (manifest.name, manifest.version) != (name_dir.name, ver_dir.name):
                logger.warning("skipping %s: its manifest says %s@%s", ver_dir, manifest.name, manifest.version)
                continue
            found.append(InstalledAdapter(manifest.name, manifest.version, ver_dir, manifest))
    found.sort(key=lambda a: (a.name, version_key(a.version)))
    return found


def resolve(spec: str, home: Path | None = None) -> InstalledAdapter:
    """The installed adapter for ``NAME`` (newest version) or ``NAME@VERSION``.

    Raises:
        AdapterNotFound: nothing installed under that name/version.
    """
    name, version = parse_spec(spec)
    matches = [a for a in list_installed(home) if a.name == name and (not version or a.version == version)]
    if not matches:
        have = sorted({a.spec for a in list_installed(home) if a.name == name})
        hint = f" (installed: {', '.join(have)})" if have else "; run `mochi list` to see installed adapters"
        raise AdapterNotFound(f"adapter {spec} is not installed{hint}")
    return matches[-1]


def uninstall(spec: str, home: Path | None = None) -> list[InstalledAdapter]:
    """Remove ``NAME@VERSION``, or every version of ``NAME``; returns what was removed."""
    name, version = parse_spec(spec)
    home = Path(home) if home else adapters_home()
    targets = [a for a in list_installed(home) if a.name == name and (not version or a.version == version)]
    if not targets:
        raise AdapterNotFound(f"adapter {spec} is not installed; run `mochi list` to see installed adapters")
    for adapter in targets:
        # Rename first so a crash mid-delete never leaves a half-present adapter that looks valid.
        trash = adapter.path.parent / f".trash-{adapter.version}"
        shutil.rmtree(trash, ignore_errors=True)
        adapter.path.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
        logger.info("uninstalled %s from %s", adapter.spec, adapter.path)
    name_dir = home / name
    if name_dir.is_dir() and not any(p for p in name_dir.iterdir() if not p.name.startswith(".")):
        shutil.rmtree(name_dir, ignore_errors=True)
    return targets


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
