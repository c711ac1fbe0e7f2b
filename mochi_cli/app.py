"""Entry point of the `mochi` command.

Each area registers its commands from its own module; those modules import only typer and the
standard library at top level, so `mochi --help` stays instant. Heavy imports (lancedb, torch,
pygls, mcp) happen inside the command functions.
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from mochi_cli import cmd_dist, cmd_index, cmd_lsp, cmd_mcp, cmd_model, cmd_project, cmd_train

app = typer.Typer(
    name="mochi",
    help="Project-aware code completion on your own machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO level."),
) -> None:
    """Project-aware code completion on your own machine."""
    if verbose:
        logging.getLogger().setLevel(logging.INFO)


for module in (cmd_project, cmd_index, cmd_model, cmd_train, cmd_lsp, cmd_mcp, cmd_dist):
    module.register(app)


def main() -> None:
    """Console-script entry: MochiError becomes a one-line message and exit code 1."""
    from mochi_core.errors import MochiError

    # Mochi shares the CPU with builds and tests: OpenMP threads that spin while waiting made torch
    # 2.5-3.4x slower at load 8 on 2 cores (docs/notes.md, "Under load"); passive waiting matched one
    # thread there. Set before torch loads; a user's own setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except MochiError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
