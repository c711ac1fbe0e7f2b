"""Kill -9 at any moment, concurrent readers, bounded store growth (real subprocesses, real LanceDB)."""

from __future__ import annotations

import select
import subprocess
import sys
import textwrap
from pathlib import Path

from mochi_index import ProjectIndex
from mochi_index.parse import parse_bytes

N_FILES = 24


def _make_project(root: Path, n: int = N_FILES, tag: str = "v1") -> None:
    for i in range(n):
        p = root / f"pkg{i % 3}" / f"mod_{i}.py"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f'"""Module {i} {tag}."""\n\n\nclass Thing{i}:\n    def run_{tag}(self):\n'
                     f'        raise ValueError("{i}")\n\n\ndef helper_{i}_{tag}(x):\n    return x + {i}\n')


def _run_child(code: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), str(root)], capture_output=True,
                          text=True, timeout=120)


def _assert_consistent(idx: ProjectIndex) -> None:
    """The index holds exactly what parsing the files on disk gives: nothing stale, missing or doubled."""
    expected_syms, expected_chunks = set(), []
    for f in sorted(idx.root.rglob("*.py")):
        rel = f.relative_to(idx.root).as_posix()
        parsed = parse_bytes(rel, "python", f.read_bytes(), idx.config.index.chunk_tokens)
        expected_syms |= {(s.path, s.qualified_name, s.start_line) for s in parsed.symbols}
        expected_chunks += [c.id for c in parsed.chunks]
    syms = [(s.path, s.qualified_name, s.start_line) for s in idx.iter_symbols()]
    chunks = [c.id for c in idx.iter_chunks()]
    assert len(syms) == len(set(syms)), "duplicate symbols"
    assert set(syms) == expected_syms
    assert sorted(chunks) == sorted(expected_chunks)
    assert {f.path for f in idx.iter_files()} == {f.relative_to(idx.root).as_posix() for f in idx.root.rglob("*.py")}


CRASH_BEFORE_COMMIT = """
    import os, signal, sys
    from mochi_index import ProjectIndex, indexer, store
    indexer.BATCH_FILES = indexer.POOL_TASK_FILES = 5
    seen = {"n": 0}
    original = store.Store.write
    def write(self, batch, removed, **kw):
        seen["n"] += 1
        if seen["n"] == 3:  # third batch: content rows land, then die before the files commit
            class Die:
                def merge_insert(self, *a, **k):
                    os.kill(os.getpid(), signal.SIGKILL)
            self.tables["files"] = Die()
        return original(self, batch, removed, **kw)
    store.Store.write = write
    ProjectIndex.open(sys.argv[1]).update(workers=1)
"""

CRASH_MID_DELETE = """
    import os, signal, sys
    from mochi_index import ProjectIndex, indexer, store
    indexer.BATCH_FILES = indexer.POOL_TASK_FILES = 5
    seen = {"n": 0}
    original = store.Store._delete_paths
    def delete(self, name, paths):
        seen["n"] += 1
        if seen["n"] == 2:  # old symbols deleted, old chunks not yet
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, name, paths)
    store.Store._delete_paths = delete
    ProjectIndex.open(sys.argv[1]).update(workers=1)
"""


def test_kill_9_before_a_batch_commits_then_rerun_leaves_a_consistent_index(tmp_path: Path) -> None:
    _make_project(tmp_path)
    proc = _run_child(CRASH_BEFORE_COMMIT, tmp_path)
    assert proc.returncode == -9, proc.stderr
    idx = ProjectIndex.open(tmp_path)
    stats = idx.update()
    assert stats.repaired == 5  # the uncommitted batch's orphan rows
    _assert_consistent(idx)


def test_kill_9_between_deletes_of_a_reindex_then_rerun_leaves_a_consistent_index(tmp_path: Path) -> None:
    _make_project(tmp_path)
    ProjectIndex.open(tmp_path).update()
    _make_project(tmp_path, tag="v2")  # every file changes (and so does its size)
    proc = _run_child(CRASH_MID_DELETE, tmp_path)
    assert proc.returncode == -9, proc.stderr
    idx = ProjectIndex.open(tmp_path)
    assert idx.update().repaired > 0
    _assert_consistent(idx)
    assert not any(s.name.endswith("v1") for s in idx.iter_symbols())


