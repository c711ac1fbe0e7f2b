"""Decide which adapters a project runs with, and say why.

Precedence, per role (``base`` and ``project``):
    1. explicit flags (``base=`` / ``project=``: a folder path, ``NAME`` or ``NAME@VERSION``);
    2. pins in ``.mochi/config.toml`` (``[[adapters]]`` name/version/path/weight/role);
    3. installed adapters: the project adapter whose manifest matches this project (normalised git
       remote first, then project name) and the base model; a base adapter for the same base model
       (the one the project adapter was trained on, if installed, else the newest).
Weights: a pinned weight is used as is; otherwise base 0.3 + project 0.7, or 1.0 for a lone adapter.
A config weight equal to the field's default (1.0) counts as "not pinned".
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mochi_core.config import AdapterEntry, MochiConfig
from mochi_model.dist.errors import AdapterNotFound, DistError
from mochi_model.dist.identity import (
    ProjectIdentity,
    configured_base_model,
    project_identity,
    same_base_model,
)
from mochi_model.dist.manifest import ADAPTER_CONFIG, MANIFEST_NAME, read_manifest
from mochi_model.dist.registry import InstalledAdapter, list_installed, resolve, version_key

logger = logging.getLogger(__name__)

DEFAULT_WEIGHTS = {"base": 0.3, "project": 0.7}
_UNPINNED_WEIGHT = next(f.default for f in dataclasses.fields(AdapterEntry) if f.name == "weight")


@dataclass(frozen=True)
class ChosenAdapter:
    path: Path
    weight: float
    role: str  # "base" | "project"
    name: str
    version: str
    reason: str

    def __iter__(self) -> Iterator[Path | float]:
        """Unpacks as ``(path, weight)``, the pair ``mochi_model.loader.load_engine(adapters=...)`` takes."""
        return iter((self.path, self.weight))


@dataclass
class _Pick:
    path: Path
    role: str
    name: str
    version: str
    reason: str
    weight: float | None = None  # None = default weight


def _folder_pick(folder: Path, role: str, reason: str, weight: float | None) -> _Pick:
    if not (folder / ADAPTER_CONFIG).is_file():
        raise DistError(f"{folder} is not an adapter folder (no {ADAPTER_CONFIG}); check the path")
    name, version = folder.name, ""
    if (folder / MANIFEST_NAME).is_file():
        manifest = read_manifest(folder)
        name, version = manifest.name, manifest.version
    return _Pick(folder.resolve(), role, name, version, f"{reason} (folder {folder})", weight)


def _from_spec(spec: str, role: str, reason: str, root: Path, weight: float | None = None,
               is_path: bool = False) -> _Pick:
    """Resolve a folder path or an installed ``NAME[@VERSION]``.

    Anything with a path separator, or starting with ``.``/``~``, is a folder (relative to the current
    folder if it exists there, else to ``root``). A bare word is an installed adapter name first, and a
    folder only when no adapter of that name is installed.
    """
    given = Path(spec).expanduser()
    candidates = [given] if given.is_absolute() else [given, root / given]
    folder = next((c for c in candidates if c.is_dir()), candidates[-1])
    if is_path or "/" in spec or "\\" in spec or spec.startswith((".", "~")):
        return _folder_pick(folder, role, reason, weight)
    try:
        installed = resolve(spec)
    except AdapterNotFound:
        if (folder / ADAPTER_CONFIG).is_file():
            return _folder_pick(folder, role, reason, weight)
        raise
    return _Pick(installed.path, role, installed.name, installed.version, f"{reason} ({installed.spec})", weight)


def _project_match(adapter: InstalledAdapter, ident: ProjectIdentity) -> str:
    ref = adapter.manifest.project
    if ref is None:
        return ""
    if ident.git_remote and ref.git_remote and ref.git_remote == ident.git_remote:
        return f"manifest git remote {ref.git_remote} matches this project"
    if ref.name and ref.name.lower() == ident.name.lower():
        return f"manifest project name {ref.name!r} matches this project"
    return ""


def _auto_project(installed: list[InstalledAdapter], ident: ProjectIdentity, base_model: str) -> _Pick | None:
    scored: list[tuple[int, tuple, InstalledAdapter, str]] = []
    for a in installed:
        if a.manifest.type != "project":
            continue
        why = _project_match(a, ident)
        if not why:
            continue
        if not same_base_model(a.manifest.base_model_id, base_model):
            logger.info("not using %s: built for %s, configured %s", a.spec, a.manifest.base_model_id, base_model)
            continue
        scored.append((1 if "git remote" in why else 0, version_key(a.version), a, why))
    if not scored:
        return None
    _, _, best, why = max(scored, key=lambda t: (t[0], t[1]))
    return _Pick(best.path, "project", best.name, best.version, f"installed {best.spec}: {why}")


def _auto_base(installed: list[InstalledAdapter], base_model: str, wanted: dict[str, str] | None) -> _Pick | None:
    bases = [
        a for a in installed if a.manifest.type == "base" and same_base_model(a.manifest.base_model_id, base_model)
    ]
    if not bases:
        return None
    if wanted and wanted.get("name"):
        same = [a for a in bases if a.name == wanted["name"]]
        exact = [a for a in same if a.version == wanted.get("version")]
        if exact or same:
            best = (exact or same)[-1]
            why = "the project adapter was trained on it" if exact else \
                f"the project adapter was trained on version {wanted.get('version')}, not installed"
            return _Pick(best.path, "base", best.name, best.version, f"installed {best.spec}: {why}")
        logger.warning("the project adapter was trained on base adapter %s@%s, which is not installed "
                       "(`mochi install` it for the intended stack)", wanted["name"], wanted.get("version", ""))
    best = max(bases, key=lambda a: (a.manifest.created_at, version_key(a.version)))
    return _Pick(best.path, "base", best.name, best.version,
                 f"installed {best.spec}: newest base adapter for {base_model}")


def choose_adapters(
    config: MochiConfig, root: Path, base: str | None = None, project: str | None = None, *, quiet: bool = False
) -> list[ChosenAdapter]:
    """The adapter stack for ``root``: at most one base and one project adapter, base first.

    Args:
        config: the project's configuration (``config.adapters`` pins, ``model`` = base model).
        root: project root (its git remote / folder name identify the project).
        base: explicit base adapter (folder path, ``NAME`` or ``NAME@VERSION``); wins over everything.
        project: explicit project adapter, same forms.

    Raises:
        AdapterNotFound / DistError: an explicit flag or a config pin names something missing.
    """
    log = logger.debug if quiet else logger.info  # quiet: the servers' periodic re-checks
    root = Path(root).resolve()
    picks: dict[str, _Pick] = {}
    if base:
        picks["base"] = _from_spec(base, "base", "explicit flag", root)
    if project:
        picks["project"] = _from_spec(project, "project", "explicit flag", root)
    for entry in config.adapters:
        role = entry.role if entry.role in DEFAULT_WEIGHTS else "project"
        if role in picks:
            log("ignoring config pin %s: %s", entry.name or entry.path, picks[role].reason)
            continue
        spec = str(root / Path(entry.path).expanduser()) if entry.path else (
            f"{entry.name}@{entry.version}" if entry.version else entry.name)  # pinned paths: relative to root
        weight = None if entry.weight == _UNPINNED_WEIGHT else entry.weight
        try:
            picks[role] = _from_spec(spec, role, "pinned in .mochi/config.toml", root, weight,
                                     is_path=bool(entry.path))
        except AdapterNotFound as exc:
            raise AdapterNotFound(f"{exc} (pinned in {root / '.mochi' / 'config.toml'})") from exc
    if "base" not in picks or "project" not in picks:
        installed = list_installed()
        base_model = configured_base_model(config)
        if "project" not in picks:
            found = _auto_project(installed, project_identity(config, root), base_model)
            if found:
                picks["project"] = found
        if "base" not in picks:
            wanted = None
            proj = picks.get("project")
            if proj and proj.version:
                wanted = next((a.manifest.base_adapter for a in installed if a.path == proj.path), None)
            found = _auto_base(installed, base_model, wanted)
            if found:
                picks["base"] = found
    chosen = []
    alone = len(picks) == 1
    for role in ("base", "project"):
        pick = picks.get(role)
        if pick is None:
            continue
        weight = pick.weight if pick.weight is not None else (1.0 if alone else DEFAULT_WEIGHTS[role])
        chosen.append(ChosenAdapter(pick.path, weight, role, pick.name, pick.version, pick.reason))
        label = f"{pick.name}@{pick.version}" if pick.version else pick.name
        log("adapter %s: %s weight %.2f, %s", role, label, weight, pick.reason)
    if not chosen:
        log("no adapters: none pinned and none installed for project %s", root.name)
    return chosen


def choose_explicit(specs: Sequence[tuple[str | Path, float]], root: Path) -> list[ChosenAdapter]:
    """The stack ``--adapter SPEC[:WEIGHT]`` flags name, in their order, each at its given weight.

    A :class:`~pathlib.Path` is always a folder; a string is a folder or an installed ``NAME[@VERSION]``
    (a bare ``NAME`` is its newest installed version, so re-running this notices a new install).

    Raises:
        AdapterNotFound / DistError: nothing installed by that name and no adapter folder there.
    """
    root = Path(root).resolve()
    chosen = []
    for spec, weight in specs:
        pick = _from_spec(str(spec), "project", "explicit flag", root, is_path=isinstance(spec, Path))
        chosen.append(ChosenAdapter(pick.path, float(weight), pick.role, pick.name, pick.version, pick.reason))
    return chosen


def resolve_adapter_spec(spec: str, root: Path) -> Path:
    """The adapter folder for one ``--adapter`` value: a folder path or an installed ``NAME[@VERSION]``.

    Raises:
        AdapterNotFound / DistError: nothing installed by that name and no adapter folder there.
    """
    return _from_spec(spec, "project", "explicit flag", Path(root).resolve()).path
