"""A real editor: headless Neovim with the plugin in editors/nvim, talking to `mochi lsp`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.lsp.harness import server_command

REPO = Path(__file__).resolve().parents[3]
DRIVER = REPO / "tests" / "fixtures" / "lsp" / "nvim" / "driver.lua"

pytestmark = [
    pytest.mark.nvim,
    pytest.mark.skipif(shutil.which("nvim") is None, reason="nvim not installed (apt-get install -y neovim)"),
]


def test_neovim_attaches_shows_the_suggestion_as_ghost_text_and_accepts_it(fixture_project, tmp_path):
    project = fixture_project("lsp/project")
    (project / ".mochi").mkdir()  # as `mochi init` leaves it: the plugin finds the root by it
    target = project / "pkg" / "new.py"
    target.write_text('def add(a, b):\n    """Add two numbers."""\n    \n')
    out = tmp_path / "result.json"
    env = {**os.environ, "MOCHI_TEST_CMD": json.dumps(server_command({"answer": "return a + b"})),
           "MOCHI_TEST_FILE": str(target), "MOCHI_TEST_OUT": str(out)}
    proc = subprocess.run(
        ["nvim", "--headless", "-u", "NONE", "-i", "NONE", "--noplugin",
         "--cmd", f"set rtp^={REPO / 'editors' / 'nvim'}", "--cmd", "filetype on",
         "-c", f"luafile {DRIVER}"],
        cwd=project, env=env, capture_output=True, text=True, timeout=60)
    assert out.exists(), f"nvim wrote nothing: {proc.stdout}\n{proc.stderr}"
    result = json.loads(out.read_text())
    assert "error" not in result, result
    assert result["attached"] and result["inline_provider"]
    assert result["shown"] and result["suggestion"] == "return a + b"
    assert result["ghost"] == "return a + b" and result["has_suggestion"]
    assert result["accepted"] and result["line"] == "    return a + b"
    assert result["status"]["generated"] == 1
    events = [json.loads(x)["event"] for x in (project / ".mochi" / "usage" / "events.jsonl").read_text().splitlines()]
    assert events == ["shown", "accepted"]
