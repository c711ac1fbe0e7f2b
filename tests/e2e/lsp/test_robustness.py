"""End to end: bad input never takes the server down; settings changes apply or are reported."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.e2e.lsp.harness import (
    CLIENTS,
    TIMEOUT_S,
    inline,
    open_doc,
    raw_request,
    running_server,
    status,
    wait_for_log,
    wait_for_shown,
)

DOC = "def add(a, b):\n    \n"
NO_INDEX = {"server": {"index_on_start": False}}


@pytest.fixture
def project(fixture_project):
    return fixture_project("lsp/project")


def _messages(lsp, kind: str) -> list[str]:
    return [m.message for m in (lsp.messages if kind == "show" else lsp.log_messages)]


@pytest.mark.parametrize("client", CLIENTS)
async def test_bad_params_get_an_error_or_empty_result_and_the_server_keeps_serving(project, client):
    async with running_server(project, client=client) as lsp:
        uri = open_doc(lsp, project / "pkg" / "new.py", DOC)
        # A document the client never opened.
        assert await inline(lsp, (project / "nowhere.py").as_uri(), 0, 0) is None
        assert any("not open" in m for m in _messages(lsp, "log"))
        # Positions outside the document.
        assert await inline(lsp, uri, 99, 0) is None
        assert any("outside" in m for m in _messages(lsp, "log"))
        # A position past the end of a line is clamped to the line's end, like editors do.
        assert await inline(lsp, uri, 1, 400) == "return a + b"
        # Params that are not an inline-completion request at all.
        with pytest.raises(JsonRpcException):
            await raw_request(lsp, types.TEXT_DOCUMENT_INLINE_COMPLETION, {"textDocument": 5, "position": "here"})
        with pytest.raises(JsonRpcException):
            await raw_request(lsp, types.TEXT_DOCUMENT_INLINE_COMPLETION, None)
        # An unknown command.
        with pytest.raises(JsonRpcException):
            await asyncio.wait_for(lsp.workspace_execute_command_async(
                types.ExecuteCommandParams(command="mochi.nope", arguments=[])), TIMEOUT_S)
        # mochi.accept with junk arguments is a no-op.
        assert await lsp.workspace_execute_command_async(
            types.ExecuteCommandParams(command="mochi.accept", arguments=[{"x": 1}, 3])) is False
        # Still serving.
        assert await inline(lsp, uri, 1, 4) == "return a + b"


async def test_binary_and_huge_documents_get_no_completion_and_a_log_message(project):
    async with running_server(project) as lsp:
        bin_uri = open_doc(lsp, project / "blob.py", "abc\x00def\n")
        assert await inline(lsp, bin_uri, 0, 3) is None
        huge_uri = open_doc(lsp, project / "huge.py", ("x = 1\n" * 400_000))
        assert await inline(lsp, huge_uri, 10, 0) is None
        logs = _messages(lsp, "log")
        assert any("binary document" in m for m in logs) and any("too large" in m for m in logs)
        st = await status(lsp)
        assert st["generated"] == 0


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_model_that_fails_to_load_gives_empty_results_and_a_message(project, client):
    spec = {"fail_load": "weights file is corrupt"}
    async with running_server(project, client=client, spec=spec) as lsp:
        uri = open_doc(lsp, project / "pkg" / "new.py", DOC)
        shown = await wait_for_shown(lsp, "weights file is corrupt")
        assert shown.type == types.MessageType.Error
        assert await inline(lsp, uri, 1, 4) is None
        assert (await status(lsp))["engine"] == "failed"


@pytest.mark.parametrize("client", CLIENTS)
async def test_invalid_initialization_options_are_reported_and_defaults_used(project, client):
    options = {"mochi": {"completion": {"maxTokens": "lots", "debounceMs": 0}, "server": {"indexOnStart": False}}}
    async with running_server(project, client=client, options=options) as lsp:
        shown = await wait_for_shown(lsp, "completion.max_tokens")
        assert shown.type == types.MessageType.Warning
        st = await status(lsp)
        assert st["config"]["max_tokens"] == 64 and st["config"]["debounce_ms"] == 0


@pytest.mark.parametrize("client", CLIENTS)
async def test_configuration_changes_apply_to_the_next_completion(project, client):
    async with running_server(project, client=client) as lsp:
        uri = open_doc(lsp, project / "pkg" / "new.py", DOC)
        assert await inline(lsp, uri, 1, 4) == "return a + b"
        lsp.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"mochi": {"completion": {"maxTokens": 2, "debounceMs": 0}, "server": {"indexOnStart": False}}}))
        await wait_for_log(lsp, "settings applied", count=1)
        # Two ~4-character tokens; the cache was cleared, so this is a fresh generation.
        assert await inline(lsp, uri, 1, 4) == "return a"
        lsp.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"mochi": {"server": {"enabledLanguages": ["go"]}, "completion": {"debounceMs": 0}}}))
        await wait_for_log(lsp, "settings applied", count=2)
        assert await inline(lsp, uri, 1, 4) is None  # python is no longer enabled
        lsp.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"mochi": {"completion": {"multiline": "sometimes"}}}))
        await wait_for_shown(lsp, "completion.multiline")
        assert (await status(lsp))["config"]["multiline"] == "auto"


async def test_an_empty_configuration_change_pulls_the_settings_from_the_client(project):
    async with running_server(project, client="visual_studio_code") as lsp:
        uri = open_doc(lsp, project / "pkg" / "new.py", DOC)
        lsp.set_configuration({"completion": {"maxTokens": 2, "debounceMs": 0}, "server": {"indexOnStart": False}},
                              section="mochi")
        lsp.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        await wait_for_log(lsp, "settings applied")
        assert (await status(lsp))["config"]["max_tokens"] == 2
        assert await inline(lsp, uri, 1, 4) == "return a"


async def _inline_item(lsp, uri: str, line: int, character: int) -> types.InlineCompletionItem:
    res = await asyncio.wait_for(lsp.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked))), TIMEOUT_S)
    assert res is not None and res.items, res
    return res.items[0]


def _at(line: int, character: int) -> types.Range:
    return types.Range(start=types.Position(line=line, character=character),
                       end=types.Position(line=line, character=character))


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_position_past_the_end_of_a_line_is_answered_at_the_line_end(project, client):
    async with running_server(project, client=client) as lsp:
        uri = open_doc(lsp, project / "pkg" / "new.py", "def add(a, b):\n    \nx = 1")
        item = await _inline_item(lsp, uri, 1, 400)
        assert item.range == _at(1, 4)
        last = await _inline_item(lsp, uri, 2, 99)  # a last line without a newline
        assert last.range == _at(2, 5)


async def test_a_completion_past_the_end_of_a_line_edits_up_to_the_line_end(project):
    async with running_server(project, client="neovim", inline=False) as lsp:
        uri = open_doc(lsp, project / "pkg" / "new.py", "def add(a, b):\n    ret\n")
        res = await asyncio.wait_for(lsp.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=1, character=80))),
            TIMEOUT_S)
        (item,) = res.items
        assert item.text_edit.range == types.Range(start=types.Position(line=1, character=4),
                                                   end=types.Position(line=1, character=7))
