"""Pack an adapter folder into ``NAME-VERSION.mochi.tar.gz`` with a ``manifest.json``.

Only the final weights travel: ``adapter_config.json``, ``adapters.safetensors`` and the reports
listed in :data:`REPORT_FILES` when present. Intermediate checkpoints (``0000100_adapters.safetensors``,
``checkpoints/``, optimizer state) are never packed. Metadata comes from ``adapter_config.json``
(``base_model``, ``role``, LoRA parameters, ``project``, ``languages``), ``training.json`` and
``eval.json``; explicit arguments win.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import io
import json
import logging
import shutil
import tarfile
from importlib import metadata
from pathlib import Path
from typing import Any

from mochi_model.dist.errors import DistError
from mochi_model.dist.identity import ProjectIdentity
from mochi_model.dist.manifest import (
    ADAPTER_CONFIG,
    ADAPTER_TYPES,
    MANIFEST_NAME,
    REQUIRED_FILES,
    FileEntry,
    Manifest,
    ProjectRef,
    check_name,
)

logger = logging.getLogger(__name__)

REPORT_FILES = ("training.json", "update.json", "eval.json", "dataset.json", "loss.png", "loss_curve.png", "eval.png",
                "README.md")  # update.json: what it was trained on, so an installed adapter can be updated
ARCHIVE_SUFFIX = ".mochi.tar.gz"
_LORA_KEYS = ("fine_tune_type", "num_layers", "lora_parameters", "r", "lora_alpha", "lora_dropout", "target_modules",
              "rank", "scale", "alpha", "dropout", "keys")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def mochi_version() -> str:
    try:
        return metadata.version("mochi-code")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DistError(f"cannot read {path}: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _base_model(cfg: dict[str, Any]) -> dict[str, str]:
    model = cfg.get("base_model") or cfg.get("base_model_name_or_path") or cfg.get("model") or ""
    if isinstance(model, dict):  # {"id": ..., "revision": ...}
        return {"id": str(model.get("id") or ""), "revision": str(model.get("revision") or "")}
    revision = cfg.get("base_model_revision") or cfg.get("revision") or ""
    return {"id": str(model), "revision": str(revision)}


def _training_summary(training: dict[str, Any]) -> dict[str, Any]:
    """Keep the summary figures of training.json, not per-step loss curves."""
    out: dict[str, Any] = {}
    for key, value in training.items():
        if isinstance(value, (list, dict)) and len(json.dumps(value, default=str)) > 2000:
            continue
        out[key] = value
    return out


def _trained_on(training: dict[str, Any]) -> dict[str, str] | None:
    """``{"name", "version", "weight"}`` of the frozen base adapter ``mochi train project --base`` used."""
    config = training.get("config") if isinstance(training.get("config"), dict) else {}
    path = config.get("base_adapter") or ""
    if not isinstance(path, str) or not path:
        return None
    folder = Path(path).expanduser()
    meta = _read_json(folder / "manifest.json") or _read_json(folder / "adapter_config.json")
    name, version = str(meta.get("name") or ""), str(meta.get("version") or "")
    if not name:  # ~/.mochi/adapters/NAME/VERSION, or any folder
        name, version = (folder.parent.name, folder.name) if folder.parent.parent.name == "adapters" else (folder.name, "")
    return {"name": name, "version": version, "weight": str(config.get("base_weight", ""))}


def build_manifest(
    adapter_dir: Path,
    *,
    name: str,
    version: str,
    adapter_type: str | None = None,
    identity: ProjectIdentity | None = None,
    languages: list[str] | None = None,
    base_model: str | None = None,
) -> Manifest:
    """Describe ``adapter_dir`` (checksums of every packed file included)."""
    adapter_dir = Path(adapter_dir)
    check_name(name, "adapter name")
    check_name(version, "adapter version")
    for required in REQUIRED_FILES:
        if not (adapter_dir / required).is_file():
            raise DistError(f"{adapter_dir} has no {required}; pass the folder `mochi train` wrote (final weights)")
    cfg = _read_json(adapter_dir / ADAPTER_CONFIG)
    training = _read_json(adapter_dir / "training.json")
    kind = adapter_type or str(cfg.get("role") or cfg.get("type") or "project")
    if kind not in ADAPTER_TYPES:
        raise DistError(f"adapter type must be base or project, got {kind!r}")
    base = _base_model(cfg)
    if base_model:
        base = {"id": base_model, "revision": ""}
    if not base["id"]:
        raise DistError(f"{adapter_dir / ADAPTER_CONFIG} does not say which base model it was trained on "
                        "(no 'base_model'); pass --base-model")
    project_cfg = cfg.get("project") if isinstance(cfg.get("project"), dict) else {}
    project = None
    if kind == "project":
        project = ProjectRef(
            name=str(project_cfg.get("name") or (identity.name if identity else "") or name),
            git_remote=str(project_cfg.get("git_remote") or (identity.git_remote if identity else "")),
        )
    langs = languages or cfg.get("languages") or training.get("languages") or []
    files = [
        FileEntry(path=p.name, sha256=sha256_file(p), size=p.stat().st_size)
        for p in (adapter_dir / f for f in (*REQUIRED_FILES, *REPORT_FILES))
        if p.is_file() and not p.is_symlink()
    ]
    base_adapter = cfg.get("base_adapter") if isinstance(cfg.get("base_adapter"), dict) else \
        _trained_on(training)
    return Manifest(
        name=name,
        version=version,
        type=kind,
        base_model=base,
        lora={k: cfg[k] for k in _LORA_KEYS if k in cfg},
        languages=[str(x) for x in langs],
        project=project,
        base_adapter={k: str(v) for k, v in base_adapter.items()} if base_adapter else None,
        training=_training_summary(training),
        eval=_read_json(adapter_dir / "eval.json"),
        created_at=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        mochi_version=mochi_version(),
        files=files,
    )


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, mtime
    tar.addfile(info, io.BytesIO(data))


def write_archive(adapter_dir: Path, manifest: Manifest, dest: Path) -> Path:
    """Write ``manifest.json`` then the listed files into a gzip tarball at ``dest`` (atomically)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.partial")
    mtime = int(_dt.datetime.now(_dt.UTC).timestamp())
    # gzip level 6: LoRA weights are near-random floats, level 9 gave the same size (32.7 of 35.2 MB) slower.
    try:
        with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=mtime, compresslevel=6) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, MANIFEST_NAME, manifest.to_json().encode(), mtime)
            for entry in manifest.files:
                info = tarfile.TarInfo(entry.path)
                info.size, info.mode, info.mtime = entry.size, 0o644, mtime
                with open(Path(adapter_dir) / entry.path, "rb") as fh:  # streamed: adapters can be GBs
                    tar.addfile(info, fh)
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def pack(
    adapter_dir: Path,
    *,
    name: str,
    version: str = "0.1.0",
    out_dir: Path | None = None,
    adapter_type: str | None = None,
    identity: ProjectIdentity | None = None,
    languages: list[str] | None = None,
    base_model: str | None = None,
) -> Path:
    """Pack ``adapter_dir`` into ``out_dir/NAME-VERSION.mochi.tar.gz`` and return its path.

    The folder is read with :func:`mochi_model.adapters.format.read_adapter` first, so a malformed
    adapter is refused here rather than on a teammate's machine; a PEFT folder is converted.

    Raises:
        DistError: missing final weights/config, unknown base model, invalid name/version; weights
            that do not fit the declared model (:class:`WeightsMismatch`).
        AdapterError: the adapter folder is malformed.
    """
    import tempfile

    from mochi_model.adapters.format import (
        CONFIG_FILE,
        WEIGHTS_FILE,
        AdapterConfig,
        read_adapter,
        write_adapter,
    )
    from mochi_model.dist.identity import same_base_model
    from mochi_model.dist.weights import check_adapter_weights

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / CONFIG_FILE).is_file():
        raise DistError(f"{adapter_dir} has no {CONFIG_FILE}; pass the folder `mochi train` wrote")
    data = read_adapter(adapter_dir)
    dest = Path(out_dir or Path.cwd()) / f"{name}-{version}{ARCHIVE_SUFFIX}"
    with tempfile.TemporaryDirectory(prefix="mochi-pack-") as tmp:
        stage = Path(tmp) / "adapter"
        if (adapter_dir / WEIGHTS_FILE).is_file():
            stage.mkdir()
            shutil.copyfile(adapter_dir / WEIGHTS_FILE, stage / WEIGHTS_FILE)
        else:  # PEFT folder: convert to the mlx-lm layout
            write_adapter(stage, data)
        for extra in REPORT_FILES:
            if (adapter_dir / extra).is_file() and not (adapter_dir / extra).is_symlink():
                shutil.copyfile(adapter_dir / extra, stage / extra)
        # The packed config names the adapter, so every loader shows it as NAME@VERSION.
        raw = _read_json(stage / CONFIG_FILE if (stage / CONFIG_FILE).is_file() else adapter_dir / CONFIG_FILE)
        raw.update({"name": name, "version": version})
        if base_model:  # the config must say what the manifest says (install checks they agree)
            recorded = _base_model(raw)["id"]
            if recorded and not same_base_model(recorded, base_model):
                raise DistError(f"{adapter_dir / CONFIG_FILE} says the adapter was trained on {recorded!r}, "
                                f"not --base-model {base_model!r}; drop --base-model or fix the config")
            if not recorded:
                raw["base_model"] = {"id": base_model, "revision": ""}
        (stage / CONFIG_FILE).write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
        manifest = build_manifest(stage, name=name, version=version, adapter_type=adapter_type,
                                  identity=identity, languages=languages, base_model=base_model)
        # What install refuses is refused here already, on the machine that can still fix it.
        check_adapter_weights(stage, AdapterConfig.from_json(raw, str(adapter_dir / CONFIG_FILE)),
                              manifest.base_model_id)
        write_archive(stage, manifest, dest)
    logger.info("packed %s (%d files, %d bytes) into %s", adapter_dir, len(manifest.files), manifest.total_size, dest)
    return dest
