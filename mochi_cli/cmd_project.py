"""`mochi init`: create `.mochi/config.toml` and keep `.mochi/` out of git."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ProjectOpt = Annotated[Path, typer.Option("--project", "-p", help="Project root (default: current folder).")]


def register(app: typer.Typer) -> None:
    app.command("init")(init)


def init(
    project: ProjectOpt = Path("."),
    preset: Annotated[str, typer.Option(help="Model preset (see `mochi models`).")] = "qwen2.5-coder-0.5b",
    languages: Annotated[str, typer.Option(help="Comma-separated languages to index (default: all supported).")] = "",
    force: Annotated[bool, typer.Option(help="Overwrite an existing config.")] = False,
) -> None:
    """Write .mochi/config.toml in the project and add .mochi/ to .git/info/exclude."""
    from mochi_core.config import MochiConfig, load_config, write_config
    from mochi_core.errors import ConfigError
    from mochi_core.paths import config_path

    root = project.expanduser().resolve()
    if not root.is_dir():
        raise ConfigError(f"project folder does not exist: {root}")
    path = config_path(root)
    if path.exists() and not force:
        load_config(root, strict=True)  # report problems in the existing file, if any
        typer.echo(f"{path} exists (use --force to overwrite)")
        return
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
