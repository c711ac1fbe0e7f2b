"""End to end: a jump to another place warms that place's prompt in the background (llama.vim-style).

The server runs over stdio with a fake engine that has ``warm`` and records the prompt pieces it was
asked to prefill; a following request at the new place must send the same prompt front.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from tests.e2e.lsp.harness import TIMEOUT_S, _client, capabilities, inline, open_doc, type_text, wait_until

REPO = Path(__file__).resolve().parents[3]


def serve() -> None:
    """The server process with a warming fake (run by the test below)."""
    from types import SimpleNamespace

    from mochi_ls.server import create_server
    from mochi_model.fake import FakeEngine

    class WarmingFake(FakeEngine):
        def warm(self, prefix: str, suffix: str = "", context_snippets: Any = (), **kw: Any) -> Any:
            self.answer = "# warmed: " + prefix.rsplit("\n", 1)[-1].strip()  # the next answer shows it
            return SimpleNamespace(state="done")

    create_server(engine=WarmingFake("x")).start_io()


@pytest.fixture
def project(fixture_project):
    return fixture_project("lsp/project")


async def test_a_jump_warms_the_new_place_and_typing_on_one_line_does_not(project):
    cmd = [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(REPO)!r}); "
           "from tests.e2e.lsp.test_warm_up import serve; serve()"]
    lsp = await ClientServerConfig(server_command=cmd, client_factory=_client).start()
    try:
        await asyncio.wait_for(lsp.initialize_session(types.InitializeParams(
            capabilities=capabilities("neovim", inline=True), root_uri=project.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=project.as_uri(), name=project.name)],
            initialization_options={"completion": {"debounce_ms": 0}, "server": {"index_on_start": False}})),
            TIMEOUT_S)
        doc = "".join(f"v{i} = {i}\n" for i in range(20))
        uri = open_doc(lsp, project / "pkg" / "warm.py", doc)
        type_text(lsp, uri, 2, 1, 0, "a")  # the document's first edit: a new place
        st = await wait_until(lsp, lambda s: sum(s["warm_ups"].values()) >= 1)
        type_text(lsp, uri, 3, 1, 1, "b")  # same line: no warm-up
        type_text(lsp, uri, 4, 15, 0, "zz")  # 14 lines away: a jump
        st = await wait_until(lsp, lambda s: sum(s["warm_ups"].values()) >= 2)
        shown = await inline(lsp, uri, 15, 2)
        await asyncio.wait_for(lsp.shutdown_session(), TIMEOUT_S)
    finally:
        proc = lsp._server
        if proc is not None and proc.returncode is None:
            proc.kill()
        await lsp.stop()
    assert st["warm_ups"] == {"done": 2}
    assert shown == "# warmed: zz"  # the warm-up saw the cursor where the person typed
