"""End to end: `$/cancelRequest` and superseding stop generation mid-way (slow fake engine)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.e2e.lsp.harness import (
    CLIENTS,
    TIMEOUT_S,
    inline,
    open_doc,
    running_server,
    status,
    type_text,
    wait_status,
)

DOC = "def add(a, b):\n    \n"
TOKEN_S = 0.025
ANSWER = "x = 1  # " + "y" * 320  # ~82 four-character tokens: ~2 s when generated in full
FULL_S = len(ANSWER) / 4 * TOKEN_S


@pytest.fixture
def project(fixture_project):
    return fixture_project("lsp/project")


def _params(uri: str, line: int, character: int) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))


@pytest.mark.parametrize("client", CLIENTS)
async def test_cancel_request_stops_the_generation_within_a_token(project, client):
    spec = {"answer": ANSWER, "delay": TOKEN_S}
    options = {"completion": {"debounce_ms": 0, "max_tokens": 200, "time_budget_ms": 20000}, "server": {"index_on_start": False}}
    async with running_server(project, client=client, spec=spec, options=options) as lsp:
        uri = open_doc(lsp, project / "pkg" / "new.py", DOC)
        msg_id = str(uuid.uuid4())
        t0 = time.perf_counter()
        first = asyncio.ensure_future(
            lsp.protocol.send_request_async(types.TEXT_DOCUMENT_INLINE_COMPLETION, _params(uri, 1, 4), msg_id=msg_id))
        # The server answers `mochi.status` on the event loop while the worker decodes.
        await wait_status(lsp, "requests", 1)
        lsp.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
        with pytest.raises(JsonRpcException):
            await asyncio.wait_for(first, TIMEOUT_S)
        # One generation at a time: this one can only run once the cancelled one has stopped.
        assert await inline(lsp, uri, 1, 4) == ANSWER
        st = await status(lsp)
        elapsed = time.perf_counter() - t0
    assert st["cancelled"] == 1 and st["cancelled_generations"] == 1 and st["generated"] == 1
    assert elapsed < 2 * FULL_S - 0.5, f"cancelled work ran to the end ({elapsed:.2f}s)"


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_newer_request_for_the_same_document_supersedes_the_older_one(project, client):
    spec = {"answer": ANSWER, "delay": TOKEN_S}
    options = {"completion": {"debounce_ms": 0, "max_tokens": 200, "time_budget_ms": 20000}, "server": {"index_on_start": False}}
    async with running_server(project, client=client, spec=spec, options=options) as lsp:
        uri = open_doc(lsp, project / "pkg" / "new.py", DOC)
        t0 = time.perf_counter()
        older = asyncio.ensure_future(inline(lsp, uri, 1, 4))
        await wait_status(lsp, "requests", 1)
        type_text(lsp, uri, 2, 1, 4, "z")
        newer = await inline(lsp, uri, 1, 5)
        assert await older is None
        st = await status(lsp)
        elapsed = time.perf_counter() - t0
    assert newer == ANSWER
    assert st["superseded"] == 1 and st["cancelled_generations"] == 1
    assert elapsed < 2 * FULL_S - 0.5


async def test_debounce_lets_only_the_last_of_a_burst_of_requests_reach_the_engine(project):
    options = {"completion": {"debounce_ms": 300}, "server": {"index_on_start": False}}
    async with running_server(project, options=options) as lsp:
        uri = open_doc(lsp, project / "pkg" / "new.py", DOC)
        burst = []
        for i, ch in enumerate("abcd"):
            type_text(lsp, uri, 2 + i, 1, 4 + i, ch)
            burst.append(asyncio.ensure_future(inline(lsp, uri, 1, 5 + i)))
        results = await asyncio.gather(*burst)
        st = await status(lsp)
    assert results[:3] == [None, None, None] and results[3] == "return a + b"
    assert st["debounced"] == 3 and st["generated"] == 1 and st["cancelled_generations"] == 0
