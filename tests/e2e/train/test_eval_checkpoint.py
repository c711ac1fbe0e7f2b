"""`mochi eval` checkpoints every hole: a run killed half-way continues with ``--resume`` where it
stopped (finished rows reused, the stopped row goes on from its last hole) and ends with the same
results as an uninterrupted run. Real index (tree-sitter + LanceDB), fake engine (answers are a
function of the prompt, so both runs score the same)."""

from __future__ import annotations

import json

import pytest

from mochi_model.eval.run import EvalOptions, evaluate_repo, read_checkpoint
from mochi_model.fake import FakeEngine


class Killed(Exception):
    pass


def engine(calls: list[str], kill_after: int | None = None) -> FakeEngine:
    def answer(prefix: str, suffix: str) -> str:
        calls.append(prefix[-40:])
        if kill_after is not None and len(calls) > kill_after:
            raise Killed("stopped mid-row")
        return prefix.rsplit("\n", 1)[-1][-3:]  # deterministic, sometimes right

    return FakeEngine(answer=answer)


def test_a_stopped_eval_resumes_from_its_last_hole_and_matches_a_full_run(fixture_project, tmp_path):
    repo = fixture_project("train/minirepo")
    opts = EvalOptions(holes=6, kinds=("next_line",))

    full_calls: list[str] = []
    full = evaluate_repo(engine(full_calls), repo, tmp_path / "full", options=opts)
    assert full["rows"] == ["base", "retrieval"] and len(full_calls) == 12

    out = tmp_path / "stopped"
    first: list[str] = []
    with pytest.raises(Killed):  # dies after base (6 holes) and 3 holes of retrieval
        evaluate_repo(engine(first, kill_after=9), repo, out, options=opts)
    saved = read_checkpoint(out / "holes.jsonl")
    assert [r["config"] for r in saved] == ["base"] * 6 + ["retrieval"] * 3
    with open(out / "holes.jsonl", "a", encoding="utf-8") as f:
        f.write('{"config": "retrieval", "ki')  # a torn line, as a kill mid-write leaves it

    second: list[str] = []
    resumed = evaluate_repo(engine(second), repo, out, options=opts, previous=out / "holes.jsonl")
    assert len(second) == 3  # only the holes the stopped run had not finished
    assert resumed["rows"] == full["rows"]
    for row in full["rows"]:
        assert resumed["configs"][row]["next_line"]["em"] == full["configs"][row]["next_line"]["em"]
    final = [json.loads(ln) for ln in (out / "holes.jsonl").read_text().splitlines()]
    assert len(final) == 12 and sorted(r["hole"] for r in final if r["config"] == "retrieval") == list(range(6))


def test_a_checkpoint_of_other_holes_is_not_reused(fixture_project, tmp_path):
    repo = fixture_project("train/minirepo")
    out = tmp_path / "eval"
    evaluate_repo(engine([]), repo, out, options=EvalOptions(holes=4, kinds=("next_line",), seed=0))
    other = EvalOptions(holes=4, kinds=("next_line",), seed=7)
    fresh = evaluate_repo(engine([]), repo, tmp_path / "fresh", options=other)
    resumed = evaluate_repo(engine([]), repo, out, options=other, previous=out / "holes.jsonl")

    def holes(folder):
        return sorted((r["config"], r["hole"], r["path"], r["target"], r["pred"])
                      for r in read_checkpoint(folder / "holes.jsonl"))

    # another seed gives other holes: only records whose path, kind and target match are reused
    assert holes(out) == holes(tmp_path / "fresh")
    for row in ("base", "retrieval"):
        a, b = resumed["configs"][row]["next_line"], fresh["configs"][row]["next_line"]
        assert (a["n"], a["em"], a["es"]) == (b["n"], b["em"], b["es"])
