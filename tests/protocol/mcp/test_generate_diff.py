"""generate_diff returns diffs that `git apply --check` accepts, repairs model slips, and says when it cannot."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mochi_model.fake import FakeEngine
from tests.protocol.mcp.conftest import connect, text_of


def git_apply(root: Path, diff: str) -> None:
    """Check with git, then apply (git applies a/ b/ paths relative to the folder)."""
    (root.parent / "change.diff").write_text(diff)
    check = subprocess.run(["git", "apply", "--check", str(root.parent / "change.diff")], cwd=root,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr + diff
    subprocess.run(["git", "apply", str(root.parent / "change.diff")], cwd=root, check=True, capture_output=True)


def fenced(code: str) -> str:
    return f"Here is the updated file:\n```python\n{code}```\n"


async def test_a_whole_file_rewrite_becomes_a_minimal_diff_that_git_applies(shop: Path) -> None:
    original = (shop / "shop/pricing.py").read_text()
    wanted = original.replace('"fr": 0.2,', '"fr": 0.21,')
    engine = FakeEngine(fenced(wanted))
    async with connect(shop, engine) as client:
        result = await client.call_tool("generate_diff", {"file_path": "shop/pricing.py",
                                                          "instruction": "set the French VAT rate to 21%"})
    assert not result.is_error, text_of(result)
    data = result.structured_content
    assert data["verified"] is True and (data["added"], data["removed"]) == (1, 1) and data["repairs"] == []
    assert text_of(result).startswith("--- a/shop/pricing.py\n+++ b/shop/pricing.py\n@@ -11,7 +11,7 @@")
    assert "set the French VAT rate to 21%" in engine.calls[0].prompt and original.strip() in engine.calls[0].prompt
    git_apply(shop, text_of(result))
    assert (shop / "shop/pricing.py").read_text() == wanted


async def test_a_model_that_answers_with_a_sloppy_diff_is_repaired_into_a_clean_one(shop: Path) -> None:
    sloppy = ("```diff\n--- pricing.py\n+++ pricing.py\n@@ -1,99 +1,99 @@\n def apply_discount(price, percent):\n"
              '     """Price after a percentage discount."""\n-    if not 0 <= percent <= 100:   \n'
              "+    if not 0 <= percent <= 90:\n```")
    async with connect(shop, FakeEngine(sloppy)) as client:
        result = await client.call_tool("generate_diff", {"file_path": "shop/pricing.py",
                                                          "instruction": "cap discounts at 90%"})
    assert not result.is_error, text_of(result)
    assert any("applied it leniently" in r for r in result.structured_content["repairs"])
    git_apply(shop, text_of(result))
    assert "if not 0 <= percent <= 90:" in (shop / "shop/pricing.py").read_text()


async def test_one_region_of_a_file_can_be_rewritten_and_the_diff_still_targets_the_file(shop: Path) -> None:
    region = 'def cancel_order(inventory: Inventory, sku, quantity):\n    """Put the items back in stock."""\n'
    engine = FakeEngine(fenced(region.replace("Put the items back in stock.", "Return the items to stock.")))
    async with connect(shop, engine) as client:
        result = await client.call_tool("generate_diff", {"file_path": "shop/orders.py", "original_code": region,
                                                          "instruction": "reword the docstring"})
    assert not result.is_error, text_of(result)
    assert "@@ -21,7 +21,7 @@" in text_of(result) and "def place_order" not in engine.calls[0].prompt
    git_apply(shop, text_of(result))
    assert '"""Return the items to stock."""' in (shop / "shop/orders.py").read_text()


async def test_loose_code_without_a_file_gets_a_diff_against_a_snippet(tmp_path: Path, shop: Path) -> None:
    async with connect(shop, FakeEngine(fenced("x = 1\ny = 3\n"))) as client:
        result = await client.call_tool("generate_diff", {"original_code": "x = 1\ny = 2", "instruction": "y is 3"})
    data = result.structured_content
    assert data["path"] == "snippet"
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "snippet").write_text("x = 1\ny = 2")
    git_apply(loose, text_of(result))
    assert (loose / "snippet").read_text() == "x = 1\ny = 3", "the missing final newline is kept"


async def test_a_cut_off_rewrite_is_regenerated_once_then_refused_rather_than_deleting_code(shop: Path) -> None:
    original = (shop / "shop/pricing.py").read_text()
    engine = FakeEngine(fenced(original.replace("0.2,", "0.21,")))
    async with connect(shop, engine) as client:
        result = await client.call_tool("generate_diff", {"file_path": "shop/pricing.py", "max_tokens": 20,
                                                          "instruction": "set the French VAT rate to 21%"})
    assert result.is_error
    assert "cut off at 40 tokens" in text_of(result) and "original_code" in text_of(result)
    assert [c.max_tokens for c in engine.calls] == [20, 40]
    assert (shop / "shop/pricing.py").read_text() == original


async def test_an_echoed_answer_is_regenerated_once_insisting_on_the_change(shop: Path) -> None:
    original = (shop / "shop/pricing.py").read_text()
    changed = original.replace('"jp": 0.1}', '"jp": 0.1, "it": 0.22}')

    def answer(prompt: str, _suffix: str) -> str:
        return fenced(changed if "does NOT make this change yet" in prompt else original)

    engine = FakeEngine(answer)
    async with connect(shop, engine) as client:
        result = await client.call_tool("generate_diff", {"file_path": "shop/pricing.py",
                                                          "instruction": "add Italy at 22%"})
    assert not result.is_error, text_of(result)
    assert [c.temperature for c in engine.calls] == [0.0, 0.3]
    assert any("repeated the code unchanged" in r for r in result.structured_content["repairs"])
    git_apply(shop, text_of(result))
    assert (shop / "shop/pricing.py").read_text() == changed


async def test_an_unchanged_answer_twice_is_an_error_that_asks_for_a_concrete_instruction(shop: Path) -> None:
    original = (shop / "shop/pricing.py").read_text()
    engine = FakeEngine(fenced(original))
    async with connect(shop, engine) as client:
        result = await client.call_tool("generate_diff", {"file_path": "shop/pricing.py", "instruction": "improve it"})
    assert result.is_error and "unchanged" in text_of(result) and len(engine.calls) == 2


async def test_an_excerpt_that_is_not_in_the_file_is_refused(shop: Path) -> None:
    async with connect(shop, FakeEngine("x")) as client:
        result = await client.call_tool("generate_diff", {"file_path": "shop/orders.py", "original_code": "nope()\n",
                                                          "instruction": "change"})
        neither = await client.call_tool("generate_diff", {"instruction": "change"})
    assert result.is_error and "does not occur in shop/orders.py" in text_of(result)
    assert neither.is_error and "pass file_path" in text_of(neither)


async def test_the_prompt_names_project_definitions_but_no_other_code_to_copy(shop: Path) -> None:
    region = 'def cancel_order(inventory: Inventory, sku, quantity):\n    """Put the items back in stock."""\n'
    engine = FakeEngine(fenced(region.replace("Put the items", "Put all items")))
    async with connect(shop, engine) as client:
        result = await client.call_tool("generate_diff", {"file_path": "shop/orders.py", "original_code": region,
                                                          "instruction": "raise ShopError when the sku is unknown"})
    assert not result.is_error, text_of(result)
    prompt = engine.calls[0].prompt
    assert "`class ShopError(Exception):` (shop/errors.py:4)" in prompt
    assert "def apply_discount" not in prompt and "def place_order" not in prompt


async def test_an_answer_that_is_other_code_rather_than_an_edit_is_refused(shop: Path) -> None:
    region = (shop / "shop/orders.py").read_text().split("\n\n\n")[-1]  # cancel_order, 6 lines
    other = "class ShopError(Exception):\n    pass\n\n\ndef apply_discount(price, percent):\n    return price\n"
    async with connect(shop, FakeEngine(fenced(other))) as client:
        result = await client.call_tool("generate_diff", {"file_path": "shop/orders.py", "original_code": region,
                                                          "instruction": "refuse quantities above 100"})
    assert result.is_error and "not an edit of the given code" in text_of(result)
