"""CLI for the editor side: `mochi lsp` (the language server) and `mochi stats` (usage log).

Heavy imports (pygls, the engine) happen inside the commands so `mochi --help` stays instant.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from mochi_cli.adapter_opts import split_weight
from mochi_cli.project_arg import ProjectArg, ProjectOpt, project_root

logger = logging.getLogger(__name__)


def _adapter_chooser(adapter_specs: list[str]) -> Any:
    """``(config, root) -> AdapterChoice``: the ``--adapter`` flags, else config pins and installed adapters.

    The server re-runs the choice to follow adapters changed on disk (a newer installed version of a
    ``NAME``, a rewritten adapter folder); the builder below loads the same choice.
    """

    def choose(config: Any, root: Path | None) -> Any:
        from mochi_model.adapter_refresh import AdapterChoice

        # --adapter flags resolve against the workspace root (known only once the editor says it);
        # none lets auto-detection pick config pins / installed adapters matching the project.
        specs = tuple(split_weight(spec) for spec in adapter_specs) or None
        return AdapterChoice(config, root or Path.cwd(), specs=specs)

    return choose


def _real_engine_builder(adapter_specs: list[str]) -> Any:
    """``(config, root) -> Engine`` loading the configured model and adapter stack (lazily imported)."""
    choose = _adapter_chooser(adapter_specs)

    def build(config: Any, root: Path | None) -> Any:
        from mochi_core.errors import MochiError
        from mochi_model.adapter_refresh import describe_adapters

        try:
            from mochi_model.loader import load_engine
        except ImportError as exc:
            raise MochiError(f"the model engine is not installed ({exc}); install mochi-code[torch] or [mlx]") from exc
        chosen = choose(config, root)()
        logger.info("adapters: %s", describe_adapters(chosen))
        return load_engine(config, root or Path.cwd(), adapters=[(c.path, c.weight) for c in chosen])

    return build


def lsp(
    stdio: Annotated[bool, typer.Option("--stdio", help="Talk LSP over stdin/stdout (the default).")] = True,
    tcp: Annotated[str, typer.Option("--tcp", metavar="HOST:PORT", help="Listen on a TCP port instead.")] = "",
    project: Annotated[Path | None, typer.Option("--project", "-p", help="Project root (default: the editor's workspace).")] = None,
    adapter: Annotated[list[str] | None, typer.Option("--adapter", metavar="PATH[:WEIGHT]",
                                                      help="Adapter folder or installed NAME[@VERSION], with :WEIGHT (repeatable; default: config pins, then installed adapters matching the project).")] = None,
    log_file: Annotated[Path | None, typer.Option("--log-file", help="Also write the server log here.")] = None,
    fake_engine: Annotated[str, typer.Option("--fake-engine", hidden=True, envvar="MOCHI_LSP_FAKE_ENGINE",
                                             help="Tests only: a fake engine spec (see mochi_ls/fake_engine.py).")] = "",
) -> None:
    """Run the language server (inline completions for your editor)."""
    from mochi_ls.server import create_server

    if log_file is not None:
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)
    if fake_engine:
        from mochi_ls.fake_engine import fake_engine_factory

        factory = fake_engine_factory(fake_engine)

        def build(config: Any, root: Path | None) -> Any:
            return factory()

        chooser = None  # a fake engine has no adapter stack to follow
    else:
        build = _real_engine_builder(list(adapter or []))
        chooser = _adapter_chooser(list(adapter or []))
    server = create_server(build_engine=build, choose_adapters=chooser, project=project.resolve() if project else None)
    if tcp:
        host, _, port = tcp.rpartition(":")
        if not port.isdigit() or int(port) > 65535:
            raise typer.BadParameter("expected HOST:PORT with a port in 0-65535, e.g. 127.0.0.1:2087",
                                     param_hint="--tcp")
        host = host or "127.0.0.1"
        try:
            server.start_tcp(host, int(port))
        except OSError as exc:  # a taken port or an unknown host: raised by the bind, before serving
            from mochi_core.errors import MochiError

            raise MochiError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); is another server using "
                             "it? pick another port with --tcp HOST:PORT") from exc
    else:
        server.start_io()


def stats(
    folder: ProjectArg = None,
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Acceptance rate per language and latency percentiles of shown suggestions."""
    from mochi_index.usage import events_path, read_events, summarize

    root = project_root(folder, project, find=True)
    summary = summarize(read_events(root))
    if as_json:
        typer.echo(json.dumps({"project": str(root), **summary.to_dict()}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if summary.total_shown == 0:
        console.print(f"No suggestions recorded yet in {events_path(root)} (the editor server writes them).")
        return
    table = Table(title=f"Mochi suggestions in {root}")
    for col in ("language", "shown", "accepted", "rejected", "acceptance"):
        table.add_column(col, justify="left" if col == "language" else "right")
    for s in summary.languages:
        table.add_row(s.language, str(s.shown), str(s.accepted), str(s.rejected), f"{s.acceptance:.0%}")
    console.print(table)
    lat = summary.latency_ms
    console.print("latency of shown suggestions (ms): " + "  ".join(f"{k} {v:.0f}" for k, v in lat.items()))


def register(app: typer.Typer) -> None:
    """Add this area's commands to `app`."""
    app.command("lsp")(lsp)
    app.command("stats")(stats)
