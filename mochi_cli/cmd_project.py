"""`mochi init`: create `.mochi/config.toml` and keep `.mochi/` out of git."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mochi_cli.project_arg import ProjectArg, ProjectOpt, project_root


def register(app: typer.Typer) -> None:
    app.command("init")(init)


def init(
    folder: ProjectArg = None,
    project: ProjectOpt = None,
    preset: Annotated[str, typer.Option(help="Model preset (see `mochi models`).")] = "qwen2.5-coder-0.5b",
    languages: Annotated[str, typer.Option(help="Comma-separated languages to index (default: all supported).")] = "",
    force: Annotated[bool, typer.Option(help="Overwrite an existing config.")] = False,
) -> None:
    """Write .mochi/config.toml in the project and add .mochi/ to .git/info/exclude.

    When the project already has a config, nothing is written and the exit code is 1 (--force rewrites it).
    """
    from mochi_core.config import MochiConfig, load_config, write_config
    from mochi_core.errors import ConfigError
    from mochi_core.paths import config_path

    root = project_root(folder, project)
    path = config_path(root)
    if path.exists() and not force:
        load_config(root, strict=True)  # report problems in the existing file, if any
        typer.echo(f"nothing to do: {path} already exists (--force overwrites it)", err=True)
        raise typer.Exit(1)
    cfg = MochiConfig()
    cfg.project.name = root.name
    cfg.model.preset = preset
    if languages:
        cfg.index.languages = [x.strip() for x in languages.split(",") if x.strip()]
    # Validate through the same loader the servers use, before writing anything.
    from mochi_core.config import config_from_dict, to_dict

    _, problems = config_from_dict(to_dict(cfg))
    if problems:
        raise ConfigError("; ".join(problems))
    write_config(root, cfg)
    _exclude_from_git(root)
    typer.echo(f"wrote {path}")


def _exclude_from_git(root: Path) -> None:
    """Keep .mochi/ out of git without touching the user's tracked .gitignore."""
    git = root / ".git"
    if git.is_dir():
        exclude = git / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        text = exclude.read_text() if exclude.exists() else ""
        if ".mochi/" not in text.split():
            exclude.write_text(text + ("" if text.endswith("\n") or not text else "\n") + ".mochi/\n")
    # Belt and braces: a .gitignore inside .mochi/ ignores everything in it, for any VCS setup.
    (root / ".mochi").mkdir(exist_ok=True)
    (root / ".mochi" / ".gitignore").write_text("*\n")
