"""Every `mochi ...` line in a command block of README and docs/ parses against the real CLI.

The MCP configurations of README are also started for real by tests/e2e/mcp/test_readme_commands.py;
this test covers all other blocks: the command exists (`mochi CMD --help` works), every option named
exists, and a concrete line (no `[...]`, `|` or `...` placeholders) parses with no extra arguments.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import typer.main
from typer._click.core import Context
from typer.testing import CliRunner

from mochi_cli.app import app

ROOT = Path(__file__).parents[3]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```(bash|sh|text|json)\n(.*?)```", re.S)
ROOT_OPTIONS = {"-v", "--verbose"}


def _argv(tokens: list[str]) -> list[str] | None:
    """The arguments after `mochi` (or `-m mochi_cli.app`), or None when the line runs something else."""
    if tokens[:1] == ["mochi"]:
        return tokens[1:]
    if "mochi_cli.app" in tokens:
        return tokens[tokens.index("mochi_cli.app") + 1:]
    if "--" in tokens:  # claude mcp add mochi -- [uvx --from PKG] mochi serve
        rest = tokens[tokens.index("--") + 1:]
        return rest[rest.index("mochi") + 1:] if "mochi" in rest else None
    return None


def command_lines() -> list[tuple[str, list[str], str]]:
    """``(where, argv, line)`` for every mochi command shown in a command block."""
    found = []
    for doc in DOCS:
        for lang, body in BLOCK.findall(doc.read_text(encoding="utf-8")):
            if lang == "json":
                data = json.loads(body)
                for name, entry in data.get("mcpServers", {}).items():
                    tokens = [entry["command"].rsplit("/", 1)[-1], *entry.get("args", [])]
                    if (argv := _argv(["mochi", *tokens[1:]] if tokens[0] == "mochi" else tokens)) is not None:
                        found.append((f"{doc.name} ({name})", argv, " ".join(tokens)))
                continue
            for line in body.splitlines():
                if "mochi" not in line:
                    continue
                tokens = shlex.split(line, comments=True)
                if tokens and (argv := _argv(tokens)) is not None:
                    found.append((doc.name, argv, line.strip()))
    return found


def _resolve(argv: list[str]):  # type: ignore[no-untyped-def]
    """The click command the arguments name, its path and the arguments left for it."""
    cmd = typer.main.get_command(app)
    path: list[str] = []
    args = [a for a in argv if a not in ROOT_OPTIONS]
    while args and hasattr(cmd, "commands") and args[0] in cmd.commands:  # type: ignore[attr-defined]
        cmd = cmd.commands[args[0]]  # type: ignore[attr-defined]
        path.append(args.pop(0))
    return cmd, path, args


def _is_synopsis(args: list[str]) -> bool:
    return any(c in a for a in args for c in "[]|") or any(a.endswith("...") for a in args)


LINES = command_lines()


def test_the_docs_show_the_quick_start_path() -> None:
    shown = {" ".join(_resolve(argv)[1]) for _, argv, _ in LINES}
    assert {"init", "index", "search", "complete", "lsp", "serve", "prepare", "train project", "eval", "pack",
            "install", "list"} <= shown


@pytest.mark.parametrize(("where", "argv", "line"), LINES, ids=[f"{w}: {line[:60]}" for w, _, line in LINES])
def test_each_documented_command_parses(where: str, argv: list[str], line: str) -> None:
    cmd, path, args = _resolve(argv)
    assert path, f"{where}: `{line}` names no mochi command"
    help_ = CliRunner().invoke(app, [*path, "--help"])
    assert help_.exit_code == 0, help_.output
    known = {o for p in cmd.params for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))}
    named = {re.split(r"[=\[\]|]", a.strip("[]"))[0] for a in args if a.lstrip("[").startswith("-")}
    assert named <= known, f"{where}: `{line}` uses options `mochi {' '.join(path)}` lacks: {named - known}"
    if _is_synopsis(args):
        return
    parser = cmd.make_parser(Context(cmd, info_name=path[-1]))
    _, extra, _ = parser.parse_args(list(args))  # raises on unknown options or a missing option value
    assert not extra, f"{where}: `{line}`: `mochi {' '.join(path)}` takes no argument(s) {extra}"
