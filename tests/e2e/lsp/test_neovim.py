"""A real editor: headless Neovim with the plugin in editors/nvim, talking to `mochi lsp`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.lsp.harness import server_command

REPO = Path(__file__).resolve().parents[3]
DRIVER = REPO / "tests" / "fixtures" / "lsp" / "nvim" / "driver.lua"

pytestmark = [
    pytest.mark.nvim,
    pytest.mark.skipif(shutil.which("nvim") is None, reason="nvim not installed (apt-get install -y neovim)"),
]

SOURCE = 'def add(a, b):\n    """Add two numbers."""\n    \n    total = (a)\n'


def run_nvim(fixture_project, tmp_path: Path, scenario: str, spec: dict[str, Any] | None = None,
             **env: str) -> tuple[dict[str, Any], Path]:
    """Run one scenario of driver.lua in headless Neovim against the real `mochi lsp` (fake engine)."""
    project = fixture_project("lsp/project")
    (project / ".mochi").mkdir()  # as `mochi init` leaves it: the plugin finds the root by it
    target = project / "pkg" / "new.py"
    target.write_text(SOURCE)
    out = tmp_path / "result.json"
    full_env = {**os.environ, "MOCHI_TEST_CMD": json.dumps(server_command(spec or {"answer": "return a + b"})),
                "MOCHI_TEST_FILE": str(target), "MOCHI_TEST_OUT": str(out), "MOCHI_TEST_SCENARIO": scenario, **env}
    proc = subprocess.run(
        ["nvim", "--headless", "-u", "NONE", "-i", "NONE", "--noplugin",
         "--cmd", f"set rtp^={REPO / 'editors' / 'nvim'}", "--cmd", "filetype on",
         "-c", f"luafile {DRIVER}"],
        cwd=project, env=full_env, capture_output=True, text=True, timeout=90)
    assert out.exists(), f"nvim wrote nothing: {proc.stdout}\n{proc.stderr}"
    result = json.loads(out.read_text())
    assert "error" not in result, result
    assert result["attached"], result
    return result, project


def test_neovim_attaches_shows_the_suggestion_as_ghost_text_and_accepts_it(fixture_project, tmp_path):
    result, project = run_nvim(fixture_project, tmp_path, "accept")
    assert result["inline_provider"]
    assert result["shown"] and result["suggestion"] == "return a + b"
    assert result["ghost"] == "return a + b" and result["has_suggestion"]
    assert result["accepted"] and result["line"] == "    return a + b"
    assert result["status"]["generated"] == 1
    events = [json.loads(x)["event"] for x in (project / ".mochi" / "usage" / "events.jsonl").read_text().splitlines()]
    assert events == ["shown", "accepted"]


def test_mochi_status_prints_a_readable_summary_when_the_answer_arrives(fixture_project, tmp_path):
    result, _ = run_nvim(fixture_project, tmp_path, "accept")
    assert result["status_printed"], result["messages"]
    messages = result["messages"]
    assert "Mochi: model ready — fake/fake-coder" in messages
    assert "generated 1" in messages and "index:" in messages
    assert messages.strip() != "}"
    assert result["statusline"].startswith("Mochi ") and result["statusline"].endswith(" ms")


def test_the_statusline_and_one_notification_each_show_the_model_loading_then_ready(fixture_project, tmp_path):
    result, _ = run_nvim(fixture_project, tmp_path, "loading", {"answer": "x", "load_delay": 1.5})
    assert result["finished"] and result["state"]["engine"] == "ready"
    assert "Mochi: loading model" in result["statuslines"]
    assert result["statuslines"][-1] == "Mochi"
    messages = [n["msg"] for n in result["notifications"]]
    assert messages == ["Mochi: loading the model…", "Mochi: model ready (fake/fake-coder)"]


def test_a_model_that_fails_to_load_is_one_error_notification_and_a_failed_statusline(fixture_project, tmp_path):
    result, _ = run_nvim(fixture_project, tmp_path, "loading", {"fail_load": "no such file: /m.gguf"})
    assert result["finished"] and result["state"]["engine"] == "failed"
    assert result["statuslines"][-1] == "Mochi: model failed"
    errors = [n for n in result["notifications"] if n["level"] == 4]  # vim.log.levels.ERROR
    assert len(errors) == 1 and "no such file: /m.gguf" in errors[0]["msg"]


def test_the_statusline_shows_indexing_while_the_workspace_is_indexed(fixture_project, tmp_path):
    result, _ = run_nvim(fixture_project, tmp_path, "indexing")
    assert result["finished"], result
    assert any("indexing" in line for line in result["statuslines"]), result["statuslines"]
    assert "indexing" not in result["statuslines"][-1]


def test_a_mid_line_suggestion_is_never_drawn_at_the_end_of_the_line(fixture_project, tmp_path):
    result, _ = run_nvim(fixture_project, tmp_path, "midline", {"answer": "abs"})
    assert result["shown"] and result["shown_eol"]
    if result["has_inline"]:  # Neovim >= 0.10: inline virtual text at the cursor
        assert result["display"] == "inline" and result["ghost"]["pos"] == "inline" and result["ghost"]["col"] == 12
    else:  # older: a floating preview under the cursor, no end-of-line text that reads as appended
        assert result["display"] == "float" and result["ghost"] is None
        assert result["preview"] == ["abs"] and result["preview_closed"]
    assert result["display_eol"] == ("inline" if result["has_inline"] else "eol")
    assert result["ghost_eol"]["text"] == "abs"


def test_a_custom_accept_key_falls_through_to_the_mapping_it_replaced_without_a_suggestion(fixture_project, tmp_path):
    result, _ = run_nvim(fixture_project, tmp_path, "fallback", MOCHI_TEST_ACCEPT="<C-l>")
    assert result["without"] == "    [cmp]"  # the buffer-local mapping Mochi replaced still runs
    assert result["tab"] == "    [global tab]"  # <Tab> is left alone when it is not the accept key
    assert result["shown"] and result["with"] == "    return a + b"


def test_tab_falls_through_to_a_global_tab_mapping_without_a_suggestion(fixture_project, tmp_path):
    result, _ = run_nvim(fixture_project, tmp_path, "fallback", MOCHI_TEST_ACCEPT="<Tab>")
    assert result["without"] == "    [global tab]"
    assert result["shown"] and result["with"] == "    return a + b"


def test_tab_inserts_a_tab_when_there_is_no_suggestion_and_no_other_mapping(fixture_project, tmp_path):
    result, _ = run_nvim(fixture_project, tmp_path, "literal")
    assert result["line"] == "    \t"
