"""Prompt assembly: windows, identifiers in use, and retrieval of their definitions from other files."""

from __future__ import annotations

from mochi_core.config import CompletionSection
from mochi_model.context import build_fim_request, identifiers_in_use, retrieve_snippets
from mochi_model.data.local_index import LocalIndex
from mochi_model.data.prepare import collect_files


def test_identifiers_on_the_cursor_line_come_first_then_imports():
    before = "from shop.models import Cart, Item\nimport os\n\ndef f(cart):\n    total = 0\n    stock.reserve(item"
    names = identifiers_in_use(before)
    assert names[:3] == ["item", "reserve", "stock"]
    assert "Cart" in names and "Item" in names
    assert "def" not in names and "self" not in names


def test_retrieval_brings_the_definitions_the_cursor_line_uses_from_other_files(fixture_project):
    repo = fixture_project("train/minirepo")
    files = collect_files(repo)
    index = LocalIndex(files)
    text = files["shop/checkout.py"]
    offset = text.index("stock.reserve(item)") + len("stock.")
    req = build_fim_request(text, offset, path="shop/checkout.py", language="python", index=index)
    paths = [s.path for s in req.snippets]
    assert "shop/stock.py" in paths and "shop/checkout.py" not in paths
    stock = next(s for s in req.snippets if s.path == "shop/stock.py")
    assert "def reserve(self, item: Item) -> None:" in stock.text
    assert "self.levels[item.sku] = available" not in stock.text  # a skeleton, not the body
    assert req.prefix.endswith("stock.") and req.suffix.startswith("reserve(item)")


def test_class_definitions_are_shown_with_their_fields():
    index = LocalIndex({"m.py": "from dataclasses import dataclass\n\n@dataclass\nclass Item:\n"
                        + "".join(f"    field_{i}: int = {i}\n" for i in range(14))
                        + "    def total(self) -> int:\n        return self.field_1 * 2\n"})
    snips = retrieve_snippets(index, "x = Item(", path="use.py")
    assert len(snips) == 1 and "field_13: int = 13" in snips[0].text and "def total(self) -> int:" in snips[0].text
    assert "return self.field_1" not in snips[0].text


def test_snippets_stay_within_the_context_budget_and_the_best_comes_last(fixture_project):
    files = collect_files(fixture_project("train/minirepo"))
    index = LocalIndex(files)
    text = files["shop/checkout.py"]
    small = build_fim_request(text, len(text), path="shop/checkout.py", index=index,
                              config=CompletionSection(context_tokens=60))
    assert sum((len(s.text) + 3) // 4 + 4 for s in small.snippets) <= 60
    big = build_fim_request(text, len(text), path="shop/checkout.py", index=index)
    assert len(big.snippets) >= 2


def test_no_index_means_windows_only_and_budgets_cut_whole_lines():
    text = "".join(f"line_{i} = {i}\n" for i in range(400))
    req = build_fim_request(text, text.index("line_200"), config=CompletionSection(prefix_tokens=40, suffix_tokens=10))
    assert req.snippets == []
    assert req.prefix.endswith("line_199 = 199\n") and req.prefix.startswith("line_")
    assert len(req.prefix) < 200 and req.suffix.startswith("line_200")


def test_typing_on_one_line_keeps_the_prompt_front_stable(fixture_project):
    """Window start and snippets stay put while a word is typed (so the engine's KV cache is reused)."""
    files = collect_files(fixture_project("train/minirepo"))
    index = LocalIndex(files)
    text = files["shop/checkout.py"]
    at = text.index("stock.reserve(item)")
    line = "stock.reserve(item)"
    cfg = CompletionSection(prefix_tokens=60, suffix_tokens=10, context_tokens=400)
    reqs = [build_fim_request(text[:at] + line[:k] + text[at + len(line):], at + k, path="shop/checkout.py",
                              language="python", index=index, config=cfg) for k in range(7, 14)]  # "stock.r".."reserve"
    starts = {r.prefix.split("\n", 1)[0] for r in reqs}
    assert len(starts) == 1  # the first line of the window did not move
    assert len({tuple((s.path, s.text) for s in r.snippets) for r in reqs}) == 1
    assert all(r.prefix.endswith(line[:k]) for r, k in zip(reqs, range(7, 14), strict=True))


def test_a_cursor_line_longer_than_the_window_is_cut_from_the_left():
    text = "a = 1\n" + "x = " + " + ".join(f"v{i}" for i in range(300))
    req = build_fim_request(text, len(text), config=CompletionSection(prefix_tokens=30))
    assert "a = 1" not in req.prefix and text.endswith(req.prefix) and 0 < len(req.prefix) <= 30 * 4 + 4


def test_no_retrieval_when_the_prefix_alone_cannot_be_prefilled_in_time(fixture_project):
    from mochi_model.types import Snippet

    files = collect_files(fixture_project("train/minirepo"))
    index = LocalIndex(files)
    text = files["shop/checkout.py"]
    offset = text.index("stock.reserve(item)") + len("stock.")
    recent = [Snippet(path="shop/stock.py", text="class Stock: ...")]
    kw = {"path": "shop/checkout.py", "language": "python", "index": index, "recent": recent}
    roomy = build_fim_request(text, offset, prefill_room=10_000, **kw)
    assert any(s.path == "shop/stock.py" for s in roomy.snippets) and len(roomy.snippets) >= 2
    # snippets sit before the whole prefix: if the engine cannot prefill even the prefix in time,
    # none would run (prompt fit drops them), so they are not gathered
    tight = build_fim_request(text, offset, prefill_room=5, **kw)
    assert tight.snippets == [] and tight.prefix == roomy.prefix and tight.suffix == roomy.suffix
