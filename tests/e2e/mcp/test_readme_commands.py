"""The Claude Code / Claude Desktop configurations in README's MCP section start a working server."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from tests.e2e.mcp.conftest import BIN, stdio

README = Path(__file__).parents[3] / "README.md"
VENV_BIN = "/path/to/venv/bin"
PROJECT = "/path/to/your/project"


def mcp_section() -> str:
    text = README.read_text()
    start = text.index("<!-- section:mcp -->")
    return text[start : text.index("\n## ", start)]


def readme_commands() -> list[tuple[str, list[str]]]:
    """Every server command line the section shows: `claude mcp add` lines and mcpServers JSON entries."""
    section = mcp_section()
    found: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        for line in block.splitlines():
            if line.startswith("claude mcp add mochi -- "):
                argv = shlex.split(line.split(" -- ", 1)[1])
                found.append((argv[0], argv[1:]))
    for block in re.findall(r"```json\n(.*?)```", section, re.S):
        entry = json.loads(block)["mcpServers"]["mochi"]
        found.append((entry["command"], entry.get("args", [])))
    unique = {(c, tuple(a)): (c, a) for c, a in found}  # pip and .mcp.json show the same command
    return list(unique.values())


def test_the_section_shows_pip_python_uvx_and_desktop_configurations() -> None:
    commands = readme_commands()
    assert ("mochi", ["serve"]) in commands
    assert any(c.endswith("/python") and a[:2] == ["-m", "mochi_cli.app"] for c, a in commands)
    assert any(c == "uvx" for c, _ in commands)
    assert any(PROJECT in a for _, a in commands)


@pytest.mark.parametrize("command", [c for c in readme_commands() if c[0] != "uvx"], ids=lambda c: " ".join(
    [Path(c[0]).name, *c[1]]))
async def test_each_readme_command_starts_a_server_that_answers_from_the_project(
        command: tuple[str, list[str]], fixture_project, tmp_path: Path) -> None:  # noqa: ANN001
    from mochi_index import ProjectIndex

    root = fixture_project("mcp/shop")
    (root / ".git").mkdir()  # a project root, as in real use: `mochi serve` finds it from the cwd
    idx = ProjectIndex.open(root, create=True)
    idx.update()
    idx.close()
    exe = command[0].replace(VENV_BIN, str(BIN))
    args = [a.replace(PROJECT, str(root)) for a in command[1]]
    async with stdio(exe, args, cwd=root, log=tmp_path / "server.log", timeout_s=60) as client:
        assert len((await client.list_tools()).tools) == 4
        status = json.loads((await client.read_resource("mochi://server/status")).contents[0].text)
        result = await client.call_tool("suggest_pattern", {"goal": "logging", "example": False})
    assert status["root"] == str(root.resolve()) and status["indexed"] is True
    assert status["model"]["state"] == "none", "listing and reading must not load the model"
    assert not result.is_error and result.structured_content["patterns"][0]["key"] == "logger.info(...)"
