"""The tools on the real Qwen2.5-Coder-0.5B model (in-process server, the shop fixture project)."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest
from mcp.client import Client

from mochi_core.config import load_config
from mochi_mcp.server import build_server
from mochi_mcp.workspace import Workspace
from mochi_model.holder import EngineHolder, real_engine_factory

pytestmark = [pytest.mark.real_model, pytest.mark.slow]


def _text(result) -> str:  # noqa: ANN001
    return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")


async def test_domain_query_and_generate_diff_give_usable_project_code(indexed_shop: Path, real_model_path: Path,
                                                                      tmp_path: Path) -> None:
    config, _ = load_config(indexed_shop)
    config.model.path = str(real_model_path)
    ws = Workspace(indexed_shop, config)
    server = build_server(ws, EngineHolder(factory=real_engine_factory(config, indexed_shop)), timeout_s=600)
    region = ('def cancel_order(inventory: Inventory, sku, quantity):\n    """Put the items back in stock."""\n'
              '    if quantity <= 0:\n        raise ShopError("quantity must be positive")\n')
    async with Client(server, read_timeout_seconds=900) as client:
        query = await client.call_tool("domain_query", {
            "instruction": "write a function restock(inventory, sku, quantity) that adds stock at the current "
                           "price and logs it", "mode": "conservative", "max_tokens": 120})
        diff = await client.call_tool("generate_diff", {
            "file_path": "shop/orders.py", "original_code": region,
            "instruction": "also raise ShopError when quantity is above 100"})
    ws.close()
    assert not query.is_error, _text(query)
    code = query.structured_content["code"]
    ast.parse(code)  # valid Python
    assert "add_item" in code, code  # it used the project's own API, found through the index
    assert not diff.is_error, _text(diff)
    patch = tmp_path / "change.diff"
    patch.write_text(_text(diff))
    subprocess.run(["git", "apply", str(patch)], cwd=indexed_shop, check=True, capture_output=True)
    new = (indexed_shop / "shop/orders.py").read_text()
    ast.parse(new)
    assert "100" in new and 'raise ShopError("quantity must be positive")' in new
