"""`mochi pack`, `mochi install`, `mochi list`, `mochi uninstall`: share trained adapters.

Thin layer over :mod:`mochi_model.dist`; heavy imports stay inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mochi_cli.project_arg import ProjectArg, ProjectOpt, project_root


def register(app: typer.Typer) -> None:
    """Add this area's commands to `app`."""
    app.command("pack")(pack)
    app.command("install")(install)
    app.command("list")(list_)
    app.command("uninstall")(uninstall)


def _root(project: Path | None) -> Path:
    return project_root(None, project, find=True)


def pack(
    adapter_dir: Annotated[Path, typer.Argument(help="Adapter folder (adapter_config.json + adapters.safetensors).")],
    name: Annotated[str, typer.Option("--name", help="Adapter name others install it by.")],
    version: Annotated[str, typer.Option("--version", help="Version (letters, digits, . _ -).")] = "0.1.0",
    upload: Annotated[str, typer.Option("--upload", help="Also copy the archive here: folder, http(s)://, s3://, gs://, az://, hf://.")] = "",
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the archive.")] = Path("."),
    adapter_type: Annotated[str, typer.Option("--type", help="base | project (default: from adapter_config.json).")] = "",
    base_model: Annotated[str, typer.Option("--base-model", help="Base model id, when adapter_config.json lacks it.")] = "",
    languages: Annotated[str, typer.Option(help="Comma-separated languages (default: from the adapter).")] = "",
    project: ProjectOpt = None,
) -> None:
    """Pack an adapter into NAME-VERSION.mochi.tar.gz (final weights, manifest with checksums, reports)."""
    from mochi_core.config import load_config
    from mochi_model.dist.identity import project_identity
    from mochi_model.dist.pack import pack as do_pack

    root = _root(project)
    config, _ = load_config(root)
    langs = [x.strip() for x in languages.split(",") if x.strip()] or None
    archive = do_pack(adapter_dir, name=name, version=version, out_dir=output, adapter_type=adapter_type or None,
                      identity=project_identity(config, root), languages=langs, base_model=base_model or None)
    typer.echo(f"packed {archive}")
    if upload:
        from mochi_model.dist.sources import upload as do_upload

        typer.echo(f"uploaded {do_upload(archive, upload)}")


def install(
    source: Annotated[str, typer.Argument(help="Archive or folder: path, http(s)://, s3://, gs://, az://, hf://ORG/REPO.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an installed version; accept another base model.")] = False,
    max_mb: Annotated[int, typer.Option("--max-mb", min=1, help="Refuse archives larger than this.")] = 2048,
    project: ProjectOpt = None,
) -> None:
    """Verify and install an adapter into ~/.mochi/adapters/NAME/VERSION."""
    import sys
    import tempfile

    from rich.console import Console
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    from mochi_core.config import load_config
    from mochi_model.dist.identity import configured_base_model
    from mochi_model.dist.install import install_local
    from mochi_model.dist.sources import fetch, scheme_of

    config, _ = load_config(_root(project))
    max_bytes = max_mb * 1024 * 1024
    remote = scheme_of(source) not in ("", "file")
    bar = Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(), transient=True,
                   console=Console(stderr=True), disable=not (remote and sys.stderr.isatty()))
    with tempfile.TemporaryDirectory(prefix="mochi-download-") as tmp:
        with bar:
            task = bar.add_task("download", total=None)
            local = fetch(source, Path(tmp), max_bytes=max_bytes,
                          progress=lambda done, total: bar.update(task, completed=done, total=total))
        installed = install_local(local, expected_base_model=configured_base_model(config), force=force,
                                  max_bytes=max_bytes)
    typer.echo(f"installed {installed.spec} ({installed.manifest.type}, base {installed.manifest.base_model_id}) "
               f"into {installed.path}")


def _human(size: int) -> str:
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _eval_summary(data: dict[str, Any], limit: int = 3) -> str:
    if isinstance(data.get("summary"), str):
        return data["summary"]
    found: list[str] = []

    def walk(prefix: str, value: Any) -> None:
        if len(found) >= limit:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found.append(f"{prefix}={value:.3g}")

    walk("", data)
    return ", ".join(found)


def list_(
    folder: ProjectArg = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    project: ProjectOpt = None,
) -> None:
    """List installed adapters and which ones the project (default: the current folder) would use."""
    import logging

    from mochi_core.config import load_config
    from mochi_model.dist.autodetect import choose_adapters
    from mochi_model.dist.errors import DistError
    from mochi_model.dist.registry import folder_size, list_installed

    root = project_root(folder, project, find=True)
    config, _ = load_config(root)
    try:
        chosen = {c.path.resolve(): c for c in choose_adapters(config, root)}
    except DistError as exc:
        logging.getLogger(__name__).warning("cannot tell which adapters this project uses: %s", exc)
        chosen = {}
    rows = []
    for a in list_installed():
        use = chosen.get(a.path.resolve())
        rows.append({
            "name": a.name, "version": a.version, "type": a.manifest.type, "base_model": a.manifest.base_model_id,
            "size": folder_size(a.path), "eval": a.manifest.eval, "eval_summary": _eval_summary(a.manifest.eval),
            "used": use is not None, "weight": use.weight if use else None, "reason": use.reason if use else "",
            "path": str(a.path),
        })
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no adapters installed (see `mochi install`)")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "version", "type", "base model", "size", "eval", "used here")
    for r in rows:
        used = f"yes, weight {r['weight']:.2f}" if r["used"] else ""
        table.add_row(r["name"], r["version"], r["type"], r["base_model"], _human(r["size"]),
                      r["eval_summary"], used)
    Console().print(table)


def uninstall(spec: Annotated[str, typer.Argument(help="NAME (every version) or NAME@VERSION.")]) -> None:
    """Remove an installed adapter."""
    from mochi_model.dist.registry import uninstall as do_uninstall

    for adapter in do_uninstall(spec):
        typer.echo(f"removed {adapter.spec}")
