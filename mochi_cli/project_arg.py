"""The project every project command takes: ``mochi CMD [PROJECT]`` or ``--project``/``-p PROJECT``.

One vocabulary for the whole CLI: ``PROJECT``, ``--project`` and ``-p`` always mean the project's
root folder (adapters are ``--adapter``, or ``--base-adapter``/``--project-adapter`` in
``mochi serve``). Commands declare both parameters with :data:`ProjectArg` and :data:`ProjectOpt`
and turn them into one folder with :func:`project_root`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ProjectArg = Annotated[Path | None, typer.Argument(
    metavar="PROJECT", show_default=False,
    help="Project root folder (default: the current folder); the same as --project.")]
ProjectOpt = Annotated[Path | None, typer.Option(
    "--project", "-p", show_default=False, help="Project root folder (default: the current folder).")]


def chosen_project(positional: Path | None, option: Path | None) -> Path:
    """``[PROJECT]`` or ``--project`` as given (``.`` when neither), not yet checked.

    Raises:
        typer.BadParameter: both were given and name different folders.
    """
    if positional is not None and option is not None and positional.expanduser().resolve() != option.expanduser().resolve():
        raise typer.BadParameter(f"got two projects, {positional} and --project {option}; give one",
                                 param_hint="PROJECT")
    given = positional if positional is not None else option
    return given if given is not None else Path(".")


def project_root(positional: Path | None, option: Path | None, *, find: bool = False) -> Path:
    """The project folder from ``[PROJECT]`` or ``--project`` (the current folder when neither is given).

    Args:
        positional: the ``[PROJECT]`` argument.
        option: the ``--project``/``-p`` value.
        find: walk up to the nearest folder holding ``.mochi/`` or ``.git`` (commands that also run
            from a subfolder: stats, list, pack, install).

    Raises:
        typer.BadParameter: both were given and differ.
        ConfigError: the folder does not exist or is a file.
    """
    from mochi_core.errors import ConfigError

    folder = chosen_project(positional, option).expanduser().resolve()
    if not folder.exists():
        raise ConfigError(f"project folder does not exist: {folder}")
    if not folder.is_dir():
        raise ConfigError(f"project must be a folder, not a file: {folder}")
    if find:
        from mochi_core.paths import find_project_root

        return find_project_root(folder)
    return folder
