"""Eval metrics: whitespace-normalised exact match, edit similarity, bootstrap intervals."""

from __future__ import annotations

from mochi_model.eval.harness import HoleResult, summarize
from mochi_model.eval.holes import sample_holes
from mochi_model.eval.metrics import bootstrap_ci, edit_similarity, exact_match, paired_diff_ci


def test_exact_match_ignores_whitespace_differences_only():
    assert exact_match("return  a +\tb ", "return a + b") == 1.0
    assert exact_match("return a+b", "return a + b") == 0.0


def test_edit_similarity_is_one_for_equal_and_graded_otherwise():
    assert edit_similarity("abc", "abc") == 1.0
    assert edit_similarity("", "") == 1.0
    assert 0.6 < edit_similarity("return total", "return totals") < 1.0
    assert edit_similarity("", "xyz") == 0.0


def test_bootstrap_interval_contains_the_mean_and_narrows_with_more_holes():
    few = [1.0, 0.0] * 10
    many = [1.0, 0.0] * 500
    lo1, hi1 = bootstrap_ci(few, seed=1)
    lo2, hi2 = bootstrap_ci(many, seed=1)
    assert lo1 <= 0.5 <= hi1 and lo2 <= 0.5 <= hi2
    assert hi2 - lo2 < hi1 - lo1
    assert bootstrap_ci(few, seed=1) == (lo1, hi1)


def test_a_gain_inside_the_noise_is_reported_as_such_and_a_clear_gain_is_not():
    base = [0.0] * 50
    noisy = [1.0] + [0.0] * 49
    clear = [1.0] * 20 + [0.0] * 30
    _, lo, hi = paired_diff_ci(noisy, base)
    assert lo <= 0 <= hi

    def rows(name, ems):
        return [HoleResult(config=name, kind="next_line", category="cross_file" if i % 2 else "in_file", path="p",
                           target="t", pred="p", em=e, es=e, ms=1.0) for i, e in enumerate(ems)]

    s = summarize({"base": rows("base", base), "retrieval": rows("retrieval", noisy), "both": rows("both", clear)})
    assert s["gains"]["retrieval"]["next_line"]["verdict"] == "inside the noise"
    assert s["gains"]["both"]["next_line"]["verdict"] == "gain"
    assert s["configs"]["both"]["next_line"]["em"] == 0.4
    cats = s["configs"]["both"]["next_line"]["categories"]
    assert cats["in_file"]["n"] == cats["cross_file"]["n"] == 25 and cats["in_file"]["em"] == 10 / 25
    assert s["gains"]["both"]["next_line"]["categories"]["in_file"]["verdict"] == "gain"
    assert s["comparisons"]["both vs retrieval"]["next_line"]["verdict"] == "gain"


def test_holes_are_seeded_and_spread_over_every_file():
    files = {f"f{i}.py": "".join(f"value_{j} = compute({j})\n" for j in range(30)) for i in range(5)}
    a = sample_holes(files, 20, seed=0)
    assert a == sample_holes(files, 20, seed=0) and a != sample_holes(files, 20, seed=1)
    assert {h.path for h in a} == set(files)
    for h in a:
        assert files[h.path][h.cursor:h.end] == h.target and "\n" not in h.target
    spans = sample_holes(files, 5, kind="span", seed=0)
    assert all(h.target.count("\n") >= 1 for h in spans)


def test_rows_cover_each_adapter_alone_the_stack_both_and_the_comparison_model():
    from types import SimpleNamespace

    from mochi_model.eval.harness import comparison_pairs, plan_rows

    stack = SimpleNamespace(weights={"team": 0.3, "shop": 0.7})
    rows = plan_rows(SimpleNamespace(adapter_stack=stack), compare=True)
    by_name = {r.name: r for r in rows}
    assert list(by_name) == ["base", "retrieval", "adapter:team", "adapter:shop", "stack", "both", "compare:base",
                             "compare:retrieval"]
    assert by_name["base"].weights == (0.0, 0.0) and by_name["adapter:shop"].weights == (0.0, 1.0)
    assert by_name["stack"].weights == (0.3, 0.7) and by_name["both"].retrieval
    assert by_name["compare:retrieval"].engine == "compare" and by_name["compare:retrieval"].weights is None
    pairs = comparison_pairs(list(by_name))
    assert ("stack", "adapter:team") in pairs and ("stack", "adapter:shop") in pairs
    assert ("both", "compare:retrieval") in pairs and ("adapter:team", "base") in pairs
    assert ("adapter:shop", "adapter:team") in pairs and ("adapter:team", "adapter:shop") not in pairs
    assert comparison_pairs(["adapter:a", "adapter:b", "adapter:c"]) == [
        ("adapter:b", "adapter:a"), ("adapter:c", "adapter:a"), ("adapter:c", "adapter:b")]  # no base row: still paired
    single = [r.name for r in plan_rows(SimpleNamespace(adapter_stack=SimpleNamespace(weights={"shop": 1.0})))]
    assert single == ["base", "retrieval", "adapter:shop", "both"]
    assert [r.name for r in plan_rows(SimpleNamespace(adapter_stack=None))] == ["base", "retrieval"]
    assert [r.name for r in plan_rows(SimpleNamespace(adapter_stack=stack), only=("adapter",))] == \
        ["adapter:team", "adapter:shop"]


def test_holes_are_categorised_cross_file_in_file_and_docstring():
    from mochi_model.eval.categories import categorize
    from mochi_model.eval.holes import Hole

    text = ('"""Module doc."""\nfrom shop.pricing import tax\n\n\ndef total(x):\n    """Sum with tax.\n\n'
            '    More words here.\n    """\n    y = compute_discount(x)\n    z = y + 1\n    return tax(z)\n')
    lines = text.split("\n")

    def hole(i):
        start = sum(len(x) + 1 for x in lines[:i])
        line = lines[i]
        cursor = start + len(line) - len(line.lstrip())
        return Hole(kind="next_line", path="a.py", cursor=cursor, end=start + len(line), target=line.strip())

    defined = {"compute_discount": {"shop/discounts.py"}, "tax": {"shop/pricing.py"}, "total": {"a.py"}}
    holes = [hole(7), hole(9), hole(10), hole(11)]
    assert categorize(holes, {"a.py": text}, defined) == ["docstring", "cross_file", "in_file", "in_file"]


def test_the_share_of_holes_without_any_suggestion_is_reported_per_row():
    from mochi_model.eval.report import table_rows

    def rows(name, preds):
        return [HoleResult(config=name, kind="next_line", category="in_file", path="p", target="x = 1", pred=p,
                           em=float(p == "x = 1"), es=0.0, ms=1.0, hole=i) for i, p in enumerate(preds)]

    s = summarize({"base": rows("base", ["x = 1", "y"] * 5), "adapter:a": rows("adapter:a", ["", "  ", "x = 1", "y", "z"] * 2)})
    assert s["configs"]["base"]["next_line"]["empty"] == 0.0 and s["configs"]["adapter:a"]["next_line"]["empty"] == 0.4
    header, table = table_rows(s)
    col = header.index("empty %")
    assert [r[col] for r in table] == ["0.0", "40.0"]
