"""Verify an adapter archive (or unpacked folder) and install it atomically.

Steps: extract into a temporary folder *inside* ``~/.mochi/adapters`` (same filesystem, so the final
``rename`` is atomic) → validate ``manifest.json`` (known schema version, safe names, declared sizes
under the cap) → the files present are exactly those listed, each with the listed size and sha256 →
``adapter_config.json`` names the same base model as the manifest and the weights' shapes fit it
(:mod:`mochi_model.dist.weights`) → the base model matches the configured one (unless forced) → rename into ``NAME/VERSION``.
Any refusal removes the temporary folder, so a failure never leaves a half-installed adapter.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

from mochi_core.paths import adapters_home
from mochi_model.dist.archive import DEFAULT_MAX_BYTES, safe_extract
from mochi_model.dist.errors import (
    BaseModelMismatch,
    ChecksumMismatch,
    DistError,
    ManifestError,
    UnsafeArchive,
)
from mochi_model.dist.identity import same_base_model
from mochi_model.dist.manifest import MANIFEST_NAME, Manifest, check_json_size, read_manifest
from mochi_model.dist.pack import sha256_file
from mochi_model.dist.registry import InstalledAdapter

logger = logging.getLogger(__name__)


def verify_folder(folder: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, digests: dict[str, str] | None = None) -> Manifest:
    """Check that ``folder`` holds exactly the files its manifest lists, with matching size and sha256.

    Args:
        folder: extracted archive or installed adapter folder.
        max_bytes: cap on the manifest's declared total size.
        digests: sha256 already computed while extracting (saves a second read).

    Raises:
        ManifestError, UnsafeArchive, ChecksumMismatch.
    """
    folder = Path(folder)
    if not (folder / MANIFEST_NAME).is_file():
        raise ManifestError(f"no {MANIFEST_NAME} in {folder.name}: this is not an archive made by `mochi pack`")
    manifest = read_manifest(folder)
    if manifest.total_size > max_bytes:
        raise UnsafeArchive(f"manifest declares {manifest.total_size} bytes in total, over the {max_bytes}-byte cap")
    present = {p.name for p in folder.iterdir()} - {MANIFEST_NAME}
    listed = {f.path for f in manifest.files}
    if present - listed:
        raise UnsafeArchive(f"archive holds files its manifest does not list: {', '.join(sorted(present - listed))}")
    if listed - present:
        raise ChecksumMismatch(f"archive lacks files its manifest lists: {', '.join(sorted(listed - present))}; "
                               "it is incomplete, download or pack it again")
    for entry in manifest.files:
        path = folder / entry.path
        if path.is_symlink() or not path.is_file():
            raise UnsafeArchive(f"{entry.path} is not a regular file")
        size = path.stat().st_size
        if size != entry.size:
            raise ChecksumMismatch(f"{entry.path} is {size} bytes but the manifest says {entry.size}: the file is "
                                   "truncated or corrupt; download it again")
        digest = (digests or {}).get(entry.path) or sha256_file(path)
        if digest != entry.sha256:
            raise ChecksumMismatch(f"{entry.path} has sha256 {digest[:12]}… but the manifest says "
                                   f"{entry.sha256[:12]}…: the file is corrupt or was tampered with")
    return manifest


def _check_adapter(folder: Path, manifest: Manifest) -> None:
    """The adapter config must be one this Mochi can load (mlx-lm layout, known format version), and
    agree with the manifest and the weights (:func:`mochi_model.dist.weights.check_adapter_weights`)."""
    from mochi_model.adapters.format import CONFIG_FILE, AdapterConfig
    from mochi_model.dist.weights import check_adapter_weights

    try:
        check_json_size(folder / CONFIG_FILE)
        raw = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{CONFIG_FILE} in the archive is not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise ManifestError(f"{CONFIG_FILE} in the archive must hold a JSON object")
    try:
        config = AdapterConfig.from_json(raw, CONFIG_FILE)
    except (TypeError, ValueError) as exc:  # e.g. "rank": "eight"
        raise ManifestError(f"{CONFIG_FILE} in the archive has an invalid value ({exc})") from exc
    check_adapter_weights(folder, config, manifest.base_model_id)


def _stage_folder(source: Path, stage: Path, max_bytes: int) -> dict[str, str]:
    """Copy an unpacked adapter folder (e.g. on a shared drive) into ``stage``, regular files only."""
    manifest_path = source / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ManifestError(f"{source} has no {MANIFEST_NAME}; install a .mochi.tar.gz or a folder made by `mochi pack`")
    manifest = read_manifest(source)
    digests: dict[str, str] = {}
    total = 0
    for name in (MANIFEST_NAME, *(f.path for f in manifest.files)):
        src = source / name
        if src.is_symlink() or (src.exists() and not src.is_file()):
            raise UnsafeArchive(f"{src} is a link or not a regular file; refusing to install it")
        if not src.exists():
            raise ChecksumMismatch(f"{src} is missing; the adapter folder is incomplete")
        total += src.stat().st_size
        if total > max_bytes:
            raise UnsafeArchive(f"{source} holds more than the {max_bytes}-byte cap")
        shutil.copyfile(src, stage / name)
        if name != MANIFEST_NAME:
            digests[name] = sha256_file(stage / name)  # of the copy: what gets installed is what is checked
    return digests


def _remove_stale_temp(home: Path, max_age_s: float = 86400.0) -> None:
    """Remove temporary folders left by installs that were killed (older than a day)."""
    now = time.time()
    for leftover in home.glob(".tmp-install-*"):
        try:
            if now - leftover.stat().st_mtime > max_age_s:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue


def install_local(
    source: Path,
    *,
    expected_base_model: str | None = None,
    force: bool = False,
    home: Path | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> InstalledAdapter:
    """Install a local ``.mochi.tar.gz`` (or unpacked folder) into ``home/NAME/VERSION``.

    Args:
        source: archive file or folder made by ``mochi pack``.
        expected_base_model: the configured base model; a different one is refused unless ``force``.
        force: install over an existing version and accept a different base model.
        home: adapters folder (default ``~/.mochi/adapters``).
        max_bytes: size cap, declared and actual.

    Raises:
        DistError subclasses, each saying what was wrong; nothing is left installed on failure.
    """
    source = Path(source)
    home = Path(home) if home else adapters_home()
    home.mkdir(parents=True, exist_ok=True)
    _remove_stale_temp(home)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-install-", dir=home))
    created_parent: Path | None = None
    try:
        stage = tmp / "payload"
        stage.mkdir()
        if source.is_dir():
            digests = _stage_folder(source, stage, max_bytes)
        elif source.is_file():
            digests = safe_extract(source, stage, max_bytes=max_bytes)
        else:
            raise DistError(f"{source} does not exist")
        manifest = verify_folder(stage, max_bytes=max_bytes, digests=digests)
        _check_adapter(stage, manifest)
        if expected_base_model and not same_base_model(manifest.base_model_id, expected_base_model):
            msg = (f"{manifest.name}@{manifest.version} was trained for base model {manifest.base_model_id!r}, "
                   f"but this project uses {expected_base_model!r}")
            if not force:
                raise BaseModelMismatch(msg + "; change [model] in .mochi/config.toml or pass --force")
            logger.warning("%s (installing anyway: --force)", msg)
        target = home / manifest.name / manifest.version
        if not target.parent.exists():
            target.parent.mkdir()
            created_parent = target.parent
        if target.exists():
            if not force:
                raise DistError(f"{manifest.name}@{manifest.version} is already installed at {target}; "
                                "pass --force to replace it")
            target.rename(tmp / "previous")  # moved aside, removed with tmp below
        try:
            stage.rename(target)
        except OSError as exc:  # another `mochi install` of the same version won the race
            raise DistError(f"cannot install into {target} ({exc}); is another install running? "
                            "run `mochi list` and retry") from exc
        created_parent = None
        logger.info("installed %s@%s into %s", manifest.name, manifest.version, target)
        return InstalledAdapter(manifest.name, manifest.version, target, manifest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if created_parent is not None and not any(created_parent.iterdir()):
            created_parent.rmdir()  # the NAME folder made for an install that was then refused


def newest_installed(name: str, home: Path | None = None) -> InstalledAdapter | None:
    """The newest installed version of ``name``, or ``None``."""
    from mochi_model.dist.registry import list_installed

    found = [a for a in list_installed(home) if a.name == name]
    return found[-1] if found else None


def install_next_version(folder: Path, previous: InstalledAdapter, *, home: Path | None = None) -> InstalledAdapter:
    """Pack ``folder`` (a retrained ``previous``) and install it as the version after the newest one.

    The new version keeps ``previous``'s name, type, project and languages, and must be for its base
    model, so auto-detection picks it wherever it picked ``previous`` (the newest version wins).

    Raises:
        DistError subclasses, as :func:`install_local`.
    """
    from mochi_model.dist.identity import ProjectIdentity
    from mochi_model.dist.pack import pack
    from mochi_model.dist.registry import list_installed, next_version

    taken = {a.version for a in list_installed(home) if a.name == previous.name}
    newest = newest_installed(previous.name, home) or previous
    version = next_version(newest.version, taken)
    ref = previous.manifest.project
    identity = ProjectIdentity(name=ref.name, git_remote=ref.git_remote) if ref else None
    with tempfile.TemporaryDirectory(prefix="mochi-bump-") as tmp:
        archive = pack(folder, name=previous.name, version=version, out_dir=Path(tmp),
                       adapter_type=previous.manifest.type, identity=identity,
                       languages=list(previous.manifest.languages) or None)
        return install_local(archive, expected_base_model=previous.manifest.base_model_id, home=home)
