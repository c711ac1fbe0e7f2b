"""The index repairs itself: a kill -9 in the final steps or a damaged store file is fixed by one plain re-run."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mochi_index import IndexDamaged, ProjectIndex, stores
from tests.unit.index.test_crash_safety import _make_project

QUERIES = ["Thing3", "helper_5_v1", "raise ValueError", "run_v1 self", "Module 7"]

# Each step of the final stage, killed in its middle (after the first write of that step).
KILL_AT = {
    "patterns_snapshot": """
        original = store.Store.replace_patterns
        def step(self, rows):
            self.tables["patterns"].delete("true")
            os.kill(os.getpid(), signal.SIGKILL)
        store.Store.replace_patterns = step
    """,
    "fts_index_build": """
        def step(self):
            os.kill(os.getpid(), signal.SIGKILL)
        store.Store.ensure_search_indexes = step
    """,
    "derived_stamp": """
        def step(self):
            os.kill(os.getpid(), signal.SIGKILL)
        store.Store.stamp_derived = step
    """,
}
CHILD = """
    import os, signal, sys
    from mochi_index import ProjectIndex, store
{hook}
    ProjectIndex.open(sys.argv[1]).update(workers=1)
"""


def snapshot(idx: ProjectIndex) -> dict[str, Any]:
    """What readers can get out of an index: rows of every table, search and pattern answers."""
    return {
        "symbols": sorted((s.path, s.qualified_name, s.kind, s.start_line) for s in idx.iter_symbols()),
        "chunks": sorted(c.id for c in idx.iter_chunks()),
        "files": sorted((f.path, f.content_hash) for f in idx.iter_files(include_skipped=True)),
        "patterns_table": sorted((r["kind"], r["language"], r["key"], r["count"])
                                 for r in idx.store["patterns"].to_arrow().to_pylist()),
        "patterns": [(p.kind, p.key, p.count) for p in idx.patterns(limit=50)],
        "similar": [(c.path, c.symbol) for q in QUERIES for c in idx.similar_chunks(q, limit=3)],
        "search": [(h.kind, h.path, h.start_line, h.title) for q in QUERIES for kind in (None, "chunk", "pattern")
                   for h in idx.search(q, kind=kind, limit=5)],
    }


def clean_snapshot(root: Path, tmp_path: Path) -> dict[str, Any]:
    clean = tmp_path / "clean"
    shutil.copytree(root, clean, ignore=shutil.ignore_patterns(".mochi"))
    idx = ProjectIndex.open(clean)
    idx.update()
    return snapshot(idx)


@pytest.mark.parametrize("step", sorted(KILL_AT))
def test_kill_9_in_a_final_step_of_an_index_run_is_repaired_by_one_plain_rerun(step: str, tmp_path: Path) -> None:
    root = tmp_path / "project"
    _make_project(root)
    code = textwrap.dedent(CHILD).format(hook=textwrap.indent(textwrap.dedent(KILL_AT[step]), "    "))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), str(root)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    idx = ProjectIndex.open(root)
    stats = idx.update()
    assert stats.parsed == 0  # the rows were committed; only what is derived from them was missing
    got = snapshot(idx)
    assert got["similar"] and got["patterns_table"]
    assert got == clean_snapshot(root, tmp_path)


def _truncate_a_data_file(root: Path, table: str = "chunks") -> None:
    folder = stores.current(root / ".mochi" / "index")
    assert folder is not None
    data = sorted((folder / f"{table}.lance" / "data").glob("*.lance"))[0]
    with open(data, "r+b") as f:
        f.truncate(max(1, data.stat().st_size // 3))


@pytest.mark.parametrize("table", ["chunks", "files", "symbols"])
def test_a_truncated_data_file_is_detected_and_the_store_rebuilt_by_a_plain_update(table: str,
                                                                                   tmp_path: Path) -> None:
    root = tmp_path / "project"
    _make_project(root)
    ProjectIndex.open(root).update()
    _truncate_a_data_file(root, table)
    reader = ProjectIndex.open(root)
    read = {"chunks": lambda: reader.similar_chunks("Thing3 run"), "symbols": lambda: reader.definitions(["Thing3"]),
            "files": lambda: list(reader.iter_files())}[table]
    with pytest.raises(IndexDamaged, match="damaged.*run `mochi index` to rebuild it"):
        read()
    stats = ProjectIndex.open(root).update()
    assert f"{table}.lance" in stats.damaged or "damaged" in stats.damaged
    assert stats.parsed == 24
    assert snapshot(reader) == clean_snapshot(root, tmp_path)  # the old reader switched to the rebuilt store


def test_a_damaged_pointer_is_rebuilt_and_full_always_succeeds(tmp_path: Path) -> None:
    root = tmp_path / "project"
    _make_project(root)
    ProjectIndex.open(root).update()
    (root / ".mochi" / "index" / stores.POINTER).write_text("../../elsewhere\n")
    with pytest.raises(IndexDamaged):
        ProjectIndex.open(root, create=False)
    stats = ProjectIndex.open(root).update()
    assert stats.damaged and stats.parsed == 24
    _truncate_a_data_file(root, "files")
    assert ProjectIndex.open(root).update(full=True).parsed == 24
    assert snapshot(ProjectIndex.open(root, create=False)) == clean_snapshot(root, tmp_path)
