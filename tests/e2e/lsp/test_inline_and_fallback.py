"""End to end over stdio: what each editor is offered, and completions at the cursor."""

from __future__ import annotations

import json

import pytest
from lsprotocol import types

from tests.e2e.lsp.harness import CLIENTS, inline, open_doc, running_server, status, type_text

DOC = 'def add(a, b):\n    """Add two numbers."""\n    \n'


@pytest.fixture
def project(fixture_project):
    return fixture_project("lsp/project")


@pytest.mark.parametrize("client", CLIENTS)
async def test_inline_completion_is_advertised_alone_and_returns_the_suggestion_at_the_cursor(project, client):
    async with running_server(project, client=client, inline=True) as lsp:
        caps = lsp.init_result.capabilities
        assert caps.inline_completion_provider is not None
        assert caps.completion_provider is None
        uri = open_doc(lsp, project / "pkg" / "new.py", DOC)
        res = await lsp.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=2, character=4),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
        item = res.items[0]
        assert item.insert_text == "return a + b"
        assert item.range.start == types.Position(line=2, character=4) == item.range.end
        assert item.command.command == "mochi.accept" and isinstance(item.command.arguments[0], str)


@pytest.mark.parametrize("client", CLIENTS)
async def test_completion_fallback_is_used_when_the_client_lacks_inline_completion(project, client):
    async with running_server(project, client=client, inline=False) as lsp:
        caps = lsp.init_result.capabilities
        assert caps.inline_completion_provider is None
        assert caps.completion_provider is not None
        uri = open_doc(lsp, project / "pkg" / "new.py", DOC)
        type_text(lsp, uri, 2, 2, 4, "ret")
        res = await lsp.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=2, character=7)))
        item = res.items[0]
        # The edit replaces the word being typed so clients that filter by it keep the item.
        assert item.text_edit.range == types.Range(start=types.Position(line=2, character=4),
                                                   end=types.Position(line=2, character=7))
        assert item.text_edit.new_text == "ret" + "return a + b"
        assert item.filter_text.startswith("ret")
        assert item.command.command == "mochi.accept"


@pytest.mark.parametrize("client", CLIENTS)
async def test_accepting_a_suggestion_is_recorded_in_the_project_usage_log(project, client):
    async with running_server(project, client=client) as lsp:
        uri = open_doc(lsp, project / "pkg" / "new.py", DOC)
        res = await lsp.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=2, character=4),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)))
        sid = res.items[0].command.arguments[0]
        ok = await lsp.workspace_execute_command_async(types.ExecuteCommandParams(command="mochi.accept", arguments=[sid]))
        assert ok is True
    lines = [json.loads(x) for x in (project / ".mochi" / "usage" / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in lines] == ["shown", "accepted"]
    assert lines[1]["id"] == sid and lines[1]["text"] == "return a + b"
    assert lines[1]["language"] == "python" and lines[1]["path"] == "pkg/new.py"
    assert lines[1]["prefix"].endswith('"""Add two numbers."""\n    ')


async def test_typing_the_start_of_a_suggestion_is_served_from_the_cache(project):
    async with running_server(project) as lsp:
        uri = open_doc(lsp, project / "pkg" / "new.py", DOC)
        assert await inline(lsp, uri, 2, 4) == "return a + b"
        for i, ch in enumerate("retu"):
            type_text(lsp, uri, 2 + i, 2, 4 + i, ch)
            assert await inline(lsp, uri, 2, 5 + i) == "return a + b"[i + 1 :]
        st = await status(lsp)
        assert st["generated"] == 1 and st["cache_hits"] == 4
        # Typing something else is a miss: a new generation, and the old suggestion counts as rejected.
        type_text(lsp, uri, 7, 2, 8, "X")
        assert await inline(lsp, uri, 2, 9) == "return a + b"
        assert (await status(lsp))["generated"] == 2
    events = [json.loads(x)["event"] for x in (project / ".mochi" / "usage" / "events.jsonl").read_text().splitlines()]
    assert events == ["shown", "rejected", "shown"]

