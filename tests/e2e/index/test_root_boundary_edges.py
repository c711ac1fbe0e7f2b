"""The root boundary as the LSP and MCP see it: code behind links out of the project never reaches them.

The LSP runs as a subprocess with the context-echo fake engine (its answer lists the prompt's
snippets); MCP tools run in process against the SDK's in-memory client with a recording engine.
"""

from __future__ import annotations

import json
from pathlib import Path

from lsprotocol import types

from mochi_index import ProjectIndex
from mochi_model.fake import FakeEngine
from tests.e2e.lsp.harness import inline, open_doc, running_server, status, type_text, wait_for_progress_end
from tests.protocol.mcp.conftest import connect, text_of
from tests.unit.index.test_root_boundary import PAYLOAD, SENTINEL, all_rows_text, make_linked_project

ECHO = {"echo_context": True}
OPTIONS = {"completion": {"debounce_ms": 0, "max_tokens": 2000, "time_budget_ms": 20000}}  # echo answers are long


async def test_the_lsp_prompt_never_carries_outside_code_and_outside_documents_get_no_project_context(
        tmp_path: Path) -> None:
    root = make_linked_project(tmp_path)
    async with running_server(root, spec=ECHO, options=OPTIONS) as lsp:
        await wait_for_progress_end(lsp)
        text = f"from app.linked import {SENTINEL}\nfrom app.real import inside_only\n\nx = {SENTINEL}(inside_only("
        uri = open_doc(lsp, root / "app" / "use.py", text)
        ctx = await inline(lsp, uri, 3, len(text.splitlines()[3]))
        assert ctx is not None and "definition:app/real.py: def inside_only(x):" in ctx  # retrieval works
        assert SENTINEL not in ctx and PAYLOAD not in ctx and "linked" not in ctx
        # Documents whose real path is outside (opened directly or through a link) get no project context.
        for path in (tmp_path / "outside" / "secret.py", root / "app" / "linked.py"):
            outside_uri = open_doc(lsp, path, "y = inside_only(")
            answer = await inline(lsp, outside_uri, 0, 16)
            assert answer is not None and "definition:" not in answer, answer
            lsp.text_document_did_save(types.DidSaveTextDocumentParams(
                text_document=types.TextDocumentIdentifier(uri=outside_uri), text=f"def {SENTINEL}_saved():\n"))
        assert (await status(lsp))["index"]["saves"] == 0
        # An edit in an outside document is never a "recent edit" shown in a project file's prompt.
        secret_uri = (tmp_path / "outside" / "secret.py").as_uri()
        type_text(lsp, secret_uri, 2, 0, 0, f"{SENTINEL}_typed = 1\n")
        line = text.splitlines()[3]
        type_text(lsp, uri, 2, 3, len(line), "z")  # a new prefix: no type-ahead cache hit
        ctx = await inline(lsp, uri, 3, len(line) + 1)
        assert ctx is not None and SENTINEL not in ctx and "recent:" not in ctx, ctx
    idx = ProjectIndex.open(root, create=False)
    assert SENTINEL not in all_rows_text(idx) and PAYLOAD not in all_rows_text(idx)


async def test_no_mcp_tool_or_resource_answers_or_prompts_with_outside_code(tmp_path: Path) -> None:
    root = make_linked_project(tmp_path)
    ProjectIndex.open(root).update()
    engine = FakeEngine("```python\ndef inside_only(x):\n    return x + 2\n```\n")
    calls = [
        ("domain_query", {"instruction": f"call {SENTINEL} and inside_only", "context": f"{SENTINEL}(token)"}),
        ("complete_code", {"prefix": f"value = {SENTINEL}(inside_only(", "file_path": "app/real.py"}),
        ("generate_diff", {"instruction": f"use {SENTINEL} here", "file_path": "app/real.py"}),
        ("suggest_pattern", {"goal": f"raise ValueError like {SENTINEL}"}),
        ("suggest_pattern", {"code": f'raise ValueError("{SENTINEL}")', "language": "python"}),
    ]
    seen: list[str] = []
    async with connect(root, engine) as client:
        for tool, args in calls:
            result = await client.call_tool(tool, args)
            assert not result.is_error, (tool, text_of(result))
            seen.append(text_of(result) + json.dumps(result.structured_content))
        refused = await client.call_tool("complete_code", {"prefix": "x = 1", "file_path": "app/linked.py"})
        assert refused.is_error and "outside the project" in text_of(refused)
        for uri in ("mochi://index/stats", "mochi://project/conventions"):
            seen.append((await client.read_resource(uri)).contents[0].text)
    prompts = [c.prompt + c.prefix + c.suffix + "".join(s.path + s.text for s in c.snippets) for c in engine.calls]
    assert any("def inside_only(x):" in p for p in prompts)  # project context does reach the prompts
    for text in seen + prompts:
        assert PAYLOAD not in text and f"def {SENTINEL}" not in text and "app/linked" not in text
