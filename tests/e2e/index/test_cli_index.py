"""`mochi index` / `mochi search` as a user runs them on a fixture project.

Subprocesses where the process matters (exit codes, Ctrl-C); typer's in-process runner for the
rest, because importing LanceDB costs seconds per process on a shared 2-core machine.
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mochi_cli.app import app
from mochi_index import IndexMissing

MOCHI = [sys.executable, "-m", "mochi_cli.app"]


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


def _mochi(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MOCHI, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def poly(fixture_project) -> Path:
    return fixture_project("index/poly")


def test_index_stats_json_reports_languages_kinds_skips_and_time(poly: Path) -> None:
    assert _run("index", "--project", str(poly)).exit_code == 0  # --stats alone never creates an index
    proc = _mochi("index", "--project", str(poly), "--stats", "--json", cwd=poly)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["files_by_language"]["go"] == 1
    assert data["symbols_by_kind"]["struct"] >= 2
    assert data["skipped"]["unknown_language"] == 1
    assert data["seconds"] >= 0
    again = _run("index", "--project", str(poly), "--json")
    assert json.loads(again.stdout)["unchanged"] == 7


def test_search_prints_symbols_chunks_and_patterns_and_fails_clearly_without_an_index(poly: Path,
                                                                                       tmp_path: Path) -> None:
    missing = _run("search", "anything", "--project", str(tmp_path))
    assert isinstance(missing.exception, IndexMissing) and "mochi index" in str(missing.exception)
    assert _run("index", "--project", str(poly)).exit_code == 0
    hits = json.loads(_run("search", "HttpClient", "--json", "--project", str(poly)).stdout)
    assert hits[0] == {**hits[0], "kind": "symbol", "title": "HttpClient", "path": "web/client.ts"}
    chunks = json.loads(_run("search", "join url", "--kind", "chunk", "--json", "--limit", "2",
                             "--project", str(poly)).stdout)
    assert chunks[0]["title"] == "joinUrl" and len(chunks) <= 2
    text = _run("search", "ConfigError", "--kind", "pattern", "--project", str(poly)).stdout
    assert "raise ConfigError(...)" in text


def test_a_bad_kind_is_a_one_line_error_with_exit_code_1(poly: Path) -> None:
    bad = _mochi("search", "x", "--kind", "nope", "--project", str(poly), cwd=poly)
    assert bad.returncode == 1 and "--kind" in bad.stderr and "Traceback" not in bad.stderr


def test_index_watch_picks_up_a_write_and_exits_cleanly_on_ctrl_c(poly: Path) -> None:
    # Ctrl-C as a terminal delivers it: a suite started in the background (`cmd &` without job
    # control) hands its children SIGINT *ignored*, and then no program can be stopped by it.
    proc = subprocess.Popen([*MOCHI, "index", "--watch", "--project", str(poly)], cwd=poly,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        lines = _lines_until(proc, "watching", timeout=60)
        assert any("watching" in line for line in lines)
        (poly / "pkg" / "new_mod.py").write_text("def added_while_watching():\n    pass\n")
        _lines_until(proc, "re-indexed", timeout=30)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    found = json.loads(_run("search", "added_while_watching", "--kind", "symbol", "--json",
                            "--project", str(poly)).stdout)
    assert found[0]["path"] == "pkg/new_mod.py"


def _lines_until(proc: subprocess.Popen[str], needle: str, timeout: float) -> list[str]:
    """Read stderr lines until one contains ``needle`` (each wait bounded by ``timeout``)."""
    seen: list[str] = []
    assert proc.stderr is not None
    while True:
        ready, _, _ = select.select([proc.stderr], [], [], timeout)
        assert ready, f"no {needle!r} within {timeout} s; got {seen}"
        line = proc.stderr.readline()
        assert line, f"process ended before {needle!r}; got {seen}"
        seen.append(line)
        if needle in line:
            return seen
