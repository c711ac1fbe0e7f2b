"""The server lists exactly the four tools and three resources, with documented input schemas."""

from __future__ import annotations

from pathlib import Path

from mochi_model.fake import FakeEngine
from tests.protocol.mcp.conftest import connect

TOOLS = {"domain_query", "complete_code", "generate_diff", "suggest_pattern"}


async def test_the_four_tools_are_listed_with_a_described_property_for_every_argument(bare_shop: Path) -> None:
    async with connect(bare_shop, FakeEngine()) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert len(tool.description or "") > 60, tool.name
        props = tool.input_schema["properties"]
        assert props, tool.name
        for name, spec in props.items():
            assert spec.get("description"), f"{tool.name}.{name} has no description"
    assert tools["domain_query"].input_schema["required"] == ["instruction"]
    assert tools["complete_code"].input_schema["required"] == ["prefix"]
    assert tools["generate_diff"].input_schema["required"] == ["instruction"]
    assert tools["domain_query"].input_schema["properties"]["mode"]["enum"] == ["auto", "conservative", "creative"]
    assert "ctx" not in tools["domain_query"].input_schema["properties"]


async def test_resources_for_index_statistics_conventions_and_status_are_listed(bare_shop: Path) -> None:
    async with connect(bare_shop, FakeEngine()) as client:
        uris = {str(r.uri) for r in (await client.list_resources()).resources}
    assert uris == {"mochi://index/stats", "mochi://project/conventions", "mochi://server/status"}
