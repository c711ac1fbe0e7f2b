"""`mochi serve` follows its adapters: a tool call notices a rewritten adapter and the next ones use it."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import anyio.to_thread
from mcp.client import Client

from mochi_core.config import MochiConfig
from mochi_mcp.server import build_server
from mochi_mcp.workspace import Workspace
from mochi_model.adapter_refresh import AdapterChoice
from mochi_model.adapters.format import WEIGHTS_FILE
from mochi_model.holder import EngineHolder, real_engine_factory
from tests.protocol.mcp.conftest import text_of
from tests.unit.model.helpers import random_adapter, tiny_backend


async def test_a_tool_call_swaps_in_a_rewritten_adapter_without_reloading(bare_shop: Path, tiny_model_dir: Path,
                                                                         tmp_path: Path) -> None:
    shapes = tiny_backend(tiny_model_dir)
    folder = tmp_path / "proj"
    random_adapter(shapes, folder, seed=1)
    config = MochiConfig()
    config.model.path, config.model.backend, config.model.dtype = str(tiny_model_dir), "torch", "float32"
    choice = AdapterChoice(config, bare_shop, specs=((folder, 1.0),))
    swapped = threading.Event()
    holder = EngineHolder(factory=real_engine_factory(config, bare_shop, choice=choice), adapters=choice,
                          adapter_check_s=0.001, on_adapters=lambda level, msg: swapped.set())
    ws = Workspace(bare_shop)
    try:
        async with Client(build_server(ws, holder, timeout_s=30)) as client:
            args = {"prefix": "def add(a, b):\n    return ", "language": "python", "max_tokens": 2}
            first = await client.call_tool("complete_code", args)  # loads the model
            assert not first.is_error, text_of(first)
            engine, stack = holder.get(), holder.get().adapter_stack
            stage = tmp_path / "stage"
            random_adapter(shapes, stage, seed=2, name="proj")
            os.replace(stage / WEIGHTS_FILE, folder / WEIGHTS_FILE)
            second = await client.call_tool("complete_code", args)  # notices it, swaps in the background
            assert not second.is_error, text_of(second)
            assert await anyio.to_thread.run_sync(swapped.wait, 30)
            status = json.loads((await client.read_resource("mochi://server/status")).contents[0].text)
    finally:
        ws.close()
    assert holder.get() is engine and engine.adapter_stack is not stack
    refresh = status["model"]["adapter_refresh"]
    assert refresh["updates"] == 1 and refresh["error"] == "" and status["model"]["adapters"] == ["proj:1"]
