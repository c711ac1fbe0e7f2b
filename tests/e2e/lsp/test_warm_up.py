"""End to end: a jump to another place warms that place's prompt in the background (llama.vim-style).

The server runs over stdio with a fake engine that has ``warm`` and records the prompt pieces it was
asked to prefill; a following request at the new place must send the same prompt front.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.lsp.harness import inline, open_doc, python_server, running_server, type_text, wait_until


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
    options = {"completion": {"debounce_ms": 0}, "server": {"index_on_start": False}}
    async with running_server(project, options=options, command=python_server("tests.e2e.lsp.test_warm_up")) as lsp:
        doc = "".join(f"v{i} = {i}\n" for i in range(20))
        uri = open_doc(lsp, project / "pkg" / "warm.py", doc)
        type_text(lsp, uri, 2, 1, 0, "a")  # the document's first edit: a new place
        await wait_until(lsp, lambda s: sum(s["warm_ups"].values()) >= 1)
        type_text(lsp, uri, 3, 1, 1, "b")  # same line: no warm-up
        type_text(lsp, uri, 4, 15, 0, "zz")  # 14 lines away: a jump
        st = await wait_until(lsp, lambda s: sum(s["warm_ups"].values()) >= 2)
        shown = await inline(lsp, uri, 15, 2)
    assert st["warm_ups"] == {"done": 2}
    assert shown == "# warmed: zz"  # the warm-up saw the cursor where the person typed
