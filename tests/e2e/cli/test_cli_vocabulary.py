"""One CLI vocabulary: `PROJECT`, `--project` and `-p` mean the project root in every command.

typer's in-process runner for most checks (importing LanceDB costs seconds per process on a shared
2-core machine); subprocesses where the exit code and the one-line error of `main()` matter.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.core import TyperArgument, TyperOption
from typer.testing import CliRunner

from mochi_cli.app import app
from mochi_core.errors import ConfigError
from mochi_index import IndexMissing

MOCHI = [sys.executable, "-m", "mochi_cli.app"]
PROJECT_COMMANDS = [["index"], ["search"], ["init"], ["prepare"], ["eval"], ["stats"], ["list"]]
ROOT_OPTION_COMMANDS = [*PROJECT_COMMANDS, ["lsp"], ["serve"], ["pack"], ["install"], ["complete"],
                        ["train", "project"]]


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


def _command(path: list[str]):  # type: ignore[no-untyped-def]
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return cmd


@pytest.fixture
def poly(fixture_project) -> Path:  # noqa: ANN001
    return fixture_project("index/poly")


@pytest.mark.parametrize("path", PROJECT_COMMANDS, ids=" ".join)
def test_every_project_command_takes_the_project_as_an_optional_argument(path: list[str]) -> None:
    args = [p for p in _command(path).params if isinstance(p, TyperArgument) and p.metavar == "PROJECT"]
    assert len(args) == 1 and not args[0].required


@pytest.mark.parametrize("path", ROOT_OPTION_COMMANDS, ids=" ".join)
def test_p_and_project_name_the_project_root_in_every_command(path: list[str]) -> None:
    (opt,) = [p for p in _command(path).params if isinstance(p, TyperOption) and "-p" in p.opts]
    assert "--project" in opt.opts + opt.secondary_opts
    assert "adapter" not in (opt.help or "").lower()


def test_serve_names_its_adapters_base_adapter_and_project_adapter_and_keeps_base() -> None:
    opts = {o for p in _command(["serve"]).params if isinstance(p, TyperOption) for o in p.opts}
    assert {"--base-adapter", "--base", "--project-adapter", "--project-root", "--project", "-p"} <= opts
    train = {o for p in _command(["train", "project"]).params if isinstance(p, TyperOption) for o in p.opts}
    assert {"--base-adapter", "--base"} <= train


def test_index_and_search_take_the_project_as_an_argument(poly: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = _run("index", str(poly))
    assert done.exit_code == 0, done.output
    assert f"indexed {poly}" in done.output
    monkeypatch.chdir(poly)
    assert "7 unchanged" in _run("index", ".").output
    assert "7 unchanged" in _run("index", "-p", ".").output
    hits = _run("search", "HttpClient", str(poly), "--json")
    assert hits.exit_code == 0 and '"title": "HttpClient"' in hits.output


def test_two_different_projects_are_refused(poly: Path, tmp_path: Path) -> None:
    result = _run("index", str(poly), "--project", str(tmp_path))
    assert result.exit_code == 2 and "two projects" in result.output
    assert _run("index", str(poly), "--project", str(poly)).exit_code == 0


def test_index_says_why_files_were_skipped(poly: Path) -> None:
    out = _run("index", str(poly)).output
    total, reasons = re.search(r"(\d+) skipped \(([^)]+)\)", out).groups()  # type: ignore[union-attr]
    counts = {r.split(" ", 1)[1]: int(r.split(" ", 1)[0]) for r in reasons.split(", ")}
    assert counts["unknown language"] == 1 and sum(counts.values()) == int(total)


def test_index_stats_without_an_index_says_so_and_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("def f():\n    return 1\n")
    result = _run("index", str(tmp_path), "--stats")
    assert isinstance(result.exception, IndexMissing) and "mochi index" in str(result.exception)
    assert not (tmp_path / ".mochi").exists()


def test_stats_takes_p(tmp_path: Path) -> None:
    result = _run("stats", "-p", str(tmp_path))
    assert result.exit_code == 0 and "No suggestions recorded yet" in result.output
    assert _run("stats", str(tmp_path), "--json").exit_code == 0


def test_a_missing_project_is_a_one_line_error_with_exit_code_1(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent"
    for args in (["list", "--project", str(missing)], ["list", str(missing)], ["stats", "-p", str(missing)]):
        proc = subprocess.run([*MOCHI, *args], capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert proc.stderr.strip() == f"error: project folder does not exist: {missing}"


def test_a_second_init_says_it_wrote_nothing_and_exits_1(tmp_path: Path) -> None:
    first = _run("init", str(tmp_path))
    assert first.exit_code == 0 and "wrote" in first.output
    assert (tmp_path / ".mochi" / "config.toml").is_file()
    second = _run("init", "-p", str(tmp_path))
    assert second.exit_code == 1
    assert "nothing to do" in second.output and "--force" in second.output
    assert _run("init", str(tmp_path), "--force").exit_code == 0


def test_serve_refuses_an_adapter_folder_as_the_project_and_names_the_adapter_flags(tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    result = _run("serve", "--project", str(adapter))
    assert isinstance(result.exception, ConfigError)
    assert "--project-adapter" in str(result.exception) and "adapter folder" in str(result.exception)
    missing = _run("serve", "-p", str(tmp_path / "nope"))
    assert isinstance(missing.exception, ConfigError) and "not a folder" in str(missing.exception)


def test_prepare_takes_the_project_as_an_argument_and_keeps_repo(fixture_project, tmp_path: Path) -> None:  # noqa: ANN001
    repo = fixture_project("train/minirepo")
    by_arg = _run("prepare", str(repo), "--output", str(tmp_path / "a"))
    assert by_arg.exit_code == 0, by_arg.output
    by_old_name = _run("prepare", "--repo", str(repo), "--output", str(tmp_path / "b"))
    assert by_old_name.exit_code == 0, by_old_name.output
    assert (tmp_path / "a" / "dataset.json").read_text() == (tmp_path / "b" / "dataset.json").read_text()
