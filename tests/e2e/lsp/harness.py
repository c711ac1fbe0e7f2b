"""Start `mochi lsp` as a subprocess with a fake engine and drive it with pytest-lsp's client."""

from __future__ import annotations

import asyncio
import json
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

CLIENTS = ["neovim", "visual_studio_code"]
TIMEOUT_S = 20.0


def capabilities(client: str, *, inline: bool) -> types.ClientCapabilities:
    """The recorded capabilities of ``client``; ``inline`` adds LSP 3.18 inline completion, as
    VS Code (languageclient 9+) and Neovim 0.12 send."""
    caps = client_capabilities(client)
    if inline:
        assert caps.text_document is not None
        caps.text_document.inline_completion = types.InlineCompletionClientCapabilities()
    return caps


def _client() -> LanguageClient:
    lsp = make_test_lsp_client()
    lsp.status_updates = []  # type: ignore[attr-defined]
    lsp.feature("mochi/status")(lambda ls, params: ls.status_updates.append(params))
    return lsp


def python_server(module: str, function: str = "serve") -> list[str]:
    """A server process running ``module.function()`` from this repository (a test's own fake engine)."""
    repo = Path(__file__).resolve().parents[3]
    return [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(repo)!r}); "
            f"from {module} import {function}; {function}()"]


def server_command(spec: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", "mochi_cli.app", "lsp", "--stdio", "--fake-engine", json.dumps(spec)]


@asynccontextmanager
async def running_server(root: Path, *, client: str = "neovim", inline: bool = True,
                         spec: dict[str, Any] | None = None, options: Any = None, command: list[str] | None = None):
    """A started and initialized server; shut down cleanly on exit.

    ``command`` runs another server process (e.g. ``create_server`` with a test's own fake engine)
    instead of ``mochi lsp --fake-engine SPEC``.
    """
    spec = spec if spec is not None else {"answer": "return a + b"}
    if options is None:
        options = {"completion": {"debounce_ms": 0}, "server": {"index_on_start": False}}
    config = ClientServerConfig(server_command=command or server_command(spec), client_factory=_client)
    lsp: LanguageClient = await config.start()  # type: ignore[assignment]
    try:
        caps = capabilities(client, inline=inline)
        result = await asyncio.wait_for(lsp.initialize_session(types.InitializeParams(
            capabilities=caps, root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
            initialization_options=options)), TIMEOUT_S)
        lsp.init_result = result  # type: ignore[attr-defined]
        yield lsp
        await asyncio.wait_for(lsp.shutdown_session(), TIMEOUT_S)
    finally:
        await stop_client(lsp)


async def stop_client(lsp: LanguageClient) -> None:
    """Stop the client; kill a server still running, so a failed test never leaves it (and `stop`) hanging."""
    proc = lsp._server
    if proc is not None and proc.returncode is None:
        proc.kill()
    await lsp.stop()


def open_doc(lsp: LanguageClient, path: Path, text: str, language: str = "python", version: int = 1) -> str:
    uri = path.as_uri()
    lsp.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)))
    return uri


def type_text(lsp: LanguageClient, uri: str, version: int, line: int, character: int, text: str) -> None:
    """One keystroke (or paste) as an incremental change at (line, character)."""
    pos = types.Position(line=line, character=character)
    lsp.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=pos, end=pos), text=text)]))


async def inline(lsp: LanguageClient, uri: str, line: int, character: int) -> str | None:
    """Text of the first inline suggestion (None when the server returned nothing)."""
    res = await asyncio.wait_for(lsp.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))), TIMEOUT_S)
    if res is None:
        return None
    items = res.items if isinstance(res, types.InlineCompletionList) else res
    if not items:
        return None
    text = items[0].insert_text
    return text if isinstance(text, str) else text.value


async def status(lsp: LanguageClient) -> dict[str, Any]:
    return await asyncio.wait_for(lsp.workspace_execute_command_async(
        types.ExecuteCommandParams(command="mochi.status", arguments=[])), TIMEOUT_S)


