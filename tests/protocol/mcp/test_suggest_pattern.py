"""suggest_pattern and the resources: the project's own idioms with counts and real locations."""

from __future__ import annotations

import json
from pathlib import Path

import anyio

from mochi_mcp.patterns import example_deadline_s
from mochi_model.fake import FakeEngine
from tests.protocol.mcp.conftest import connect, text_of

EXAMPLE = "```python\nif not ok:\n    raise ShopError('bad order')\n```"


def _line(root: Path, location: str) -> str:
    path, line = location.rsplit(":", 1)
    return (root / path).read_text().splitlines()[int(line) - 1]


async def test_patterns_come_with_counts_and_path_line_examples_that_point_at_the_idiom(shop: Path) -> None:
    engine = FakeEngine(EXAMPLE)
    async with connect(shop, engine) as client:
        result = await client.call_tool("suggest_pattern", {"goal": "raise an error when an order is invalid"})
    assert not result.is_error, text_of(result)
    data = result.structured_content
    raising = [p for p in data["patterns"] if p["kind"] == "error_raise"]
    assert data["matched"] and raising and raising[0]["key"] == "raise ShopError(...)"
    assert raising[0]["count"] >= 3
    for location in raising[0]["examples"]:
        assert "raise ShopError(" in _line(shop, location)
    assert data["example"].strip() == "if not ok:\n    raise ShopError('bad order')"
    assert "raise ShopError(...)" in engine.calls[0].prompt and "count 3" in engine.calls[0].prompt
    assert "shop/pricing.py:16" in text_of(result) or "shop/orders.py:26" in text_of(result)


async def test_a_code_excerpt_finds_the_patterns_it_uses(shop: Path) -> None:
    async with connect(shop, FakeEngine(EXAMPLE)) as client:
        result = await client.call_tool("suggest_pattern", {"code": 'logger.info("placed %s", sku)',
                                                            "file_path": "shop/orders.py", "example": False})
    data = result.structured_content
    assert data["patterns"][0]["key"] == "logger.info(...)"
    assert data["language"] == "python" and data["example"] == ""


async def test_without_an_example_the_model_is_never_loaded(shop: Path) -> None:
    loads: list[int] = []

    def factory(progress):  # noqa: ANN001
        loads.append(1)
        raise OSError("no model here")

    async with connect(shop, factory=factory) as client:
        result = await client.call_tool("suggest_pattern", {"goal": "logging", "example": False})
    assert not result.is_error and result.structured_content["patterns"] and loads == []


async def test_index_statistics_and_conventions_are_readable_as_resources(shop: Path) -> None:
    async with connect(shop, FakeEngine()) as client:
        stats = json.loads((await client.read_resource("mochi://index/stats")).contents[0].text)
        conventions = (await client.read_resource("mochi://project/conventions")).contents[0].text
        status = json.loads((await client.read_resource("mochi://server/status")).contents[0].text)
    assert stats["project"] == "shop" and stats["files"] == 6 and stats["symbols"] >= 10
    assert conventions.startswith("# Conventions of shop")
    assert "`raise ShopError(...)` (python, 3×)" in conventions
    assert "shop/orders.py:26" in conventions
    assert status["indexed"] is True and status["model"]["state"] == "ready"


async def test_an_example_the_model_does_not_finish_in_time_is_skipped_and_the_patterns_still_come(
        shop: Path) -> None:
    # 400 tokens at 50 ms each would take 20 s; the tool's limit is 2 s, so the example gets 1 s.
    slow = FakeEngine("```python\n" + "x = 1\n" * 260 + "```", token_delay_s=0.05)
    with anyio.fail_after(15):
        async with connect(shop, slow, timeout_s=2.0) as client:
            result = await client.call_tool("suggest_pattern", {"goal": "raise an error when an order is invalid"})
    assert not result.is_error, text_of(result)
    data = result.structured_content
    assert any(p["key"] == "raise ShopError(...)" for p in data["patterns"])
    assert data["example"] == "" and "within its 1s deadline" in data["example_skipped"]
    assert "No example: the model did not finish the example within its 1s deadline" in text_of(result)
    assert "raise ShopError(...)" in text_of(result)
    assert slow.calls[0].finish_reason == "time"


async def test_an_example_that_arrives_in_time_is_returned_with_nothing_skipped(shop: Path) -> None:
    async with connect(shop, FakeEngine(EXAMPLE, token_delay_s=0.001), timeout_s=30.0) as client:
        result = await client.call_tool("suggest_pattern", {"goal": "raise an error when an order is invalid"})
    data = result.structured_content
    assert data["example"].startswith("if not ok:") and data["example_skipped"] == ""


async def test_a_model_that_cannot_load_costs_only_the_example(shop: Path) -> None:
    def factory(progress):  # noqa: ANN001
        raise OSError("model file /nowhere/model.gguf not found")

    async with connect(shop, factory=factory) as client:
        result = await client.call_tool("suggest_pattern", {"goal": "logging"})
    assert not result.is_error, text_of(result)
    data = result.structured_content
    assert data["patterns"] and data["example"] == ""
    assert "the model failed to load" in data["example_skipped"] and "/nowhere/model.gguf" in data["example_skipped"]


def test_the_example_deadline_stays_well_inside_the_tools_time_limit() -> None:
    assert example_deadline_s(120.0) == 30.0
    assert example_deadline_s(20.0) == 10.0
    assert example_deadline_s(0.05) < 0.05
