"""domain_query: prompts grounded on the index, modes, confidence and the unknown-symbol check."""

from __future__ import annotations

from pathlib import Path

from mochi_model.fake import FakeEngine
from tests.protocol.mcp.conftest import connect, text_of

GOOD = (
    "```python\nfrom shop.inventory import Inventory\nfrom shop.pricing import apply_discount\n\n\n"
    "def restock(inventory: Inventory, sku, quantity, price):\n"
    "    inventory.add_item(sku, quantity, apply_discount(price, 10))\n```\n"
)
HALLUCINATED = "```python\ndef refund(order):\n    return compute_refund(order)\n```\n"


async def test_the_prompt_carries_project_definitions_and_the_result_names_its_sources(shop: Path) -> None:
    engine = FakeEngine(GOOD)
    async with connect(shop, engine) as client:
        result = await client.call_tool("domain_query", {
            "instruction": "write restock(inventory, sku, quantity, price) using Inventory.add_item and apply_discount",
            "mode": "conservative"})
    assert not result.is_error, text_of(result)
    data = result.structured_content
    prompt = engine.calls[0].prompt
    assert "def add_item(self, sku, quantity, price):" in prompt
    assert "def apply_discount(price, percent):" in prompt
    assert any(s.startswith("shop/inventory.py:") for s in data["sources"])
    assert any(s.startswith("shop/pricing.py:") for s in data["sources"])
    assert data["code"].startswith("from shop.inventory import Inventory")
    assert data["unknown_symbols"] == []
    assert data["mode_used"] == "conservative" and engine.calls[0].temperature == 0.0
    assert 0.0 < data["confidence"] <= 1.0
    assert "confidence" in text_of(result) and "```python" in text_of(result)


async def test_conservative_mode_flags_calls_to_project_symbols_that_do_not_exist(shop: Path) -> None:
    engine = FakeEngine(HALLUCINATED)
    async with connect(shop, engine) as client:
        result = await client.call_tool("domain_query", {"instruction": "refund an order", "mode": "conservative"})
    data = result.structured_content
    assert data["unknown_symbols"] == ["compute_refund"]
    assert data["retried"] is False and len(engine.calls) == 1
    assert "compute_refund" in text_of(result)


async def test_creative_mode_samples_at_a_higher_temperature(shop: Path) -> None:
    engine = FakeEngine(GOOD)
    async with connect(shop, engine) as client:
        result = await client.call_tool("domain_query", {"instruction": "restock an item", "mode": "creative"})
    assert result.structured_content["mode_used"] == "creative"
    assert engine.calls[0].temperature > 0.5


async def test_auto_mode_retries_conservatively_and_names_the_missing_symbols(shop: Path) -> None:
    def answer(prompt: str, _suffix: str) -> str:
        return GOOD if "do not call them: compute_refund" in prompt else HALLUCINATED

    engine = FakeEngine(answer)
    async with connect(shop, engine) as client:
        result = await client.call_tool("domain_query", {"instruction": "refund an order of the shop"})
    data = result.structured_content
    assert [c.temperature for c in engine.calls] == [0.2, 0.0]
    assert data["mode"] == "auto" and data["mode_used"] == "conservative" and data["retried"] is True
    assert data["attempts"][0]["unknown_symbols"] == ["compute_refund"]
    assert data["unknown_symbols"] == []
    assert data["confidence"] > data["attempts"][0]["confidence"]


async def test_auto_mode_keeps_a_confident_answer_without_retrying(shop: Path) -> None:
    engine = FakeEngine(GOOD)
    async with connect(shop, engine) as client:
        result = await client.call_tool("domain_query", {"instruction": "restock an item"})
    data = result.structured_content
    assert data["retried"] is False and data["mode_used"] == "auto" and len(engine.calls) == 1


async def test_the_edited_file_and_user_context_are_in_the_prompt(shop: Path) -> None:
    engine = FakeEngine(GOOD)
    async with connect(shop, engine) as client:
        await client.call_tool("domain_query", {"instruction": "add a refund function", "file_path": "shop/orders.py",
                                                "context": "REFUND_WINDOW_DAYS = 30"})
    prompt = engine.calls[0].prompt
    assert "The file being edited, `shop/orders.py`" in prompt
    assert "def cancel_order(inventory: Inventory, sku, quantity):" in prompt
    assert "REFUND_WINDOW_DAYS = 30" in prompt


async def test_a_cut_off_answer_reports_a_much_lower_confidence_than_the_same_answer_complete(shop: Path) -> None:
    async with connect(shop, FakeEngine(GOOD)) as client:
        whole = (await client.call_tool("domain_query", {"instruction": "restock an item", "mode": "conservative",
                                                         "max_tokens": 400})).structured_content
        cut_result = await client.call_tool("domain_query", {"instruction": "restock an item",
                                                             "mode": "conservative", "max_tokens": 12})
    cut = cut_result.structured_content
    assert whole["truncated"] is False and whole["confidence"] > 0.8
    assert cut["truncated"] is True and cut["finish_reason"] == "length"
    assert cut["confidence"] <= 0.3 and cut["confidence"] < whole["confidence"] / 2
    assert "hit max_tokens (12)" in text_of(cut_result) and "confidence was lowered" in text_of(cut_result)


async def test_auto_mode_does_not_retry_an_answer_only_because_it_was_cut_off(shop: Path) -> None:
    engine = FakeEngine(GOOD)
    async with connect(shop, engine) as client:
        data = (await client.call_tool("domain_query", {"instruction": "restock an item",
                                                        "max_tokens": 12})).structured_content
    assert len(engine.calls) == 1 and data["retried"] is False
    assert data["truncated"] is True and data["confidence"] <= 0.3


async def test_the_reported_mode_is_always_one_of_the_documented_three(shop: Path) -> None:
    documented = {"auto", "conservative", "creative"}
    for answer in (GOOD, HALLUCINATED):
        for mode in documented:
            async with connect(shop, FakeEngine(answer)) as client:
                data = (await client.call_tool("domain_query", {"instruction": "refund an order",
                                                                "mode": mode})).structured_content
            assert data["mode_used"] in documented, data
            assert {a["mode"] for a in data["attempts"]} <= documented, data


def _squash(text: str) -> str:
    return "".join(text.split()).replace('"""', "")


async def test_every_cited_source_spans_only_lines_that_are_in_the_prompt(shop: Path) -> None:
    engine = FakeEngine(GOOD)
    async with connect(shop, engine) as client:
        data = (await client.call_tool("domain_query", {
            "instruction": "restock with Inventory.add_item, remove_item and apply_discount",
            "mode": "conservative"})).structured_content
    prompt = _squash(engine.calls[0].prompt)
    assert data["sources"]
    for source in data["sources"]:
        path, span = source.rsplit(":", 1)
        start, end = (int(x) for x in span.split("-"))
        lines = (shop / path).read_text().splitlines()[start - 1:end]
        for line in lines:
            assert _squash(line) in prompt, f"{source}: {line!r} is not in the prompt"
    # The definition of a method is shown as its signature and docstring: two lines, not the whole body.
    assert "shop/inventory.py:17-18" in data["sources"]
    assert "shop/inventory.py:17-21" not in data["sources"]