async def wait_status(lsp: LanguageClient, key: str, at_least: int, attempts: int = 2000) -> dict[str, Any]:
    """Ask `mochi.status` until ``key`` reaches ``at_least`` (each try is a round trip, no sleeps)."""
    return await wait_until(lsp, lambda st: st[key] >= at_least, attempts)


async def wait_until(lsp: LanguageClient, predicate: Any, attempts: int = 2000) -> dict[str, Any]:
    """Ask `mochi.status` until ``predicate(status)`` holds, waiting on the server's own answers.

    Each try is a request round trip that the server answers when its event loop gets to it, so
    this never sleeps; the total wait is bounded by ``attempts`` round trips (and TIMEOUT_S each).
    """
    st: dict[str, Any] = {}
    for _ in range(attempts):
        st = await status(lsp)
        if predicate(st):
            return st
    raise AssertionError(f"status never satisfied the condition: {st}")


async def raw_request(lsp: LanguageClient, method: str, params: Any) -> Any:
    """Send a request whose params are not the typed ones (malformed input, as a buggy client would)."""
    import uuid
    from concurrent.futures import Future

    from pygls.protocol.json_rpc import JsonRPCRequestMessage

    msg_id = str(uuid.uuid4())
    fut: Future[Any] = Future()
    lsp.protocol._request_futures[msg_id] = fut
    lsp.protocol._result_types[msg_id] = None
    lsp.protocol._send_data(JsonRPCRequestMessage(id=msg_id, method=method, params=params, jsonrpc="2.0"))
    return await asyncio.wait_for(asyncio.wrap_future(fut), TIMEOUT_S)


def _next(lsp: LanguageClient, method: str) -> asyncio.Future[Any]:
    """A future for the next ``method`` notification, registered now (not when first awaited)."""
    return asyncio.wrap_future(lsp.protocol.wait_for_notification(method))


async def wait_for_log(lsp: LanguageClient, needle: str, count: int = 1, timeout_s: float = 60.0) -> str:
    """Wait until ``count`` `window/logMessage`s containing ``needle`` arrived (earlier ones count)."""
    return await _wait_for_message(lsp, types.WINDOW_LOG_MESSAGE, lambda: lsp.log_messages, needle, count, timeout_s)


async def wait_for_shown(lsp: LanguageClient, needle: str, count: int = 1, timeout_s: float = 60.0) -> Any:
    """Wait until ``count`` `window/showMessage`s containing ``needle`` arrived; returns the last."""
    return await _wait_for_message(lsp, types.WINDOW_SHOW_MESSAGE, lambda: lsp.messages, needle, count, timeout_s)


async def _wait_for_message(lsp: LanguageClient, method: str, seen: Any, needle: str, count: int,
                            timeout_s: float) -> Any:
    async def scan() -> Any:
        while True:
            arrived = _next(lsp, method)  # registered before looking: no lost wake-up
            hits = [m for m in seen() if needle in m.message]
            if len(hits) >= count:
                return hits[count - 1] if method == types.WINDOW_SHOW_MESSAGE else hits[count - 1].message
            await arrived

    return await asyncio.wait_for(scan(), timeout_s)


async def wait_for_progress_end(lsp: LanguageClient, timeout_s: float = 90.0) -> list[Any]:
    """Wait until a work-done progress has ended; returns its reports (begin … end)."""

    async def scan() -> list[Any]:
        while True:
            arrived = _next(lsp, types.PROGRESS)
            for reports in lsp.progress_reports.values():
                if reports and isinstance(reports[-1], types.WorkDoneProgressEnd):
                    return reports
            await arrived

    return await asyncio.wait_for(scan(), timeout_s)


async def wait_for_engine(lsp: LanguageClient, timeout_s: float = 120.0) -> dict[str, Any]:
    """Wait (on the server's `mochi/status` notifications) until the model loaded or failed."""

    async def scan() -> dict[str, Any]:
        while True:
            arrived = _next(lsp, "mochi/status")
            st = await status(lsp)
            if st["engine"] in ("ready", "failed"):
                return st
            await arrived

    return await asyncio.wait_for(scan(), timeout_s)
