"""`mochi lsp --tcp HOST:PORT`: the same server on a socket."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from tests.e2e.lsp.harness import TIMEOUT_S


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _wait_listening(proc: subprocess.Popen) -> None:
    """Read the server's log (``mochi -v``) until pygls says it is serving; bounded by TIMEOUT_S."""

    def scan() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "Serving on" in line:
                # Keep draining the (INFO-level) log so the server never blocks on a full pipe.
                threading.Thread(target=proc.stderr.read, daemon=True).start()
                return
        raise AssertionError("server exited before listening")

    await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, scan), TIMEOUT_S)


async def test_the_server_answers_over_tcp(fixture_project):
    project = fixture_project("lsp/project")
    port = _free_port()
    cmd = [sys.executable, "-m", "mochi_cli.app", "-v", "lsp", "--tcp", f"127.0.0.1:{port}", "--project", str(project),
           "--fake-engine", json.dumps({"answer": "return a + b"})]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    client = LanguageClient("tcp-test", "1")
    try:
        await _wait_listening(proc)
        await client.start_tcp("127.0.0.1", port)
        caps = types.ClientCapabilities(text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities()))
        result = await asyncio.wait_for(client.initialize_async(types.InitializeParams(
            capabilities=caps, initialization_options={"server": {"index_on_start": False}})), TIMEOUT_S)
        assert result.capabilities.inline_completion_provider is not None
        client.initialized(types.InitializedParams())
        uri = (project / "pkg" / "new.py").as_uri()
        client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=uri, language_id="python", version=1, text="def add(a, b):\n    \n")))
        res = await asyncio.wait_for(client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=1, character=4),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked))), TIMEOUT_S)
        assert res.items[0].insert_text == "return a + b"
        await asyncio.wait_for(client.shutdown_async(None), TIMEOUT_S)
        client.exit(None)
    finally:
        await client.stop()
        proc.kill()
        proc.wait(10)
