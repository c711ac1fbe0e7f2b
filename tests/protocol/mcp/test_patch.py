"""Unified diffs written by mochi_mcp.patch apply with git, and the lenient patcher repairs model diffs."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from mochi_mcp.patch import PatchDoesNotApply, apply_diff, make_diff, verify

LINES = ["def f():\n", "    return 1\n", "\n", "x = 2\n", "y = [\n", "]\n", "# note\n", "import os\n"]


def _git_apply(tmp: Path, name: str, old: str, diff: str) -> str:
    (tmp / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp / name).write_text(old)
    (tmp / "change.diff").write_text(diff)
    check = subprocess.run(["git", "apply", "--check", "change.diff"], cwd=tmp, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    subprocess.run(["git", "apply", "change.diff"], cwd=tmp, check=True, capture_output=True)
    return (tmp / name).read_text()


@pytest.mark.parametrize("seed", range(12))
def test_random_edits_give_diffs_that_git_applies_to_the_exact_new_text(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    old = "".join(rng.choice(LINES) for _ in range(rng.randint(0, 25)))
    new_lines = old.splitlines(keepends=True)
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(["insert", "delete", "replace"])
        pos = rng.randint(0, len(new_lines))
        if op == "insert" or not new_lines:
            new_lines.insert(pos, rng.choice(LINES))
        elif op == "delete":
            del new_lines[min(pos, len(new_lines) - 1)]
        else:
            new_lines[min(pos, len(new_lines) - 1)] = f"z = {seed}\n"
    new = "".join(new_lines)
    if seed % 3 == 0:  # files without a final newline need the "\ No newline" marker
        new = new.rstrip("\n")
    diff = make_diff(old, new, "pkg/mod.py")
    if old == new:
        assert diff == ""
        return
    verify(old, diff, new)
    assert _git_apply(tmp_path, "pkg/mod.py", old, diff) == new


def test_a_file_losing_its_final_newline_is_marked_and_applies(tmp_path: Path) -> None:
    old = "a\nb\n"
    new = "a\nb"
    diff = make_diff(old, new, "f.txt")
    assert "\\ No newline at end of file" in diff
    assert _git_apply(tmp_path, "f.txt", old, diff) == new


def test_strict_apply_refuses_a_diff_whose_context_is_not_in_the_text() -> None:
    diff = make_diff("a\nb\nc\n", "a\nB\nc\n", "f.py")
    with pytest.raises(PatchDoesNotApply, match="hunk 1"):
        apply_diff("a\nx\nc\n", diff)


def test_lenient_apply_repairs_a_model_diff_with_wrong_counts_and_stripped_blank_lines() -> None:
    old = "def f():\n    x = 1\n\n    return x\n"
    # what small models write: counts wrong, blank context line without its leading space,
    # trailing whitespace on a context line
    model_diff = "--- a/f.py\n+++ b/f.py\n@@ -1,9 +1,9 @@\n def f():   \n-    x = 1\n+    x = 2\n\n     return x\n"
    with pytest.raises(PatchDoesNotApply):
        verify(old, model_diff, "def f():\n    x = 2\n\n    return x\n")
    repaired = apply_diff(old, model_diff, fuzzy=True)
    assert repaired == "def f():\n    x = 2\n\n    return x\n"


def test_hunks_are_found_when_the_model_got_the_line_numbers_wrong() -> None:
    old = "".join(f"line {i}\n" for i in range(1, 30))
    new = old.replace("line 20\n", "line twenty\n")
    diff = make_diff(old, new, "f.txt").replace("@@ -17,7 +17,7 @@", "@@ -5,7 +5,7 @@")
    assert "@@ -5,7 +5,7 @@" in diff
    assert apply_diff(old, diff) == new


def test_a_diff_without_hunks_is_refused_with_a_clear_message() -> None:
    with pytest.raises(PatchDoesNotApply, match="no hunks"):
        apply_diff("a\n", "--- a/f\n+++ b/f\n")
