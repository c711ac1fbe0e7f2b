"""The ``manifest.json`` schema of a packed adapter, its (de)serialisation and validation.

Schema version 1 (README "Sharing adapters" documents every field)::

    {"schema_version": 1, "name": "acme-api", "version": "1.0.0", "type": "project",
     "base_model": {"id": "Qwen/Qwen2.5-Coder-0.5B", "revision": "..."},
     "lora": {"rank": 8, "scale": 20.0, "keys": [...], ...},
     "languages": ["python"], "project": {"name": "acme-api", "git_remote": "github.com/acme/api"},
     "base_adapter": {"name": "team-python", "version": "1.0.0"} | null,
     "training": {...}, "eval": {...}, "created_at": "2026-11-25T21:00:00Z", "mochi_version": "0.1.0",
     "files": [{"path": "adapters.safetensors", "sha256": "...", "size": 123}, ...]}

Names and versions become folder names, so they are restricted to ``[A-Za-z0-9._-]``; file
paths are plain file names (no folders), so nothing in a manifest can point outside its folder.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mochi_model.dist.errors import ManifestError

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapters.safetensors"
REQUIRED_FILES = (ADAPTER_CONFIG, ADAPTER_WEIGHTS)
ADAPTER_TYPES = ("base", "project")

MAX_JSON_BYTES = 4 * 1024**2  # manifest.json / adapter_config.json: a few KB when `mochi pack` writes them
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(kw_only=True)
class FileEntry:
    path: str
    sha256: str
    size: int


@dataclass(kw_only=True)
class ProjectRef:
    name: str = ""
    git_remote: str = ""


@dataclass(kw_only=True)
class Manifest:
    name: str
    version: str
    type: str = "project"
    base_model: dict[str, str] = field(default_factory=dict)  # {"id": ..., "revision": ...}
    lora: dict[str, Any] = field(default_factory=dict)
    languages: list[str] = field(default_factory=list)
    project: ProjectRef | None = None
    base_adapter: dict[str, str] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    mochi_version: str = ""
    files: list[FileEntry] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    @property
    def base_model_id(self) -> str:
        return str(self.base_model.get("id", ""))

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, path: str) -> FileEntry | None:
        return next((f for f in self.files if f.path == path), None)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        return {"schema_version": out.pop("schema_version"), **out}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"


def check_name(value: str, what: str) -> str:
    """Return ``value`` if it is a safe adapter name/version, else raise :class:`ManifestError`."""
    if not isinstance(value, str) or not _NAME_RE.match(value) or value in (".", ".."):
        raise ManifestError(
            f"invalid {what} {value!r}: use letters, digits, '.', '_' or '-' (max 80 characters, "
            "starting with a letter or digit)"
        )
    return value


def manifest_from_dict(data: Any) -> Manifest:
    """Validate parsed JSON and build a :class:`Manifest`.

    Raises:
        ManifestError: unknown schema version, missing/invalid fields, unsafe file names.
    """
    if not isinstance(data, dict):
        raise ManifestError("manifest.json must hold a JSON object")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ManifestError("manifest.json has no integer 'schema_version'; it was not written by `mochi pack`")
    if version != SCHEMA_VERSION:
        raise ManifestError(
            f"manifest schema version {version} is not supported (this Mochi reads version {SCHEMA_VERSION}); "
            "upgrade Mochi or re-pack the adapter"
        )
    name = check_name(data.get("name", ""), "adapter name")
    ver = check_name(str(data.get("version", "")), "adapter version")
    kind = data.get("type", "project")
    if kind not in ADAPTER_TYPES:
        raise ManifestError(f"manifest 'type' must be one of {', '.join(ADAPTER_TYPES)}, got {kind!r}")
    files = [_file_entry(f) for f in _list(data, "files")]
    seen = [f.path for f in files]
    if len(set(seen)) != len(seen):
        raise ManifestError("manifest lists the same file twice")
    for required in REQUIRED_FILES:
        if required not in seen:
            raise ManifestError(f"manifest does not list {required}; the archive is not a complete adapter")
    project = data.get("project")
    return Manifest(
        schema_version=version,
        name=name,
        version=ver,
        type=kind,
        base_model={k: str(v) for k, v in _dict(data, "base_model").items()},
        lora=_dict(data, "lora"),
        languages=[str(x) for x in _list(data, "languages")],
        project=ProjectRef(name=str(project.get("name", "")), git_remote=str(project.get("git_remote", "")))
        if isinstance(project, dict)
        else None,
        base_adapter={k: str(v) for k, v in data["base_adapter"].items()}
        if isinstance(data.get("base_adapter"), dict)
        else None,
        training=_dict(data, "training"),
        eval=_dict(data, "eval"),
        created_at=str(data.get("created_at", "")),
        mochi_version=str(data.get("mochi_version", "")),
        files=files,
    )


def parse_manifest(text: str | bytes) -> Manifest:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"manifest.json is not valid JSON ({exc})") from exc
    return manifest_from_dict(data)


def read_manifest(folder: Path) -> Manifest:
    """Read and validate ``folder/manifest.json`` (at most :data:`MAX_JSON_BYTES`, checked before reading)."""
    path = Path(folder) / MANIFEST_NAME
    try:
        check_json_size(path)
        text = path.read_bytes()
    except FileNotFoundError as exc:
        raise ManifestError(f"{path} is missing; this folder was not installed by `mochi install`") from exc
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from exc
    return parse_manifest(text)


def check_json_size(path: Path) -> None:
    """Refuse a metadata file over :data:`MAX_JSON_BYTES` before it is read into memory.

    Raises:
        ManifestError: the file is larger; FileNotFoundError/OSError from ``stat`` pass through.
    """
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise ManifestError(f"{path.name} is {size} bytes, over the {MAX_JSON_BYTES}-byte limit for adapter "
                            "metadata; this is not an archive made by `mochi pack`")


def _file_entry(raw: Any) -> FileEntry:
    if not isinstance(raw, dict):
        raise ManifestError("manifest 'files' entries must be objects with path, sha256 and size")
    path, digest, size = raw.get("path"), raw.get("sha256"), raw.get("size")
    if not isinstance(path, str) or not _FILE_RE.match(path) or path == MANIFEST_NAME:
        raise ManifestError(f"manifest lists an unsafe or invalid file name {path!r} (plain file names only)")
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ManifestError(f"manifest entry {path}: sha256 must be 64 lowercase hex digits")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"manifest entry {path}: size must be a non-negative integer")
    return FileEntry(path=path, sha256=digest, size=size)


def _dict(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise ManifestError(f"manifest '{key}' must be an object")
    return value


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise ManifestError(f"manifest '{key}' must be a list")
    return value
