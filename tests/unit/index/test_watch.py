"""Watch mode reacts to real file writes (bounded waits on events, no sleeps)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mochi_index import ProjectIndex
from mochi_index.watch import watch_project

WAIT_S = 20


class Watching:
    def __init__(self, idx: ProjectIndex) -> None:
        self.idx = idx
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.batches: queue.Queue[int] = queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            watch_project(self.idx, stop=self.stop, ready=self.ready, debounce_ms=400, step_ms=15,
                          on_batch=lambda n, _ms: self.batches.put(n))
        except BaseException as exc:  # surfaced to the test
            self.error = exc

    def wait_until(self, predicate) -> None:  # type: ignore[no-untyped-def]
        """Wait for batches until ``predicate()`` holds (each wait bounded)."""
        while not predicate():
            self.batches.get(timeout=WAIT_S)


@pytest.fixture
def watching(tmp_path: Path) -> Iterator[Watching]:
    (tmp_path / "a.py").write_text("def alpha():\n    pass\n")
    idx = ProjectIndex.open(tmp_path)
    idx.update()
    w = Watching(idx)
    w.thread.start()
    assert w.ready.wait(WAIT_S), "watcher did not start"
    yield w
    w.stop.set()
    w.thread.join(WAIT_S)
    assert not w.thread.is_alive() and w.error is None


def _names(idx: ProjectIndex) -> set[str]:
    return {s.name for s in idx.iter_symbols()}


def test_a_new_file_becomes_searchable(watching: Watching, tmp_path: Path) -> None:
    (tmp_path / "b.py").write_text("def freshly_written():\n    return 1\n")
    watching.wait_until(lambda: "freshly_written" in _names(watching.idx))
    assert watching.idx.similar_chunks("freshly_written")[0].path == "b.py"


def test_an_edit_replaces_and_a_delete_removes_the_file_rows(watching: Watching, tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("def alpha_renamed():\n    pass\n")
    watching.wait_until(lambda: _names(watching.idx) == {"alpha_renamed"})
    (tmp_path / "a.py").unlink()
    watching.wait_until(lambda: _names(watching.idx) == set())
    assert {f.path for f in watching.idx.iter_files()} == set()


def test_a_burst_of_files_is_applied_in_few_batches(watching: Watching, tmp_path: Path) -> None:
    for i in range(60):
        (tmp_path / f"burst_{i}.py").write_text(f"def burst_{i}():\n    pass\n")
    counts: list[int] = []
    while sum(counts) < 60:
        counts.append(watching.batches.get(timeout=WAIT_S))
    assert len(counts) < 30
    assert {f"burst_{i}" for i in range(60)} <= _names(watching.idx)


def test_an_unparsable_file_is_kept_out_and_the_watcher_keeps_running(watching: Watching, tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(")))))(((((\n" * 50)
    watching.wait_until(lambda: any(f.path == "broken.py" for f in watching.idx.iter_files(include_skipped=True)))
    assert [f.skip for f in watching.idx.iter_files(include_skipped=True) if f.path == "broken.py"] == ["parse_error"]
    (tmp_path / "after.py").write_text("def still_watching():\n    pass\n")
    watching.wait_until(lambda: "still_watching" in _names(watching.idx))


def test_ignored_and_non_source_files_do_not_trigger_indexing(watching: Watching, tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("ignored.py\n")
    (tmp_path / "ignored.py").write_text("def hidden():\n    pass\n")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "visible.py").write_text("def visible():\n    pass\n")
    watching.wait_until(lambda: "visible" in _names(watching.idx))
    assert "hidden" not in _names(watching.idx)


def _rows(idx: ProjectIndex) -> tuple[set[tuple[str, str, str, int]], set[str]]:
    return ({(s.path, s.qualified_name, s.kind, s.start_line) for s in idx.iter_symbols()},
            {f.path for f in idx.iter_files(include_skipped=True)})


def _paths(idx: ProjectIndex) -> set[str]:
    return {f.path for f in idx.iter_files()}


def test_folder_rename_move_in_and_move_out_leave_the_index_equal_to_a_fresh_one(watching: Watching,
                                                                                 tmp_path: Path) -> None:
    import shutil

    root = tmp_path
    for rel, name in [("pkg/server/api.py", "serve"), ("pkg/server/deep/handlers.py", "handle"),
                      ("pkg/other/tools.py", "tool")]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"def {name}(request):\n    return request\n\n\nclass {name.title()}Thing:\n    pass\n")
    watching.wait_until(lambda: {"pkg/server/api.py", "pkg/server/deep/handlers.py", "pkg/other/tools.py"}
                        <= _paths(watching.idx))
    outside = tmp_path.parent / f"{tmp_path.name}_outside"
    (outside / "newpkg" / "sub").mkdir(parents=True)
    (outside / "newpkg" / "mod.py").write_text("def moved_in():\n    pass\n")
    (outside / "newpkg" / "sub" / "inner.py").write_text("def moved_in_deeper():\n    pass\n")
    (outside / "newpkg" / "notes.txt").write_text("not source")
    try:
        (root / "pkg" / "server").rename(root / "pkg" / "server_renamed")  # a folder rename
        watching.wait_until(lambda: not any(p.startswith("pkg/server/") for p in _paths(watching.idx))
                            and "pkg/server_renamed/deep/handlers.py" in _paths(watching.idx))
        (outside / "newpkg").rename(root / "pkg" / "newpkg")  # a move in from outside the project
        watching.wait_until(lambda: "pkg/newpkg/sub/inner.py" in _paths(watching.idx))
        (root / "pkg" / "other").rename(outside / "other")  # a move out of the project
        watching.wait_until(lambda: "pkg/other/tools.py" not in _paths(watching.idx))
    finally:
        shutil.rmtree(outside, ignore_errors=True)
    fresh_root = tmp_path.parent / f"{tmp_path.name}_fresh"
    shutil.copytree(root, fresh_root, ignore=shutil.ignore_patterns(".mochi"))
    try:
        fresh = ProjectIndex.open(fresh_root)
        fresh.update()
        assert _rows(watching.idx) == _rows(fresh)
        assert "moved_in_deeper" in _names(watching.idx) and "tool" not in _names(watching.idx)
    finally:
        shutil.rmtree(fresh_root, ignore_errors=True)
