"""`mochi index` / `mochi search` on bad input and damaged indexes: one line, the right exit code, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mochi_index import ProjectIndex, stores

MOCHI = [sys.executable, "-m", "mochi_cli.app"]


def _mochi(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MOCHI, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def poly(fixture_project) -> Path:
    return fixture_project("index/poly")


def _truncate(root: Path, table: str) -> None:
    folder = stores.current(root / ".mochi" / "index")
    assert folder is not None
    data = sorted((folder / f"{table}.lance" / "data").glob("*.lance"))[0]
    with open(data, "r+b") as f:
        f.truncate(data.stat().st_size // 3)


def test_negative_workers_and_a_file_as_project_are_one_line_errors(poly: Path) -> None:
    _one_line_error(_mochi("index", "--workers", "-3", "--project", str(poly), cwd=poly), "--workers", "-3")
    assert not (poly / ".mochi").exists()
    target = poly / "pkg" / "config.py"
    _one_line_error(_mochi("index", "--project", str(target), cwd=poly), "not a file", str(target))
    _one_line_error(_mochi("search", "x", "--project", str(target), cwd=poly), "not a file")


def test_search_on_an_empty_index_tells_the_user_to_run_mochi_index(poly: Path) -> None:
    ProjectIndex.open(poly)  # e.g. made by an editor session that never indexed
    _one_line_error(_mochi("search", "HttpClient", "--project", str(poly), cwd=poly), "mochi index")


def test_a_damaged_index_is_reported_in_one_line_and_rebuilt_by_index_full_and_search(poly: Path) -> None:
    assert _mochi("index", "--project", str(poly), cwd=poly).returncode == 0
    for args, table in ((["index"], "chunks"), (["index", "--full"], "files"),
                        (["search", "HttpClient", "--json"], "symbols")):
        _truncate(poly, table)
        proc = _mochi(*args, "--project", str(poly), cwd=poly)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        if args != ["index", "--full"]:  # --full never reads the old store: nothing to report
            assert len(proc.stderr.strip().splitlines()) == 1 and "damaged" in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)[0]["title"] == "HttpClient"
    again = _mochi("search", "join url", "--kind", "chunk", "--json", "--project", str(poly), cwd=poly)
    assert again.returncode == 0 and again.stderr == "" and json.loads(again.stdout)[0]["title"] == "joinUrl"
