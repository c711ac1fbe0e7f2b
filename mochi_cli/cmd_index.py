"""`mochi index` and `mochi search`: thin wrappers over :class:`mochi_index.ProjectIndex`."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from mochi_cli.project_arg import ProjectArg, ProjectOpt, chosen_project


def register(app: typer.Typer) -> None:
    app.command("index")(index)
    app.command("search")(search)


def _open(project: Path, create: bool = True):  # type: ignore[no-untyped-def]
    from mochi_core.config import load_config
    from mochi_core.errors import ConfigError
    from mochi_index import ProjectIndex

    root = project.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise ConfigError(f"project must be a folder, not a file: {root}")
    if not root.is_dir():
        raise ConfigError(f"project folder does not exist: {root}")
    cfg, _ = load_config(root, strict=True)
    return ProjectIndex.open(root, cfg, create=create)


def index(
    path: ProjectArg = None,
    project: ProjectOpt = None,
    watch: Annotated[bool, typer.Option("--watch", help="Keep running and re-index files as they change.")] = False,
    stats: Annotated[bool, typer.Option("--stats", help="Print counts per language/kind and skipped files.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Re-parse every file into a fresh index; readers use the old one until it is done.")] = False,
    workers: Annotated[int, typer.Option(help="Parse processes (0 = auto).")] = 0,
) -> None:
    """Index the project incrementally (only changed files are re-parsed).

    With --stats in a folder that has no index yet, says so instead of creating one.
    """
    if workers < 0:
        from mochi_core.errors import ConfigError

        raise ConfigError(f"--workers must be 0 (auto) or a number of parse processes, got {workers}")
    idx = _open(chosen_project(path, project), create=not stats)
    result = _run_update(idx, full=full, workers=workers or None, quiet=as_json)
    if stats:
        data = idx.stats()
        data["seconds"] = round(result.seconds, 3)
        if as_json:
            typer.echo(json.dumps(data, indent=2, sort_keys=True))
        else:
            _print_stats(data)
    elif as_json:
        typer.echo(json.dumps(asdict(result), indent=2, sort_keys=True))
    else:
        typer.echo(f"indexed {idx.root}: {result.parsed} parsed, {result.unchanged} unchanged, "
                   f"{result.removed} removed, {_skipped(result.skipped)} in {result.seconds:.2f} s")
    if watch:
        from mochi_index.watch import watch_project

        try:
            watch_project(idx, on_ready=lambda: typer.echo(f"watching {idx.root} (Ctrl-C to stop)", err=True),
                          on_batch=lambda n, ms: typer.echo(f"re-indexed {n} file(s) in {ms:.0f} ms", err=True))
        except KeyboardInterrupt:
            typer.echo("stopped", err=True)


def _skipped(reasons: dict[str, int]) -> str:
    """``{"too_large": 9, "generated": 7}`` → ``"16 skipped (9 too large, 7 generated)"``."""
    total = sum(reasons.values())
    if not total:
        return "0 skipped"
    parts = [f"{n} {reason.replace('_', ' ')}" for reason, n in sorted(reasons.items(), key=lambda x: (-x[1], x[0])) if n]
    return f"{total} skipped ({', '.join(parts)})"


def _run_update(idx, *, full: bool, workers: int | None, quiet: bool):  # type: ignore[no-untyped-def]
    if quiet:
        return idx.update(full=full, workers=workers)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task("indexing", total=None)
        return idx.update(full=full, workers=workers,
                          progress=lambda done, total: bar.update(task, completed=done, total=total))


def _print_stats(data: dict) -> None:  # type: ignore[type-arg]
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"index of {data['root']}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for lang, n in sorted(data["files_by_language"].items()):
        table.add_row(f"files: {lang}", str(n))
    for kind, n in sorted(data["symbols_by_kind"].items()):
        table.add_row(f"symbols: {kind}", str(n))
    table.add_row("chunks", str(data["chunks"]))
    table.add_row("pattern sites", str(data["pattern_sites"]))
    for reason, n in sorted(data["skipped"].items()):
        table.add_row(f"skipped: {reason}", str(n))
    table.add_row("seconds", f"{data['seconds']:.2f}")
    Console().print(table)


def search(
    query: Annotated[str, typer.Argument(metavar="QUERY", help="Identifier, code or words to look for (quote several words).")],
    path: ProjectArg = None,
    project: ProjectOpt = None,
    kind: Annotated[str, typer.Option(help="symbol | chunk | pattern (default: all).")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    limit: Annotated[int, typer.Option(help="Most results.")] = 10,
) -> None:
    """Search the project index: symbols by name, code chunks by BM25, patterns.

    `mochi search QUERY [PROJECT]`: the query comes first; quote it when it has spaces.
    """
    from mochi_core.errors import ConfigError

    if kind not in ("", "symbol", "chunk", "pattern"):
        raise ConfigError(f"--kind must be symbol, chunk or pattern, got {kind!r}")
    hits, idx = _search(chosen_project(path, project), query, kind or None, limit)
    if as_json:
        typer.echo(json.dumps([asdict(h) for h in hits], indent=2))
        return
    if not hits:
        typer.echo("no results")
    for h in hits:
        typer.echo(f"{h.kind:7} {h.score:5.2f}  {h.path}:{h.start_line}-{h.end_line}  {h.title}")
        first = h.text.strip().splitlines()[0] if h.text.strip() else ""
        typer.echo(f"          {first[:100]}")


def _search(project: Path, query: str, kind: str | None, limit: int):  # type: ignore[no-untyped-def]
    """Search; a damaged index is rebuilt first (the rebuild logs one line), an empty one is an error."""
    from mochi_index import IndexDamaged, IndexMissing

    try:
        idx = _open(project, create=False)
        hits = idx.search(query, kind=kind, limit=limit)
    except IndexDamaged:
        idx = _open(project, create=True)
        idx.update()
        hits = idx.search(query, kind=kind, limit=limit)
    if not hits and not idx.exists:
        raise IndexMissing(f"the index of {idx.root} holds no files yet; run `mochi index --project {idx.root}` first")
    return hits, idx
