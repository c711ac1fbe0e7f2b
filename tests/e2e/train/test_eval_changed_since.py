"""`mochi eval --changed-since OLDER`: only the held-out files that are new or changed since an older
copy of the project are scored (how an adapter update is measured on release N+1). Real index, fake
engine."""

from __future__ import annotations

import shutil

import pytest

from mochi_model.eval.run import EvalError, EvalOptions, evaluate_repo, held_out, read_checkpoint
from mochi_model.fake import FakeEngine


def _engine() -> FakeEngine:
    return FakeEngine(answer=lambda prefix, suffix: prefix.rsplit("\n", 1)[-1][-3:])


def _project(root):
    for i in range(20):  # enough files for two or more in the held-out split
        body = "".join(f"def f{i}_{j}(x):\n    total = x * {j}\n    return total + {i}\n\n\n" for j in range(4))
        (root / "pkg").mkdir(parents=True, exist_ok=True)
        (root / "pkg" / f"mod{i}.py").write_text(f'"""Module {i}."""\n\n\n' + body, encoding="utf-8")
    return root


def test_only_changed_held_out_files_are_scored(tmp_path):
    repo = _project(tmp_path / "repo")
    older = tmp_path / "older"
    shutil.copytree(repo, older)
    files, test, _ = held_out(repo, None, 0)
    assert len(test) >= 2, "the fixture needs two held-out files for this test"
    changed = test[0]
    (repo / changed).write_text(files[changed] + "\n\ndef added_in_n_plus_1(x):\n    return x + 1\n", encoding="utf-8")

    out = tmp_path / "eval"
    summary = evaluate_repo(_engine(), repo, out, options=EvalOptions(holes=50, kinds=("next_line",),
                                                                   changed_since=older))
    assert summary["meta"]["test_files"] == 1 and summary["meta"]["changed_since"] == str(older)
    paths = {r["path"] for r in read_checkpoint(out / "holes.jsonl")}
    assert paths == {changed}

    # everything scored when nothing is filtered: the other held-out files come back
    every = evaluate_repo(_engine(), repo, tmp_path / "all", options=EvalOptions(holes=50, kinds=("next_line",)))
    assert every["meta"]["test_files"] == len(test)


def test_nothing_changed_or_no_folder_is_a_clear_error(fixture_project, tmp_path):
    repo = fixture_project("train/minirepo")
    same = tmp_path / "same"
    shutil.copytree(repo, same)
    with pytest.raises(EvalError, match="nothing changed"):
        evaluate_repo(_engine(), repo, tmp_path / "e1", options=EvalOptions(holes=5, changed_since=same))
    with pytest.raises(EvalError, match="not a folder"):
        evaluate_repo(_engine(), repo, tmp_path / "e2", options=EvalOptions(holes=5, changed_since=tmp_path / "nope"))


def test_cli_refuses_a_missing_older_copy_before_loading_a_model(tmp_path):
    import os
    import subprocess
    import sys

    repo = _project(tmp_path / "repo")
    result = subprocess.run([sys.executable, "-m", "mochi_cli.app", "eval", str(repo), "--changed-since",
                             str(tmp_path / "nope"), "--model", str(tmp_path / "no-model.gguf")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={**os.environ, "COLUMNS": "400"})  # the message on one line of the panel
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "not a folder" in result.stderr and "--changed-since" in result.stderr
