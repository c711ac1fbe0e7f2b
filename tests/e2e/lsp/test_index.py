"""End to end with the real project index (LanceDB + tree-sitter): background index, didSave."""

from __future__ import annotations

import pytest
from lsprotocol import types

import mochi_index
from tests.e2e.lsp.harness import (
    inline,
    open_doc,
    running_server,
    status,
    wait_for_log,
    wait_for_progress_end,
)

if not hasattr(mochi_index, "ProjectIndex"):
    pytest.skip("mochi_index.ProjectIndex is not available yet", allow_module_level=True)

ECHO = {"echo_context": True}
OPTIONS = {"completion": {"debounce_ms": 0, "max_tokens": 2000, "time_budget_ms": 20000}}  # echo answers are long


@pytest.fixture
def project(fixture_project):
    return fixture_project("lsp/project")


async def test_the_workspace_is_indexed_in_the_background_with_work_done_progress(project):
    async with running_server(project, spec=ECHO, options=OPTIONS) as lsp:
        reports = await wait_for_progress_end(lsp)
        assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].title == "Mochi: indexing"
        st = await status(lsp)
        assert st["index"]["available"] and st["index"]["ready"]
        # Definitions from the index now reach the prompt.
        uri = open_doc(lsp, project / "pkg" / "use.py", "from pkg.shapes import area_of_circle\n\nx = area_of_circle(")
        ctx = await inline(lsp, uri, 2, 19)
        assert "definition:pkg/shapes.py: def area_of_circle(radius: float) -> float:" in ctx
    assert (project / ".mochi" / "index").is_dir()


async def test_a_saved_file_is_reindexed_and_visible_to_the_next_completion(project):
    async with running_server(project, spec=ECHO, options=OPTIONS) as lsp:
        await wait_for_progress_end(lsp)
        text = "from pkg.geo import perimeter_of_square\n\nside = perimeter_of_square("
        uri = open_doc(lsp, project / "pkg" / "use.py", text)
        before = await inline(lsp, uri, 2, 26)
        assert "perimeter_of_square" not in before
        # A new module, saved from the editor with content that differs from the disk.
        geo = project / "pkg" / "geo.py"
        geo.write_text("# placeholder\n")
        saved = 'def perimeter_of_square(side: float) -> float:\n    """Four sides."""\n    return 4 * side\n'
        geo_uri = open_doc(lsp, geo, saved)
        lsp.text_document_did_save(types.DidSaveTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=geo_uri), text=saved))
        await wait_for_log(lsp, "re-indexed pkg/geo.py")
        after = await inline(lsp, uri, 2, 26)
        assert "definition:pkg/geo.py: def perimeter_of_square(side: float) -> float:" in after
        assert (await status(lsp))["index"]["saves"] == 1
