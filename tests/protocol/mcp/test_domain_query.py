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
    assert data["retried"] is False and data["mode_used"] == "balanced" and len(engine.calls) == 1


async def test_the_edited_file_and_user_context_are_in_the_prompt(shop: Path) -> None:
    engine = FakeEngine(GOOD)
    async with connect(shop, engine) as client:
        await client.call_tool("domain_query", {"instruction": "add a refund function", "file_path": "shop/orders.py",
                                                "context": "REFUND_WINDOW_DAYS = 30"})
    prompt = engine.calls[0].prompt
    assert "The file being edited, `shop/orders.py`" in prompt
    assert "def cancel_order(inventory: Inventory, sku, quantity):" in prompt
    assert "REFUND_WINDOW_DAYS = 30" in prompt
