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


def serve_shrinking() -> None:
    """The server process with a fake whose prompts were shrunk to fit (level 6) and that can grow."""
    from types import SimpleNamespace

    from mochi_ls.server import create_server
    from mochi_model.fake import FakeEngine

    class GrowingFake(FakeEngine):
        def complete_fim(self, *a: Any, **kw: Any) -> Any:
            out = super().complete_fim(*a, **kw)
            out.extra["prompt_fit"] = 6
            return out

        def grow(self, prefix: str, suffix: str = "", context_snippets: Any = (), **kw: Any) -> Any:
            self.answer = f"# grew from {kw['from_level']}"  # the next answer shows it
            return SimpleNamespace(state="done")

    create_server(engine=GrowingFake("x = 1")).start_io()


async def test_after_a_suggestion_from_a_shrunk_prompt_the_server_grows_it_unless_switched_off(project):
    command = python_server("tests.e2e.lsp.test_warm_up", "serve_shrinking")
    for grow, expected in ((True, {"done": 1}), (False, {})):
        options = {"completion": {"debounce_ms": 0, "grow_when_idle": grow}, "server": {"index_on_start": False}}
        async with running_server(project, options=options, command=command) as lsp:
            uri = open_doc(lsp, project / "pkg" / "grow.py", "a = 1\n")
            type_text(lsp, uri, 1, 1, 0, "b")
            assert await inline(lsp, uri, 1, 1) == "x = 1"
            st = await wait_until(lsp, lambda s, g=grow: sum(s["prompt_growths"].values()) >= 1 or not g)
            assert st["prompt_growths"] == expected
            type_text(lsp, uri, 2, 1, 1, "c")
            shown = await inline(lsp, uri, 1, 2)
        assert shown == ("# grew from 6" if grow else "x = 1")
