"""`mochi index --full` builds a fresh store beside the current one; readers answer from the old one meanwhile."""

from __future__ import annotations

import select
import subprocess
import sys
import textwrap
from pathlib import Path

from mochi_index import ProjectIndex, stores
from tests.unit.index.test_crash_safety import N_FILES, _make_project

WAIT_S = 60

FULL = """
    import sys
    from mochi_index import ProjectIndex, indexer
    indexer.BATCH_FILES = indexer.POOL_TASK_FILES = 4
    def progress(done, total):
        if done == 8:  # halfway through the rebuild: let the test look, then go on
            print("halfway", flush=True)
            sys.stdin.readline()
    ProjectIndex.open(sys.argv[1]).update(full=True, progress=progress, workers=1)
    print("done", flush=True)
"""

READER = """
    import sys
    from pathlib import Path
    from mochi_index import ProjectIndex
    idx = ProjectIndex.open(sys.argv[1], create=False)
    stop = Path(sys.argv[1]) / "stop"
    print("ready", flush=True)
    queries = bad = 0
    while not stop.exists() or queries < 5:
        found = idx.definitions(["helper_3_v1", "helper_3_v2"])
        chunks = idx.similar_chunks("helper_3 return x", limit=2)
        queries += 1
        if len(found) != 1 or not chunks or len(list(idx.iter_symbols())) != 3 * {n}:
            bad += 1
    print(queries, bad, flush=True)
"""


def _line(proc: subprocess.Popen[str]) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], WAIT_S)
    assert ready, "the child said nothing"
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


def _helpers(idx: ProjectIndex) -> set[str]:
    return {s.name for s in idx.definitions(["helper_3_v1", "helper_3_v2"])}


def test_readers_answer_from_the_old_store_during_full_and_from_the_new_one_after_the_switch(tmp_path: Path) -> None:
    root = tmp_path / "project"
    _make_project(root, tag="v1")
    ProjectIndex.open(root).update()
    before = ProjectIndex.open(root, create=False)
    old_folder = before.store.folder
    _make_project(root, tag="v2")  # what the rebuild will find
    reader = subprocess.Popen([sys.executable, "-c", textwrap.dedent(READER).format(n=N_FILES), str(root)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    full = subprocess.Popen([sys.executable, "-c", textwrap.dedent(FULL), str(root)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _line(reader) == "ready"
        assert _line(full) == "halfway"
        # Mid-rebuild: an index opened before and one opened now both see the old store, complete.
        during = ProjectIndex.open(root, create=False)
        for idx in (before, during):
            assert _helpers(idx) == {"helper_3_v1"}
            assert len(list(idx.iter_symbols())) == 3 * N_FILES and idx.similar_chunks("helper_3 return x")
        assert full.stdin is not None
        full.stdin.write("go\n")
        full.stdin.flush()
        assert _line(full) == "done"
        assert full.wait(WAIT_S) == 0, full.stderr.read() if full.stderr else ""
        # After the switch every reader, old or new, answers from the rebuilt store.
        for idx in (before, during, ProjectIndex.open(root, create=False)):
            assert _helpers(idx) == {"helper_3_v2"}
        (root / "stop").write_text("")
        out, err = reader.communicate(timeout=WAIT_S)
    finally:
        for proc in (reader, full):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert reader.returncode == 0, err
    queries, bad = map(int, out.split())
    assert queries >= 5 and bad == 0
    # The old store stays for in-flight queries until the grace period ends, then a writer removes it.
    new_folder = before.store.folder
    assert new_folder != old_folder and old_folder.is_dir()
    assert stores.sweep(root / ".mochi" / "index", keep=new_folder, grace_s=0) == 1
    assert not old_folder.exists() and _helpers(before) == {"helper_3_v2"}


def test_a_full_rebuild_killed_midway_leaves_the_old_store_current_and_the_next_run_cleans_up(tmp_path: Path) -> None:
    root = tmp_path / "project"
    _make_project(root)
    ProjectIndex.open(root).update()
    current = stores.current(root / ".mochi" / "index")
    full = subprocess.Popen([sys.executable, "-c", textwrap.dedent(FULL), str(root)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _line(full) == "halfway"
        full.kill()
    finally:
        full.communicate(timeout=WAIT_S)
    assert stores.current(root / ".mochi" / "index") == current
    assert len(list((root / ".mochi" / "index").glob("store-*"))) == 2  # the interrupted rebuild
    idx = ProjectIndex.open(root, create=False)
    assert _helpers(idx) == {"helper_3_v1"}
    assert idx.update().parsed == 0
    assert [p.name for p in (root / ".mochi" / "index").glob("store-*")] == [current.name]


def test_an_index_in_the_old_layout_keeps_working_and_moves_to_a_store_folder_on_full(tmp_path: Path) -> None:
    from mochi_core.paths import index_dir
    from mochi_index.store import Store

    root = tmp_path / "project"
    _make_project(root)
    Store(index_dir(root), create=True)  # tables directly in .mochi/index, no pointer
    idx = ProjectIndex.open(root)
    assert idx.store.folder == index_dir(root) and idx.update().parsed == N_FILES
    assert _helpers(idx) == {"helper_3_v1"}
    idx.update(full=True)
    assert idx.store.folder.name.startswith("store-") and _helpers(idx) == {"helper_3_v1"}
    assert stores.sweep(index_dir(root), keep=idx.store.folder, grace_s=0) == 1
    assert not (index_dir(root) / "files.lance").exists() and _helpers(ProjectIndex.open(root)) == {"helper_3_v1"}
