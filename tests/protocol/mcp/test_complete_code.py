"""complete_code uses the LSP's prompt assembly (build_fim_request) and the engine's FIM path."""

from __future__ import annotations

from pathlib import Path

from mochi_core.config import load_config
from mochi_index import ProjectIndex
from mochi_model.context import build_fim_request
from mochi_model.fake import FakeEngine
from tests.protocol.mcp.conftest import connect, text_of

PREFIX = "from shop.inventory import Inventory\nfrom shop.pricing import apply_discount\n\n\ndef restock(inv: Inventory, sku):\n    "
SUFFIX = "\n    return inv\n"


async def test_the_fim_request_is_exactly_what_the_editor_path_builds(shop: Path) -> None:
    engine = FakeEngine("inv.add_item(sku, 1, apply_discount(9.0, 5))")
    async with connect(shop, engine) as client:
        result = await client.call_tool("complete_code", {"prefix": PREFIX, "suffix": SUFFIX,
                                                          "file_path": "shop/restock.py"})
    assert not result.is_error, text_of(result)
    assert text_of(result) == "inv.add_item(sku, 1, apply_discount(9.0, 5))"
    call = engine.calls[0]
    idx = ProjectIndex.open(shop, create=False)
    try:
        expected = build_fim_request(PREFIX + SUFFIX, len(PREFIX), path="shop/restock.py", language="python",
                                     index=idx, config=load_config(shop)[0].completion,
                                     count_tokens=engine.count_tokens)
    finally:
        idx.close()
    assert (call.kind, call.prefix, call.suffix) == ("fim", expected.prefix, expected.suffix)
    assert call.snippets == expected.snippets and call.snippets, "index definitions reach the prompt"
    data = result.structured_content
    assert data["language"] == "python" and data["indexed"] is True and data["path"] == "shop/restock.py"


async def test_max_tokens_is_passed_to_the_engine_and_limits_the_answer(shop: Path) -> None:
    engine = FakeEngine("x" * 400)
    async with connect(shop, engine) as client:
        result = await client.call_tool("complete_code", {"prefix": "def f():\n    return ", "max_tokens": 3})
    assert engine.calls[0].max_tokens == 3
    assert result.structured_content["finish_reason"] == "length" and len(text_of(result)) == 12


async def test_completion_works_without_an_index_from_the_windows_alone(bare_shop: Path) -> None:
    engine = FakeEngine("a + b")
    async with connect(bare_shop, engine) as client:
        result = await client.call_tool("complete_code", {"prefix": "def add(a, b):\n    return ", "language": "python"})
    assert text_of(result) == "a + b" and result.structured_content["indexed"] is False
    assert engine.calls[0].snippets == []
