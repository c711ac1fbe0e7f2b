"""JSON-RPC errors on the wire: `mochi lsp` over stdio, driven with raw bytes (no LSP client library).

A request without a method gets InvalidRequest (-32600) with its id; malformed JSON gets a parse
error (-32700, id null); after `shutdown`, requests other than `exit` get InvalidRequest. The server
keeps serving after each, and `exit` after `shutdown` ends it with code 0.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.lsp.harness import TIMEOUT_S, server_command

INVALID_REQUEST, PARSE_ERROR = -32600, -32700


class RawClient:
    """Frames bytes with Content-Length and reads the server's messages one by one."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    def send_bytes(self, body: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def send(self, message: dict[str, Any]) -> None:
        self.send_bytes(json.dumps(message).encode())

    async def _message(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        length = 0
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                raise AssertionError("the server closed stdout")
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
            elif line in (b"\r\n", b"\n") and length:
                return json.loads(await self.proc.stdout.readexactly(length))

    async def response(self, msg_id: Any) -> dict[str, Any]:
        """The next response whose id is ``msg_id`` (notifications and other messages are skipped)."""

        async def scan() -> dict[str, Any]:
            while True:
                message = await self._message()
                if "method" not in message and message.get("id", "missing") == msg_id:
                    return message

        return await asyncio.wait_for(scan(), TIMEOUT_S)

    async def request(self, msg_id: Any, method: str, params: Any = None) -> dict[str, Any]:
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return await self.response(msg_id)


@asynccontextmanager
async def raw_server(root: Path) -> AsyncIterator[RawClient]:
    cmd = server_command({"answer": "return a + b"})
    proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.DEVNULL, limit=2**24)
    client = RawClient(proc)
    try:
        init = await client.request(1, "initialize", {
            "processId": None, "rootUri": root.as_uri(), "capabilities": {},
            "initializationOptions": {"completion": {"debounce_ms": 0}, "server": {"index_on_start": False}}})
        assert "result" in init, init
        client.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        yield client
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def _still_serving(client: RawClient, msg_id: int) -> None:
    status = await client.request(msg_id, "workspace/executeCommand", {"command": "mochi.status", "arguments": []})
    assert "result" in status and status["result"]["config"], status


@pytest.fixture
def project(fixture_project):
    return fixture_project("lsp/project")


async def test_a_request_without_a_method_gets_invalid_request_with_its_id(project: Path) -> None:
    async with raw_server(project) as client:
        client.send({"jsonrpc": "2.0", "id": 7, "params": {}})
        answer = await client.response(7)
        assert answer["error"]["code"] == INVALID_REQUEST, answer
        await _still_serving(client, 8)


@pytest.mark.parametrize("body", [b'{"jsonrpc": "2.0", "id": 3, "method": "shutdown"', b"\xff\xfe not json",
                                  b"[" * 100_000], ids=["cut-off", "not-utf8", "nested-too-deep"])
async def test_malformed_json_gets_a_parse_error_with_a_null_id(project: Path, body: bytes) -> None:
    async with raw_server(project) as client:
        client.send_bytes(body)
        answer = await client.response(None)
        assert answer["error"]["code"] == PARSE_ERROR and answer["id"] is None, answer
        await _still_serving(client, 4)


async def test_a_json_value_that_is_not_a_message_gets_invalid_request(project: Path) -> None:
    async with raw_server(project) as client:
        client.send_bytes(b"[1, 2, 3]")
        answer = await client.response(None)
        assert answer["error"]["code"] == INVALID_REQUEST, answer
        client.send({"id": 5, "method": "workspace/executeCommand"})  # no "jsonrpc": "2.0"
        answer = await client.response(5)
        assert answer["error"]["code"] == INVALID_REQUEST, answer
        await _still_serving(client, 6)


async def test_requests_after_shutdown_get_invalid_request_and_exit_ends_the_server(project: Path) -> None:
    async with raw_server(project) as client:
        assert (await client.request(2, "shutdown"))["result"] is None
        after = await client.request(3, "workspace/executeCommand", {"command": "mochi.status", "arguments": []})
        assert after["error"]["code"] == INVALID_REQUEST and "shut" in after["error"]["message"], after
        again = await client.request(4, "shutdown")
        assert again["error"]["code"] == INVALID_REQUEST, again
        client.send({"jsonrpc": "2.0", "method": "exit"})
        assert await asyncio.wait_for(client.proc.wait(), TIMEOUT_S) == 0