def test_kill_9_from_outside_while_indexing_then_rerun_leaves_a_consistent_index(tmp_path: Path) -> None:
    _make_project(tmp_path, n=120)
    code = textwrap.dedent("""
        import sys
        from mochi_index import ProjectIndex, indexer
        indexer.BATCH_FILES = indexer.POOL_TASK_FILES = 8
        def progress(done, total):
            print(done, flush=True)
        ProjectIndex.open(sys.argv[1]).update(progress=progress, workers=1)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "indexer never reported progress"
        proc.stdout.readline()
        proc.kill()  # SIGKILL while later batches are being written
    finally:
        proc.wait(timeout=30)
        proc.stdout.close()
    idx = ProjectIndex.open(tmp_path)
    idx.update()
    _assert_consistent(idx)


READER = """
    import sys
    from pathlib import Path
    from mochi_index import ProjectIndex
    idx = ProjectIndex.open(sys.argv[1], create=False)
    stop = Path(sys.argv[1]) / "stop"
    print("ready", flush=True)
    queries = bad = 0
    while not stop.exists() or queries < 5:
        found = idx.definitions(["stable_fn"])
        chunks = idx.similar_chunks("stable_fn value", limit=2)
        queries += 1
        if len(found) != 1 or not chunks:
            bad += 1
    print(queries, bad, flush=True)
"""


def test_a_reader_process_always_sees_a_complete_index_while_another_writes_and_compacts(tmp_path: Path) -> None:
    (tmp_path / "stable.py").write_text("def stable_fn(value):\n    return value\n")
    (tmp_path / "busy.py").write_text("def busy_0():\n    pass\n")
    idx = ProjectIndex.open(tmp_path)
    idx.update()
    reader = subprocess.Popen([sys.executable, "-c", textwrap.dedent(READER), str(tmp_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([reader.stdout], [], [], 60)
        assert ready and reader.stdout.readline().strip() == "ready"
        for i in range(1, 16):
            idx.update_file("busy.py", f"def busy_{i}():\n    return {i}\n")
            if i == 8:
                idx.compact(retention_s=0)
        (tmp_path / "stop").write_text("")
        out, err = reader.communicate(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.communicate()
    assert reader.returncode == 0, err
    queries, bad = map(int, out.split())
    assert queries >= 5 and bad == 0
    assert [s.name for s in idx.definitions(["busy_15"])] == ["busy_15"]


def test_compaction_keeps_the_store_from_growing_with_every_write(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("def a0():\n    pass\n")
    idx = ProjectIndex.open(tmp_path)
    idx.update()
    for i in range(40):
        idx.update_file("a.py", f"def a{i}():\n    pass\n")
    before = idx.store.version_count()
    idx.compact(retention_s=0)
    after = idx.store.version_count()
    assert after <= len(idx.store.tables) * 2 < before
    assert [s.name for s in idx.definitions(["a39"])] == ["a39"]


WRITER = """
    import sys
    from mochi_index import ProjectIndex
    idx = ProjectIndex.open(sys.argv[1], create=False)
    print("ready", flush=True)
    for i in range(12):
        idx.update_file("theirs.py", f"def theirs_{i}():\\n    return {i}\\n")
"""


def test_two_writer_processes_serialise_on_the_lock_and_leave_no_duplicates(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("def mine_0():\n    pass\n")
    (tmp_path / "theirs.py").write_text("def theirs_0():\n    pass\n")
    idx = ProjectIndex.open(tmp_path)
    idx.update()
    other = subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), str(tmp_path)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([other.stdout], [], [], 60)
        assert ready and other.stdout.readline().strip() == "ready"
        for i in range(12):
            idx.update_file("mine.py", f"def mine_{i}():\n    return {i}\n")
        _, err = other.communicate(timeout=60)
    finally:
        if other.poll() is None:
            other.kill()
            other.communicate()
    assert other.returncode == 0, err
    names = sorted(s.qualified_name for s in idx.iter_symbols())
    assert names == ["mine_11", "theirs_11"]
    assert sorted(c.path for c in idx.iter_chunks()) == ["mine.py", "theirs.py"]
