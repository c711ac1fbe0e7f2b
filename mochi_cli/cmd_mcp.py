"""`mochi serve`: the MCP server for Claude Code / Claude Desktop (stdio, or streamable HTTP).

Only typer and the standard library at import time; the MCP SDK and the model load inside the
command, the model itself on the first tool call (or in the background with ``--preload``).
stdout belongs to the protocol on stdio, so everything human goes to stderr.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

logger = logging.getLogger("mochi_mcp")


def register(app: typer.Typer) -> None:
    """Add `mochi serve` to ``app``."""
    app.command("serve")(serve)


def _parse_http(value: str) -> tuple[str, int]:
    from mochi_core.errors import ConfigError

    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--http expects HOST:PORT (e.g. 127.0.0.1:8765), got {value!r}")
    return host.strip("[]"), int(port)


def serve(
    http: Annotated[str, typer.Option("--http", help="Serve streamable HTTP on HOST:PORT (endpoint /mcp) "
                                                     "instead of stdio, e.g. for a shared team server.")] = "",
    project_root: Annotated[Path | None, typer.Option("--project-root", "--project", "-p", help="Project root "
                                                      "(default: the nearest folder above the current one with "
                                                      ".mochi/ or .git).")] = None,
    model: Annotated[str, typer.Option("--model", help="Model: local HF folder, GGUF file or hub id "
                                                       "(default: the model section of .mochi/config.toml).")] = "",
    base: Annotated[str, typer.Option("--base-adapter", "--base", help="Base adapter: folder, NAME or NAME@VERSION.")] = "",
    project_adapter: Annotated[str, typer.Option("--project-adapter", help="Project adapter: folder, NAME or "
                                                                           "NAME@VERSION.")] = "",
    preload: Annotated[bool, typer.Option("--preload", help="Load the model at start-up (in the background) "
                                                            "instead of on the first tool call.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=1.0, help="Generation time limit per tool call, "
                                                                      "in seconds.")] = 120.0,
) -> None:
    """Serve Mochi's tools over MCP (domain_query, complete_code, generate_diff, suggest_pattern)."""
    from mochi_core.config import load_config
    from mochi_core.errors import ConfigError
    from mochi_core.paths import find_project_root
    from mochi_mcp.server import build_server
    from mochi_mcp.workspace import Workspace
    from mochi_model.adapter_refresh import AdapterChoice
    from mochi_model.holder import EngineHolder, real_engine_factory

    # tool calls, model loading (progress) and adapter updates go to the log
    for name in ("mochi_mcp", "mochi_model.holder", "mochi_model.adapter_refresh"):
        logging.getLogger(name).setLevel(logging.INFO)
    root = (project_root.expanduser().resolve() if project_root else find_project_root(Path.cwd()))
    if not root.is_dir() or (root / "adapter_config.json").is_file():
        what = "an adapter folder" if root.is_dir() else "not a folder"
        raise ConfigError(f"--project-root {root} is {what}; --project/-p is the project root "
                          f"(for an adapter use --project-adapter or --base-adapter)")
    host_port = _parse_http(http) if http else None
    config, problems = load_config(root)
    for p in problems:
        logger.warning("config: %s (using the default)", p)
    if model:
        config.model.path = model
    description = config.model.path or f"preset {config.model.preset}"
    # the same choice loads the stack and, re-run on tool calls, follows adapters updated on disk
    choice = AdapterChoice(config, root, base=base or None, project=project_adapter or None)
    provider = EngineHolder(factory=real_engine_factory(config, root, choice=choice), description=description,
                            adapters=choice, adapter_check_s=config.server.adapter_check_s)
    workspace = Workspace(root, config)
    server = build_server(workspace, provider, timeout_s=timeout, log_level="INFO" if host_port else "WARNING")
    where = f"http://{host_port[0]}:{host_port[1]}/mcp" if host_port else "stdio"
    print(f"mochi serve: project {root}, model {description} ({'loading now' if preload else 'loads on first use'}), "
          f"{where}", file=sys.stderr, flush=True)
    if workspace.index(required=False) is None:
        print(f"mochi serve: no index yet; run `mochi index --project {root}` for project-aware answers",
              file=sys.stderr, flush=True)
    if preload:
        provider.preload()
    try:
        if host_port:
            server.run("streamable-http", host=host_port[0], port=host_port[1])
        else:
            server.run("stdio")
    finally:
        workspace.close()
