"""The project root is a boundary: symlinks out of it never bring outside code into the index."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mochi_cli.app import app
from mochi_index import ProjectIndex

SENTINEL = "zebra_outside_sentinel"  # the outside function's name
PAYLOAD = "outside-payload-93127"  # its body: must never reach a result or a prompt


def make_linked_project(base: Path) -> Path:
    """``base/project`` with a file link and a folder link to ``base/outside`` (which holds the sentinel).

    Shared by the CLI, LSP and MCP boundary tests.
    """
    outside = base / "outside"
    (outside / "pkg").mkdir(parents=True)
    secret = f'def {SENTINEL}(token):\n    """{PAYLOAD} secret."""\n    raise ValueError("{PAYLOAD}")\n'
    (outside / "secret.py").write_text(secret)
    (outside / "pkg" / "more_secrets.py").write_text(secret.replace(SENTINEL, SENTINEL + "_two"))
    root = base / "project"
    (root / "app").mkdir(parents=True)
    (root / "app" / "real.py").write_text("def inside_only(x):\n    return x + 1\n")
    (root / "app" / "linked.py").symlink_to(outside / "secret.py")
    (root / "app" / "linked_dir").symlink_to(outside / "pkg", target_is_directory=True)
    (root / "app" / "alias.py").symlink_to(root / "app" / "real.py")  # a link that stays inside is fine
    return root


def all_rows_text(idx: ProjectIndex) -> str:
    """Every row of every table, as one string."""
    return "\n".join(str(idx.store[name].to_arrow().to_pylist()) for name in idx.store.tables)


@pytest.fixture
def linked(tmp_path: Path) -> Path:
    return make_linked_project(tmp_path)


def test_a_walk_keeps_file_and_folder_links_that_leave_the_root_out_of_every_table(linked: Path) -> None:
    idx = ProjectIndex.open(linked)
    stats = idx.update()
    assert SENTINEL not in all_rows_text(idx) and PAYLOAD not in all_rows_text(idx)
    assert {f.path for f in idx.iter_files(include_skipped=True)} == {"app/real.py", "app/alias.py"}
    assert stats.skipped["outside_root"] == 2
    assert idx.stats()["skipped"]["outside_root"] == 2


def test_update_file_and_watcher_changes_refuse_paths_whose_real_path_is_outside(linked: Path) -> None:
    idx = ProjectIndex.open(linked)
    idx.update()
    assert idx.update_file("app/linked.py") is False
    assert idx.update_file("app/linked_dir/more_secrets.py") is False
    assert idx.update_file("app/linked.py", text=f"def {SENTINEL}_unsaved():\n    pass\n") is False
    assert idx.update_file("../outside/secret.py") is False
    idx.apply_changes(["app/linked.py", "app/linked_dir/more_secrets.py", "../outside/secret.py"], [])
    assert SENTINEL not in all_rows_text(idx)
    assert idx.definitions([SENTINEL, SENTINEL + "_two"]) == []


def test_mochi_search_for_the_sentinel_finds_nothing(linked: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["index", "--project", str(linked)]).exit_code == 0
    for kind in ("", "symbol", "chunk", "pattern"):
        args = ["search", SENTINEL, "--project", str(linked)] + (["--kind", kind] if kind else [])
        out = runner.invoke(app, args)
        assert out.exit_code == 0 and SENTINEL not in out.stdout and "linked" not in out.stdout
    inside = runner.invoke(app, ["search", "inside_only", "--project", str(linked)])
    assert "app/real.py" in inside.stdout
