"""`mochi serve` as a subprocess over stdio, driven by the SDK's client, with the real tiny-model engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.mcp.conftest import BIN, stdio

pytestmark = pytest.mark.slow


def _text(result) -> str:  # noqa: ANN001
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def test_mochi_serve_lists_the_four_tools_and_runs_each_with_the_tiny_model(
        indexed_shop: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("mochi_model.loader", reason="mochi_model.loader.load_engine not available yet")
    args = ["serve", "--project-root", str(indexed_shop), "--model", str(tiny_model_dir), "--timeout", "60"]
    async with stdio(str(BIN / "mochi"), args, cwd=tmp_path, log=tmp_path / "server.log") as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert tools == {"domain_query", "complete_code", "generate_diff", "suggest_pattern"}

        done = await client.call_tool("complete_code", {"prefix": "def add(a, b):\n    return ", "max_tokens": 6,
                                                        "file_path": "shop/math.py"})
        assert not done.is_error, _text(done)
        assert done.structured_content["completion_tokens"] <= 6 and done.structured_content["language"] == "python"

        query = await client.call_tool("domain_query", {"instruction": "restock an Inventory item",
                                                        "mode": "conservative", "max_tokens": 12})
        assert not query.is_error, _text(query)
        assert query.structured_content["mode_used"] == "conservative"
        assert any(s.startswith("shop/inventory.py:") for s in query.structured_content["sources"])
        assert 0.0 <= query.structured_content["confidence"] <= 1.0

        pattern = await client.call_tool("suggest_pattern", {"goal": "raise an error"})
        assert not pattern.is_error, _text(pattern)
        assert pattern.structured_content["patterns"][0]["key"] == "raise ShopError(...)"

        # A random-weight model never writes the closing fence: the rewrite is cut off, regenerated once with
        # twice the tokens, and refused rather than returned as a diff that would delete code.
        diff = await client.call_tool("generate_diff", {"file_path": "shop/pricing.py", "max_tokens": 8,
                                                        "original_code": "    return rates[country]\n",
                                                        "instruction": "return a float"})
        assert diff.is_error and "cut off at 16 tokens" in _text(diff)

        status = json.loads((await client.read_resource("mochi://server/status")).contents[0].text)
        assert status["model"]["state"] == "ready" and status["indexed"] is True
    log = (tmp_path / "server.log").read_text()
    assert "loads on first use" in log and "model loaded" in log and "adapters: none" in log
