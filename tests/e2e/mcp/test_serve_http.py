"""`mochi serve --http HOST:PORT` serves the same tools over streamable HTTP at /mcp."""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import threading
from pathlib import Path

from mcp.client import Client

from tests.e2e.mcp.conftest import BIN, server_env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_http_mode_lists_the_tools_and_answers_from_the_project(indexed_shop: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen([str(BIN / "mochi"), "serve", "--http", f"127.0.0.1:{port}", "--project-root",
                             str(indexed_shop)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=server_env())
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()
    seen = []
    try:
        while not any("Uvicorn running on" in line for line in seen):  # uvicorn says so once the port is bound
            seen.append(lines.get(timeout=60))
        async with Client(f"http://127.0.0.1:{port}/mcp", read_timeout_seconds=60) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            status = json.loads((await client.read_resource("mochi://server/status")).contents[0].text)
            result = await client.call_tool("suggest_pattern", {"goal": "raise an error", "example": False})
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert tools == {"domain_query", "complete_code", "generate_diff", "suggest_pattern"}
    assert status["root"] == str(indexed_shop.resolve())
    assert result.structured_content["patterns"][0]["key"] == "raise ShopError(...)"
    assert any(f"http://127.0.0.1:{port}/mcp" in line for line in seen)
