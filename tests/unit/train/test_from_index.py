"""`mochi prepare --from-index`: samples follow the live LanceDB index; a second run redoes changed files only."""

from __future__ import annotations

import json

from mochi_core.config import CompletionSection
from mochi_model.context import build_fim_request
from mochi_model.data.prepare import files_from_index, prepare


def test_prepare_from_the_index_reuses_unchanged_files_on_the_second_run(fixture_project, tmp_path):
    from mochi_index import ProjectIndex

    repo = fixture_project("train/minirepo")
    idx = ProjectIndex.open(repo, create=True)
    idx.update()
    idx.close()
    files = files_from_index(repo)
    assert "shop/checkout.py" in files and "shop/models.py" in files
    first = prepare(files, tmp_path / "d", repo_name="minirepo")
    train = first["split_files"]["train"]
    changed = repo / train[0]
    changed.write_text(changed.read_text() + "\n\ndef added_later(x):\n    return x * 2\n")
    idx = ProjectIndex.open(repo, create=True)
    idx.update()
    idx.close()
    second = prepare(files_from_index(repo), tmp_path / "d", repo_name="minirepo",
                     previous=json.loads((tmp_path / "d" / "dataset.json").read_text()))
    assert second["splits"]["train"]["reused_files"] == len(train) - 1
    assert second["hashes"][train[0]] != first["hashes"][train[0]]


def test_prompt_assembly_retrieves_definitions_from_the_lancedb_index(fixture_project):
    from mochi_index import ProjectIndex

    repo = fixture_project("train/minirepo")
    idx = ProjectIndex.open(repo, create=True)
    idx.update()
    text = (repo / "shop" / "checkout.py").read_text()
    offset = text.index("stock.reserve(item)") + len("stock.")
    req = build_fim_request(text, offset, path="shop/checkout.py", language="python", index=idx,
                            config=CompletionSection(context_tokens=400))
    idx.close()
    joined = "\n".join(s.text for s in req.snippets)
    assert "shop/checkout.py" not in [s.path for s in req.snippets]
    assert "def reserve(self, item: Item) -> None:" in joined


def test_an_update_plan_trains_on_the_samples_of_what_was_added_not_the_whole_file(fixture_project, tmp_path):
    from mochi_model.data.formats import get_format
    from mochi_model.training.update import TrainedOn, plan_update, target_text

    repo = fixture_project("train/minirepo")
    files = {p.relative_to(repo).as_posix(): p.read_text() for p in sorted(repo.rglob("*.py"))}
    first = prepare(files, tmp_path / "d", repo_name="minirepo")
    train = first["split_files"]["train"]
    assert set(first["line_hashes"]) == set(train)
    big = max(train, key=lambda p: len(files[p]))
    added = "".join(f"\n\ndef added_later_{k}(items):\n    doubled_{k} = [i * {k} for i in items]\n"
                    f"    return sum(doubled_{k}) + {k}\n" for k in range(2, 40))
    second = prepare({**files, big: files[big] + added}, tmp_path / "d", repo_name="minirepo",
                     previous=json.loads((tmp_path / "d" / "dataset.json").read_text()))
    trained = TrainedOn(hashes={p: first["hashes"][p] for p in train},
                        lines={p: set(v) for p, v in first["line_hashes"].items()})
    plan = plan_update(tmp_path / "d", trained, replay=0)
    of_file = [json.loads(ln) for ln in (tmp_path / "d" / "train.jsonl").read_text().splitlines()
               if json.loads(ln)["path"] == big]
    assert plan.changed == [big] and second["hashes"][big] != first["hashes"][big]
    assert plan.changed_samples and len(plan.changed_samples) + plan.unchanged_lines == len(of_file)
    assert plan.unchanged_lines > 0  # the file's old lines are not trained on again as "changed"
    for s in plan.changed_samples:  # each one writes (part of) an added line
        target = target_text(s, get_format("qwen"))
        assert "added_later_" in target or "doubled_" in target, target
