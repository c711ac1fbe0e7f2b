"""One pipeline: the LSP, MCP `complete_code`, `mochi complete` and `mochi eval` send the engine the same
prompt for the same document and cursor, and return the same completion.

A fake engine records every call; the prompt each edge produced is rendered with the real FIM
format and compared byte for byte. The project is the `shop` fixture with a real index (tree-sitter +
LanceDB), so retrieved snippets are part of what must agree.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mochi_core.config import MochiConfig, load_config
from mochi_index import ProjectIndex
from mochi_ls.completer import CompletionInput
from mochi_ls.session import Session
from mochi_mcp.complete import complete_code
from mochi_mcp.workspace import Workspace
from mochi_model.eval.harness import Row, run_row
from mochi_model.eval.holes import Hole
from mochi_model.fake import FakeCall, FakeEngine
from mochi_model.fim import build_prompt, get_fim_format

FILE = "shop/orders.py"
# The cursor: a fresh line in cancel_order, after code that calls into other files.
ANCHOR = '    logger.info("cancelled order for %s", sku)\n'
ANSWER = "return inventory.count(sku)\n    # done"


@pytest.fixture
def project(shop: Path) -> Path:
    """The indexed `shop` fixture project (tests/protocol/mcp/conftest.py)."""
    return shop


def _document(root: Path) -> tuple[str, int]:
    text = (root / FILE).read_text(encoding="utf-8")
    at = text.index(ANCHOR) + len(ANCHOR)
    return text[:at] + "    \n" + text[at:], at + 4


def _prompt(call: FakeCall) -> str:
    return build_prompt(get_fim_format("qwen"), call.prefix, call.suffix, call.snippets, path=FILE,
                        language="python")


def _lsp(root: Path, text: str, offset: int) -> tuple[FakeCall, str]:
    import asyncio

    engine = FakeEngine(ANSWER)
    session = Session(engine=engine)
    session.configure(root, {})
    session.index.open(create=False)
    inp = CompletionInput(uri=(root / FILE).as_uri(), path=FILE, language="python", text=text, offset=offset)
    sug = asyncio.run(session.complete(inp))
    session.index.close()
    assert sug is not None
    return engine.calls[-1], sug.text


def _mcp(root: Path, text: str, offset: int) -> tuple[FakeCall, str]:
    engine = FakeEngine(ANSWER)
    ws = Workspace(root)
    try:
        out = complete_code(ws, engine, prefix=text[:offset], suffix=text[offset:], file_path=FILE)
    finally:
        ws.close()
    return engine.calls[-1], out["completion"]


def _cli(root: Path, text: str, offset: int, monkeypatch: pytest.MonkeyPatch) -> tuple[FakeCall, str]:
    import mochi_model.loader
    from mochi_cli.app import app

    engine = FakeEngine(ANSWER)
    monkeypatch.setattr(mochi_model.loader, "load_engine", lambda *a, **k: engine)  # the model only
    (root / FILE).write_text(text, encoding="utf-8")
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    res = CliRunner().invoke(app, ["complete", f"{root / FILE}:{line}:{column}", "-p", str(root)])
    assert res.exit_code == 0, res.output
    return engine.calls[-1], res.stdout.rstrip("\n")


def _eval(root: Path, text: str, offset: int, kind: str) -> tuple[FakeCall, str]:
    engine = FakeEngine(ANSWER)
    target = "x = 1"  # what the eval cuts out: the document it completes is `text` again
    files = {FILE: text[:offset] + target + text[offset:]}
    hole = Hole(kind=kind, path=FILE, cursor=offset, end=offset + len(target), target=target)
    cfg, _ = load_config(root)
    idx = ProjectIndex.open(root, config=cfg, create=False)
    try:
        (res,) = run_row(engine, Row(name="retrieval", retrieval=True), [hole], ["in_file"], files, index=idx,
                         config=cfg.completion)
    finally:
        idx.close()
    return engine.calls[-1], res.pred


def test_lsp_mcp_cli_and_eval_send_byte_identical_prompts_and_return_the_same_completion(project, monkeypatch):
    text, offset = _document(project)
    lsp_call, lsp_text = _lsp(project, text, offset)
    assert any(s.path != FILE for s in lsp_call.snippets), "the fixture should retrieve context from other files"
    mcp_call, mcp_text = _mcp(project, text, offset)
    eval_call, eval_text = _eval(project, text, offset, "span")
    cli_call, cli_text = _cli(project, text, offset, monkeypatch)
    expected = _prompt(lsp_call)
    for name, call in (("mcp", mcp_call), ("cli", cli_call), ("eval", eval_call)):
        assert _prompt(call) == expected, name
        assert (call.max_tokens, call.multiline, call.temperature) == \
            (lsp_call.max_tokens, lsp_call.multiline, lsp_call.temperature), name
    assert lsp_call.multiline is True  # a blank line: the pipeline's auto mode asks for a block
    assert lsp_text == mcp_text == cli_text == eval_text == ANSWER


def test_the_eval_scores_next_line_holes_on_the_first_line_of_the_same_prompt(project):
    text, offset = _document(project)
    lsp_call, lsp_text = _lsp(project, text, offset)
    eval_call, eval_text = _eval(project, text, offset, "next_line")
    assert _prompt(eval_call) == _prompt(lsp_call)
    assert eval_call.multiline == lsp_call.multiline and eval_call.stop == ["\n"]
    assert eval_text == lsp_text.split("\n")[0]


def test_the_budgets_users_run_with_are_the_ones_every_edge_uses(project):
    (project / ".mochi" / "config.toml").write_text("[completion]\nprefix_tokens = 40\ncontext_tokens = 0\n")
    text, offset = _document(project)
    lsp_call, _ = _lsp(project, text, offset)
    mcp_call, _ = _mcp(project, text, offset)
    eval_call, _ = _eval(project, text, offset, "span")
    assert lsp_call.snippets == mcp_call.snippets == eval_call.snippets == []
    assert _prompt(lsp_call) == _prompt(mcp_call) == _prompt(eval_call)
    assert len(lsp_call.prefix) < offset // 2  # 40 tokens, counted by the engine's tokenizer
    assert MochiConfig().completion.prefix_tokens == 1024
